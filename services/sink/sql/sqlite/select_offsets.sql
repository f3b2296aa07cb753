-- Where a consumer group resumes on a topic, read when partitions are
-- assigned; a partition without a row starts from auto.offset.reset.
--
-- Parameters:
--   ?1 consumer_group  TEXT
--   ?2 topic           TEXT
-- Returns: partition_id INTEGER, next_offset INTEGER.
SELECT partition_id, next_offset
FROM adjoin_offsets
WHERE consumer_group = ?1 AND topic = ?2
ORDER BY partition_id;
