-- Sample rollup rows for trying the dashboards on an empty database (tools/check.sh).
-- Not for a database the sink writes: it fills the rollups directly, without the
-- fact tables behind them.
--
-- 90 minutes ending at the current minute: synthetic impressions (20 ads in 4
-- categories, 3 devices, 4 OSes, 4 browsers, 5 locations), about 8% clicked, summed
-- into the rollups exactly as the sink would (a matched click at its impression's
-- minute; every impression once under each dimension), plus unmatched clicks,
-- duplicates and dead letters. Deterministic (setseed) but for the timestamps.
BEGIN;

DO $$ BEGIN PERFORM setseed(0.42); END $$;

CREATE TEMP TABLE sample_impressions ON COMMIT DROP AS
SELECT date_bin('1 minute', now(), timestamptz 'epoch') - (m * interval '1 minute') AS minute,
       'ad-' || ad                                              AS ad_id,
       (ARRAY['auto', 'finance', 'food', 'travel'])[1 + ad % 4] AS ad_category,
       (ARRAY['mobile', 'mobile', 'desktop', 'tablet'])[1 + floor(random() * 4)::int] AS device,
       (ARRAY['android', 'ios', 'windows', 'macos'])[1 + floor(random() * 4)::int] AS os,
       (ARRAY['chrome', 'chrome', 'safari', 'firefox', 'edge'])[1 + floor(random() * 5)::int] AS browser,
       (ARRAY['US', 'DE', 'FR', 'IN', 'BR'])[1 + floor(random() * 5)::int] AS location,
       round((0.002 + random() * 0.006)::numeric, 6)            AS impression_cost,
       -- CTR between about 4% (ad-0) and 12% (ad-19).
       random() < 0.04 + ad * 0.004                             AS clicked,
       round((0.5 + random() * 2)::numeric, 6)                  AS click_cost
FROM generate_series(0, 89) AS m,
     generate_series(0, 19) AS ad,
     generate_series(1, 12) AS n;

INSERT INTO ad_stats_minute (minute, ad_id, ad_category, impressions, clicks, impression_cost, click_cost)
SELECT minute, ad_id, ad_category, count(*), count(*) FILTER (WHERE clicked),
       sum(impression_cost), COALESCE(sum(click_cost) FILTER (WHERE clicked), 0)
FROM sample_impressions
GROUP BY 1, 2, 3;

INSERT INTO dimension_stats_minute (minute, dimension, value, impressions, clicks, impression_cost, click_cost)
SELECT minute, d.dimension, d.value, count(*), count(*) FILTER (WHERE clicked),
       sum(impression_cost), COALESCE(sum(click_cost) FILTER (WHERE clicked), 0)
FROM sample_impressions
CROSS JOIN LATERAL (VALUES ('ad_category', ad_category), ('device', device), ('os', os),
                           ('browser', browser), ('location', location)) AS d (dimension, value)
GROUP BY 1, 2, 3;

INSERT INTO click_outcomes_minute (minute, outcome, clicks, click_cost)
SELECT minute, 'matched', count(*), sum(click_cost)
FROM sample_impressions WHERE clicked
GROUP BY 1;

-- Unmatched clicks: a few in some minutes.
INSERT INTO click_outcomes_minute (minute, outcome, clicks, click_cost)
SELECT date_bin('1 minute', now(), timestamptz 'epoch') - (m * interval '1 minute'), o.outcome,
       1 + floor(random() * 4)::int, round((1 + random() * 3)::numeric, 6)
FROM generate_series(0, 89) AS m
CROSS JOIN (VALUES ('no_impression'), ('late')) AS o (outcome)
WHERE random() < 0.4;

-- Duplicates (a replay 30 minutes ago) and a few dead letters.
INSERT INTO sink_health_minute (minute, duplicate_impressions, duplicate_clicks,
                                dead_letter_impressions, dead_letter_clicks)
SELECT date_bin('1 minute', now(), timestamptz 'epoch') - (m * interval '1 minute'),
       CASE WHEN m BETWEEN 28 AND 32 THEN 200 + floor(random() * 50)::int ELSE 0 END,
       CASE WHEN m BETWEEN 28 AND 32 THEN 15 + floor(random() * 10)::int ELSE 0 END,
       CASE WHEN m % 17 = 3 THEN 1 ELSE 0 END,
       CASE WHEN m % 23 = 5 THEN 1 ELSE 0 END
FROM generate_series(0, 89) AS m
WHERE m BETWEEN 28 AND 32 OR m % 17 = 3 OR m % 23 = 5;

COMMIT;
