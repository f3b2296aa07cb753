-- Recomputes every rollup from the fact tables and counts the rows where the
-- stored rollup differs (missing, extra, or other numbers), both ways with
-- EXCEPT. All zero means the rollups are exact (integers: no tolerance).
-- Scans the fact tables: for tests and audits, not for dashboards.
--
-- No parameters. Returns: rollup TEXT, mismatches INTEGER (one row per rollup).
-- Times are >= 2000 (ingest rejects older), so truncating with % is flooring.
WITH click_facts AS (
    SELECT COALESCE(impression_time_ms, event_time_ms)
               - COALESCE(impression_time_ms, event_time_ms) % 60000 AS minute_ms, *
    FROM clicks
),
measures AS (
    SELECT event_time_ms - event_time_ms % 60000 AS minute_ms,
           ad_id, ad_category, device, os, browser, location,
           1 AS impressions, 0 AS clicks, impression_cost_micros, 0 AS click_cost_micros
    FROM impressions
    UNION ALL
    SELECT minute_ms, ad_id, ad_category, device, os, browser, location,
           0, 1, 0, click_cost_micros
    FROM click_facts
    WHERE outcome = 'matched'
),
ad_expected AS (
    SELECT minute_ms, ad_id, ad_category, sum(impressions), sum(clicks),
           sum(impression_cost_micros), sum(click_cost_micros)
    FROM measures
    GROUP BY minute_ms, ad_id, ad_category
),
ad_stored AS (
    SELECT minute_ms, ad_id, ad_category, impressions, clicks,
           impression_cost_micros, click_cost_micros
    FROM ad_stats_minute
),
dimension_values AS (
    SELECT 'ad_category' AS dimension, ad_category AS value, * FROM measures
    UNION ALL SELECT 'device', device, * FROM measures
    UNION ALL SELECT 'os', os, * FROM measures
    UNION ALL SELECT 'browser', browser, * FROM measures
    UNION ALL SELECT 'location', location, * FROM measures
),
dimension_expected AS (
    SELECT dimension, minute_ms, value, sum(impressions), sum(clicks),
           sum(impression_cost_micros), sum(click_cost_micros)
    FROM dimension_values
    GROUP BY dimension, minute_ms, value
),
dimension_stored AS (
    SELECT dimension, minute_ms, value, impressions, clicks,
           impression_cost_micros, click_cost_micros
    FROM dimension_stats_minute
),
outcome_expected AS (
    SELECT minute_ms, outcome, count(*), sum(click_cost_micros)
    FROM click_facts
    GROUP BY minute_ms, outcome
),
outcome_stored AS (
    SELECT minute_ms, outcome, clicks, click_cost_micros FROM click_outcomes_minute
)
SELECT 'ad_stats_minute' AS rollup,
       (SELECT count(*) FROM (SELECT * FROM ad_expected EXCEPT SELECT * FROM ad_stored))
     + (SELECT count(*) FROM (SELECT * FROM ad_stored EXCEPT SELECT * FROM ad_expected))
       AS mismatches
UNION ALL
SELECT 'dimension_stats_minute',
       (SELECT count(*) FROM (SELECT * FROM dimension_expected EXCEPT SELECT * FROM dimension_stored))
     + (SELECT count(*) FROM (SELECT * FROM dimension_stored EXCEPT SELECT * FROM dimension_expected))
UNION ALL
SELECT 'click_outcomes_minute',
       (SELECT count(*) FROM (SELECT * FROM outcome_expected EXCEPT SELECT * FROM outcome_stored))
     + (SELECT count(*) FROM (SELECT * FROM outcome_stored EXCEPT SELECT * FROM outcome_expected));
