//! Configuration layering: defaults, then a TOML file, then `ADJOIN__` environment
//! variables; unknown keys rejected by name; secrets never shown.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use adjoin_shared::config::{Config, ConfigError, Service};

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn load(path: Option<&Path>, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_with_env(path, env(pairs))
}

#[test]
fn defaults_follow_the_design() {
    let config = load(None, &[("HOME", "/root"), ("ADJOINED", "ignored")]).unwrap();
    assert_eq!(config, Config::default());
    assert!(config.kafka.uses_embedded_cluster());
    assert_eq!(config.database.url, "sqlite://adjoin.db");
    assert_eq!(config.topics.impressions, "impressions");
    assert_eq!(config.topics.clicks, "clicks");
    assert_eq!(config.join.window, Duration::from_secs(900));
    assert_eq!(config.join.skew, Duration::from_secs(5));
    assert_eq!(config.watermark.allowed_lateness, Duration::from_secs(60));
    assert_eq!(config.watermark.idle_timeout, Duration::from_secs(30));
    assert_eq!(
        config.metrics.listen_for(Service::Join).to_string(),
        "127.0.0.1:9302"
    );
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    let toml = file(
        r#"
        [kafka]
        brokers = "kafka-1:9092,kafka-2:9092"

        [kafka.options]
        "security.protocol" = "SASL_SSL"
        sasl.mechanism = "SCRAM-SHA-512"
        "queue.buffering.max.ms" = 5

        [topics]
        partitions = 12

        [join]
        window = "20m"

        [metrics]
        listen = "0.0.0.0:9400"
        "#,
    );
    let from_file = load(Some(toml.path()), &[]).unwrap();
    assert_eq!(from_file.kafka.brokers, "kafka-1:9092,kafka-2:9092");
    assert_eq!(from_file.kafka.options["security.protocol"], "SASL_SSL");
    assert_eq!(from_file.kafka.options["sasl.mechanism"], "SCRAM-SHA-512");
    assert_eq!(from_file.kafka.options["queue.buffering.max.ms"], "5");
    assert_eq!(from_file.topics.partitions, 12);
    assert_eq!(from_file.join.window, Duration::from_secs(20 * 60));
    assert_eq!(
        from_file.join.skew,
        Duration::from_secs(5),
        "unset keys keep defaults"
    );

    let layered = load(
        Some(toml.path()),
        &[
            ("ADJOIN__TOPICS__PARTITIONS", "24"),
            ("ADJOIN__JOIN__WINDOW", "30m"),
            ("ADJOIN__WATERMARK__ALLOWED_LATENESS", "2m 30s"),
            ("ADJOIN__KAFKA__OPTIONS__SASL_PASSWORD", "hunter2"),
            (
                "ADJOIN__DATABASE__URL",
                "postgres://adjoin:pw@db:5432/adjoin",
            ),
        ],
    )
    .unwrap();
    assert_eq!(layered.topics.partitions, 24);
    assert_eq!(layered.join.window, Duration::from_secs(30 * 60));
    assert_eq!(layered.watermark.allowed_lateness, Duration::from_secs(150));
    assert_eq!(
        layered.kafka.brokers, "kafka-1:9092,kafka-2:9092",
        "file value kept"
    );
    assert_eq!(layered.kafka.options["sasl.password"], "hunter2");
    assert_eq!(
        layered.kafka.options["security.protocol"], "SASL_SSL",
        "maps merge"
    );
    assert_eq!(layered.database.url, "postgres://adjoin:pw@db:5432/adjoin");
}

#[test]
fn unknown_key_in_file_is_rejected_with_its_name() {
    let toml = file("[kafka]\nbrokers = \"k:9092\"\nbrokerz = \"typo:9092\"\n");
    let error = load(Some(toml.path()), &[]).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, ConfigError::UnknownKey { ref key, .. } if key == "kafka.brokerz"),
        "{message}"
    );
    assert!(message.contains("`kafka.brokerz`"), "{message}");
    assert!(
        message.contains("brokers"),
        "lists what is expected: {message}"
    );
}

#[test]
fn unknown_section_and_env_key_are_rejected_with_their_names() {
    let toml = file("[sinks]\nbatch = 5\n");
    let error = load(Some(toml.path()), &[]).unwrap_err();
    assert!(error.to_string().contains("`sinks`"), "{error}");

    let error = load(None, &[("ADJOIN__JOIN__WINDOWS", "5m")]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("`join.windows`"), "{message}");
    assert!(message.contains("ADJOIN__JOIN__WINDOWS"), "{message}");
}

#[test]
fn bad_values_name_their_key() {
    let error = load(None, &[("ADJOIN__JOIN__WINDOW", "fortnight")]).unwrap_err();
    assert!(error.to_string().contains("written like 15m"), "{error}");
    assert!(
        matches!(error, ConfigError::InvalidValue { ref key, .. } if key == "join.window"),
        "{error}"
    );
    let error = load(None, &[("ADJOIN__TOPICS__PARTITIONS", "0")]).unwrap_err();
    assert!(error.to_string().contains("topics.partitions"), "{error}");
    let error = load(None, &[("ADJOIN__DATABASE__URL", "mysql://db/x")]).unwrap_err();
    assert!(error.to_string().contains("postgres://"), "{error}");
    let error = load(None, &[("ADJOIN__KAFKA__BROKERS", "kafka-1")]).unwrap_err();
    assert!(error.to_string().contains("kafka-1:9092"), "{error}");
    let error = load(None, &[("ADJOIN__TOPICS__CLICKS", "impressions")]).unwrap_err();
    assert!(error.to_string().contains("different"), "{error}");
    let error = load(Some(Path::new("/nonexistent/adjoin.toml")), &[]).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/adjoin.toml"),
        "{error}"
    );
}

#[test]
fn secrets_are_redacted_in_output_and_debug() {
    let config = load(
        None,
        &[
            (
                "ADJOIN__DATABASE__URL",
                "postgres://adjoin:topsecret@db/adjoin",
            ),
            ("ADJOIN__KAFKA__OPTIONS__SASL_PASSWORD", "hunter2"),
            ("ADJOIN__KAFKA__OPTIONS__SSL_KEY_PASSWORD", "keypass"),
            ("ADJOIN__KAFKA__OPTIONS__SASL_USERNAME", "adjoin-user"),
        ],
    )
    .unwrap();
    let shown = config.to_redacted_toml();
    let debug = format!("{config:?}");
    for text in [&shown, &debug] {
        assert!(!text.contains("topsecret"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("keypass"), "{text}");
        assert!(
            text.contains("adjoin-user"),
            "non-secrets stay visible: {text}"
        );
        assert!(text.contains("[redacted]"), "{text}");
    }
}

#[test]
fn printed_configuration_loads_back_unchanged() {
    let config = load(
        None,
        &[
            ("ADJOIN__KAFKA__BROKERS", "k1:9092"),
            ("ADJOIN__KAFKA__OPTIONS__CLIENT_ID", "adjoin"),
            ("ADJOIN__JOIN__WINDOW", "10m"),
            ("ADJOIN__METRICS__LISTEN", "127.0.0.1:9999"),
        ],
    )
    .unwrap();
    let printed = file(&config.to_redacted_toml());
    let reloaded = load(Some(printed.path()), &[]).unwrap();
    assert_eq!(reloaded, config);
}
