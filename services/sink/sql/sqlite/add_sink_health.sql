-- Adds one minute's counters to sink_health_minute: rows whose insert affected
-- nothing (duplicates, at the row's accounting minute) and dead-lettered
-- records (at their accounting minute or, if unreadable, their Kafka
-- timestamp's), in the batch's transaction so they count exactly once per
-- offset range.
--
-- Parameters:
--   ?1 minute_ms                INTEGER  a multiple of 60000
--   ?2 duplicate_impressions    INTEGER
--   ?3 duplicate_clicks         INTEGER
--   ?4 dead_letter_impressions  INTEGER
--   ?5 dead_letter_clicks       INTEGER
INSERT INTO sink_health_minute (minute_ms, duplicate_impressions, duplicate_clicks,
                                dead_letter_impressions, dead_letter_clicks)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (minute_ms) DO UPDATE
    SET duplicate_impressions   = duplicate_impressions + excluded.duplicate_impressions,
        duplicate_clicks        = duplicate_clicks + excluded.duplicate_clicks,
        dead_letter_impressions = dead_letter_impressions + excluded.dead_letter_impressions,
        dead_letter_clicks      = dead_letter_clicks + excluded.dead_letter_clicks;
