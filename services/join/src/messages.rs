//! Messages between the join's poller thread and its shard actors.

use actix::Message;

use crate::watermark::Side;

/// What a keyed record is, from its `adjoin-kind` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Impression,
    Click,
    Watermark,
    /// No or an unknown `adjoin-kind` header: not written by adjoin's ingest.
    Unknown,
}

/// One record of a shard's keyed partitions, owned so librdkafka's buffer is freed.
#[derive(Clone, Debug)]
pub struct KeyedRecord {
    pub side: Side,
    pub offset: i64,
    pub kind: RecordKind,
    /// The `adjoin-late` header: ingest found it behind its raw partition's watermark.
    pub late: bool,
    /// The `adjoin-origin-ms` header: the raw record's Kafka timestamp.
    pub origin_ms_opt: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// Records of one shard's two partitions in the order they were polled. Stamped
/// with the shard's epoch at poll time: after a shard restarts and its partitions
/// are rewound, batches of an earlier epoch are stale and dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct KeyedBatch {
    pub epoch: u64,
    pub records: Vec<KeyedRecord>,
}

/// The shard's partitions leave this process: flush outcomes, and reply with the
/// offsets to commit before the next owner starts.
#[derive(Message)]
#[rtype(result = "Vec<(Side, i64)>")]
pub struct Revoke;

/// Stop after flushing outcomes; replies with the offsets to commit.
#[derive(Message)]
#[rtype(result = "Vec<(Side, i64)>")]
pub struct Shutdown;
