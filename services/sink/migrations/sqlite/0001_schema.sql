-- adjoin sink schema, SQLite (the embedded default). Same tables, keys,
-- constraints and meaning as migrations/postgres; docs/schema.md documents both.
-- Two representation changes, both in the column names so nobody mixes units:
--   * times are INTEGER epoch milliseconds UTC (*_ms; minute_ms is a multiple
--     of 60000): SQLite has no timestamp type, integers compare and index fast
--     and are exactly what the events carry;
--   * costs are INTEGER micro-units (*_micros): SQLite sums integers exactly
--     (and fails loudly on overflow), while REAL sums depend on summation
--     order, so a rollup built batch by batch would drift from SUM() over the
--     fact table in the last bits. Views convert both back for people.
-- STRICT tables: a wrongly typed bind is an error, not a silently stored text.
-- Rollups are WITHOUT ROWID: small rows looked up by their composite key.

-- Facts --------------------------------------------------------------------

CREATE TABLE impressions (
    impression_id          TEXT    NOT NULL PRIMARY KEY,
    user_id                TEXT    NOT NULL,
    session_id             TEXT    NOT NULL,
    ad_id                  TEXT    NOT NULL,
    ad_category            TEXT    NOT NULL,
    device                 TEXT    NOT NULL,
    os                     TEXT    NOT NULL,
    browser                TEXT    NOT NULL,
    location               TEXT    NOT NULL,
    page_id                TEXT    NOT NULL,
    referrer               TEXT    NOT NULL,
    impression_cost_micros INTEGER NOT NULL CHECK (impression_cost_micros >= 0),
    event_time_ms          INTEGER NOT NULL,
    -- When the sink's batch wrote the row (unixepoch('subsec') needs 3.42).
    inserted_at_ms         INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
) STRICT;

CREATE TABLE clicks (
    click_id           TEXT    NOT NULL PRIMARY KEY,
    impression_id      TEXT    NOT NULL,
    click_position     INTEGER NOT NULL CHECK (click_position BETWEEN 0 AND 4294967295),
    click_cost_micros  INTEGER NOT NULL CHECK (click_cost_micros >= 0),
    event_time_ms      INTEGER NOT NULL,
    outcome            TEXT    NOT NULL
        CHECK (outcome IN ('matched', 'no_impression', 'late')),
    -- The matched impression's attributes; NULL unless matched.
    impression_time_ms INTEGER,
    ad_id              TEXT,
    ad_category        TEXT,
    device             TEXT,
    os                 TEXT,
    browser            TEXT,
    location           TEXT,
    inserted_at_ms     INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    CONSTRAINT clicks_impression_iff_matched CHECK (
        CASE WHEN outcome = 'matched'
             THEN impression_time_ms IS NOT NULL AND ad_id IS NOT NULL
                  AND ad_category IS NOT NULL AND device IS NOT NULL AND os IS NOT NULL
                  AND browser IS NOT NULL AND location IS NOT NULL
             ELSE impression_time_ms IS NULL AND ad_id IS NULL AND ad_category IS NULL
                  AND device IS NULL AND os IS NULL AND browser IS NULL AND location IS NULL
        END
    )
) STRICT;

CREATE INDEX clicks_impression_id_idx ON clicks (impression_id);
-- SQLite has no BRIN; a plain index on event time is the only way to make
-- time-range queries on the facts cheap. Embedded databases are small, the
-- write cost is acceptable there.
CREATE INDEX impressions_event_time_idx ON impressions (event_time_ms);
CREATE INDEX clicks_event_time_idx ON clicks (event_time_ms);

-- Rollups: only ever increased by rows a batch really inserted ---------------

CREATE TABLE ad_stats_minute (
    minute_ms              INTEGER NOT NULL CHECK (minute_ms % 60000 = 0),
    ad_id                  TEXT    NOT NULL,
    ad_category            TEXT    NOT NULL,
    impressions            INTEGER NOT NULL DEFAULT 0,
    clicks                 INTEGER NOT NULL DEFAULT 0,
    impression_cost_micros INTEGER NOT NULL DEFAULT 0,
    click_cost_micros      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute_ms, ad_id, ad_category)
) STRICT, WITHOUT ROWID;

CREATE INDEX ad_stats_minute_ad_idx ON ad_stats_minute (ad_id, minute_ms);

CREATE TABLE dimension_stats_minute (
    dimension              TEXT    NOT NULL
        CHECK (dimension IN ('ad_category', 'device', 'os', 'browser', 'location')),
    minute_ms              INTEGER NOT NULL CHECK (minute_ms % 60000 = 0),
    value                  TEXT    NOT NULL,
    impressions            INTEGER NOT NULL DEFAULT 0,
    clicks                 INTEGER NOT NULL DEFAULT 0,
    impression_cost_micros INTEGER NOT NULL DEFAULT 0,
    click_cost_micros      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, minute_ms, value)
) STRICT, WITHOUT ROWID;

CREATE TABLE click_outcomes_minute (
    minute_ms         INTEGER NOT NULL CHECK (minute_ms % 60000 = 0),
    outcome           TEXT    NOT NULL
        CHECK (outcome IN ('matched', 'no_impression', 'late')),
    clicks            INTEGER NOT NULL DEFAULT 0,
    click_cost_micros INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute_ms, outcome)
) STRICT, WITHOUT ROWID;

-- Counters of events, not of facts: a replay adds to duplicate_*.
CREATE TABLE sink_health_minute (
    minute_ms               INTEGER NOT NULL PRIMARY KEY CHECK (minute_ms % 60000 = 0),
    duplicate_impressions   INTEGER NOT NULL DEFAULT 0,
    duplicate_clicks        INTEGER NOT NULL DEFAULT 0,
    dead_letter_impressions INTEGER NOT NULL DEFAULT 0,
    dead_letter_clicks      INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

-- Offsets ------------------------------------------------------------------

CREATE TABLE adjoin_offsets (
    consumer_group TEXT    NOT NULL,
    topic          TEXT    NOT NULL,
    partition_id   INTEGER NOT NULL CHECK (partition_id >= 0),
    next_offset    INTEGER NOT NULL CHECK (next_offset >= 0),
    updated_at_ms  INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    PRIMARY KEY (consumer_group, topic, partition_id)
) STRICT, WITHOUT ROWID;

-- Views: the same columns as PostgreSQL's views (minute as ISO 8601 text UTC,
-- costs as REAL currency units), plus minute_ms for range filters that use
-- the index. Ratios are NULL where the denominator is 0; CAST AS REAL because
-- SQLite divides integers as integers.

CREATE VIEW ad_kpis_minute AS
SELECT strftime('%Y-%m-%dT%H:%M:%SZ', minute_ms / 1000, 'unixepoch') AS minute,
       minute_ms, ad_id, ad_category, impressions, clicks,
       impression_cost_micros / 1e6                          AS impression_cost,
       click_cost_micros / 1e6                               AS click_cost,
       (impression_cost_micros + click_cost_micros) / 1e6    AS total_cost,
       CAST(clicks AS REAL) / NULLIF(impressions, 0)         AS ctr,
       click_cost_micros / 1e6 / NULLIF(clicks, 0)           AS cpc,
       impression_cost_micros / 1e6 / NULLIF(impressions, 0) AS cpi
FROM ad_stats_minute;

CREATE VIEW dimension_kpis_minute AS
SELECT strftime('%Y-%m-%dT%H:%M:%SZ', minute_ms / 1000, 'unixepoch') AS minute,
       minute_ms, dimension, value, impressions, clicks,
       impression_cost_micros / 1e6                          AS impression_cost,
       click_cost_micros / 1e6                               AS click_cost,
       (impression_cost_micros + click_cost_micros) / 1e6    AS total_cost,
       CAST(clicks AS REAL) / NULLIF(impressions, 0)         AS ctr,
       click_cost_micros / 1e6 / NULLIF(clicks, 0)           AS cpc,
       impression_cost_micros / 1e6 / NULLIF(impressions, 0) AS cpi
FROM dimension_stats_minute;

CREATE VIEW kpis_minute AS
SELECT strftime('%Y-%m-%dT%H:%M:%SZ', minute_ms / 1000, 'unixepoch') AS minute,
       minute_ms,
       sum(impressions)                                            AS impressions,
       sum(clicks)                                                 AS clicks,
       sum(impression_cost_micros) / 1e6                           AS impression_cost,
       sum(click_cost_micros) / 1e6                                AS click_cost,
       (sum(impression_cost_micros) + sum(click_cost_micros)) / 1e6 AS total_cost,
       CAST(sum(clicks) AS REAL) / NULLIF(sum(impressions), 0)     AS ctr,
       sum(click_cost_micros) / 1e6 / NULLIF(sum(clicks), 0)       AS cpc,
       sum(impression_cost_micros) / 1e6 / NULLIF(sum(impressions), 0) AS cpi
FROM dimension_stats_minute
WHERE dimension = 'ad_category'
GROUP BY minute_ms;

-- The union of both tables' minutes, then a LEFT JOIN to each: PostgreSQL's
-- FULL JOIN, spelled so that sqlite3 shells older than 3.39 (no FULL JOIN)
-- can still open the file and read the view.
CREATE VIEW data_health_minute AS
WITH minutes AS (
    SELECT minute_ms FROM click_outcomes_minute
    UNION
    SELECT minute_ms FROM sink_health_minute
),
outcomes AS (
    SELECT minute_ms,
           sum(CASE WHEN outcome = 'matched' THEN clicks ELSE 0 END)                AS matched_clicks,
           sum(CASE WHEN outcome = 'no_impression' THEN clicks ELSE 0 END)          AS no_impression_clicks,
           sum(CASE WHEN outcome = 'late' THEN clicks ELSE 0 END)                   AS late_clicks,
           sum(CASE WHEN outcome = 'matched' THEN click_cost_micros ELSE 0 END)     AS matched_click_cost_micros,
           sum(CASE WHEN outcome <> 'matched' THEN click_cost_micros ELSE 0 END)    AS unmatched_click_cost_micros
    FROM click_outcomes_minute
    GROUP BY minute_ms
)
SELECT strftime('%Y-%m-%dT%H:%M:%SZ', m.minute_ms / 1000, 'unixepoch') AS minute,
       m.minute_ms,
       COALESCE(o.matched_clicks, 0)                       AS matched_clicks,
       COALESCE(o.no_impression_clicks, 0)                 AS no_impression_clicks,
       COALESCE(o.late_clicks, 0)                          AS late_clicks,
       COALESCE(o.matched_click_cost_micros, 0) / 1e6      AS matched_click_cost,
       COALESCE(o.unmatched_click_cost_micros, 0) / 1e6    AS unmatched_click_cost,
       COALESCE(h.duplicate_impressions, 0)                AS duplicate_impressions,
       COALESCE(h.duplicate_clicks, 0)                     AS duplicate_clicks,
       COALESCE(h.dead_letter_impressions, 0)              AS dead_letter_impressions,
       COALESCE(h.dead_letter_clicks, 0)                   AS dead_letter_clicks,
       CAST(COALESCE(o.matched_clicks, 0) AS REAL)
           / NULLIF(COALESCE(o.matched_clicks, 0) + COALESCE(o.no_impression_clicks, 0)
                    + COALESCE(o.late_clicks, 0), 0)       AS match_rate
FROM minutes AS m
LEFT JOIN outcomes AS o ON o.minute_ms = m.minute_ms
LEFT JOIN sink_health_minute AS h ON h.minute_ms = m.minute_ms;
