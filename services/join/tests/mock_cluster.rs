//! The join service against librdkafka's mock cluster: keyed records written as
//! ingest writes them come out as one outcome per distinct click, keyed and
//! partitioned by click id; unreadable keyed records go to the dead-letter topic;
//! two join processes share the shards and hand them over without losing a click.

mod common;

use std::time::{Duration, Instant};

use adjoin_join::JoinService;
use adjoin_shared::kafka::partitioner::partition_for_key;
use adjoin_shared::keyed;
use adjoin_shared::metrics::{Health, Metrics};
use adjoin_shared::schema::Outcome;
use adjoin_shared::testing::{embedded_endpoint, read_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use common::*;

fn wait_ready(health: &Health) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !health.report().ready {
        assert!(
            Instant::now() < deadline,
            "the join never got its partitions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_distinct_click_gets_one_outcome() {
    let endpoint = embedded_endpoint();
    let config = config(&endpoint, 4);
    let metrics = Metrics::new();
    let health = Health::new();
    let service = JoinService::start(&config, &endpoint, &metrics, &health).unwrap();
    let writer = KeyedWriter::new(&endpoint, &config);
    let expected = write_scenario(&writer, 400);
    writer.raw_click_record("bad-1", Some(keyed::KIND_CLICK), b"{oops");
    writer.raw_click_record("bad-2", None, br#"{"click_id":"no-kind"}"#);
    writer.flush();

    let outcomes = read_outcomes(&endpoint, &config, &expected);
    assert_eq!(first_outcomes(&outcomes), expected);
    assert_eq!(
        outcomes.len(),
        expected.len(),
        "no click decided twice; duplicates dropped"
    );
    for record in &outcomes {
        let value = record.json();
        let click_id = value["click_id"].as_str().unwrap();
        assert_eq!(record.key.as_deref(), Some(click_id), "keyed by click id");
        assert_eq!(
            record.partition,
            partition_for_key(click_id.as_bytes(), 4),
            "murmur2 like the Java client"
        );
        assert_eq!(
            record.header("adjoin-outcome"),
            value["outcome"].as_str().unwrap()
        );
        assert_eq!(
            record.header(keyed::HEADER_ORIGIN_MS),
            CLICK_ORIGIN_MS,
            "the click's origin timestamp travels with its outcome, waiting or not"
        );
        let matched = value["outcome"] == "matched";
        assert_eq!(value.get("impression").is_some(), matched);
        if matched {
            assert_eq!(value["impression"]["ad_id"], "ad-1");
        }
    }
    let dlq = keyed::dlq_topic(&config.ingest.clicks_keyed_topic);
    let dead = read_until(&endpoint, &[&dlq], |written| written.len() >= 2);
    let mut reasons: Vec<&str> = dead
        .iter()
        .map(|record| record.header(keyed::HEADER_REASON))
        .collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["invalid_click", "unknown_kind"]);
    assert!(
        dead.iter().any(|record| record.value == b"{oops"),
        "original bytes kept"
    );
    for record in &dead {
        let source = format!(
            "{}/{}/{}",
            config.ingest.clicks_keyed_topic,
            record.header(keyed::HEADER_SOURCE_PARTITION),
            record.header(keyed::HEADER_SOURCE_OFFSET)
        );
        assert_eq!(record.header(keyed::HEADER_SOURCE), source);
    }

    // Everything is decided. Once the watermarks have moved on past the window (as
    // ingest moves idle partitions' on while traffic is stopped) nothing is needed
    // any more, so the committed offsets reach the end of every keyed partition.
    writer.markers(T0 + 3 * 60 * MINUTE, true);
    writer.flush();
    std::thread::sleep(Duration::from_millis(1500));
    let exposition = metrics.encode();
    assert_eq!(
        metric(
            &exposition,
            "adjoin_join_clicks_total",
            &[("outcome", "matched")]
        ),
        200.0
    );
    assert_eq!(
        metric(
            &exposition,
            "adjoin_join_duplicates_total",
            &[("kind", "click")]
        ),
        40.0
    );
    assert_eq!(
        metric(&exposition, "adjoin_join_dead_letters_total", &[]),
        2.0
    );
    assert_eq!(
        metric(&exposition, "adjoin_join_live_impressions", &[]),
        0.0
    );
    service.shutdown();
    let consumer: BaseConsumer = endpoint
        .client_config()
        .set("group.id", &config.join.group_id)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for topic in [
        &config.ingest.impressions_keyed_topic,
        &config.ingest.clicks_keyed_topic,
    ] {
        for partition in 0..4 {
            list.add_partition(topic, partition);
        }
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    for element in committed.elements() {
        let (_, high) = consumer
            .fetch_watermarks(
                element.topic(),
                element.partition(),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(
            element.offset(),
            Offset::Offset(high),
            "{}/{} committed to its end",
            element.topic(),
            element.partition()
        );
    }
}

#[test]
fn two_join_processes_share_the_shards_and_hand_them_over() {
    let endpoint = embedded_endpoint();
    let config = config(&endpoint, 4);
    let (metrics_a, health_a) = (Metrics::new(), Health::new());
    let service_a = JoinService::start(&config, &endpoint, &metrics_a, &health_a).unwrap();
    wait_ready(&health_a);
    let writer = KeyedWriter::new(&endpoint, &config);
    let first_half = write_scenario(&writer, 200);

    let (metrics_b, health_b) = (Metrics::new(), Health::new());
    let service_b = JoinService::start(&config, &endpoint, &metrics_b, &health_b).unwrap();
    wait_ready(&health_b);
    let shards = |metrics: &Metrics| {
        metric(
            &metrics.encode(),
            "adjoin_join_handovers_total",
            &[("event", "assigned")],
        ) - metric(
            &metrics.encode(),
            "adjoin_join_handovers_total",
            &[("event", "revoked")],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while shards(&metrics_a) + shards(&metrics_b) != 4.0 || shards(&metrics_a) == 0.0 {
        assert!(Instant::now() < deadline, "the shards were never shared");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        shards(&metrics_a),
        2.0,
        "range gives each member two partition pairs"
    );
    assert!(
        metric(
            &metrics_a.encode(),
            "adjoin_join_handovers_total",
            &[("event", "revoked")]
        ) >= 2.0
    );

    // More traffic while both run, then process A leaves: B takes every shard over.
    let mut expected = write_scenario_with_prefix(&writer, 200, 7);
    expected.extend(first_half);
    let outcomes = read_outcomes(&endpoint, &config, &expected);
    assert_eq!(first_outcomes(&outcomes), expected);
    service_a.shutdown();
    let more = write_scenario_with_prefix(&writer, 100, 9);
    let mut all = expected.clone();
    all.extend(more);
    let outcomes = read_outcomes(&endpoint, &config, &all);
    assert_eq!(
        first_outcomes(&outcomes),
        all,
        "nothing lost across the hand-overs"
    );
    assert_eq!(shards(&metrics_b), 4.0);
    service_b.shutdown();
}

/// The scenario with click and impression ids of their own, so it can be written
/// again into the same topics.
fn write_scenario_with_prefix(
    writer: &KeyedWriter,
    num_impressions: u32,
    prefix: u32,
) -> std::collections::BTreeMap<String, Outcome> {
    let mut expected = std::collections::BTreeMap::new();
    // Event time moves on: hours after the earlier scenarios, whose last markers
    // said idle. A marker first says the partitions are active again.
    let base = T0 + i64::from(prefix) * 60 * MINUTE;
    writer.markers(base - 10 * MINUTE, false);
    for index in 0..num_impressions {
        let id = format!("{prefix:08x}-1111-4000-8000-{index:012x}");
        writer.impression(&impression(&id, base + i64::from(index) * SECOND));
        let click_id = format!("{prefix:08x}-2222-4000-8000-{index:012x}");
        writer.click(
            &click(&click_id, &id, base + i64::from(index) * SECOND + SECOND),
            false,
        );
        expected.insert(click_id, Outcome::Matched);
    }
    writer.markers(
        base + i64::from(num_impressions) * SECOND + 30 * MINUTE,
        true,
    );
    writer.flush();
    expected
}
