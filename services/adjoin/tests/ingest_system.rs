//! System test: two `adjoin ingest` processes share the raw partitions on a Tansu
//! broker; one is killed with SIGKILL mid-stream and started again. Every valid raw
//! record still appears in the keyed topics (duplicates allowed, losses not) and
//! every malformed one in its dead-letter topic.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::Message;

use adjoin_shared::kafka::KafkaEndpoint;
use adjoin_shared::keyed;
use adjoin_shared::testing::{unique_name, Tansu};

use common::{
    env_value, free_addr, pipeline_env, start_service, stop_gracefully, wait_ready, SESSION_TIMEOUT,
};

struct Setup {
    env: Vec<(String, String)>,
    impressions: String,
    clicks: String,
    impressions_keyed: String,
    clicks_keyed: String,
}

fn setup(tansu: &Tansu) -> Setup {
    let env = common::with(
        pipeline_env(tansu),
        &[("ADJOIN__INGEST__COMMIT_INTERVAL", "200ms")],
    );
    let name = |variable| env_value(&env, variable).to_owned();
    Setup {
        impressions: name("ADJOIN__TOPICS__IMPRESSIONS"),
        clicks: name("ADJOIN__TOPICS__CLICKS"),
        impressions_keyed: name("ADJOIN__INGEST__IMPRESSIONS_KEYED_TOPIC"),
        clicks_keyed: name("ADJOIN__INGEST__CLICKS_KEYED_TOPIC"),
        env,
    }
}

fn adjoin(setup: &Setup, args: &[&str], extra_env: &[(&str, String)]) -> Command {
    common::adjoin(&setup.env, args, extra_env)
}

fn start_ingest(setup: &Setup, listen: SocketAddr, log: &std::path::Path) -> Child {
    start_service(&setup.env, "ingest", listen, log)
}

/// `topic/partition/offset` of every record in the topics, reading until `enough`.
fn read_sources(
    endpoint: &KafkaEndpoint,
    topics: &[&str],
    from_headers: bool,
    enough: usize,
) -> HashSet<String> {
    let consumer: BaseConsumer = endpoint
        .client_config()
        .set("group.id", unique_name("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    let mut sources = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while sources.len() < enough && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        if !from_headers {
            sources.insert(format!(
                "{}/{}/{}",
                message.topic(),
                message.partition(),
                message.offset()
            ));
            continue;
        }
        let headers = message.headers();
        let header = |name: &str| {
            headers.and_then(|headers| {
                headers
                    .iter()
                    .find(|header| header.key == name)
                    .and_then(|header| header.value)
                    .map(|value| String::from_utf8_lossy(value).into_owned())
            })
        };
        if header(keyed::HEADER_KIND).as_deref() == Some(keyed::KIND_WATERMARK) {
            continue;
        }
        if let Some(source) = header(keyed::HEADER_SOURCE) {
            sources.insert(source);
        }
    }
    sources
}

/// The killed process comes back only once its old member's session has run out.
/// Tansu 0.6 has no expiry timer: it drops a silent member only when another request
/// notices, and a member that rejoins before that is listed to the group leader with
/// its dead twin, whose partitions then stay unassigned for good
/// (`coordinator/group/administrator.rs` in tansu-broker 0.6.0: a `Formed` group
/// keeps its stored assignment when the dead member expires later). Kafka brokers
/// expire members on a timer and need no such wait.
#[test]
fn two_ingest_processes_one_killed_and_restarted_lose_nothing() {
    let tansu = Tansu::start();
    let setup = setup(&tansu);
    let logs = tempfile::tempdir().unwrap();
    let (listen_a, listen_b) = (free_addr(), free_addr());
    let mut ingest_a = start_ingest(&setup, listen_a, &logs.path().join("a.log"));
    let mut ingest_b = start_ingest(&setup, listen_b, &logs.path().join("b.log"));
    wait_ready(listen_a);
    wait_ready(listen_b);

    let generator = adjoin(
        &setup,
        &[
            "generate",
            "--start",
            "2026-11-27T00:00:00Z",
            "--count",
            "60000",
            "--seed",
            "51",
            "--malformed-fraction",
            "0.01",
            "--late-fraction",
            "0.05",
        ],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Mid-stream: the generator is writing and both ingest processes are reading.
    std::thread::sleep(Duration::from_millis(1500));
    ingest_a.kill().unwrap();
    ingest_a.wait().unwrap();
    let killed_at = Instant::now();
    let generated = generator.wait_with_output().unwrap();
    assert!(generated.status.success());
    let summary = String::from_utf8_lossy(&generated.stdout).into_owned();
    let num_records: usize = summary
        .split_whitespace()
        .nth(1)
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("generator summary: {summary}"));
    let restart_after = SESSION_TIMEOUT + Duration::from_secs(4);
    std::thread::sleep(restart_after.saturating_sub(killed_at.elapsed()));
    let mut ingest_a_again = start_ingest(&setup, listen_a, &logs.path().join("a2.log"));

    let endpoint = tansu.endpoint();
    let raw = read_sources(
        &endpoint,
        &[&setup.impressions, &setup.clicks],
        false,
        num_records,
    );
    assert_eq!(raw.len(), num_records, "raw records read back");
    let impressions_dlq = keyed::dlq_topic(&setup.impressions);
    let clicks_dlq = keyed::dlq_topic(&setup.clicks);
    let written = read_sources(
        &endpoint,
        &[
            &setup.impressions_keyed,
            &setup.clicks_keyed,
            &impressions_dlq,
            &clicks_dlq,
        ],
        true,
        raw.len(),
    );
    let missing: Vec<&String> = raw.difference(&written).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} raw records never came out, e.g. {missing:?}\nlogs: {}",
        raw.difference(&written).count(),
        std::fs::read_to_string(logs.path().join("b.log")).unwrap_or_default()
    );

    for child in [&mut ingest_b, &mut ingest_a_again] {
        stop_gracefully(child);
    }
}
