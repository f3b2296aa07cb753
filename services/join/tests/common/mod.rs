//! Helpers for the join's integration tests: keyed records written straight into
//! the keyed topics (as ingest would write them), a known scenario with its
//! expected outcomes, and reading outcomes back.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use adjoin_shared::config::{Config, IngestConfig, JoinConfig, KafkaConfig, TopicsConfig};
use adjoin_shared::kafka::partitioner::partition_for_key;
use adjoin_shared::kafka::KafkaEndpoint;
use adjoin_shared::keyed::{self, PartitionWatermark, WatermarkMarker};
use adjoin_shared::schema::{Click, EventTime, Impression, Outcome};
pub use adjoin_shared::testing::metric;
use adjoin_shared::testing::{read_until, unique_name, Written};

pub const T0: i64 = 1_795_000_000_000;
pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
/// The `adjoin-origin-ms` every test click carries, which its outcome must carry on.
pub const CLICK_ORIGIN_MS: &str = "1795000000123";

/// A configuration with fresh topic names and short intervals, for one test.
pub fn config(endpoint: &KafkaEndpoint, partitions: i32) -> Config {
    Config {
        kafka: KafkaConfig {
            brokers: endpoint.bootstrap_servers().to_owned(),
            ..KafkaConfig::default()
        },
        topics: TopicsConfig {
            partitions,
            ..TopicsConfig::default()
        },
        ingest: IngestConfig {
            impressions_keyed_topic: unique_name("impressions_keyed"),
            clicks_keyed_topic: unique_name("clicks_keyed"),
            ..IngestConfig::default()
        },
        join: JoinConfig {
            outcomes_topic: unique_name("click_outcomes"),
            group_id: unique_name("join"),
            commit_interval: Duration::from_millis(200),
            batch_records: 50,
            workers: 2,
            ..JoinConfig::default()
        },
        ..Config::default()
    }
}

/// Writes keyed records the way ingest does: keyed by impression id, murmur2
/// partitioned, with the kind and late headers; markers to every partition.
pub struct KeyedWriter {
    producer: ThreadedProducer<DefaultProducerContext>,
    config: Config,
}

impl KeyedWriter {
    pub fn new(endpoint: &KafkaEndpoint, config: &Config) -> Self {
        let producer = endpoint
            .client_config()
            .set("enable.idempotence", "true")
            .create()
            .unwrap();
        Self {
            producer,
            config: config.clone(),
        }
    }

    fn send(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&str>,
        kind: Option<&str>,
        late: bool,
        value: &[u8],
    ) {
        let mut headers = OwnedHeaders::new();
        if let Some(kind) = kind {
            headers = headers.insert(Header {
                key: keyed::HEADER_KIND,
                value: Some(kind),
            });
        }
        headers = headers.insert(Header {
            key: keyed::HEADER_LATE,
            value: Some(if late { "1" } else { "0" }),
        });
        if kind == Some(keyed::KIND_CLICK) {
            headers = headers.insert(Header {
                key: keyed::HEADER_ORIGIN_MS,
                value: Some(CLICK_ORIGIN_MS),
            });
        }
        let mut record = BaseRecord::<str, [u8]>::to(topic)
            .partition(partition)
            .payload(value)
            .headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.producer
            .send(record)
            .map_err(|(error, _)| error)
            .unwrap();
    }

    fn partition(&self, key: &str) -> i32 {
        partition_for_key(key.as_bytes(), self.config.topics.partitions)
    }

    pub fn impression(&self, impression: &Impression) {
        let topic = &self.config.ingest.impressions_keyed_topic;
        let value = serde_json::to_vec(impression).unwrap();
        let partition = self.partition(&impression.impression_id);
        self.send(
            topic,
            partition,
            Some(&impression.impression_id),
            Some(keyed::KIND_IMPRESSION),
            false,
            &value,
        );
    }

    pub fn click(&self, click: &Click, late: bool) {
        let topic = &self.config.ingest.clicks_keyed_topic;
        let value = serde_json::to_vec(click).unwrap();
        let partition = self.partition(&click.impression_id);
        self.send(
            topic,
            partition,
            Some(&click.impression_id),
            Some(keyed::KIND_CLICK),
            late,
            &value,
        );
    }

    /// A record that is not what its headers say, on a clicks partition.
    pub fn raw_click_record(&self, key: &str, kind: Option<&str>, value: &[u8]) {
        let topic = &self.config.ingest.clicks_keyed_topic;
        self.send(topic, self.partition(key), Some(key), kind, false, value);
    }

    /// A marker for one raw partition at `watermark_ms` (idle: traffic stopped and
    /// ingest moved its watermark on) to every keyed partition of both topics.
    pub fn markers(&self, watermark_ms: i64, idle: bool) {
        for topic in [
            &self.config.ingest.impressions_keyed_topic,
            &self.config.ingest.clicks_keyed_topic,
        ] {
            let marker = WatermarkMarker {
                source_topic: "raw".into(),
                source_partitions: 1,
                instance: "test".into(),
                emitted_at_ms: 0,
                partitions: vec![PartitionWatermark {
                    partition: 0,
                    watermark_ms: Some(watermark_ms),
                    idle,
                }],
            };
            let value = serde_json::to_vec(&marker).unwrap();
            for partition in 0..self.config.topics.partitions {
                self.send(
                    topic,
                    partition,
                    None,
                    Some(keyed::KIND_WATERMARK),
                    false,
                    &value,
                );
            }
        }
    }

    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }
}

pub fn impression(id: &str, time_ms: i64) -> Impression {
    Impression {
        impression_id: id.to_owned(),
        user_id: "u".into(),
        session_id: "s".into(),
        ad_id: "ad-1".into(),
        ad_category: "travel".into(),
        device: "mobile".into(),
        os: "Android".into(),
        browser: "Chrome".into(),
        location: "DE".into(),
        page_id: "p".into(),
        referrer: String::new(),
        impression_cost: 0.01,
        event_time: EventTime::from_millis(time_ms),
    }
}

pub fn click(id: &str, impression_id: &str, time_ms: i64) -> Click {
    Click {
        click_id: id.to_owned(),
        impression_id: impression_id.to_owned(),
        click_position: 1,
        click_cost: 0.5,
        event_time: EventTime::from_millis(time_ms),
    }
}

fn uuid(prefix: u32, index: u32) -> String {
    format!("{prefix:08x}-0000-4000-8000-{index:012x}")
}

/// A scenario: `num_impressions` impressions, a click on every other one, orphan
/// clicks, clicks outside the window and repeated deliveries; bracketed by markers,
/// the last ones idle so every waiting click is decided. Returns what each distinct
/// click must get.
pub fn write_scenario(writer: &KeyedWriter, num_impressions: u32) -> BTreeMap<String, Outcome> {
    let mut expected = BTreeMap::new();
    writer.markers(T0 - 10 * MINUTE, false);
    for index in 0..num_impressions {
        let id = uuid(1, index);
        writer.impression(&impression(&id, T0 + i64::from(index) * SECOND));
        if index % 2 == 0 {
            let click_id = uuid(2, index);
            let matched = click(&click_id, &id, T0 + i64::from(index) * SECOND + 10 * SECOND);
            writer.click(&matched, false);
            expected.insert(click_id, Outcome::Matched);
            if index % 10 == 0 {
                writer.click(&matched, false);
            }
        } else if index % 7 == 0 {
            let click_id = format!("outside-{index}");
            writer.click(
                &click(&click_id, &id, T0 + i64::from(index) * SECOND + 20 * MINUTE),
                false,
            );
            expected.insert(click_id, Outcome::NoImpression);
        }
        if index % 25 == 0 {
            let click_id = format!("orphan-{index}");
            writer.click(
                &click(
                    &click_id,
                    &format!("missing-{index}"),
                    T0 + i64::from(index) * SECOND,
                ),
                false,
            );
            expected.insert(click_id, Outcome::NoImpression);
        }
    }
    writer.markers(T0 + i64::from(num_impressions) * SECOND, false);
    writer.markers(T0 + i64::from(num_impressions) * SECOND + 30 * MINUTE, true);
    writer.flush();
    expected
}

/// Reads outcomes until every expected click has one (or a minute and a half passes).
pub fn read_outcomes(
    endpoint: &KafkaEndpoint,
    config: &Config,
    expected: &BTreeMap<String, Outcome>,
) -> Vec<Written> {
    read_until(endpoint, &[&config.join.outcomes_topic], |written| {
        let mut seen = std::collections::HashSet::new();
        for record in written {
            if let Some(key) = &record.key {
                seen.insert(key.clone());
            }
        }
        expected.keys().all(|click_id| seen.contains(click_id))
    })
}

/// The first outcome of each click, as the sink keeps it.
pub fn first_outcomes(outcomes: &[Written]) -> BTreeMap<String, Outcome> {
    let mut first = BTreeMap::new();
    for record in outcomes {
        let value: serde_json::Value = record.json();
        let click_id = value["click_id"].as_str().unwrap().to_owned();
        let outcome: Outcome = serde_json::from_value(value["outcome"].clone()).unwrap();
        first.entry(click_id).or_insert(outcome);
    }
    first
}
