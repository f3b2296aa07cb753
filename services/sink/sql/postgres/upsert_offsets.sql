-- Records where the sink resumes, in the same transaction as the rows those
-- offsets cover.
--
-- Parameters:
--   $1 consumer_group  text
--   $2 topic           text[]
--   $3 partition_id    int4[]
--   $4 next_offset     int8[]  offset of the next record to read
-- Each (topic, partition_id) at most once (a second one fails the statement:
-- ON CONFLICT DO UPDATE cannot touch a row twice). Rows affected counts only
-- the offsets that moved.
--
-- Set, not GREATEST(old, new): the sink is the only writer of its group, and
-- the stored value must always be the position the committed rows go with.
-- GREATEST would make a deliberate rewind (an operator replaying a range after
-- clearing tables) impossible and hide a sink bug that moves offsets backwards.
-- A zombie owner writing an older offset after a rebalance is harmless either
-- way: the range is re-read and every row in it skipped as a duplicate.
INSERT INTO adjoin_offsets AS t (consumer_group, topic, partition_id, next_offset)
SELECT $1::text, topic, partition_id, next_offset
FROM unnest($2::text[], $3::int4[], $4::int8[]) AS u(topic, partition_id, next_offset)
ORDER BY topic, partition_id
ON CONFLICT (consumer_group, topic, partition_id) DO UPDATE
    SET next_offset = excluded.next_offset,
        updated_at  = now()
    -- An offset that did not move is not rewritten: updated_at then says when
    -- a partition last made progress, and a replayed batch changes nothing.
    WHERE t.next_offset <> excluded.next_offset;
