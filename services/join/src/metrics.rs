//! The join's own metrics, registered once per process; shard series are labelled
//! by partition number (bounded by the keyed topics' partition count).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use adjoin_shared::metrics::{ConsumerLag, Metrics};
use adjoin_shared::schema::Outcome;

use crate::shard_state::{ShardCounters, ShardState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    pub shard: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub shard: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub shard: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub shard: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every join metric; clones share the series.
#[derive(Clone)]
pub struct JoinMetrics {
    pub live_impressions: Family<ShardLabels, Gauge>,
    pub waiting_clicks: Family<ShardLabels, Gauge>,
    pub retained_clicks: Family<ShardLabels, Gauge>,
    pub state_bytes: Family<ShardLabels, Gauge>,
    pub watermark_seconds: Family<ShardLabels, FloatGauge>,
    pub watermark_lag_seconds: Family<ShardLabels, FloatGauge>,
    pub clicks: Family<OutcomeLabels, Counter>,
    pub duplicates: Family<KindLabels, Counter>,
    pub records: Family<KindLabels, Counter>,
    pub evictions: Family<ShardLabels, Counter>,
    pub dead_letters: Family<ReasonLabels, Counter>,
    pub replay_seconds: Family<ShardLabels, FloatGauge>,
    pub handovers: Family<EventLabels, Counter>,
    pub delivery_failures: Counter,
    pub commits: Family<EventLabels, Counter>,
    /// The process's one consumer, over both keyed topics.
    pub consumer_lag: ConsumerLag,
}

impl JoinMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let families = Self {
            consumer_lag: metrics.consumer_lag("join"),
            live_impressions: Family::default(),
            waiting_clicks: Family::default(),
            retained_clicks: Family::default(),
            state_bytes: Family::default(),
            watermark_seconds: Family::default(),
            watermark_lag_seconds: Family::default(),
            clicks: Family::default(),
            duplicates: Family::default(),
            records: Family::default(),
            evictions: Family::default(),
            dead_letters: Family::default(),
            replay_seconds: Family::default(),
            handovers: Family::default(),
            delivery_failures: Counter::default(),
            commits: Family::default(),
        };
        metrics.register(
            "adjoin_join_live_impressions",
            "Impressions in a shard's state",
            families.live_impressions.clone(),
        );
        metrics.register(
            "adjoin_join_waiting_clicks",
            "Clicks waiting for their impression",
            families.waiting_clicks.clone(),
        );
        metrics.register(
            "adjoin_join_retained_clicks",
            "Decided clicks kept to catch duplicates and pin the replay offsets",
            families.retained_clicks.clone(),
        );
        metrics.register(
            "adjoin_join_state_bytes",
            "Estimated bytes of a shard's state",
            families.state_bytes.clone(),
        );
        metrics.register(
            "adjoin_join_watermark_seconds",
            "A shard's watermark (minimum over both sides), Unix seconds",
            families.watermark_seconds.clone(),
        );
        metrics.register(
            "adjoin_join_watermark_lag_seconds",
            "Wall clock minus a shard's watermark",
            families.watermark_lag_seconds.clone(),
        );
        metrics.register(
            "adjoin_join_clicks",
            "Distinct clicks decided, by outcome: matched, no_impression or late",
            families.clicks.clone(),
        );
        metrics.register(
            "adjoin_join_duplicates",
            "Repeated deliveries dropped, by kind: click or impression",
            families.duplicates.clone(),
        );
        metrics.register(
            "adjoin_join_records",
            "Keyed records read, by kind: impression, click or watermark (replays count again)",
            families.records.clone(),
        );
        metrics.register(
            "adjoin_join_evictions",
            "Impressions that left state once the watermark passed time + window",
            families.evictions.clone(),
        );
        metrics.register(
            "adjoin_join_dead_letters",
            "Keyed records the join could not read, sent to <keyed topic>.dlq, by reason",
            families.dead_letters.clone(),
        );
        metrics.register(
            "adjoin_join_replay_seconds",
            "How long a shard's last replay from committed offsets took",
            families.replay_seconds.clone(),
        );
        metrics.register(
            "adjoin_join_handovers",
            "Shard hand-overs, by event: assigned, revoked or rewound (a restart)",
            families.handovers.clone(),
        );
        metrics.register(
            "adjoin_join_delivery_failures",
            "Outcomes or dead letters the broker never acknowledged (the shard replays)",
            families.delivery_failures.clone(),
        );
        metrics.register(
            "adjoin_join_commits",
            "Offset commits of keyed partitions, by event: ok or error",
            families.commits.clone(),
        );
        families
    }

    pub fn shard(partition: i32) -> ShardLabels {
        ShardLabels {
            shard: partition.to_string(),
        }
    }

    pub fn event(event: &str) -> EventLabels {
        EventLabels {
            event: event.to_owned(),
        }
    }

    fn kind(partition: i32, kind: &str) -> KindLabels {
        KindLabels {
            shard: partition.to_string(),
            kind: kind.to_owned(),
        }
    }

    /// Publishes a shard's gauges, and its counters' growth since `before`.
    pub fn publish(&self, partition: i32, state: &ShardState, before: &ShardCounters, now_ms: i64) {
        let labels = Self::shard(partition);
        let after = state.counters();
        self.live_impressions
            .get_or_create(&labels)
            .set(state.num_live_impressions() as i64);
        self.waiting_clicks
            .get_or_create(&labels)
            .set(state.num_waiting_clicks() as i64);
        self.retained_clicks
            .get_or_create(&labels)
            .set(state.num_retained_clicks() as i64);
        self.state_bytes
            .get_or_create(&labels)
            .set(state.state_bytes() as i64);
        if let Some(watermark_ms) = state.watermark().shard().millis_opt() {
            self.watermark_seconds
                .get_or_create(&labels)
                .set(watermark_ms as f64 / 1000.0);
            self.watermark_lag_seconds
                .get_or_create(&labels)
                .set((now_ms - watermark_ms) as f64 / 1000.0);
        }
        for outcome in Outcome::ALL {
            let grown = after.outcomes(outcome) - before.outcomes(outcome);
            if grown > 0 {
                self.clicks
                    .get_or_create(&OutcomeLabels {
                        shard: partition.to_string(),
                        outcome: outcome.as_str().to_owned(),
                    })
                    .inc_by(grown);
            }
        }
        let grown = [
            (
                "duplicates",
                "click",
                after.duplicate_clicks - before.duplicate_clicks,
            ),
            (
                "duplicates",
                "impression",
                after.duplicate_impressions - before.duplicate_impressions,
            ),
            (
                "records",
                "impression",
                after.impressions + after.duplicate_impressions
                    - before.impressions
                    - before.duplicate_impressions,
            ),
            (
                "records",
                "click",
                after.clicks + after.duplicate_clicks - before.clicks - before.duplicate_clicks,
            ),
            ("records", "watermark", after.markers - before.markers),
        ];
        for (family, kind, count) in grown {
            if count == 0 {
                continue;
            }
            let family = if family == "duplicates" {
                &self.duplicates
            } else {
                &self.records
            };
            family
                .get_or_create(&Self::kind(partition, kind))
                .inc_by(count);
        }
        let evicted = after.evicted_impressions - before.evicted_impressions;
        if evicted > 0 {
            self.evictions.get_or_create(&labels).inc_by(evicted);
        }
    }

    pub fn dead_letter(&self, partition: i32, reason: &str) {
        self.dead_letters
            .get_or_create(&ReasonLabels {
                shard: partition.to_string(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Removes a shard's gauges when it leaves this process, so a scraped total
    /// over processes does not count it twice.
    pub fn forget_shard(&self, partition: i32) {
        let labels = Self::shard(partition);
        for family in [
            &self.live_impressions,
            &self.waiting_clicks,
            &self.retained_clicks,
            &self.state_bytes,
        ] {
            family.remove(&labels);
        }
        self.watermark_seconds.remove(&labels);
        self.watermark_lag_seconds.remove(&labels);
    }
}
