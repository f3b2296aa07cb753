//! Helpers for the sink's integration tests: a configuration with fresh names,
//! keyed impressions and click outcomes written as ingest and the join write
//! them, and waiting for the database to hold what was written.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use adjoin_shared::config::{
    Config, DatabaseConfig, IngestConfig, JoinConfig, KafkaConfig, SinkConfig, TopicsConfig,
};
use adjoin_shared::kafka::partitioner::partition_for_key;
use adjoin_shared::kafka::KafkaEndpoint;
use adjoin_shared::keyed::{self, PartitionWatermark, WatermarkMarker};
use adjoin_shared::schema::{
    Click, ClickOutcome, EventTime, Impression, MatchedImpression, Outcome,
};
use adjoin_shared::testing::unique_name;
use adjoin_sink::store::Store;

pub use adjoin_shared::testing::metric;

pub const T0: i64 = 1_795_000_000_000;

/// A configuration with fresh topic names, a fresh group and small batches.
pub fn config(endpoint: &KafkaEndpoint, database_url: &str) -> Config {
    Config {
        kafka: KafkaConfig {
            brokers: endpoint.bootstrap_servers().to_owned(),
            ..KafkaConfig::default()
        },
        database: DatabaseConfig {
            url: database_url.to_owned(),
        },
        topics: TopicsConfig {
            partitions: 2,
            ..TopicsConfig::default()
        },
        ingest: IngestConfig {
            impressions_keyed_topic: unique_name("impressions_keyed"),
            ..IngestConfig::default()
        },
        join: JoinConfig {
            outcomes_topic: unique_name("click_outcomes"),
            ..JoinConfig::default()
        },
        sink: SinkConfig {
            group_id: unique_name("sink"),
            dlq_topic: unique_name("sink_dlq"),
            batch_rows: 50,
            batch_wait: Duration::from_millis(100),
            max_retry_backoff: Duration::from_secs(1),
            ..SinkConfig::default()
        },
        ..Config::default()
    }
}

pub fn impression(index: u64) -> Impression {
    Impression {
        impression_id: format!("imp-{index}"),
        user_id: format!("user-{}", index % 13),
        session_id: format!("s-{index}"),
        ad_id: format!("ad-{}", index % 5),
        ad_category: format!("cat-{}", index % 3),
        device: "mobile".to_owned(),
        os: "Android".to_owned(),
        browser: "Chrome".to_owned(),
        location: format!("region-{}", index % 4),
        page_id: "p".to_owned(),
        referrer: String::new(),
        impression_cost: 0.002,
        event_time: EventTime::from_millis(T0 + index as i64 * 1_000),
    }
}

pub fn outcome(click: u64, of: &Impression, outcome: Outcome) -> ClickOutcome {
    let click = Click {
        click_id: format!("clk-{click}"),
        impression_id: of.impression_id.clone(),
        click_position: 1,
        click_cost: 0.25,
        event_time: EventTime::from_millis(of.event_time.as_millis() + 5_000),
    };
    match outcome {
        Outcome::Matched => ClickOutcome::matched(
            click,
            MatchedImpression {
                event_time: of.event_time,
                ad_id: of.ad_id.clone(),
                ad_category: of.ad_category.clone(),
                device: of.device.clone(),
                os: of.os.clone(),
                browser: of.browser.clone(),
                location: of.location.clone(),
            },
        ),
        other => ClickOutcome::unmatched(click, other),
    }
}

/// Writes what the sink reads, the way ingest and the join write it.
pub struct Writer {
    producer: ThreadedProducer<DefaultProducerContext>,
    config: Config,
}

/// What the database must end up holding.
#[derive(Debug, Default)]
pub struct Expected {
    pub impressions: usize,
    pub outcomes: BTreeMap<String, Outcome>,
}

impl Writer {
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

    pub fn send(&self, topic: &str, key: &str, kind: Option<&str>, value: &[u8]) {
        let partition = partition_for_key(key.as_bytes(), self.config.topics.partitions);
        let origin = (EventTime::now().as_millis() - 1_000).to_string();
        let mut headers = OwnedHeaders::new().insert(Header {
            key: keyed::HEADER_ORIGIN_MS,
            value: Some(origin.as_str()),
        });
        if let Some(kind) = kind {
            headers = headers.insert(Header {
                key: keyed::HEADER_KIND,
                value: Some(kind),
            });
        }
        let record = BaseRecord::<str, [u8]>::to(topic)
            .partition(partition)
            .key(key)
            .payload(value)
            .headers(headers);
        self.producer
            .send(record)
            .map_err(|(error, _)| error)
            .unwrap();
    }

    pub fn impression(&self, impression: &Impression) {
        self.send(
            &self.config.ingest.impressions_keyed_topic,
            &impression.impression_id,
            Some(keyed::KIND_IMPRESSION),
            &serde_json::to_vec(impression).unwrap(),
        );
    }

    pub fn outcome(&self, outcome: &ClickOutcome) {
        self.send(
            &self.config.join.outcomes_topic,
            &outcome.click.click_id,
            Some(keyed::KIND_OUTCOME),
            &serde_json::to_vec(outcome).unwrap(),
        );
    }

    /// A watermark marker in every impressions partition: no row, but offsets.
    pub fn markers(&self) {
        let marker = WatermarkMarker {
            source_topic: "impressions".to_owned(),
            source_partitions: 1,
            instance: "test".to_owned(),
            emitted_at_ms: EventTime::now().as_millis(),
            partitions: vec![PartitionWatermark {
                partition: 0,
                watermark_ms: Some(T0),
                idle: false,
            }],
        };
        let value = serde_json::to_vec(&marker).unwrap();
        for partition in 0..self.config.topics.partitions {
            let headers = OwnedHeaders::new().insert(Header {
                key: keyed::HEADER_KIND,
                value: Some(keyed::KIND_WATERMARK),
            });
            let record = BaseRecord::<str, [u8]>::to(&self.config.ingest.impressions_keyed_topic)
                .partition(partition)
                .payload(&value)
                .headers(headers);
            self.producer
                .send(record)
                .map_err(|(error, _)| error)
                .unwrap();
        }
    }

    /// `count` impressions, one click on every other one (matched, no_impression
    /// or late), each click delivered twice with a second, different outcome that
    /// must lose, some impressions delivered twice, and markers in between.
    pub fn scenario(&self, count: u64) -> Expected {
        let mut expected = Expected::default();
        self.scenario_part(0..count, &mut expected);
        expected
    }

    /// The scenario's records for the impressions in `indexes`, added to `expected`.
    pub fn scenario_part(&self, indexes: std::ops::Range<u64>, expected: &mut Expected) {
        for index in indexes {
            let shown = impression(index);
            self.impression(&shown);
            expected.impressions += 1;
            if index % 7 == 0 {
                self.impression(&shown);
            }
            if index % 2 == 0 {
                let kind = [Outcome::Matched, Outcome::NoImpression, Outcome::Late]
                    [(index / 2 % 3) as usize];
                let first = outcome(index, &shown, kind);
                self.outcome(&first);
                let other = if kind == Outcome::Matched {
                    Outcome::NoImpression
                } else {
                    Outcome::Matched
                };
                self.outcome(&outcome(index, &shown, other));
                expected.outcomes.insert(first.click.click_id.clone(), kind);
            }
            if index % 50 == 0 {
                self.markers();
            }
        }
    }

    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(10)).unwrap();
    }
}

/// Number of rows in a table.
pub async fn count(store: &Store, table: &str) -> i64 {
    let query = format!("SELECT count(*) FROM {table}");
    match store {
        Store::Postgres(pool) => sqlx::query_scalar(&query).fetch_one(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_scalar(&query).fetch_one(pool).await.unwrap(),
    }
}

/// The outcome stored for each click id.
pub async fn stored_outcomes(store: &Store) -> BTreeMap<String, Outcome> {
    let rows: Vec<(String, String)> = match store {
        Store::Postgres(pool) => sqlx::query_as("SELECT click_id, outcome FROM clicks")
            .fetch_all(pool)
            .await
            .unwrap(),
        Store::Sqlite(pool) => sqlx::query_as("SELECT click_id, outcome FROM clicks")
            .fetch_all(pool)
            .await
            .unwrap(),
    };
    rows.into_iter()
        .map(|(id, outcome)| {
            (
                id,
                serde_json::from_value(serde_json::json!(outcome)).unwrap(),
            )
        })
        .collect()
}

/// Rows where a rollup differs from the facts, summed over the rollups.
pub async fn rollup_mismatches(store: &Store) -> i64 {
    let rows: Vec<(String, i64)> = match store {
        Store::Postgres(pool) => {
            sqlx::query_as(include_str!("../../sql/postgres/check_rollups.sql"))
                .fetch_all(pool)
                .await
                .unwrap()
        }
        Store::Sqlite(pool) => sqlx::query_as(include_str!("../../sql/sqlite/check_rollups.sql"))
            .fetch_all(pool)
            .await
            .unwrap(),
    };
    rows.iter().map(|(_, mismatches)| mismatches).sum()
}

/// Duplicates the sink met, as its batches counted them in `sink_health_minute`.
pub async fn duplicates_counted(store: &Store) -> i64 {
    let query = "SELECT CAST(COALESCE(sum(duplicate_impressions + duplicate_clicks), 0) AS BIGINT) FROM sink_health_minute";
    match store {
        Store::Postgres(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
    }
}

/// Waits until the database holds `expected` (or two minutes pass).
pub async fn wait_for(store: &Store, expected: &Expected) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let impressions = count(store, "impressions").await;
        let clicks = count(store, "clicks").await;
        if impressions as usize >= expected.impressions
            && clicks as usize >= expected.outcomes.len()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sink wrote {impressions} of {} impressions and {clicks} of {} clicks",
            expected.impressions,
            expected.outcomes.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
