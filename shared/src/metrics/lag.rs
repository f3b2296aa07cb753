//! Consumer lag in records: how far each consumer's position trails the end of
//! each partition it reads, as librdkafka's statistics report it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LagLabels {
    service: String,
    topic: String,
    partition: String,
}

/// The lag series of one consumer. A partition the consumer stops reporting (it
/// was revoked) loses its series, rather than keeping its last value for ever.
#[derive(Clone)]
pub struct ConsumerLag {
    family: Family<LagLabels, Gauge>,
    service: String,
    shown: Arc<Mutex<HashSet<LagLabels>>>,
}

impl ConsumerLag {
    pub(crate) fn new(family: &Family<LagLabels, Gauge>, service: &str) -> Self {
        Self {
            family: family.clone(),
            service: service.to_owned(),
            shown: Arc::default(),
        }
    }

    /// Takes one statistics report: `(topic, partition, records behind the end)`
    /// for every partition the consumer reads now.
    pub fn record<'a>(&self, lags: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        let mut shown = self
            .shown
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut now = HashSet::new();
        for (topic, partition, lag) in lags {
            let labels = LagLabels {
                service: self.service.clone(),
                topic: topic.to_owned(),
                partition: partition.to_string(),
            };
            self.family.get_or_create(&labels).set(lag);
            now.insert(labels);
        }
        for gone in shown.difference(&now) {
            self.family.remove(gone);
        }
        *shown = now;
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::Metrics;

    #[test]
    fn a_partition_no_longer_reported_loses_its_series() {
        let metrics = Metrics::new();
        let lag = metrics.consumer_lag("join");
        lag.record([("impressions.keyed", 0, 12), ("impressions.keyed", 1, 0)]);
        let text = metrics.encode();
        assert!(
            text.contains(r#"adjoin_consumer_lag_records{service="join",topic="impressions.keyed",partition="0"} 12"#),
            "{text}"
        );
        lag.record([("impressions.keyed", 1, 3)]);
        let text = metrics.encode();
        assert!(!text.contains(r#"partition="0""#), "{text}");
        assert!(
            text.contains(r#"adjoin_consumer_lag_records{service="join",topic="impressions.keyed",partition="1"} 3"#),
            "{text}"
        );
    }
}
