//! The sink failing at its worst moments (failpoints): between the database
//! commit and the Kafka commit, and panicking mid-batch. Its supervisor restarts
//! it, it resumes from the offsets in the database, and nothing is lost or
//! written twice. Alone in its test binary: failpoints are process-wide, so the
//! cases run one after the other in one test.

mod common;

use adjoin_shared::metrics::{Health, Metrics};
use adjoin_shared::testing::{embedded_endpoint, TestDatabase};
use adjoin_sink::store::Store;
use adjoin_sink::SinkService;

use common::*;

fn survives(failpoint: &str, action: &str, url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = embedded_endpoint();
    let config = config(&endpoint, url);
    let metrics = Metrics::new();
    let health = Health::new();
    fail::cfg(failpoint, action).unwrap();
    let service = SinkService::start(&config, &endpoint, &metrics, &health).unwrap();
    let writer = Writer::new(&endpoint, &config);
    let expected = writer.scenario(400);
    writer.flush();
    let store = runtime.block_on(Store::connect(url, 1)).unwrap();
    runtime.block_on(wait_for(&store, &expected));
    service.shutdown();
    fail::remove(failpoint);

    assert_eq!(
        runtime.block_on(count(&store, "impressions")) as usize,
        expected.impressions,
        "{failpoint}"
    );
    assert_eq!(
        runtime.block_on(stored_outcomes(&store)),
        expected.outcomes,
        "{failpoint}"
    );
    assert_eq!(
        runtime.block_on(rollup_mismatches(&store)),
        0,
        "{failpoint}"
    );
    let exposition = metrics.encode();
    assert!(
        metric(
            &exposition,
            "adjoin_actor_restarts_total",
            &[("service", "sink")]
        ) >= 1.0,
        "{failpoint}: the restart is counted\n{exposition}"
    );
    // The scenario's own repeated deliveries are the only duplicates the database
    // counted (in the batches' transactions, so exactly): the restart resumed at
    // the database's offsets and offered no row twice.
    assert_eq!(
        runtime.block_on(duplicates_counted(&store)) as usize,
        expected.impressions.div_ceil(7) + expected.outcomes.len(),
        "{failpoint}"
    );
}

#[test]
fn crashes_lose_nothing_and_duplicate_nothing() {
    let database = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(TestDatabase::create());
    // Committed in the database, then the actor fails before committing to Kafka:
    // the group's Kafka offsets are behind, the database's are right.
    survives("sink-after-commit", "2*off->1*return->off", database.url());
    // A panic while decoding a batch: what was gathered but not written is dropped
    // and read again from the database's offsets.
    let dir = tempfile::tempdir().unwrap();
    survives(
        "sink-record",
        "250*off->1*panic->off",
        &format!("sqlite://{}", dir.path().join("sink.db").display()),
    );
}
