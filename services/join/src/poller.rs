//! The thread that owns the join's consumer: polls both keyed topics, sorts records
//! into per-shard batches and hands them over through bounded mailboxes; commits
//! and rewinds partitions when shards ask. Rebalance callbacks run here, inside
//! `poll`. Keeping every consumer call on this one thread is what makes a rewind
//! safe: records polled before it are dropped, after it they carry the new epoch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::prelude::SendError;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use adjoin_shared::keyed;

use crate::kafka_context::JoinConsumerContext;
use crate::messages::{KeyedBatch, KeyedRecord, RecordKind};
use crate::shards::{Handover, Shards};
use crate::watermark::Side;

/// How long polled records may wait for more before they are handed over.
const BATCH_WAIT: Duration = Duration::from_millis(20);

/// What shards ask of the consumer.
#[derive(Debug)]
pub enum Control {
    /// Commit these replay offsets (impressions, clicks) of a partition pair.
    Commit {
        partition: i32,
        offsets: [Option<i64>; 2],
    },
    /// A shard restarted: move both partitions back to these offsets (or, where
    /// none, to the group's committed offset) and stamp later records `epoch`.
    Rewind {
        partition: i32,
        epoch: u64,
        offsets: [Option<i64>; 2],
    },
}

pub struct Poller {
    stop: Arc<AtomicBool>,
    handle_opt: Option<JoinHandle<()>>,
}

impl Poller {
    pub fn spawn(
        consumer: BaseConsumer<JoinConsumerContext>,
        control: Receiver<Control>,
        batch_records: usize,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("join-poll".to_owned())
            .spawn(move || {
                poll_loop(&consumer, &control, batch_records, &stop_flag);
                // Every shard flushes and its offsets are committed before the
                // consumer leaves the group.
                let shards = consumer.context().shards.clone();
                let stopped = lock(&shards).shutdown();
                for (partition, offsets) in stopped {
                    consumer
                        .context()
                        .commit(&consumer, partition, &offsets, CommitMode::Sync);
                }
                drop(consumer);
            })?;
        Ok(Self {
            stop,
            handle_opt: Some(handle),
        })
    }

    /// Stops polling, stops every shard after a flush and a commit, and leaves the
    /// group; returns when done.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle_opt.take() {
            let _ = handle.join();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.handle_opt.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn lock(shards: &Mutex<Shards>) -> MutexGuard<'_, Shards> {
    shards
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn poll_loop(
    consumer: &BaseConsumer<JoinConsumerContext>,
    control: &Receiver<Control>,
    batch_records: usize,
    stop: &AtomicBool,
) {
    let shards = Arc::clone(&consumer.context().shards);
    let mut first_at_opt: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(command) = control.try_recv() {
            apply(consumer, &shards, command);
        }
        let timeout = match first_at_opt {
            None => Duration::from_millis(100),
            Some(first_at) => BATCH_WAIT.saturating_sub(first_at.elapsed()),
        };
        match consumer.poll(timeout) {
            Some(Ok(message)) => {
                if let Some((partition, record)) = keyed_record(consumer.context(), &message) {
                    let mut guard = lock(&shards);
                    if guard.owns(partition) {
                        first_at_opt.get_or_insert_with(Instant::now);
                        if guard.push(partition, record) >= batch_records {
                            drop(guard);
                            hand_over(&shards, stop);
                            first_at_opt = None;
                        }
                    }
                }
            }
            Some(Err(error)) => tracing::warn!(%error, "consumer error"),
            None => {}
        }
        if first_at_opt.is_some_and(|first_at| first_at.elapsed() >= BATCH_WAIT) {
            hand_over(&shards, stop);
            first_at_opt = None;
        }
    }
}

fn keyed_record(
    context: &JoinConsumerContext,
    message: &BorrowedMessage<'_>,
) -> Option<(i32, KeyedRecord)> {
    let side = if message.topic() == context.impressions_topic {
        Side::Impressions
    } else if message.topic() == context.clicks_topic {
        Side::Clicks
    } else {
        return None;
    };
    let mut kind = RecordKind::Unknown;
    let mut late = false;
    let mut origin_ms_opt = None;
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            match (header.key, header.value) {
                (keyed::HEADER_KIND, Some(value)) => {
                    kind = match value {
                        v if v == keyed::KIND_IMPRESSION.as_bytes() => RecordKind::Impression,
                        v if v == keyed::KIND_CLICK.as_bytes() => RecordKind::Click,
                        v if v == keyed::KIND_WATERMARK.as_bytes() => RecordKind::Watermark,
                        _ => RecordKind::Unknown,
                    };
                }
                (keyed::HEADER_LATE, Some(value)) => late = value == b"1",
                (keyed::HEADER_ORIGIN_MS, Some(value)) => {
                    origin_ms_opt = std::str::from_utf8(value)
                        .ok()
                        .and_then(|text| text.parse().ok());
                }
                _ => {}
            }
        }
    }
    Some((
        message.partition(),
        KeyedRecord {
            side,
            offset: message.offset(),
            kind,
            late,
            origin_ms_opt,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        },
    ))
}

fn apply(consumer: &BaseConsumer<JoinConsumerContext>, shards: &Mutex<Shards>, command: Control) {
    let context = consumer.context();
    match command {
        Control::Commit { partition, offsets } => {
            if !lock(shards).owns(partition) {
                return;
            }
            let offsets: Vec<(Side, i64)> = Side::BOTH
                .into_iter()
                .zip(offsets)
                .filter_map(|(side, offset_opt)| Some((side, offset_opt?)))
                .collect();
            context.commit(consumer, partition, &offsets, CommitMode::Async);
        }
        Control::Rewind {
            partition,
            epoch,
            offsets,
        } => {
            if !lock(shards).owns(partition) {
                return;
            }
            for (side, offset_opt) in Side::BOTH.into_iter().zip(offsets) {
                let topic = context.topic(side);
                let offset = match offset_opt {
                    Some(offset) => Offset::Offset(offset),
                    None => committed(consumer, topic, partition),
                };
                if let Err(error) = consumer.seek(topic, partition, offset, Duration::from_secs(10))
                {
                    tracing::error!(shard = partition, topic, %error, "cannot rewind a partition");
                }
            }
            lock(shards).rewound(partition, epoch);
            context
                .metrics
                .handovers
                .get_or_create(&crate::metrics::JoinMetrics::event("rewound"))
                .inc();
        }
    }
}

/// Returns the group's committed offset of a partition, or the beginning.
fn committed(consumer: &BaseConsumer<JoinConsumerContext>, topic: &str, partition: i32) -> Offset {
    let mut list = TopicPartitionList::new();
    let _ = list.add_partition_offset(topic, partition, Offset::Invalid);
    consumer
        .committed_offsets(list, Duration::from_secs(10))
        .ok()
        .and_then(|committed| {
            committed
                .find_partition(topic, partition)
                .map(|element| element.offset())
        })
        .filter(|offset| matches!(offset, Offset::Offset(_)))
        .unwrap_or(Offset::Beginning)
}

/// Hands every shard its polled records, waiting while a mailbox is full: that
/// wait is the backpressure that keeps memory flat.
fn hand_over(shards: &Mutex<Shards>, stop: &AtomicBool) {
    let handovers = lock(shards).take_batches();
    for handover in handovers {
        send(handover, stop);
    }
}

fn send(handover: Handover, stop: &AtomicBool) {
    let Handover {
        partition,
        addr,
        epoch,
        actor_metrics,
        records,
    } = handover;
    let mut pending = KeyedBatch { epoch, records };
    let mut blocked_since_opt: Option<Instant> = None;
    loop {
        match addr.try_send(pending) {
            Ok(()) => {
                actor_metrics.message_enqueued();
                if let Some(since) = blocked_since_opt {
                    actor_metrics.record_blocked(since.elapsed().as_secs_f64());
                }
                return;
            }
            Err(SendError::Full(returned)) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                blocked_since_opt.get_or_insert_with(Instant::now);
                pending = returned;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(SendError::Closed(_)) => {
                // Only a shard that was just handed over: its records are read
                // again by its next owner from the committed offsets.
                tracing::debug!(shard = partition, "shard mailbox closed");
                return;
            }
        }
    }
}
