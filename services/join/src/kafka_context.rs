//! The librdkafka callbacks of the join: delivery reports acknowledge a shard's
//! outputs; rebalances hand shards over. Partition p of both keyed topics always
//! moves together (range assignment over two topics with equal partition counts
//! gives a member the same partition numbers of each), and a shard is created
//! when its pair arrives and flushed, committed and dropped before it leaves.

use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::acks::OutputAcks;
use crate::metrics::JoinMetrics;
use crate::shards::Shards;
use crate::watermark::Side;

/// What a produced record stands for: an output of a shard in an epoch, with its
/// sequence number.
pub type OutputOpaque = Box<(Arc<OutputAcks>, u64, u64)>;

pub struct JoinProducerContext {
    pub metrics: JoinMetrics,
}

impl ClientContext for JoinProducerContext {}

impl ProducerContext for JoinProducerContext {
    type DeliveryOpaque = OutputOpaque;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: OutputOpaque) {
        let (acks, epoch, seq) = *opaque;
        match result {
            Ok(_) => acks.acknowledged(epoch, seq),
            Err((error, _)) => {
                self.metrics.delivery_failures.inc();
                tracing::error!(%error, "join output not delivered");
                acks.failed(epoch);
            }
        }
    }
}

pub struct JoinConsumerContext {
    pub shards: Arc<Mutex<Shards>>,
    pub impressions_topic: String,
    pub clicks_topic: String,
    pub metrics: JoinMetrics,
}

impl JoinConsumerContext {
    fn shards(&self) -> std::sync::MutexGuard<'_, Shards> {
        self.shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn topic(&self, side: Side) -> &str {
        match side {
            Side::Impressions => &self.impressions_topic,
            Side::Clicks => &self.clicks_topic,
        }
    }

    /// Commits a shard's offsets, waiting for the broker when `mode` is sync.
    pub fn commit(
        &self,
        consumer: &BaseConsumer<Self>,
        partition: i32,
        offsets: &[(Side, i64)],
        mode: CommitMode,
    ) {
        if offsets.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (side, offset) in offsets {
            let _ =
                list.add_partition_offset(self.topic(*side), partition, Offset::Offset(*offset));
        }
        tracing::debug!(shard = partition, ?offsets, ?mode, "committing");
        // Counted in `commit_callback`, which librdkafka calls for every commit
        // with the broker's answer.
        if let Err(error) = consumer.commit(&list, mode) {
            tracing::warn!(shard = partition, %error, "failed to commit offsets");
        }
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<i32> {
    let mut partitions: Vec<i32> = list
        .elements()
        .iter()
        .map(|element| element.partition())
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions
}

impl ClientContext for JoinConsumerContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics
            .consumer_lag
            .record(adjoin_shared::kafka::consumer_lags(&statistics));
    }
}

impl ConsumerContext for JoinConsumerContext {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        tracing::debug!(?result, offsets = ?offsets.to_topic_map(), "commit answered");
        let event = match &result {
            Ok(()) => "ok",
            // Nothing was stored since the last commit: not a failure.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => return,
            Err(error) => {
                tracing::warn!(%error, "the broker refused an offset commit");
                "error"
            }
        };
        self.metrics
            .commits
            .get_or_create(&JoinMetrics::event(event))
            .inc();
    }

    /// Before partitions leave, each shard flushes its outcomes and its offsets are
    /// committed, so the next owner replays exactly what this one had not finished.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        for partition in partitions(revoked) {
            let offsets_opt = self.shards().revoke(partition);
            if let Some(offsets) = offsets_opt {
                self.commit(consumer, partition, &offsets, CommitMode::Sync);
                self.metrics
                    .handovers
                    .get_or_create(&JoinMetrics::event("revoked"))
                    .inc();
                tracing::info!(shard = partition, ?offsets, "shard revoked");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(assigned) => {
                let impressions: Vec<i32> = assigned
                    .elements_for_topic(&self.impressions_topic)
                    .iter()
                    .map(|element| element.partition())
                    .collect();
                for partition in partitions(assigned) {
                    let has_both = impressions.contains(&partition)
                        && assigned
                            .find_partition(&self.clicks_topic, partition)
                            .is_some();
                    if !has_both {
                        tracing::error!(
                            shard = partition,
                            "only one keyed topic's partition was assigned: is partition.assignment.strategy \
                             range, and do both keyed topics have the same partition count?"
                        );
                        continue;
                    }
                    self.shards().assign(partition);
                    self.metrics
                        .handovers
                        .get_or_create(&JoinMetrics::event("assigned"))
                        .inc();
                    tracing::info!(shard = partition, "shard assigned");
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
        self.shards().set_ready();
    }
}

/// Waits for a future on the calling thread; the rebalance callbacks block the
/// poll thread by design while a shard hands over.
pub fn wait<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}
