//! Kafka plumbing: where the brokers are (configured, or the embedded mock
//! cluster), client configuration from `kafka.*`, and a topic admin that creates
//! the topics a service owns.

mod admin;
mod embedded;
pub mod partitioner;
mod produce;

use rdkafka::ClientConfig;

pub use admin::{connection_problems, ensure_topics_blocking, TopicAdmin, TopicSpec, TopicStatus};
pub use embedded::EmbeddedCluster;
pub use produce::{header, instance_name, send_with_backpressure};

use crate::config::{is_secret_option, KafkaConfig, REDACTED};

/// `statistics.interval.ms` of the services' consumers: how often librdkafka
/// reports, among much else, each partition's consumer lag.
pub const STATISTICS_INTERVAL_MS: &str = "5000";

/// Each partition a consumer reads, with how many records its position trails
/// the partition's end, from one librdkafka statistics report. Partitions it
/// does not read, and those whose end or position (nor committed offset) is not
/// known yet, are left out.
///
/// Not librdkafka's own `consumer_lag`, which counts from the committed offset:
/// the join commits replay offsets that trail by up to a window on purpose, and
/// the sink's real offsets live in the database, so both would look far behind.
pub fn consumer_lags(statistics: &rdkafka::Statistics) -> Vec<(&str, i32, i64)> {
    statistics
        .topics
        .values()
        .flat_map(|topic| {
            topic.partitions.values().filter_map(|partition| {
                // The last stable offset is the end a read_committed consumer
                // (librdkafka's default) can reach; the high watermark otherwise.
                let end = if partition.ls_offset >= 0 {
                    partition.ls_offset
                } else {
                    partition.hi_offset
                };
                // Until it reads a record after an assignment, the consumer's
                // position is where it starts: the committed offset.
                let position = if partition.app_offset >= 0 {
                    partition.app_offset
                } else {
                    partition.committed_offset
                };
                (partition.partition >= 0 && partition.desired && end >= 0 && position >= 0).then(
                    || {
                        (
                            topic.topic.as_str(),
                            partition.partition,
                            (end - position).max(0),
                        )
                    },
                )
            })
        })
        .collect()
}

/// The brokers a service talks to. Clones share an embedded cluster, which lives
/// until the last clone is dropped.
#[derive(Clone)]
pub struct KafkaEndpoint {
    bootstrap_servers: String,
    options: Vec<(String, String)>,
    embedded: Option<EmbeddedCluster>,
}

impl KafkaEndpoint {
    /// Uses `kafka.brokers`, or starts the embedded mock cluster when it is empty.
    pub fn from_config(config: &KafkaConfig) -> Result<Self, rdkafka::error::KafkaError> {
        let options = config
            .options
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if !config.uses_embedded_cluster() {
            return Ok(Self {
                bootstrap_servers: config.brokers.trim().to_owned(),
                options,
                embedded: None,
            });
        }
        let embedded = EmbeddedCluster::start()?;
        tracing::warn!(
            bootstrap_servers = embedded.bootstrap_servers(),
            "kafka.brokers is empty: using an embedded mock cluster, visible only to this \
             process and keeping about 5 MB per partition; set kafka.brokers for production"
        );
        Ok(Self {
            bootstrap_servers: embedded.bootstrap_servers().to_owned(),
            options,
            embedded: Some(embedded),
        })
    }

    /// An endpoint for brokers at `bootstrap_servers` with no extra options.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            options: Vec::new(),
            embedded: None,
        }
    }

    /// Returns the same endpoint with one more librdkafka property for every client.
    pub fn with_option(mut self, key: &str, value: &str) -> Self {
        self.options.retain(|(existing, _)| existing != key);
        self.options.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    pub fn embedded(&self) -> Option<&EmbeddedCluster> {
        self.embedded.as_ref()
    }

    /// Returns a client configuration with the bootstrap servers and every
    /// `kafka.options` entry; callers add their role's settings on top.
    pub fn client_config(&self) -> ClientConfig {
        let mut client_config = ClientConfig::new();
        client_config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.options {
            client_config.set(key, value);
        }
        client_config
    }
}

impl std::fmt::Debug for KafkaEndpoint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: Vec<(&str, &str)> = self
            .options
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret_option(key) {
                    REDACTED
                } else {
                    value.as_str()
                };
                (key.as_str(), shown)
            })
            .collect();
        formatter
            .debug_struct("KafkaEndpoint")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("options", &options)
            .field("embedded", &self.embedded.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_secret_options() {
        let mut config = KafkaConfig {
            brokers: "k:9092".to_owned(),
            ..KafkaConfig::default()
        };
        config
            .options
            .insert("sasl.password".to_owned(), "hunter2".to_owned());
        config
            .options
            .insert("sasl.username".to_owned(), "adjoin".to_owned());
        let shown = format!("{:?}", KafkaEndpoint::from_config(&config).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("adjoin") && shown.contains(REDACTED),
            "{shown}"
        );
    }
}
