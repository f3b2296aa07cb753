//! Ingest's own metrics, registered once per process and labelled by raw topic kind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use adjoin_shared::metrics::{ConsumerLag, Metrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub topic: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub topic: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: String,
}

/// Every ingest metric; clones share the series.
#[derive(Clone)]
pub struct IngestMetrics {
    pub records: Family<ResultLabels, Counter>,
    pub dead_letters: Family<ReasonLabels, Counter>,
    pub late_records: Family<TopicLabels, Counter>,
    pub markers: Family<TopicLabels, Counter>,
    pub commits: Family<ResultLabels, Counter>,
    pub delivery_failures: Family<TopicLabels, Counter>,
    pub rebalances: Family<ResultLabels, Counter>,
    pub watermark_lag_seconds: Family<PartitionLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub in_flight: Family<TopicLabels, Gauge>,
    /// One per raw topic: each has a consumer (and group) of its own, and a
    /// consumer's report replaces only its own series.
    pub consumer_lag_impressions: ConsumerLag,
    pub consumer_lag_clicks: ConsumerLag,
}

impl IngestMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let families = Self {
            consumer_lag_impressions: metrics.consumer_lag("ingest"),
            consumer_lag_clicks: metrics.consumer_lag("ingest"),
            records: Family::default(),
            dead_letters: Family::default(),
            late_records: Family::default(),
            markers: Family::default(),
            commits: Family::default(),
            delivery_failures: Family::default(),
            rebalances: Family::default(),
            watermark_lag_seconds: Family::default(),
            in_flight: Family::default(),
        };
        metrics.register(
            "adjoin_ingest_records",
            "Raw records read, by result: keyed (valid, re-keyed) or dead_letter",
            families.records.clone(),
        );
        metrics.register(
            "adjoin_ingest_dead_letters",
            "Raw records sent to the dead-letter topic, by decoder reason code",
            families.dead_letters.clone(),
        );
        metrics.register(
            "adjoin_ingest_late_records",
            "Valid records below their raw partition's watermark, tagged late",
            families.late_records.clone(),
        );
        metrics.register(
            "adjoin_ingest_markers",
            "Watermark markers written (one per keyed partition per interval)",
            families.markers.clone(),
        );
        metrics.register(
            "adjoin_ingest_commits",
            "Offset commits of raw partitions, by result: ok or error",
            families.commits.clone(),
        );
        metrics.register(
            "adjoin_ingest_delivery_failures",
            "Keyed or dead-letter records the broker never acknowledged (the consumer restarts from committed offsets)",
            families.delivery_failures.clone(),
        );
        metrics.register(
            "adjoin_ingest_rebalances",
            "Partition hand-overs, by result: assigned or revoked",
            families.rebalances.clone(),
        );
        metrics.register(
            "adjoin_ingest_watermark_lag_seconds",
            "Wall clock minus a raw partition's watermark",
            families.watermark_lag_seconds.clone(),
        );
        metrics.register(
            "adjoin_ingest_in_flight_records",
            "Records consumed whose output is not yet acknowledged",
            families.in_flight.clone(),
        );
        families
    }

    pub fn topic(kind: &str) -> TopicLabels {
        TopicLabels {
            topic: kind.to_owned(),
        }
    }

    pub fn result(kind: &str, result: &str) -> ResultLabels {
        ResultLabels {
            topic: kind.to_owned(),
            result: result.to_owned(),
        }
    }
}
