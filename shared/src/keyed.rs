//! The format of the keyed topics (`impressions.keyed`, `clicks.keyed`) that ingest
//! writes and the join and sink read, and of the dead-letter topics. Documented in
//! `docs/keyed-topics.md`; the header names and the marker layout are a contract
//! between services, so they live here.

use serde::{Deserialize, Serialize};

/// Header saying what a keyed record is: [`KIND_IMPRESSION`], [`KIND_CLICK`] or
/// [`KIND_WATERMARK`]. Readers branch on it without parsing the value.
pub const HEADER_KIND: &str = "adjoin-kind";
pub const KIND_IMPRESSION: &str = "impression";
pub const KIND_CLICK: &str = "click";
pub const KIND_WATERMARK: &str = "watermark";
/// On `click-outcomes`: one click's outcome.
pub const KIND_OUTCOME: &str = "outcome";
/// What a reader records for an `adjoin-kind` value it does not know.
pub const KIND_UNKNOWN: &str = "unknown";

/// Header carrying the Kafka timestamp (epoch milliseconds) of the raw record a
/// keyed record or outcome goes back to, so the sink can measure end-to-end latency.
pub const HEADER_ORIGIN_MS: &str = "adjoin-origin-ms";

/// Header on data records: `1` when the record was below its raw partition's
/// watermark when ingest read it, else `0`.
pub const HEADER_LATE: &str = "adjoin-late";

/// Header on data and dead-letter records: where the record came from, as
/// `topic/partition/offset`.
pub const HEADER_SOURCE: &str = "adjoin-source";

/// Dead-letter headers: the stable reason code, the human message, and the source
/// topic, partition and offset as separate values.
pub const HEADER_REASON: &str = "adjoin-reason";
pub const HEADER_ERROR: &str = "adjoin-error";
pub const HEADER_SOURCE_TOPIC: &str = "adjoin-source-topic";
pub const HEADER_SOURCE_PARTITION: &str = "adjoin-source-partition";
pub const HEADER_SOURCE_OFFSET: &str = "adjoin-source-offset";

/// Returns the dead-letter topic of a raw topic.
pub fn dlq_topic(raw_topic: &str) -> String {
    format!("{raw_topic}.dlq")
}

/// An in-band watermark marker: the value of a [`KIND_WATERMARK`] record, written
/// by an ingest instance to every partition of a keyed topic, for the raw
/// partitions it owns. A shard's watermark is the minimum over every raw partition
/// of both raw topics, ignoring idle ones; see `docs/keyed-topics.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatermarkMarker {
    /// The raw topic the watermarks are of.
    pub source_topic: String,
    /// How many partitions that raw topic has, so a reader knows when it has heard
    /// of all of them.
    pub source_partitions: i32,
    /// The ingest instance that wrote it (host and process), for debugging.
    pub instance: String,
    /// Wall-clock time of writing, epoch milliseconds.
    pub emitted_at_ms: i64,
    pub partitions: Vec<PartitionWatermark>,
}

/// One raw partition's watermark as its owner knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionWatermark {
    pub partition: i32,
    /// Newest event time seen minus allowed lateness, epoch milliseconds; absent
    /// until the partition has had a valid record.
    pub watermark_ms: Option<i64>,
    /// True when the partition has had no record for `watermark.idle_timeout`: it
    /// no longer holds the shard watermark back.
    pub idle: bool,
}
