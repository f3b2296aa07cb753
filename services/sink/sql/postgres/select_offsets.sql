-- Where a consumer group resumes on a topic, read when partitions are
-- assigned. A partition without a row has never been written: the sink starts
-- it from the consumer's auto.offset.reset position.
--
-- Parameters:
--   $1 consumer_group  text
--   $2 topic           text
-- Returns: partition_id int4, next_offset int8 (one row per stored partition).
SELECT partition_id, next_offset
FROM adjoin_offsets
WHERE consumer_group = $1 AND topic = $2
ORDER BY partition_id;
