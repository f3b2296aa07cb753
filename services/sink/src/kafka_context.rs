//! The sink consumer's rebalance callback: newly assigned partitions start at the
//! offsets stored in the database with the rows, never at the group's Kafka
//! commits (those are written afterwards, for lag monitoring only).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use adjoin_shared::metrics::ReadinessCheck;

use crate::batch::Input;
use crate::messages::PartitionsRevoked;
use crate::metrics::SinkMetrics;
use crate::store::OffsetReader;

pub struct SinkConsumerContext {
    pub impressions_topic: String,
    pub outcomes_topic: String,
    pub group_id: String,
    pub offsets: OffsetReader,
    /// Bumped by every assignment and revocation, so the poll thread can drop what
    /// it gathered across one.
    pub assignment: AtomicU64,
    pub revoked: Recipient<PartitionsRevoked>,
    pub readiness: ReadinessCheck,
    pub metrics: SinkMetrics,
    pub stop: Arc<AtomicBool>,
    pub max_retry_backoff: Duration,
}

impl SinkConsumerContext {
    pub fn input_of(&self, topic: &str) -> Option<Input> {
        if topic == self.impressions_topic {
            Some(Input::Impressions)
        } else if topic == self.outcomes_topic {
            Some(Input::Outcomes)
        } else {
            None
        }
    }

    pub fn assignment(&self) -> u64 {
        self.assignment.load(Ordering::Acquire)
    }

    /// Sets each assigned partition's start to the database's next offset, or to
    /// the beginning where the database has none (nothing of it was written yet).
    /// Retries while the database is unreachable: consuming from anywhere else
    /// could skip rows.
    fn start_at_stored_offsets(&self, list: &mut TopicPartitionList) {
        let mut backoff = Duration::from_millis(100);
        let stored = loop {
            match self.offsets.read(&self.group_id) {
                Ok(stored) => break stored,
                Err(error) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    self.readiness.set(false);
                    tracing::warn!(%error, retry_in = ?backoff, "cannot read the sink's offsets from the database");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(self.max_retry_backoff);
                }
            }
        };
        let assigned: Vec<(String, i32)> = list
            .elements()
            .iter()
            .map(|element| (element.topic().to_owned(), element.partition()))
            .collect();
        for (topic, partition) in assigned {
            let offset = stored
                .iter()
                .find(|(stored_topic, stored_partition, _)| {
                    *stored_topic == topic && *stored_partition == partition
                })
                .map_or(Offset::Beginning, |(_, _, next)| Offset::Offset(*next));
            if let Err(error) = list.set_partition_offset(&topic, partition, offset) {
                tracing::error!(%error, topic, partition, "cannot set a start offset");
            }
        }
    }
}

impl ClientContext for SinkConsumerContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics
            .consumer_lag
            .record(adjoin_shared::kafka::consumer_lags(&statistics));
    }
}

impl ConsumerContext for SinkConsumerContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let partitions: Vec<(Input, i32)> = list
            .elements()
            .iter()
            .filter_map(|element| Some((self.input_of(element.topic())?, element.partition())))
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.start_at_stored_offsets(list);
                if let Err(error) = consumer.assign(list) {
                    tracing::error!(%error, "cannot take the assigned partitions");
                }
                self.assignment.fetch_add(1, Ordering::AcqRel);
                self.metrics.record_rebalance("assigned", partitions.len());
                // A spare sink with no partitions is healthy too: it is ready to
                // take over at the next rebalance.
                self.readiness.set(true);
                tracing::info!(
                    ?partitions,
                    "partitions assigned; reading from the database's offsets"
                );
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.assignment.fetch_add(1, Ordering::AcqRel);
                if let Err(error) = consumer.unassign() {
                    tracing::error!(%error, "cannot give up the revoked partitions");
                }
                self.metrics.record_rebalance("revoked", partitions.len());
                tracing::info!(?partitions, "partitions revoked");
                self.revoked.do_send(PartitionsRevoked { partitions });
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed");
                let _ = consumer.unassign();
                self.assignment.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        self.metrics
            .record_kafka_commit(if result.is_ok() { "ok" } else { "error" });
    }
}
