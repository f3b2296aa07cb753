//! Layered configuration: built-in defaults, then an optional TOML file
//! (`--config FILE`), then environment variables `ADJOIN__SECTION__KEY` (double
//! underscore between levels). One file configures a whole deployment: every
//! service reads the sections it needs and unknown keys are rejected by name.

mod database;
mod ingest;
mod kafka;
mod sections;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use database::{default_database_url, redact_url, DatabaseConfig, DatabaseKind};
pub use ingest::{IngestConfig, StartFrom};
pub use kafka::{is_secret_option, KafkaConfig};
pub use sections::{JoinConfig, MetricsConfig, Service, SinkConfig, TopicsConfig, WatermarkConfig};

use crate::schema::DecodeLimits;

/// What secrets are replaced with wherever configuration is shown.
pub const REDACTED: &str = "[redacted]";

/// The prefix of environment variables that override configuration.
pub const ENV_PREFIX: &str = "ADJOIN";

/// The effective configuration of a deployment: one section per concern.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Brokers and librdkafka options, shared by every Kafka client.
    pub kafka: KafkaConfig,
    /// Where the sink writes results.
    pub database: DatabaseConfig,
    /// Raw topic names and how adjoin creates topics.
    pub topics: TopicsConfig,
    /// The `/metrics`, `/healthz` and `/readyz` address.
    pub metrics: MetricsConfig,
    /// The join: window and skew, the outcomes topic, its consumer group and shards.
    pub join: JoinConfig,
    /// Allowed lateness and idle timeout of watermarks.
    pub watermark: WatermarkConfig,
    /// Limits the decoder enforces on raw records.
    pub decode: DecodeLimits,
    /// The ingest service.
    pub ingest: IngestConfig,
    /// The sink: consumer group, batching, dead letters and retries.
    pub sink: SinkConfig,
}

/// Why configuration could not be loaded; every message names the key or file and
/// says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {detail}", path.display())]
    File { path: PathBuf, detail: String },
    #[error(
        "unknown configuration key `{key}` ({expected}); fix or remove it in the config \
         file or the environment variable {env_var}"
    )]
    UnknownKey {
        key: String,
        expected: String,
        env_var: String,
    },
    #[error("invalid value for `{key}`: {detail} (set in the config file or {env_var})")]
    InvalidValue {
        key: String,
        detail: String,
        env_var: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        // `vars()` panics on a non-UTF-8 variable anywhere in the environment; only
        // ours need to be text.
        let env = std::env::vars_os().filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            has_env_prefix(&name).then_some(())?;
            Some((name, value.into_string().ok()?))
        });
        Self::load_with_env(file, env)
    }

    /// Loads defaults, then `file`, then the given environment (tests pass their own
    /// rather than mutating the process's).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    detail: "no such file".to_owned(),
                });
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let env_map: config::Map<String, String> = env
            .into_iter()
            .filter(|(name, _)| has_env_prefix(name))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(env_map)),
        );
        let merged = builder.build().map_err(|error| ConfigError::File {
            path: file.map(Path::to_owned).unwrap_or_default(),
            detail: error.to_string(),
        })?;
        let loaded: Config = serde_path_to_error::deserialize(merged).map_err(describe_error)?;
        loaded.validate()?;
        Ok(loaded)
    }

    /// Checks what a type cannot: ranges and fields that must agree.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        for (key, name) in [
            ("topics.impressions", &self.topics.impressions),
            ("topics.clicks", &self.topics.clicks),
        ] {
            if let Err(problem) = check_topic_name(name) {
                return invalid(format!("{key} = {name:?}: {problem}"));
            }
        }
        for (key, name) in [
            (
                "ingest.impressions_keyed_topic",
                &self.ingest.impressions_keyed_topic,
            ),
            ("ingest.clicks_keyed_topic", &self.ingest.clicks_keyed_topic),
            ("join.outcomes_topic", &self.join.outcomes_topic),
            ("sink.dlq_topic", &self.sink.dlq_topic),
        ] {
            if let Err(problem) = check_topic_name(name) {
                return invalid(format!("{key} = {name:?}: {problem}"));
            }
        }
        if self.ingest.batch_records == 0
            || self.ingest.commit_interval.is_zero()
            || self.ingest.marker_interval.is_zero()
        {
            return invalid("ingest.batch_records, ingest.commit_interval and ingest.marker_interval must be above 0".to_owned());
        }
        if self.topics.impressions == self.topics.clicks {
            return invalid(
                "topics.impressions and topics.clicks must be different topics".to_owned(),
            );
        }
        let topic_names = [
            &self.topics.impressions,
            &self.topics.clicks,
            &self.ingest.impressions_keyed_topic,
            &self.ingest.clicks_keyed_topic,
            &self.join.outcomes_topic,
            &self.sink.dlq_topic,
        ];
        for (index, name) in topic_names.iter().enumerate() {
            if topic_names[index + 1..].contains(name) {
                return invalid(format!(
                    "topic {name:?} is configured twice among topics.impressions, topics.clicks, \
                     the ingest keyed topics, join.outcomes_topic and sink.dlq_topic; each needs its own"
                ));
            }
        }
        if self.join.batch_records == 0 || self.join.commit_interval.is_zero() {
            return invalid(
                "join.batch_records and join.commit_interval must be above 0".to_owned(),
            );
        }
        if self.join.group_id.trim().is_empty()
            || self.ingest.group_id.trim().is_empty()
            || self.sink.group_id.trim().is_empty()
        {
            return invalid(
                "join.group_id, ingest.group_id and sink.group_id must not be empty".to_owned(),
            );
        }
        if self.sink.batch_rows == 0
            || self.sink.batch_bytes == 0
            || self.sink.batch_wait.is_zero()
            || self.sink.pool_size == 0
        {
            return invalid(
                "sink.batch_rows, sink.batch_bytes, sink.batch_wait and sink.pool_size must be above 0"
                    .to_owned(),
            );
        }
        if self.topics.partitions < 1 {
            return invalid(format!(
                "topics.partitions must be at least 1, got {}",
                self.topics.partitions
            ));
        }
        if self.topics.replication_factor < 1 && self.topics.replication_factor != -1 {
            return invalid(format!(
                "topics.replication_factor must be at least 1 (or -1 for the broker default), got {}",
                self.topics.replication_factor
            ));
        }
        if let Err(message) = self.database.kind() {
            return invalid(message);
        }
        for broker in self
            .kafka
            .brokers
            .split(',')
            .map(str::trim)
            .filter(|broker| !broker.is_empty())
        {
            if !broker.contains(':') {
                return invalid(format!(
                    "kafka.brokers entry {broker:?} needs a port, e.g. {broker}:9092"
                ));
            }
        }
        if self.join.window.is_zero() {
            return invalid("join.window must be longer than 0s".to_owned());
        }
        if self.watermark.idle_timeout.is_zero() {
            return invalid("watermark.idle_timeout must be longer than 0s".to_owned());
        }
        let limits = &self.decode;
        if limits.max_record_bytes < 256 {
            return invalid(format!(
                "decode.max_record_bytes must be at least 256, got {}",
                limits.max_record_bytes
            ));
        }
        if limits.max_field_bytes < 16 || limits.max_field_bytes > limits.max_record_bytes {
            return invalid(format!(
                "decode.max_field_bytes must be from 16 to decode.max_record_bytes ({}), got {}",
                limits.max_record_bytes, limits.max_field_bytes
            ));
        }
        if !(limits.max_cost.is_finite() && limits.max_cost > 0.0) {
            return invalid(format!(
                "decode.max_cost must be a positive number, got {}",
                limits.max_cost
            ));
        }
        Ok(())
    }

    /// Returns a copy with every secret replaced by [`REDACTED`].
    pub fn redacted(&self) -> Self {
        Self {
            kafka: self.kafka.redacted(),
            database: self.database.redacted(),
            ..self.clone()
        }
    }

    /// Renders the configuration as TOML with secrets redacted. The output is itself
    /// a valid config file.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(&self.redacted())
            .unwrap_or_else(|error| format!("# cannot render configuration: {error}\n"))
    }
}

fn has_env_prefix(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > ENV_PREFIX.len() + 2
        && bytes[..ENV_PREFIX.len()].eq_ignore_ascii_case(ENV_PREFIX.as_bytes())
        && bytes[ENV_PREFIX.len()..].starts_with(b"__")
}

/// Returns the environment variable that sets a dotted key.
pub fn env_var_for(key: &str) -> String {
    format!(
        "{ENV_PREFIX}__{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

fn describe_error(error: serde_path_to_error::Error<config::ConfigError>) -> ConfigError {
    let path = error.path().to_string();
    let message = error.inner().to_string();
    // The path usually ends at the unknown field already; not always (maps).
    let join_key = |field: &str| {
        if path == "." || path.is_empty() {
            field.to_owned()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let key = join_key(field);
        // The config crate appends where it was looking; the key already says that.
        let expected = rest
            .split_once(", ")
            .and_then(|(_, listed)| listed.split(" for key `").next())
            .unwrap_or("no keys are accepted here")
            .to_owned();
        return ConfigError::UnknownKey {
            env_var: env_var_for(&key),
            key,
            expected,
        };
    }
    let key = if path == "." {
        "(top level)".to_owned()
    } else {
        path
    };
    let mut detail = message
        .split(" for key `")
        .next()
        .unwrap_or_default()
        .to_owned();
    if detail.contains("expected a duration") {
        detail.push_str(", written like 15m, 30s or 1h 30m");
    }
    ConfigError::InvalidValue {
        env_var: env_var_for(&key),
        key,
        detail,
    }
}

/// Kafka's rules for topic names.
fn check_topic_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > 249 {
        return Err("must be at most 249 characters");
    }
    if name == "." || name == ".." {
        return Err("must not be `.` or `..`");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("may contain only ASCII letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}
