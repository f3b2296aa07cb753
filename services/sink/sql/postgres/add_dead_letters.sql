-- Counts the batch's dead-lettered records in sink_health_minute, in the batch's
-- transaction: counted exactly when their offsets move past them.
-- (Duplicates are counted by insert_impressions.sql / insert_outcomes.sql.)
--
-- Parameters, arrays of the same length, one element per record or already
-- summed per minute (both work):
--   $1 time_ms       int8[]  the record's accounting time (impression: event
--                            time; click: impression's time if matched, else
--                            its own) or, if it could not be read, its Kafka
--                            timestamp; epoch milliseconds, truncated here
--   $2 impressions   int8[]  dead-lettered impressions at that time
--   $3 clicks        int8[]  dead-lettered click outcomes at that time
-- Summed per minute here: two times in one minute must make one upsert row.
INSERT INTO sink_health_minute AS t (minute, dead_letter_impressions, dead_letter_clicks)
SELECT date_bin('1 minute', timestamptz 'epoch' + time_ms * interval '1 millisecond',
                timestamptz 'epoch') AS minute,
       sum(impressions), sum(clicks)
FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS u(time_ms, impressions, clicks)
GROUP BY 1
ORDER BY 1
ON CONFLICT (minute) DO UPDATE
    SET dead_letter_impressions = t.dead_letter_impressions + excluded.dead_letter_impressions,
        dead_letter_clicks      = t.dead_letter_clicks + excluded.dead_letter_clicks;
