//! Messages to the sink actor.

use std::ops::Range;

use actix::Message;

use crate::batch::Input;

/// A record as the poll thread hands it over; its bytes live in the batch's buffer.
#[derive(Clone, Debug)]
pub struct RawRecord {
    pub input: Input,
    pub partition: i32,
    pub offset: i64,
    /// The `adjoin-kind` header, when present and text.
    pub kind_opt: Option<&'static str>,
    /// The `adjoin-origin-ms` header: the raw record's Kafka timestamp.
    pub origin_ms_opt: Option<i64>,
    /// Ranges of `RecordBatch::bytes`.
    pub key: Option<Range<usize>>,
    pub value: Range<usize>,
}

/// Records read from both inputs, in offset order per partition. Sent into a
/// bounded mailbox: while the actor writes (or waits for the database), the poll
/// thread waits too, and consumption pauses.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordBatch {
    /// The assignment the records were read under; bumped by every rebalance.
    pub assignment: u64,
    pub records: Vec<RawRecord>,
    pub bytes: Vec<u8>,
}

/// Partitions this process no longer owns: what the actor holds of them is dropped
/// unwritten (their next owner resumes from the offsets in the database).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PartitionsRevoked {
    pub partitions: Vec<(Input, i32)>,
}

/// Write what is batched, then stop. Replies when done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;
