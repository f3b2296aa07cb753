//! The generator against real Kafka-protocol brokers: the embedded mock cluster
//! (in-process) and Tansu (its own process). What lands in the topics, read back
//! partition by partition, implies exactly the truth the generator wrote.

mod common;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

use adjoin_generator::oracle::Oracle;
use adjoin_generator::record::{RawRecord, Topic};
use adjoin_generator::truth::Truth;
use adjoin_generator::{run_with_endpoint, Summary};
use adjoin_shared::config::{Config, KafkaConfig, TopicsConfig};
use adjoin_shared::kafka::partitioner::partition_for_key;
use adjoin_shared::kafka::KafkaEndpoint;
use adjoin_shared::schema::{Decoder, EventTime};
use adjoin_shared::testing::{unique_name, Tansu};

use common::{content_from_bytes, rules};

const START: &str = "2026-11-27T00:00:00Z";

struct Consumed {
    topic: Topic,
    partition: i32,
    offset: i64,
    key_opt: Option<String>,
    payload: Vec<u8>,
}

fn test_config(endpoint: &KafkaEndpoint) -> Config {
    Config {
        kafka: KafkaConfig {
            brokers: endpoint.bootstrap_servers().to_owned(),
            ..KafkaConfig::default()
        },
        topics: TopicsConfig {
            impressions: unique_name("impressions"),
            clicks: unique_name("clicks"),
            partitions: 3,
            ..TopicsConfig::default()
        },
        ..Config::default()
    }
}

/// Reads every record of both raw topics from the beginning.
fn consume_all(endpoint: &KafkaEndpoint, config: &Config, expected: u64) -> Vec<Consumed> {
    let consumer: BaseConsumer = endpoint
        .client_config()
        .set("group.id", unique_name("generator-test"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer
        .subscribe(&[&config.topics.impressions, &config.topics.clicks])
        .unwrap();
    let mut consumed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while (consumed.len() as u64) < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let topic = if message.topic() == config.topics.impressions {
            Topic::Impressions
        } else {
            Topic::Clicks
        };
        consumed.push(Consumed {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            key_opt: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
        });
    }
    assert_eq!(consumed.len() as u64, expected, "records read back");
    consumed
}

/// The truth of what was read back, each partition in offset order.
fn truth_of_consumed(config: &Config, consumed: &mut [Consumed], written: &Truth) -> Truth {
    consumed.sort_by_key(|record| (record.topic, record.partition, record.offset));
    let decoder = Decoder::new(config.decode.clone());
    let mut oracle = Oracle::new(rules(config));
    for record in consumed.iter() {
        oracle.observe(&RawRecord {
            topic: record.topic,
            partition: record.partition,
            key: record.key_opt.clone(),
            payload: record.payload.clone(),
            deliver_at: EventTime::from_millis(0),
            content: content_from_bytes(&decoder, record.topic, &record.payload),
        });
    }
    oracle.finish(written.settings.clone())
}

fn generate(endpoint: &KafkaEndpoint, config: &Config, flags: &str) -> (Summary, Truth) {
    let truth_file = tempfile::NamedTempFile::new().unwrap();
    let path = truth_file.path().to_str().unwrap();
    let args = common::args(&format!("{flags} --truth {path}"));
    let summary = run_with_endpoint(endpoint, config, &args, &AtomicBool::new(false)).unwrap();
    assert!(summary.all_delivered(), "{}", summary.describe());
    (summary, Truth::read(truth_file.path()).unwrap())
}

fn assert_same_truth(read_back: &Truth, written: &Truth) {
    assert_eq!(read_back.impressions, written.impressions);
    assert_eq!(read_back.clicks, written.clicks);
    assert_eq!(read_back.malformed, written.malformed);
    assert_eq!(read_back.totals, written.totals);
    assert_eq!(read_back.minutes, written.minutes);
    assert_eq!(read_back.click_outcomes, written.click_outcomes);
}

#[test]
fn mock_cluster_keyed_by_impression_id() {
    let endpoint = KafkaEndpoint::from_config(&KafkaConfig::default()).unwrap();
    let config = test_config(&endpoint);
    let (summary, written) = generate(
        &endpoint,
        &config,
        &format!(
            "--start {START} --count 3000 --seed 31 --key-by impression_id --late-fraction 0.2 \
             --max-lateness 3m --duplicate-fraction 0.1 --orphan-fraction 0.1 --malformed-fraction 0.02"
        ),
    );
    assert!(
        written.clicks.duplicates > 0 && written.clicks.late > 0,
        "{:?}",
        written.clicks
    );
    let mut consumed = consume_all(&endpoint, &config, summary.num_records);
    let decoder = Decoder::new(config.decode.clone());
    for record in consumed.iter().filter(|record| record.key_opt.is_some()) {
        let key = record.key_opt.as_deref().unwrap();
        assert_eq!(
            record.partition,
            partition_for_key(key.as_bytes(), 3),
            "murmur2 placement"
        );
        if let adjoin_generator::record::Content::Click(click) =
            content_from_bytes(&decoder, record.topic, &record.payload)
        {
            assert_eq!(key, click.impression_id);
        }
    }
    let read_back = truth_of_consumed(&config, &mut consumed, &written);
    assert_same_truth(&read_back, &written);
}

#[test]
fn tansu_broker_process() {
    let tansu = Tansu::start();
    let endpoint = tansu.endpoint();
    let config = test_config(&endpoint);
    let (summary, written) = generate(
        &endpoint,
        &config,
        &format!(
            "--start {START} --count 3000 --seed 32 --late-fraction 0.2 --max-lateness 3m \
             --duplicate-fraction 0.1 --orphan-fraction 0.1 --malformed-fraction 0.02"
        ),
    );
    let mut consumed = consume_all(&endpoint, &config, summary.num_records);
    assert!(
        consumed.iter().all(|record| record.key_opt.is_none()),
        "random keying writes no key"
    );
    let read_back = truth_of_consumed(&config, &mut consumed, &written);
    assert_same_truth(&read_back, &written);
}

#[test]
fn replaying_generated_files_reproduces_their_truth() {
    let endpoint = KafkaEndpoint::from_config(&KafkaConfig::default()).unwrap();
    let config = test_config(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_str().unwrap();
    let truth_path = dir.path().join("truth.json");
    let args = common::args(&format!(
        "--start {START} --count 2000 --seed 33 --late-fraction 0.2 --max-lateness 3m \
         --duplicate-fraction 0.1 --orphan-fraction 0.1 --malformed-fraction 0.05 \
         --out-dir {dir_path} --truth {}",
        truth_path.display()
    ));
    let stop = AtomicBool::new(false);
    let generated = adjoin_generator::run(&config, &args, &stop).unwrap();
    let written = Truth::read(&truth_path).unwrap();

    let replay_args = common::args(&format!(
        "--from-file {dir_path}/impressions.jsonl --from-file {dir_path}/clicks.jsonl"
    ));
    let replayed = run_with_endpoint(&endpoint, &config, &replay_args, &stop).unwrap();
    assert!(replayed.all_delivered(), "{}", replayed.describe());
    assert_eq!(replayed.num_records, generated.num_records);
    assert_eq!(replayed.num_malformed, generated.num_malformed);
    let mut consumed = consume_all(&endpoint, &config, replayed.num_records);
    let read_back = truth_of_consumed(&config, &mut consumed, &written);
    assert_same_truth(&read_back, &written);
}

#[test]
fn replay_refuses_lines_it_cannot_place() {
    let endpoint = KafkaEndpoint::from_config(&KafkaConfig::default()).unwrap();
    let config = test_config(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recorded.jsonl");
    std::fs::write(&path, "{\"click_id\":\"c1\",\"JoinID\":\"i1\",\"ClickPosition\":1,\"ClickCost\":0.1,\"event_time\":1795814970000}\nnot json at all\n").unwrap();
    let args = common::args(&format!("--from-file {}", path.display()));
    let error = run_with_endpoint(&endpoint, &config, &args, &AtomicBool::new(false)).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("recorded.jsonl:2"), "{message}");
}

#[test]
fn a_record_the_client_refuses_fails_the_run_with_the_reason() {
    let endpoint = KafkaEndpoint::from_config(&KafkaConfig::default()).unwrap();
    let config = test_config(&endpoint);
    // Oversize malformed records (too_large) exceed this client limit.
    let limited = endpoint.clone().with_option("message.max.bytes", "4000");
    let args = common::args(&format!(
        "--start {START} --count 500 --seed 34 --malformed-fraction 0.5"
    ));
    let error = run_with_endpoint(&limited, &config, &args, &AtomicBool::new(false)).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("producing to"), "{message}");
    assert!(message.to_lowercase().contains("too large"), "{message}");
}

#[test]
fn lost_deliveries_are_counted_and_reported() {
    let tansu = Tansu::start();
    let mut config = test_config(&tansu.endpoint());
    // Give up on undeliverable records quickly once the broker is gone.
    config
        .kafka
        .options
        .insert("message.timeout.ms".into(), "3000".into());
    let endpoint = KafkaEndpoint::from_config(&config.kafka).unwrap();
    let args = common::args(&format!(
        "--start {START} --count 150000 --seed 35 --malformed-fraction 0"
    ));
    // Kill the broker once records are arriving: after the topics exist, before
    // the run can finish.
    let watcher = endpoint.clone();
    let raw_topic = config.topics.impressions.clone();
    let killer = std::thread::spawn(move || {
        let consumer: BaseConsumer = watcher
            .client_config()
            .set("group.id", unique_name("killer"))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[&raw_topic]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
                break;
            }
        }
        drop(tansu);
    });
    let summary = run_with_endpoint(&endpoint, &config, &args, &AtomicBool::new(false)).unwrap();
    killer.join().unwrap();
    assert!(!summary.all_delivered(), "{}", summary.describe());
    assert!(summary.delivery.num_failed > 0, "{}", summary.describe());
    assert!(
        summary.delivery.first_error_opt.is_some(),
        "{}",
        summary.describe()
    );
    assert_eq!(
        summary.delivery.num_delivered + summary.delivery.num_failed,
        summary.num_records,
        "every record is accounted for: {}",
        summary.describe()
    );
}
