//! The librdkafka callbacks of an ingest actor: delivery reports acknowledge raw
//! offsets; rebalances commit what is safe before partitions leave and tell the
//! actor what it owns.

use std::sync::{Arc, Mutex, MutexGuard};

use actix::Recipient;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use adjoin_shared::metrics::ReadinessCheck;

use crate::messages::{PartitionsAssigned, PartitionsRevoked};
use crate::metrics::IngestMetrics;
use crate::offsets::{Committable, OffsetTracker};

pub fn lock(tracker: &Mutex<OffsetTracker>) -> MutexGuard<'_, OffsetTracker> {
    tracker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a produced record stands for: a raw record's output, or a marker (`None`).
pub type DeliveryOpaque = Box<Option<(u64, i32, i64)>>;

pub struct IngestProducerContext {
    pub tracker: Arc<Mutex<OffsetTracker>>,
    pub metrics: IngestMetrics,
    pub kind: &'static str,
}

impl ClientContext for IngestProducerContext {}

impl ProducerContext for IngestProducerContext {
    type DeliveryOpaque = DeliveryOpaque;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: DeliveryOpaque) {
        match (result, *opaque) {
            (Ok(_), Some((generation, partition, offset))) => {
                lock(&self.tracker).acknowledged(generation, partition, offset);
            }
            (Ok(_), None) => {}
            (Err((error, _)), source) => {
                self.metrics
                    .delivery_failures
                    .get_or_create(&IngestMetrics::topic(self.kind))
                    .inc();
                tracing::error!(topic = self.kind, %error, marker = source.is_none(), "record not delivered");
                if let Some((generation, _, _)) = source {
                    lock(&self.tracker).delivery_failed(generation);
                }
            }
        }
    }
}

pub struct IngestConsumerContext {
    pub tracker: Arc<Mutex<OffsetTracker>>,
    pub generation: u64,
    pub raw_topic: String,
    pub assigned: Recipient<PartitionsAssigned>,
    pub revoked: Recipient<PartitionsRevoked>,
    pub metrics: IngestMetrics,
    pub kind: &'static str,
    pub readiness: ReadinessCheck,
}

impl ClientContext for IngestConsumerContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let lag = if self.kind == "clicks" {
            &self.metrics.consumer_lag_clicks
        } else {
            &self.metrics.consumer_lag_impressions
        };
        lag.record(adjoin_shared::kafka::consumer_lags(&statistics));
    }
}

impl ConsumerContext for IngestConsumerContext {
    /// Before partitions leave, commit what is acknowledged so the next owner
    /// re-reads as little as possible; what is in flight it will read again.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        let partitions: Vec<i32> = revoked
            .elements()
            .iter()
            .map(|element| element.partition())
            .collect();
        let positions: Vec<Committable> = {
            let mut tracker = lock(&self.tracker);
            let positions = tracker
                .committable()
                .into_iter()
                .filter(|position| partitions.contains(&position.partition))
                .collect();
            for partition in &partitions {
                tracker.revoke(*partition);
            }
            positions
        };
        commit(
            consumer,
            &self.raw_topic,
            &positions,
            CommitMode::Sync,
            &self.metrics,
            self.kind,
        );
        self.metrics
            .rebalances
            .get_or_create(&IngestMetrics::result(self.kind, "revoked"))
            .inc_by(partitions.len() as u64);
        tracing::info!(topic = %self.raw_topic, ?partitions, "partitions revoked");
        self.revoked.do_send(PartitionsRevoked {
            generation: self.generation,
            partitions,
        });
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(assigned) = rebalance else {
            return;
        };
        let partitions: Vec<i32> = assigned
            .elements()
            .iter()
            .map(|element| element.partition())
            .collect();
        {
            let mut tracker = lock(&self.tracker);
            for partition in &partitions {
                tracker.assign(*partition);
            }
        }
        self.metrics
            .rebalances
            .get_or_create(&IngestMetrics::result(self.kind, "assigned"))
            .inc_by(partitions.len() as u64);
        self.readiness.set(!partitions.is_empty());
        tracing::info!(topic = %self.raw_topic, ?partitions, "partitions assigned");
        self.assigned.do_send(PartitionsAssigned {
            generation: self.generation,
            partitions,
        });
    }
}

/// Commits positions with the newest event time before each as metadata, so that
/// the next owner resumes the partition's watermark where it stood.
pub fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    raw_topic: &str,
    positions: &[Committable],
    mode: CommitMode,
    metrics: &IngestMetrics,
    kind: &str,
) {
    if positions.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for position in positions {
        let mut element = list.add_partition(raw_topic, position.partition);
        if element.set_offset(Offset::Offset(position.offset)).is_err() {
            continue;
        }
        if let Some(newest) = position.newest_ms_opt {
            element.set_metadata(newest.to_string());
        }
    }
    let result = match consumer.commit(&list, mode) {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(topic = raw_topic, %error, "failed to commit offsets");
            "error"
        }
    };
    metrics
        .commits
        .get_or_create(&IngestMetrics::result(kind, result))
        .inc();
}
