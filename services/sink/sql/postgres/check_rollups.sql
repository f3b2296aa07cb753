-- Recomputes every rollup from the fact tables and counts the rows where the
-- stored rollup differs (missing, extra, or other numbers). All zero means the
-- rollups are exact. Scans the fact tables: for tests and audits, not for
-- dashboards. Costs compare exactly (numeric), no tolerance.
--
-- No parameters. Returns: rollup text, mismatches int8 (one row per rollup).
WITH click_facts AS (
    SELECT date_bin('1 minute', COALESCE(impression_time, event_time), timestamptz 'epoch') AS minute, *
    FROM clicks
),
-- Impressions and matched clicks, both at the impression's minute.
measures AS (
    SELECT date_bin('1 minute', event_time, timestamptz 'epoch') AS minute,
           ad_id, ad_category, device, os, browser, location,
           1 AS impressions, 0 AS clicks, impression_cost, 0 AS click_cost
    FROM impressions
    UNION ALL
    SELECT minute, ad_id, ad_category, device, os, browser, location,
           0, 1, 0, click_cost
    FROM click_facts
    WHERE outcome = 'matched'
),
ad_expected AS (
    SELECT minute, ad_id, ad_category, sum(impressions) AS impressions, sum(clicks) AS clicks,
           sum(impression_cost) AS impression_cost, sum(click_cost) AS click_cost
    FROM measures
    GROUP BY minute, ad_id, ad_category
),
dimension_expected AS (
    SELECT d.dimension, m.minute, d.value, sum(m.impressions) AS impressions,
           sum(m.clicks) AS clicks, sum(m.impression_cost) AS impression_cost,
           sum(m.click_cost) AS click_cost
    FROM measures AS m
    CROSS JOIN LATERAL (VALUES ('ad_category', m.ad_category), ('device', m.device),
                               ('os', m.os), ('browser', m.browser),
                               ('location', m.location)) AS d(dimension, value)
    GROUP BY d.dimension, m.minute, d.value
),
outcome_expected AS (
    SELECT minute, outcome, count(*) AS clicks, sum(click_cost) AS click_cost
    FROM click_facts
    GROUP BY minute, outcome
)
SELECT 'ad_stats_minute' AS rollup, count(*) AS mismatches
FROM ad_expected AS e
FULL JOIN ad_stats_minute AS r USING (minute, ad_id, ad_category)
WHERE (e.impressions, e.clicks, e.impression_cost, e.click_cost)
      IS DISTINCT FROM (r.impressions, r.clicks, r.impression_cost, r.click_cost)
UNION ALL
SELECT 'dimension_stats_minute', count(*)
FROM dimension_expected AS e
FULL JOIN dimension_stats_minute AS r USING (dimension, minute, value)
WHERE (e.impressions, e.clicks, e.impression_cost, e.click_cost)
      IS DISTINCT FROM (r.impressions, r.clicks, r.impression_cost, r.click_cost)
UNION ALL
SELECT 'click_outcomes_minute', count(*)
FROM outcome_expected AS e
FULL JOIN click_outcomes_minute AS r USING (minute, outcome)
WHERE (e.clicks, e.click_cost) IS DISTINCT FROM (r.clicks, r.click_cost);
