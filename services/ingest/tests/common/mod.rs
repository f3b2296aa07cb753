//! Helpers for ingest's integration tests: raw traffic from the generator, and
//! reading back what ingest wrote.

#![allow(dead_code)]

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;

use adjoin_generator::truth::Truth;
use adjoin_generator::{run_with_endpoint, GenerateArgs, Summary};
use adjoin_shared::config::{Config, IngestConfig, KafkaConfig, TopicsConfig};
use adjoin_shared::kafka::KafkaEndpoint;
use adjoin_shared::testing::unique_name;
pub use adjoin_shared::testing::{embedded_endpoint, read_until, Written};

#[derive(Parser)]
struct GenerateCli {
    #[command(flatten)]
    args: GenerateArgs,
}

/// A configuration with fresh topic names and short intervals, for one test.
pub fn config(endpoint: &KafkaEndpoint, partitions: i32) -> Config {
    let mut config = Config {
        kafka: KafkaConfig {
            brokers: endpoint.bootstrap_servers().to_owned(),
            ..KafkaConfig::default()
        },
        topics: TopicsConfig {
            impressions: unique_name("impressions"),
            clicks: unique_name("clicks"),
            partitions,
            ..TopicsConfig::default()
        },
        ingest: IngestConfig {
            impressions_keyed_topic: unique_name("impressions_keyed"),
            clicks_keyed_topic: unique_name("clicks_keyed"),
            group_id: unique_name("ingest"),
            commit_interval: Duration::from_millis(200),
            marker_interval: Duration::from_millis(200),
            ..IngestConfig::default()
        },
        ..Config::default()
    };
    config.watermark.idle_timeout = Duration::from_secs(2);
    config
}

/// Writes generated raw traffic; returns what was written and its truth.
pub fn generate(endpoint: &KafkaEndpoint, config: &Config, flags: &str) -> (Summary, Truth) {
    let dir = tempfile::tempdir().unwrap();
    let truth_path = dir.path().join("truth.json");
    let argv = format!("generate {flags} --truth {}", truth_path.display());
    let args = GenerateCli::try_parse_from(argv.split_whitespace())
        .unwrap()
        .args;
    let summary = run_with_endpoint(endpoint, config, &args, &AtomicBool::new(false)).unwrap();
    assert!(summary.all_delivered(), "{}", summary.describe());
    (summary, Truth::read(&truth_path).unwrap())
}

/// Shows the services' logs in a failing test's output.
pub fn logs() {
    let _ = adjoin_shared::telemetry::init(
        adjoin_shared::telemetry::LogFormat::Pretty,
        Some("info,rdkafka=warn"),
    );
}
