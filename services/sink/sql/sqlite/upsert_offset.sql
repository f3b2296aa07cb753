-- Records where the sink resumes on one partition, in the same transaction as
-- the rows the offset covers; once per (topic, partition) of the batch.
-- Set, not MAX(old, new): see sql/postgres/upsert_offsets.sql.
--
-- Parameters:
--   ?1 consumer_group  TEXT
--   ?2 topic           TEXT
--   ?3 partition_id    INTEGER
--   ?4 next_offset     INTEGER  offset of the next record to read
INSERT INTO adjoin_offsets (consumer_group, topic, partition_id, next_offset)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (consumer_group, topic, partition_id) DO UPDATE
    SET next_offset   = excluded.next_offset,
        updated_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    -- Unmoved offsets are not rewritten: updated_at_ms is the last progress.
    WHERE next_offset <> excluded.next_offset;
