//! The sink's own metrics, registered once per process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use adjoin_shared::metrics::{ConsumerLag, Metrics};

use crate::store::Written;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RowLabels {
    pub table: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// Every sink metric; clones share the series.
#[derive(Clone)]
pub struct SinkMetrics {
    pub batch_rows: Histogram,
    pub batch_bytes: Histogram,
    pub commit_seconds: Histogram,
    pub latency_seconds: Histogram,
    pub rows: Family<RowLabels, Counter>,
    pub dead_letters: Family<ReasonLabels, Counter>,
    pub retries: Counter,
    pub rebalances: Family<ResultLabels, Counter>,
    pub kafka_commits: Family<ResultLabels, Counter>,
    /// The process's one consumer, over impressions and outcomes.
    pub consumer_lag: ConsumerLag,
}

impl SinkMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let families = Self {
            consumer_lag: metrics.consumer_lag("sink"),
            batch_rows: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            batch_bytes: Histogram::new(exponential_buckets(256.0, 4.0, 10)),
            commit_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            latency_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            rows: Family::default(),
            dead_letters: Family::default(),
            retries: Counter::default(),
            rebalances: Family::default(),
            kafka_commits: Family::default(),
        };
        metrics.register(
            "adjoin_sink_batch_rows",
            "Rows in each batch written",
            families.batch_rows.clone(),
        );
        metrics.register(
            "adjoin_sink_batch_bytes",
            "Bytes of input records in each batch written",
            families.batch_bytes.clone(),
        );
        metrics.register(
            "adjoin_sink_commit_seconds",
            "Time to write and commit one batch: its slowest part (the parts are concurrent transactions), retries excluded",
            families.commit_seconds.clone(),
        );
        metrics.register(
            "adjoin_sink_end_to_end_latency_seconds",
            "From the raw record's Kafka timestamp to the commit of its row",
            families.latency_seconds.clone(),
        );
        metrics.register(
            "adjoin_sink_rows",
            "Rows written, by table (impressions, clicks) and result: inserted, or duplicate (already there)",
            families.rows.clone(),
        );
        metrics.register(
            "adjoin_sink_dead_letters",
            "Records sent to sink.dlq, by reason",
            families.dead_letters.clone(),
        );
        metrics.register(
            "adjoin_sink_retries",
            "Batch writes retried because the database was unavailable",
            families.retries.clone(),
        );
        metrics.register(
            "adjoin_sink_rebalances",
            "Partitions assigned to or revoked from this sink",
            families.rebalances.clone(),
        );
        metrics.register(
            "adjoin_sink_kafka_commits",
            "Offset commits to Kafka (for lag monitoring; the database holds the real offsets)",
            families.kafka_commits.clone(),
        );
        families
    }

    pub fn record_rebalance(&self, result: &str, num_partitions: usize) {
        self.rebalances
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc_by(num_partitions as u64);
    }

    pub fn record_kafka_commit(&self, result: &str) {
        self.kafka_commits
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn record_written(&self, written: &Written) {
        for (table, result, count) in [
            ("impressions", "inserted", written.impressions_inserted),
            ("impressions", "duplicate", written.impressions_skipped),
            ("clicks", "inserted", written.clicks_inserted),
            ("clicks", "duplicate", written.clicks_skipped),
        ] {
            self.rows
                .get_or_create(&RowLabels {
                    table: table.to_owned(),
                    result: result.to_owned(),
                })
                .inc_by(count);
        }
    }

    pub fn record_dead_letter(&self, reason: &str) {
        self.dead_letters
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }
}
