//! An ingest actor that panics mid-stream is restarted by its supervisor from the
//! committed offsets: every raw record still comes out (duplicates allowed), and
//! the restart is counted. Its own test binary: failpoints are process-wide.

mod common;

use std::collections::HashSet;

use adjoin_ingest::IngestService;
use adjoin_shared::keyed::{self, dlq_topic};
use adjoin_shared::metrics::{Health, Metrics};

use common::{config, generate, read_until};

#[test]
fn a_panic_mid_stream_loses_nothing() {
    common::logs();
    let endpoint = common::embedded_endpoint();
    let config = config(&endpoint, 3);
    let (summary, _) = generate(
        &endpoint,
        &config,
        "--start 2026-11-27T00:00:00Z --count 3000 --seed 42 --malformed-fraction 0.02",
    );
    let raw = read_until(
        &endpoint,
        &[&config.topics.impressions, &config.topics.clicks],
        |written| written.len() as u64 >= summary.num_records,
    );
    let expected: HashSet<String> = raw
        .iter()
        .map(|record| format!("{}/{}/{}", record.topic, record.partition, record.offset))
        .collect();
    assert_eq!(expected.len() as u64, summary.num_records);

    // The 1001st record handled panics, once.
    fail::cfg("ingest-record", "1000*off->1*panic->off").unwrap();
    let metrics = Metrics::new();
    let service = IngestService::start(&config, &endpoint, &metrics, &Health::new()).unwrap();
    let outputs = [
        config.ingest.impressions_keyed_topic.as_str(),
        config.ingest.clicks_keyed_topic.as_str(),
        &dlq_topic(&config.topics.impressions),
        &dlq_topic(&config.topics.clicks),
    ];
    let sources_of = |written: &[common::Written]| -> HashSet<String> {
        written
            .iter()
            .filter(|record| record.header(keyed::HEADER_KIND) != keyed::KIND_WATERMARK)
            .map(|record| record.header(keyed::HEADER_SOURCE).to_owned())
            .collect()
    };
    let written = read_until(&endpoint, &outputs, |written| {
        sources_of(written).len() >= expected.len()
    });
    service.shutdown();
    fail::remove("ingest-record");

    let seen = sources_of(&written);
    let missing: Vec<&String> = expected.difference(&seen).take(5).collect();
    assert!(missing.is_empty(), "lost raw records, e.g. {missing:?}");
    assert_eq!(seen.len(), expected.len());
    let text = metrics.encode();
    let restarted = text.lines().any(|line| {
        line.starts_with("adjoin_actor_restarts_total{service=\"ingest\"")
            && line.contains("reason=\"panic\"} 1")
    });
    assert!(restarted, "the restart is counted:\n{text}");
}
