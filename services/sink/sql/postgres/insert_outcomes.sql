-- Inserts a batch of click outcomes and adds what was really inserted to the
-- rollups, in one statement (run inside the batch's transaction).
--
-- Parameters, all arrays of the same length, one element per outcome record in
-- Kafka order; $7..$13 are NULL for no_impression and late outcomes:
--   $1  click_id            text[]
--   $2  impression_id       text[]
--   $3  click_position      int8[]
--   $4  click_cost_micros   int8[]  cost * 1e6 rounded (exact in numeric)
--   $5  event_time_ms       int8[]  the click's time, epoch milliseconds, UTC
--   $6  outcome             text[]  'matched' | 'no_impression' | 'late'
--   $7  impression_time_ms  int8[]  the matched impression's event time
--   $8  ad_id               text[]
--   $9  ad_category         text[]
--   $10 device              text[]
--   $11 os                  text[]
--   $12 browser             text[]
--   $13 location            text[]
-- Returns one row: inserted int8, skipped int8 (inserted + skipped = length).
--
-- A click_id already in the table keeps its outcome: the join may emit a
-- click twice around a shard hand-over, possibly with different outcomes, and
-- the first one written is final.
WITH input AS (
    SELECT u.*,
           -- Integer arithmetic all the way: exact to the millisecond.
           timestamptz 'epoch' + u.event_time_ms * interval '1 millisecond'      AS event_time,
           timestamptz 'epoch' + u.impression_time_ms * interval '1 millisecond' AS impression_time
    FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::text[],
                $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[],
                $12::text[], $13::text[])
         WITH ORDINALITY
         AS u(click_id, impression_id, click_position, click_cost_micros, event_time_ms,
              outcome, impression_time_ms, ad_id, ad_category, device, os, browser,
              location, ord)
),
inserted AS (
    INSERT INTO clicks (click_id, impression_id, click_position, click_cost, event_time,
                        outcome, impression_time, ad_id, ad_category, device, os,
                        browser, location)
    SELECT click_id, impression_id, click_position, click_cost_micros * 0.000001,
           event_time, outcome, impression_time, ad_id, ad_category, device, os,
           browser, location
    FROM input
    -- In Kafka order: of an id's repeats within the batch the first is inserted
    -- and the others hit ON CONFLICT DO NOTHING, as a repeat in a later batch
    -- would. (DISTINCT ON would do the same with a sort by id that spills to
    -- disk at 20,000 rows; ordinality is cheap to sort.)
    ORDER BY ord
    ON CONFLICT (click_id) DO NOTHING
    -- Accounting minute: the impression's for a match, the click's own
    -- otherwise (an unmatched click has no impression). date_bin: arithmetic
    -- on the instant, independent of the session's TimeZone.
    RETURNING date_bin('1 minute', COALESCE(impression_time, event_time), timestamptz 'epoch')
                  AS minute,
              outcome, ad_id, ad_category, device, os, browser, location, click_cost
),
-- Deltas summed per key first (ON CONFLICT DO UPDATE cannot touch a row twice
-- in one statement), hashed (MATERIALIZED), then upserted in key order for a
-- stable row-lock order; see insert_impressions.sql.
ad_delta AS MATERIALIZED (
    SELECT minute, ad_id, ad_category, count(*) AS clicks, sum(click_cost) AS click_cost
    FROM inserted
    WHERE outcome = 'matched'
    GROUP BY minute, ad_id, ad_category
),
by_ad AS (
    INSERT INTO ad_stats_minute AS t (minute, ad_id, ad_category, clicks, click_cost)
    SELECT minute, ad_id, ad_category, clicks, click_cost
    FROM ad_delta
    ORDER BY minute, ad_id, ad_category
    ON CONFLICT (minute, ad_id, ad_category) DO UPDATE
        SET clicks     = t.clicks + excluded.clicks,
            click_cost = t.click_cost + excluded.click_cost
),
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
           count(*) AS clicks,
           sum(click_cost) AS click_cost
    FROM inserted
    WHERE outcome = 'matched'
    GROUP BY GROUPING SETS ((minute, ad_category), (minute, device), (minute, os),
                            (minute, browser), (minute, location))
),
by_dimension AS (
    INSERT INTO dimension_stats_minute AS t (dimension, minute, value, clicks, click_cost)
    SELECT dimension, minute, value, clicks, click_cost
    FROM dimension_delta
    ORDER BY dimension, minute, value
    ON CONFLICT (dimension, minute, value) DO UPDATE
        SET clicks     = t.clicks + excluded.clicks,
            click_cost = t.click_cost + excluded.click_cost
),
-- Every distinct click, matched or not.
outcome_delta AS MATERIALIZED (
    SELECT minute, outcome, count(*) AS clicks, sum(click_cost) AS click_cost
    FROM inserted
    GROUP BY minute, outcome
),
by_outcome AS (
    INSERT INTO click_outcomes_minute AS t (minute, outcome, clicks, click_cost)
    SELECT minute, outcome, clicks, click_cost
    FROM outcome_delta
    ORDER BY minute, outcome
    ON CONFLICT (minute, outcome) DO UPDATE
        SET clicks     = t.clicks + excluded.clicks,
            click_cost = t.click_cost + excluded.click_cost
),
-- Skipped rows per minute = all input rows minus inserted ones, each counted
-- at its own accounting minute.
skipped AS (
    SELECT minute, sum(n) AS n
    FROM (SELECT date_bin('1 minute', COALESCE(impression_time, event_time),
                          timestamptz 'epoch') AS minute,
                 1 AS n
          FROM input
          UNION ALL
          SELECT minute, -1 FROM inserted) AS rows
    -- Only when the batch had duplicates: most have none.
    WHERE (SELECT count(*) FROM inserted) < cardinality($1::text[])
    GROUP BY minute
    HAVING sum(n) > 0
),
health AS (
    INSERT INTO sink_health_minute AS t (minute, duplicate_clicks)
    SELECT minute, n FROM skipped ORDER BY minute
    ON CONFLICT (minute) DO UPDATE
        SET duplicate_clicks = t.duplicate_clicks + excluded.duplicate_clicks
)
SELECT count(*)                          AS inserted,
       cardinality($1::text[]) - count(*) AS skipped
FROM inserted;
