//! Helpers for ingest's integration tests: raw traffic from the generator, and
//! reading back what ingest wrote.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::Message;

use adjoin_generator::truth::Truth;
use adjoin_generator::{run_with_endpoint, GenerateArgs, Summary};
use adjoin_shared::config::{Config, IngestConfig, KafkaConfig, TopicsConfig};
use adjoin_shared::kafka::KafkaEndpoint;
use adjoin_shared::testing::unique_name;

#[derive(Parser)]
struct GenerateCli {
    #[command(flatten)]
    args: GenerateArgs,
}

/// The embedded mock cluster, with clients that notice a consumer which died
/// without leaving its group after 6 s rather than 45 s.
pub fn embedded_endpoint() -> KafkaEndpoint {
    let mut kafka = KafkaConfig::default();
    kafka
        .options
        .insert("session.timeout.ms".to_owned(), "6000".to_owned());
    kafka
        .options
        .insert("heartbeat.interval.ms".to_owned(), "1000".to_owned());
    KafkaEndpoint::from_config(&kafka).unwrap()
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

/// A record read back from a topic ingest writes.
#[derive(Clone, Debug)]
pub struct Written {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Written {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).unwrap()
    }
}

/// Reads the topics until `done` says enough arrived (or a minute passes).
pub fn read_until(
    endpoint: &KafkaEndpoint,
    topics: &[&str],
    done: impl Fn(&[Written]) -> bool,
) -> Vec<Written> {
    let consumer: BaseConsumer = endpoint
        .client_config()
        .set("group.id", unique_name("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    let mut written = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done(&written) && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.unwrap();
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        let value = header
                            .value
                            .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
                        (header.key.to_owned(), value.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        written.push(Written {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            value: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    written
}

/// Shows the services' logs in a failing test's output.
pub fn logs() {
    let _ = adjoin_shared::telemetry::init(
        adjoin_shared::telemetry::LogFormat::Pretty,
        Some("info,rdkafka=warn"),
    );
}
