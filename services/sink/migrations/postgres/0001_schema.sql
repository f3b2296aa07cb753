-- adjoin sink schema, PostgreSQL. Documented table by table in docs/schema.md.
--
-- Costs are numeric(.., 6): the sink binds them as integer micro-units and
-- numeric sums are exact whatever the order rows are added in, so a rollup
-- built batch by batch equals SUM() over the fact table to the last digit.
-- float8 sums depend on summation order and would not.

-- Facts --------------------------------------------------------------------

CREATE TABLE impressions (
    impression_id   text          PRIMARY KEY,
    user_id         text          NOT NULL,
    session_id      text          NOT NULL,
    ad_id           text          NOT NULL,
    ad_category     text          NOT NULL,
    device          text          NOT NULL,
    os              text          NOT NULL,
    browser         text          NOT NULL,
    location        text          NOT NULL,
    page_id         text          NOT NULL,
    -- Empty for direct traffic, never NULL, so GROUP BY referrer needs no COALESCE.
    referrer        text          NOT NULL,
    impression_cost numeric(18,6) NOT NULL CHECK (impression_cost >= 0),
    event_time      timestamptz   NOT NULL,
    -- Transaction time of the sink batch that wrote the row: freshness and
    -- latency checks without Kafka.
    inserted_at     timestamptz   NOT NULL DEFAULT now()
);

-- One row per distinct click: the first outcome the sink saw wins.
CREATE TABLE clicks (
    click_id        text          PRIMARY KEY,
    impression_id   text          NOT NULL,
    -- u32 in the event schema: int4 cannot hold it all.
    click_position  bigint        NOT NULL CHECK (click_position BETWEEN 0 AND 4294967295),
    click_cost      numeric(18,6) NOT NULL CHECK (click_cost >= 0),
    event_time      timestamptz   NOT NULL,
    outcome         text          NOT NULL
        CHECK (outcome IN ('matched', 'no_impression', 'late')),
    -- The matched impression's attributes, copied from the outcome record so
    -- that rollups and ad-hoc queries need no join with impressions (whose row
    -- may even arrive in a later batch). NULL unless matched.
    impression_time timestamptz,
    ad_id           text,
    ad_category     text,
    device          text,
    os              text,
    browser         text,
    location        text,
    inserted_at     timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT clicks_impression_iff_matched CHECK (
        CASE WHEN outcome = 'matched'
             THEN num_nulls(impression_time, ad_id, ad_category, device, os, browser, location) = 0
             ELSE num_nonnulls(impression_time, ad_id, ad_category, device, os, browser, location) = 0
        END
    )
);

-- Finding the clicks of an impression (and checking matched clicks against
-- impressions) without a scan; clicks are a few percent of impressions, so
-- this index costs little on insert.
CREATE INDEX clicks_impression_id_idx ON clicks (impression_id);

-- Ad-hoc time-range queries and audits on the facts (dashboards read the
-- rollups). BRIN, not btree: rows arrive in roughly event-time order, so a
-- BRIN index is selective enough at a few kB, where a btree grows with the
-- table and costs more on every insert (in a 200k-row insert benchmark, about
-- +3% for BRIN against +10% for a btree).
CREATE INDEX impressions_event_time_brin ON impressions USING brin (event_time);
CREATE INDEX clicks_event_time_brin ON clicks USING brin (event_time);

-- Rollups ------------------------------------------------------------------
--
-- Rollup rows are updated in place all the time and their indexed columns never
-- change: fillfactor 70 leaves room on each page so an update stays on its page
-- (a HOT update, no new index entries), measured faster for the sink.
--
-- Every rollup row is only ever increased by rows a batch really inserted, in
-- the same transaction as the insert, so rollups equal GROUP BY over the facts
-- (services/sink/sql/postgres/check_rollups.sql says how to check).
-- minute is always a whole UTC minute; the CHECKs catch a writer that forgets
-- to truncate (which would silently split a minute into many rows).

-- Per impression minute and ad: impressions, and the matched clicks of those
-- impressions (a click counts at its impression's minute, so CTR of a minute
-- is "of the impressions shown in that minute, how many were clicked").
CREATE TABLE ad_stats_minute (
    minute          timestamptz   NOT NULL CHECK (extract(epoch FROM minute) % 60 = 0),
    ad_id           text          NOT NULL,
    ad_category     text          NOT NULL,
    impressions     bigint        NOT NULL DEFAULT 0,
    clicks          bigint        NOT NULL DEFAULT 0,
    impression_cost numeric(24,6) NOT NULL DEFAULT 0,
    click_cost      numeric(24,6) NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, ad_id, ad_category)
) WITH (fillfactor = 70);

-- The primary key serves time-range scans (and top ads within a range); this
-- one serves one ad's time series.
CREATE INDEX ad_stats_minute_ad_idx ON ad_stats_minute (ad_id, minute);

-- The same measures per impression minute and value of one attribute. One long
-- table instead of a table per attribute or a device x os x browser x location
-- cube: each batch touches a few rows per minute and dimension instead of one
-- per combination, and every per-attribute chart is one index range scan.
-- Every impression counts once under each dimension, so summing the values of
-- any one dimension gives the minute's totals (view kpis_minute).
-- ad_category is here too: charting by category from ad_stats_minute would
-- have to read every ad's rows.
CREATE TABLE dimension_stats_minute (
    minute          timestamptz   NOT NULL CHECK (extract(epoch FROM minute) % 60 = 0),
    dimension       text          NOT NULL
        CHECK (dimension IN ('ad_category', 'device', 'os', 'browser', 'location')),
    value           text          NOT NULL,
    impressions     bigint        NOT NULL DEFAULT 0,
    clicks          bigint        NOT NULL DEFAULT 0,
    impression_cost numeric(24,6) NOT NULL DEFAULT 0,
    click_cost      numeric(24,6) NOT NULL DEFAULT 0,
    -- dimension first: dashboards always ask for one dimension over a time range.
    PRIMARY KEY (dimension, minute, value)
) WITH (fillfactor = 70);

-- Every distinct click by outcome, at its accounting minute: the impression's
-- minute for a match (as in ad_stats_minute), the click's own minute otherwise
-- (there is no impression). Idempotent like the other rollups.
CREATE TABLE click_outcomes_minute (
    minute          timestamptz   NOT NULL CHECK (extract(epoch FROM minute) % 60 = 0),
    outcome         text          NOT NULL
        CHECK (outcome IN ('matched', 'no_impression', 'late')),
    clicks          bigint        NOT NULL DEFAULT 0,
    click_cost      numeric(24,6) NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, outcome)
) WITH (fillfactor = 70);

-- What the sink skipped, per minute of the skipped row's accounting time
-- (impression: its event time; click: as in click_outcomes_minute) or, for a
-- record that could not be read at all, of its Kafka timestamp. Unlike the
-- rollups above these are counters of events, not of facts: delivering the
-- same input again adds to duplicate_* (that is the point), so this table is
-- the one thing a replay changes.
CREATE TABLE sink_health_minute (
    minute                  timestamptz NOT NULL PRIMARY KEY
        CHECK (extract(epoch FROM minute) % 60 = 0),
    -- Rows that hit ON CONFLICT DO NOTHING or repeated a key within a batch.
    duplicate_impressions   bigint      NOT NULL DEFAULT 0,
    duplicate_clicks        bigint      NOT NULL DEFAULT 0,
    -- Records sent to sink.dlq: unreadable, or rejected by the database.
    dead_letter_impressions bigint      NOT NULL DEFAULT 0,
    dead_letter_clicks      bigint      NOT NULL DEFAULT 0
) WITH (fillfactor = 70);

-- Offsets ------------------------------------------------------------------

-- Where each sink consumer group resumes, written in the same transaction as
-- the rows those offsets cover: this, not Kafka's committed offset, is the
-- truth (Kafka commits are for lag monitoring only).
CREATE TABLE adjoin_offsets (
    consumer_group  text          NOT NULL,
    topic           text          NOT NULL,
    partition_id    integer       NOT NULL CHECK (partition_id >= 0),
    -- Offset of the next record to read (Kafka's committed-offset convention).
    next_offset     bigint        NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition_id)
);

-- Views --------------------------------------------------------------------
--
-- Ratios are NULL where the denominator is 0 (a minute whose clicks arrived
-- before its impressions were written, say), never an error. They are per
-- row: over a longer range, sum the counts and costs first and divide after
-- (docs/schema.md has the queries); averaging per-minute ratios is wrong.
-- Ratios are float8: they are for display, exactness lives in the sums.

CREATE VIEW ad_kpis_minute AS
SELECT minute, ad_id, ad_category,
       impressions, clicks, impression_cost, click_cost,
       impression_cost + click_cost                      AS total_cost,
       clicks::float8 / NULLIF(impressions, 0)           AS ctr,
       (click_cost / NULLIF(clicks, 0))::float8          AS cpc,
       (impression_cost / NULLIF(impressions, 0))::float8 AS cpi
FROM ad_stats_minute;

CREATE VIEW dimension_kpis_minute AS
SELECT minute, dimension, value,
       impressions, clicks, impression_cost, click_cost,
       impression_cost + click_cost                      AS total_cost,
       clicks::float8 / NULLIF(impressions, 0)           AS ctr,
       (click_cost / NULLIF(clicks, 0))::float8          AS cpc,
       (impression_cost / NULLIF(impressions, 0))::float8 AS cpi
FROM dimension_stats_minute;

-- Whole-pipeline totals per minute, read from the ad_category rows (a handful
-- per minute) rather than from every ad's row.
CREATE VIEW kpis_minute AS
SELECT minute,
       sum(impressions)                                        AS impressions,
       sum(clicks)                                             AS clicks,
       sum(impression_cost)                                    AS impression_cost,
       sum(click_cost)                                         AS click_cost,
       sum(impression_cost) + sum(click_cost)                  AS total_cost,
       sum(clicks)::float8 / NULLIF(sum(impressions), 0)       AS ctr,
       (sum(click_cost) / NULLIF(sum(clicks), 0))::float8      AS cpc,
       (sum(impression_cost) / NULLIF(sum(impressions), 0))::float8 AS cpi
FROM dimension_stats_minute
WHERE dimension = 'ad_category'
GROUP BY minute;

-- Data health per minute: clicks by outcome next to what the sink skipped.
CREATE VIEW data_health_minute AS
WITH outcomes AS (
    SELECT minute,
           sum(clicks) FILTER (WHERE outcome = 'matched')           AS matched_clicks,
           sum(clicks) FILTER (WHERE outcome = 'no_impression')     AS no_impression_clicks,
           sum(clicks) FILTER (WHERE outcome = 'late')              AS late_clicks,
           sum(click_cost) FILTER (WHERE outcome = 'matched')       AS matched_click_cost,
           sum(click_cost) FILTER (WHERE outcome <> 'matched')      AS unmatched_click_cost
    FROM click_outcomes_minute
    GROUP BY minute
)
SELECT minute,
       COALESCE(o.matched_clicks, 0)          AS matched_clicks,
       COALESCE(o.no_impression_clicks, 0)    AS no_impression_clicks,
       COALESCE(o.late_clicks, 0)             AS late_clicks,
       COALESCE(o.matched_click_cost, 0)      AS matched_click_cost,
       COALESCE(o.unmatched_click_cost, 0)    AS unmatched_click_cost,
       COALESCE(h.duplicate_impressions, 0)   AS duplicate_impressions,
       COALESCE(h.duplicate_clicks, 0)        AS duplicate_clicks,
       COALESCE(h.dead_letter_impressions, 0) AS dead_letter_impressions,
       COALESCE(h.dead_letter_clicks, 0)      AS dead_letter_clicks,
       COALESCE(o.matched_clicks, 0)::float8
           / NULLIF(COALESCE(o.matched_clicks, 0) + COALESCE(o.no_impression_clicks, 0)
                    + COALESCE(o.late_clicks, 0), 0) AS match_rate
FROM outcomes o
FULL JOIN sink_health_minute h USING (minute);
