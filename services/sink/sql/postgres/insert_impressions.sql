-- Inserts a batch of impressions and adds what was really inserted to the
-- rollups, in one statement (run inside the batch's transaction).
--
-- Parameters, all arrays of the same length, one element per impression in
-- Kafka order:
--   $1  impression_id          text[]
--   $2  user_id                text[]
--   $3  session_id             text[]
--   $4  ad_id                  text[]
--   $5  ad_category            text[]
--   $6  device                 text[]
--   $7  os                     text[]
--   $8  browser                text[]
--   $9  location               text[]
--   $10 page_id                text[]
--   $11 referrer               text[]
--   $12 impression_cost_micros int8[]  cost * 1e6 rounded (exact in numeric)
--   $13 event_time_ms          int8[]  epoch milliseconds, UTC
-- Returns one row: inserted int8, skipped int8 (inserted + skipped = length).
--
-- Why one statement: the rollups must count exactly the rows the INSERT
-- really inserted, and RETURNING of a data-modifying CTE gives exactly those.
WITH input AS (
    SELECT u.*,
           -- Integer arithmetic all the way: exact to the millisecond, where
           -- to_timestamp(ms / 1000.0) goes through a float.
           timestamptz 'epoch' + u.event_time_ms * interval '1 millisecond' AS event_time
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                $12::int8[], $13::int8[])
         WITH ORDINALITY
         AS u(impression_id, user_id, session_id, ad_id, ad_category, device, os,
              browser, location, page_id, referrer, impression_cost_micros,
              event_time_ms, ord)
),
inserted AS (
    INSERT INTO impressions (impression_id, user_id, session_id, ad_id, ad_category,
                             device, os, browser, location, page_id, referrer,
                             impression_cost, event_time)
    SELECT impression_id, user_id, session_id, ad_id, ad_category,
           device, os, browser, location, page_id, referrer,
           impression_cost_micros * 0.000001, event_time
    FROM input
    -- In Kafka order: of an id's repeats within the batch the first is inserted
    -- and the others hit ON CONFLICT DO NOTHING, as a repeat in a later batch
    -- would. (DISTINCT ON would do the same with a sort by id that spills to
    -- disk at 20,000 rows; ordinality is cheap to sort.)
    ORDER BY ord
    ON CONFLICT (impression_id) DO NOTHING
    -- date_bin, not date_trunc: plain arithmetic on the instant, whatever the
    -- session's TimeZone (date_trunc on timestamptz truncates in local time).
    RETURNING date_bin('1 minute', event_time, timestamptz 'epoch') AS minute,
              ad_id, ad_category, device, os, browser, location, impression_cost
),
-- Each rollup's delta is summed per key first: ON CONFLICT DO UPDATE cannot
-- touch one row twice in a statement. MATERIALIZED lets the planner hash the
-- batch's rows instead of sorting them all; only the few delta rows are then
-- sorted by key, so every batch takes row locks in the same order and two
-- sinks cannot deadlock within one statement.
ad_delta AS MATERIALIZED (
    SELECT minute, ad_id, ad_category, count(*) AS impressions,
           sum(impression_cost) AS impression_cost
    FROM inserted
    GROUP BY minute, ad_id, ad_category
),
by_ad AS (
    INSERT INTO ad_stats_minute AS t (minute, ad_id, ad_category, impressions, impression_cost)
    SELECT minute, ad_id, ad_category, impressions, impression_cost
    FROM ad_delta
    ORDER BY minute, ad_id, ad_category
    ON CONFLICT (minute, ad_id, ad_category) DO UPDATE
        SET impressions     = t.impressions + excluded.impressions,
            impression_cost = t.impression_cost + excluded.impression_cost
),
-- Every impression counts once under each of the five dimensions.
dimension_delta AS MATERIALIZED (
    -- One pass over the batch for all five dimensions (hashed grouping sets);
    -- in each set the other attributes are NULL, so COALESCE finds the value.
    SELECT CASE WHEN GROUPING(ad_category) = 0 THEN 'ad_category'
                WHEN GROUPING(device) = 0 THEN 'device'
                WHEN GROUPING(os) = 0 THEN 'os'
                WHEN GROUPING(browser) = 0 THEN 'browser'
                ELSE 'location' END AS dimension,
           minute,
           COALESCE(ad_category, device, os, browser, location) AS value,
           count(*) AS impressions,
           sum(impression_cost) AS impression_cost
    FROM inserted
    GROUP BY GROUPING SETS ((minute, ad_category), (minute, device), (minute, os),
                            (minute, browser), (minute, location))
),
by_dimension AS (
    INSERT INTO dimension_stats_minute AS t (dimension, minute, value, impressions, impression_cost)
    SELECT dimension, minute, value, impressions, impression_cost
    FROM dimension_delta
    ORDER BY dimension, minute, value
    ON CONFLICT (dimension, minute, value) DO UPDATE
        SET impressions     = t.impressions + excluded.impressions,
            impression_cost = t.impression_cost + excluded.impression_cost
),
-- Skipped rows per minute = all input rows minus inserted ones, both counted
-- at the row's own event minute.
skipped AS (
    SELECT minute, sum(n) AS n
    FROM (SELECT date_bin('1 minute', event_time, timestamptz 'epoch') AS minute, 1 AS n
          FROM input
          UNION ALL
          SELECT minute, -1 FROM inserted) AS rows
    -- Only when the batch had duplicates: most have none.
    WHERE (SELECT count(*) FROM inserted) < cardinality($1::text[])
    GROUP BY minute
    HAVING sum(n) > 0
),
health AS (
    INSERT INTO sink_health_minute AS t (minute, duplicate_impressions)
    SELECT minute, n FROM skipped ORDER BY minute
    ON CONFLICT (minute) DO UPDATE
        SET duplicate_impressions = t.duplicate_impressions + excluded.duplicate_impressions
)
SELECT count(*)                          AS inserted,
       cardinality($1::text[]) - count(*) AS skipped
FROM inserted;
