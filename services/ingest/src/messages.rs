//! Messages to an ingest actor.

use actix::Message;

/// A record as the poller hands it over: owned, so librdkafka's buffer is freed.
#[derive(Clone, Debug)]
pub struct RawMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
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
