//! The thread that polls the sink's consumer (both input topics) and hands records
//! to the sink actor in batches. Rebalance callbacks run here, inside poll; they
//! read the database's offsets for newly assigned partitions
//! ([`crate::kafka_context`]).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::Addr;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

use adjoin_shared::keyed;
use adjoin_shared::mailbox::send_blocking;
use adjoin_shared::metrics::ActorMetrics;

use crate::actors::writer::SinkWriter;
use crate::kafka_context::SinkConsumerContext;
use crate::messages::{RawRecord, RecordBatch};

/// How long a partial batch may wait for more records.
const BATCH_WAIT: Duration = Duration::from_millis(20);

/// What a batch's byte buffer is sized for per record, so it rarely grows.
const TYPICAL_RECORD_BYTES: usize = 512;

pub struct Poller {
    stop: Arc<AtomicBool>,
    handle_opt: Option<JoinHandle<Result<(), String>>>,
}

impl Poller {
    pub fn spawn(
        consumer: Arc<BaseConsumer<SinkConsumerContext>>,
        writer: Addr<SinkWriter>,
        batch_records: usize,
        actor_metrics: ActorMetrics,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let stop_flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("sink-poll".to_owned())
            .spawn(move || {
                let outcome = poll_loop(
                    &consumer,
                    &writer,
                    batch_records,
                    &actor_metrics,
                    &stop_flag,
                );
                if let Err(error) = &outcome {
                    tracing::error!(%error, "the sink poll thread stopped");
                }
                outcome
            })?;
        Ok(Self {
            stop,
            handle_opt: Some(handle),
        })
    }

    pub fn is_finished(&self) -> bool {
        self.handle_opt.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks the thread to stop after its current poll or hand-over; the consumer
    /// leaves the group when the last handle on it is dropped.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn poll_loop(
    consumer: &BaseConsumer<SinkConsumerContext>,
    writer: &Addr<SinkWriter>,
    batch_records: usize,
    actor_metrics: &ActorMetrics,
    stop: &AtomicBool,
) -> Result<(), String> {
    let context = consumer.context();
    while !stop.load(Ordering::Relaxed) {
        let mut records = Vec::with_capacity(batch_records);
        let mut bytes = Vec::with_capacity(batch_records * TYPICAL_RECORD_BYTES);
        let mut first_at_opt: Option<Instant> = None;
        let mut assignment = context.assignment();
        while records.len() < batch_records && !stop.load(Ordering::Relaxed) {
            let timeout = match first_at_opt {
                None => Duration::from_millis(100),
                Some(first_at) => BATCH_WAIT.saturating_sub(first_at.elapsed()),
            };
            let polled = consumer.poll(timeout);
            if context.assignment() != assignment {
                // A rebalance ran inside that poll: what was gathered before it may
                // belong to revoked partitions, which are read again from the
                // offsets in the database by whoever owns them now.
                records.clear();
                bytes.clear();
                first_at_opt = None;
                assignment = context.assignment();
            }
            match polled {
                Some(Ok(message)) => {
                    let Some(input) = context.input_of(message.topic()) else {
                        continue;
                    };
                    first_at_opt.get_or_insert_with(Instant::now);
                    let (kind_opt, origin_ms_opt) = headers_of(&message);
                    let key = message.key().map(|key| append(&mut bytes, key));
                    let value = append(&mut bytes, message.payload().unwrap_or_default());
                    records.push(RawRecord {
                        input,
                        partition: message.partition(),
                        offset: message.offset(),
                        kind_opt,
                        origin_ms_opt,
                        key,
                        value,
                    });
                }
                Some(Err(error)) => {
                    // Transport and broker errors: librdkafka retries by itself.
                    tracing::warn!(%error, "sink consumer error");
                    if first_at_opt.is_some() {
                        break;
                    }
                }
                None if first_at_opt.is_some() => break,
                None => {}
            }
        }
        if records.is_empty() {
            continue;
        }
        send_blocking(
            writer,
            RecordBatch {
                assignment,
                records,
                bytes,
            },
            actor_metrics,
            stop,
        )?;
    }
    Ok(())
}

/// Reads the two headers the sink uses; the kind as one of the known constants so
/// no string is allocated per record.
fn headers_of<M: Message>(message: &M) -> (Option<&'static str>, Option<i64>) {
    let mut kind_opt = None;
    let mut origin_ms_opt = None;
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            match (header.key, header.value) {
                (keyed::HEADER_KIND, Some(value)) => {
                    kind_opt = [
                        keyed::KIND_IMPRESSION,
                        keyed::KIND_CLICK,
                        keyed::KIND_WATERMARK,
                        keyed::KIND_OUTCOME,
                    ]
                    .into_iter()
                    .find(|kind| kind.as_bytes() == value)
                    .or(Some(keyed::KIND_UNKNOWN));
                }
                (keyed::HEADER_ORIGIN_MS, Some(value)) => {
                    origin_ms_opt = std::str::from_utf8(value)
                        .ok()
                        .and_then(|text| text.parse().ok());
                }
                _ => {}
            }
        }
    }
    (kind_opt, origin_ms_opt)
}

fn append(bytes: &mut Vec<u8>, data: &[u8]) -> Range<usize> {
    let start = bytes.len();
    bytes.extend_from_slice(data);
    start..bytes.len()
}
