//! Messages to an ingest actor.

use std::ops::Range;

use actix::Message;

/// A record as the poller hands it over: its key and payload copied out of
/// librdkafka's buffer (so that is freed) into the batch's one byte buffer.
#[derive(Clone, Debug)]
pub struct RawMessage {
    pub partition: i32,
    pub offset: i64,
    /// Ranges of `RawBatch::bytes`.
    pub key: Option<Range<usize>>,
    pub payload: Range<usize>,
    /// The record's Kafka timestamp, epoch milliseconds, when it has one.
    pub timestamp_ms_opt: Option<i64>,
}

/// Records read from the raw topic, in partition order. Sent with `send(..)` into a
/// bounded mailbox: a busy actor slows the poller down (backpressure).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RawBatch {
    pub generation: u64,
    /// The offset tracker's assignment version when the records were polled.
    pub assignment_version: u64,
    pub records: Vec<RawMessage>,
    /// Every record's key and payload, back to back.
    pub bytes: Vec<u8>,
}

/// The group gave this consumer generation these partitions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PartitionsAssigned {
    pub generation: u64,
    pub partitions: Vec<i32>,
}

/// These partitions left; their acknowledged offsets were committed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PartitionsRevoked {
    pub generation: u64,
    pub partitions: Vec<i32>,
}

/// The poller thread of a generation ended without being asked to.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PollerStopped {
    pub generation: u64,
    pub error: String,
}

/// Stop consuming, flush, commit, stop. Replies when done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;
