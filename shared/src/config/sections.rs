use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The raw topics and how adjoin creates topics (section `topics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsConfig {
    /// Raw impressions, as producers write them.
    pub impressions: String,
    /// Raw clicks, as producers write them.
    pub clicks: String,
    /// Partitions of each topic adjoin creates when it is missing. Join shards scale
    /// up to this number of processes.
    pub partitions: i32,
    /// Replication factor of topics adjoin creates; use 3 on a production cluster.
    pub replication_factor: i32,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            impressions: "impressions".to_owned(),
            clicks: "clicks".to_owned(),
            partitions: 4,
            replication_factor: 1,
        }
    }
}

/// The metrics and health endpoint (section `metrics`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address serving `/metrics`, `/healthz` and `/readyz`. Unset, each service
    /// uses its own port on 127.0.0.1 (see [`Service::default_metrics_port`]) so that
    /// several services run side by side on one host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl MetricsConfig {
    /// Returns the address the given service listens on.
    pub fn listen_for(&self, service: Service) -> SocketAddr {
        self.listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], service.default_metrics_port())))
    }
}

/// The services (subcommands) that serve metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Demo,
    Ingest,
    Join,
    Sink,
    Generator,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Demo,
        Service::Ingest,
        Service::Join,
        Service::Sink,
        Service::Generator,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Service::Demo => "demo",
            Service::Ingest => "ingest",
            Service::Join => "join",
            Service::Sink => "sink",
            Service::Generator => "generator",
        }
    }

    /// Returns the default metrics port; listed in the README.
    pub const fn default_metrics_port(self) -> u16 {
        match self {
            Service::Demo => 9300,
            Service::Ingest => 9301,
            Service::Join => 9302,
            Service::Sink => 9303,
            Service::Generator => 9304,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Join semantics (section `join`); see DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JoinConfig {
    /// A click matches an impression up to this long after it.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// A click may carry a time this much before its impression's (clock skew
    /// between the ad server and the click tracker) and still match.
    #[serde(with = "humantime_serde")]
    pub skew: Duration,
    /// Topic the join writes one outcome per distinct click to, keyed by click id.
    pub outcomes_topic: String,
    /// Consumer group of the join processes; the shards are shared among its members.
    pub group_id: String,
    /// How often a shard commits the offsets it still needs.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Most records handed to a shard at once.
    pub batch_records: usize,
    /// Threads running shard actors; 0 means one per CPU core.
    pub workers: usize,
}

impl Default for JoinConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            skew: Duration::from_secs(5),
            outcomes_topic: "click-outcomes".to_owned(),
            group_id: "adjoin-join".to_owned(),
            commit_interval: Duration::from_secs(1),
            batch_records: 1000,
            workers: 0,
        }
    }
}

/// The sink (section `sink`): how it batches writes to the database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// Consumer group of the sink; its offsets live in the database
    /// (`adjoin_offsets`), the group's Kafka commits are for lag monitoring only.
    pub group_id: String,
    /// A batch is written once it holds this many rows...
    pub batch_rows: usize,
    /// ...or this many bytes of input records...
    pub batch_bytes: usize,
    /// ...or its first record has waited this long, whichever comes first.
    #[serde(with = "humantime_serde")]
    pub batch_wait: Duration,
    /// Where rows the database rejects go, with the reason.
    pub dlq_topic: String,
    /// Longest wait between retries while the database is unreachable.
    #[serde(with = "humantime_serde")]
    pub max_retry_backoff: Duration,
    /// Database connections the sink keeps.
    pub pool_size: u32,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            group_id: "adjoin-sink".to_owned(),
            // Measured (docs/benchmarks.md): 20,000-row batches write 1.45x the rows
            // per second of 5,000-row ones into PostgreSQL, as each batch touches
            // about one rollup row per active ad whatever its size.
            batch_rows: 20_000,
            batch_bytes: 16 * 1024 * 1024,
            batch_wait: Duration::from_millis(500),
            dlq_topic: "sink.dlq".to_owned(),
            max_retry_backoff: Duration::from_secs(10),
            pool_size: 4,
        }
    }
}

/// Watermarks (section `watermark`); see DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatermarkConfig {
    /// How far behind the newest event time of its raw partition a record may be
    /// before it is tagged late.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// A raw partition silent this long stops holding the watermark back.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for WatermarkConfig {
    fn default() -> Self {
        Self {
            allowed_lateness: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
        }
    }
}
