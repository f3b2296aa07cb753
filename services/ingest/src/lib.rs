//! The ingest service: one actix System per raw input topic that decodes and
//! validates producer records, re-keys them by `impression_id` into the
//! co-partitioned keyed topics, sends bad records to `<topic>.dlq` and writes the
//! in-band watermark markers the join relies on. Built by issue 4.
