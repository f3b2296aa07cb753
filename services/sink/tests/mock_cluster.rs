//! The sink service against librdkafka's mock cluster and a real database
//! (SQLite and PostgreSQL): every impression and every distinct click lands once
//! with its first outcome, rollups equal the facts, unreadable records and rows
//! the database rejects go to `sink.dlq`, offsets live in the database, and a
//! restarted sink resumes exactly there.

mod common;

use adjoin_shared::keyed;
use adjoin_shared::metrics::{Health, Metrics};
use adjoin_shared::testing::{embedded_endpoint, read_until, TestDatabase};
use adjoin_sink::store::Store;
use adjoin_sink::SinkService;

use common::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the whole scenario against the database at `url`.
fn lands_once(url: &str) {
    let runtime = runtime();
    let endpoint = embedded_endpoint();
    let config = config(&endpoint, url);
    let metrics = Metrics::new();
    let health = Health::new();
    let service = SinkService::start(&config, &endpoint, &metrics, &health).unwrap();
    let writer = Writer::new(&endpoint, &config);
    let expected = writer.scenario(300);
    writer.send(
        &config.ingest.impressions_keyed_topic,
        "bad-impression",
        Some(keyed::KIND_IMPRESSION),
        b"{oops",
    );
    writer.send(
        &config.join.outcomes_topic,
        "bad-outcome",
        Some(keyed::KIND_OUTCOME),
        br#"{"click_id":"c","outcome":"matched"}"#,
    );
    writer.flush();

    let store = runtime.block_on(Store::connect(url, 1)).unwrap();
    runtime.block_on(wait_for(&store, &expected));
    let dead = read_until(&endpoint, &[&config.sink.dlq_topic], |written| {
        written.len() >= 2
    });
    // Let the last batch's offsets settle, then stop cleanly.
    std::thread::sleep(std::time::Duration::from_millis(500));
    service.shutdown();

    assert_eq!(
        runtime.block_on(count(&store, "impressions")) as usize,
        expected.impressions
    );
    assert_eq!(
        runtime.block_on(stored_outcomes(&store)),
        expected.outcomes,
        "every distinct click once, with its first outcome"
    );
    assert_eq!(runtime.block_on(rollup_mismatches(&store)), 0);

    let mut reasons: Vec<&str> = dead
        .iter()
        .map(|record| record.header(keyed::HEADER_REASON))
        .collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["invalid_impression", "invalid_outcome"]);
    let bad = dead
        .iter()
        .find(|record| record.value == b"{oops")
        .expect("original bytes kept");
    assert_eq!(
        bad.header(keyed::HEADER_SOURCE_TOPIC),
        config.ingest.impressions_keyed_topic
    );

    // The database's offsets cover every record written, markers and dead letters
    // included: one per partition of each input, at its end.
    let offsets = runtime
        .block_on(store.offsets(&config.sink.group_id))
        .unwrap();
    let records_per_input = [
        expected.impressions + expected.impressions.div_ceil(7) + 1 + 2 * 6,
        expected.outcomes.len() * 2 + 1,
    ];
    for (input, topic) in [
        &config.ingest.impressions_keyed_topic,
        &config.join.outcomes_topic,
    ]
    .into_iter()
    .enumerate()
    {
        let covered: i64 = offsets
            .iter()
            .filter(|(stored, _, _)| stored == topic)
            .map(|(_, _, next)| next)
            .sum();
        assert_eq!(covered as usize, records_per_input[input], "{topic}");
    }

    let exposition = metrics.encode();
    let rows = |table: &str, result: &str| {
        metric(
            &exposition,
            "adjoin_sink_rows_total",
            &[("table", table), ("result", result)],
        )
    };
    assert_eq!(
        rows("impressions", "inserted") as usize,
        expected.impressions
    );
    assert_eq!(
        rows("impressions", "duplicate") as usize,
        expected.impressions.div_ceil(7)
    );
    assert_eq!(rows("clicks", "inserted") as usize, expected.outcomes.len());
    assert_eq!(
        rows("clicks", "duplicate") as usize,
        expected.outcomes.len()
    );
    assert_eq!(
        metric(&exposition, "adjoin_sink_dead_letters_total", &[]),
        2.0
    );
    assert!(
        metric(
            &exposition,
            "adjoin_sink_end_to_end_latency_seconds_count",
            &[]
        ) >= expected.impressions as f64,
        "latency measured from the origin header"
    );
    assert!(metric(&exposition, "adjoin_sink_commit_seconds_count", &[]) >= 1.0);
}

#[test]
fn every_row_lands_once_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    lands_once(&format!(
        "sqlite://{}",
        dir.path().join("sink.db").display()
    ));
}

#[test]
fn every_row_lands_once_in_postgres() {
    let database = runtime().block_on(TestDatabase::create());
    lands_once(database.url());
}

#[test]
fn a_row_postgres_rejects_goes_to_the_dead_letter_topic() {
    let runtime = runtime();
    let database = runtime.block_on(TestDatabase::create());
    let endpoint = embedded_endpoint();
    let config = config(&endpoint, database.url());
    let metrics = Metrics::new();
    let health = Health::new();
    let service = SinkService::start(&config, &endpoint, &metrics, &health).unwrap();
    let writer = Writer::new(&endpoint, &config);
    let mut bad = impression(1_000);
    // Valid JSON and a valid impression; PostgreSQL text cannot hold a NUL.
    bad.referrer = "https://example.com/\u{0}".to_owned();
    writer.impression(&impression(1));
    writer.impression(&bad);
    writer.impression(&impression(2));
    writer.flush();

    let dead = read_until(&endpoint, &[&config.sink.dlq_topic], |written| {
        !written.is_empty()
    });
    let store = runtime.block_on(Store::connect(database.url(), 1)).unwrap();
    runtime.block_on(wait_for(
        &store,
        &Expected {
            impressions: 2,
            ..Expected::default()
        },
    ));
    service.shutdown();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header(keyed::HEADER_REASON), "rejected_by_database");
    assert!(
        dead[0].header(keyed::HEADER_ERROR).contains("0x00"),
        "{}",
        dead[0].header(keyed::HEADER_ERROR)
    );
    assert_eq!(dead[0].json()["impression_id"], "imp-1000");
    assert_eq!(runtime.block_on(count(&store, "impressions")), 2);
    let dead_letters: i64 = runtime.block_on(async {
        let Store::Postgres(pool) = &store else {
            unreachable!()
        };
        sqlx::query_scalar("SELECT sum(dead_letter_impressions)::int8 FROM sink_health_minute")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(dead_letters, 1, "counted in the health rollup");
}

#[test]
fn a_restarted_sink_resumes_at_the_database_offsets() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sink.db").display());
    let endpoint = embedded_endpoint();
    let config = config(&endpoint, &url);
    let writer = Writer::new(&endpoint, &config);
    let store = runtime.block_on(Store::open(&url, 1)).unwrap();

    let first = SinkService::start(&config, &endpoint, &Metrics::new(), &Health::new()).unwrap();
    let mut expected = writer.scenario(100);
    writer.flush();
    runtime.block_on(wait_for(&store, &expected));
    first.shutdown();

    let metrics = Metrics::new();
    let second = SinkService::start(&config, &endpoint, &metrics, &Health::new()).unwrap();
    for index in 100..160 {
        writer.impression(&impression(index));
    }
    writer.flush();
    expected.impressions += 60;
    runtime.block_on(wait_for(&store, &expected));
    second.shutdown();
    assert_eq!(
        runtime.block_on(count(&store, "impressions")) as usize,
        expected.impressions
    );
    let exposition = metrics.encode();
    assert_eq!(
        metric(
            &exposition,
            "adjoin_sink_rows_total",
            &[("table", "impressions"), ("result", "inserted")]
        ),
        60.0
    );
    assert_eq!(
        metric(
            &exposition,
            "adjoin_sink_rows_total",
            &[("result", "duplicate")]
        ),
        0.0,
        "nothing before the stored offsets was read again"
    );
}
