//! The thread that polls a raw topic's consumer and hands records to the ingest
//! actor in batches. librdkafka's poll blocks, so it stays off the actor's thread;
//! rebalance callbacks run here, inside poll.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::Addr;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

use adjoin_shared::mailbox::send_blocking;
use adjoin_shared::metrics::ActorMetrics;

use crate::actors::topic_ingestor::TopicIngestor;
use crate::kafka_context::{lock, IngestConsumerContext};
use crate::messages::{PollerStopped, RawBatch, RawMessage};

/// How long a partial batch may wait for more records.
const BATCH_WAIT: Duration = Duration::from_millis(20);

/// What a batch's byte buffer is sized for per record, so it rarely grows.
const TYPICAL_RECORD_BYTES: usize = 512;

pub struct Poller {
    stop: Arc<AtomicBool>,
    handle_opt: Option<JoinHandle<()>>,
}

impl Poller {
    pub fn spawn(
        consumer: Arc<BaseConsumer<IngestConsumerContext>>,
        ingestor: Addr<TopicIngestor>,
        generation: u64,
        batch_records: usize,
        actor_metrics: ActorMetrics,
        name: String,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name(name).spawn(move || {
            let outcome = poll_loop(
                &consumer,
                &ingestor,
                generation,
                batch_records,
                &actor_metrics,
                &stop_flag,
            );
            if !stop_flag.load(Ordering::Relaxed) {
                ingestor.do_send(PollerStopped {
                    generation,
                    error: outcome.err().unwrap_or_else(|| "stopped".to_owned()),
                });
            }
            // Dropping the last handle closes the consumer: it leaves the group and
            // its revoke callback commits what is acknowledged.
            drop(consumer);
        })?;
        Ok(Self {
            stop,
            handle_opt: Some(handle),
        })
    }

    /// Asks the thread to stop after its current poll or hand-over.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_finished(&self) -> bool {
        self.handle_opt.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop();
    }
}

fn poll_loop(
    consumer: &BaseConsumer<IngestConsumerContext>,
    ingestor: &Addr<TopicIngestor>,
    generation: u64,
    batch_records: usize,
    actor_metrics: &ActorMetrics,
    stop: &AtomicBool,
) -> Result<(), String> {
    let assignment_version = || lock(&consumer.context().tracker).assignment_version();
    while !stop.load(Ordering::Relaxed) {
        let mut records = Vec::with_capacity(batch_records);
        let mut bytes = Vec::with_capacity(batch_records * TYPICAL_RECORD_BYTES);
        let mut first_at_opt: Option<Instant> = None;
        let mut version = assignment_version();
        while records.len() < batch_records && !stop.load(Ordering::Relaxed) {
            let timeout = match first_at_opt {
                None => Duration::from_millis(100),
                Some(first_at) => BATCH_WAIT.saturating_sub(first_at.elapsed()),
            };
            let polled = consumer.poll(timeout);
            // A rebalance ran inside that poll: what was gathered before it belongs to
            // revoked partitions, which are read again from their committed offsets.
            if assignment_version() != version {
                records.clear();
                bytes.clear();
                first_at_opt = None;
                version = assignment_version();
            }
            match polled {
                Some(Ok(message)) => {
                    first_at_opt.get_or_insert_with(Instant::now);
                    let key = message.key().map(|key| append(&mut bytes, key));
                    let payload = append(&mut bytes, message.payload().unwrap_or_default());
                    records.push(RawMessage {
                        partition: message.partition(),
                        offset: message.offset(),
                        key,
                        payload,
                        timestamp_ms_opt: message.timestamp().to_millis(),
                    });
                }
                Some(Err(error)) => {
                    // Transport and broker errors: librdkafka retries by itself.
                    tracing::warn!(%error, "consumer error");
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
            ingestor,
            RawBatch {
                generation,
                assignment_version: version,
                records,
                bytes,
            },
            actor_metrics,
            stop,
        )?;
    }
    Ok(())
}

fn append(bytes: &mut Vec<u8>, data: &[u8]) -> Range<usize> {
    let start = bytes.len();
    bytes.extend_from_slice(data);
    start..bytes.len()
}
