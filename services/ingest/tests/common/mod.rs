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
use adjoin_shared::config::{Config, IngestConfig, KafkaConfig, TopicsConfig, WatermarkConfig};
use adjoin_shared::kafka::KafkaEndpoint;
use adjoin_shared::keyed;
use adjoin_shared::testing::unique_name;

#[derive(Parser)]
struct GenerateCli {
    #[command(flatten)]
    args: GenerateArgs,
}

/// A configuration with fresh topic names and short intervals, for one test.
pub fn config(endpoint: &KafkaEndpoint, partitions: i32) -> Config {
    let impressions = unique_name("impressions");
    let clicks = unique_name("clicks");
    Config {
        kafka: KafkaConfig {
            brokers: endpoint.bootstrap_servers().to_owned(),
            ..KafkaConfig::default()
        },
        topics: TopicsConfig {
            impressions_keyed: (),
            ..TopicsConfig::default()
        },
        ..Config::default()
    }
}
