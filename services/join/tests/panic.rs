//! A shard that panics mid-stream (a failpoint) is restarted by its supervisor,
//! rewinds to its committed offsets and replays: every click still gets its
//! outcome, any outcome emitted again is the same, and the restart is counted.
//! Alone in its test binary: failpoints are process-wide.

mod common;

use std::collections::BTreeMap;

use adjoin_join::JoinService;
use adjoin_shared::metrics::{Health, Metrics};
use adjoin_shared::testing::embedded_endpoint;

use common::*;

#[test]
fn a_panicking_shard_replays_and_loses_nothing() {
    let endpoint = embedded_endpoint();
    let config = config(&endpoint, 4);
    let metrics = Metrics::new();
    let health = Health::new();
    // Records of all shards pass the failpoint: the 700th one, whichever shard
    // reads it, panics; later ones pass.
    fail::cfg("join-shard-record", "700*off->1*panic->off").unwrap();
    let service = JoinService::start(&config, &endpoint, &metrics, &health).unwrap();
    let writer = KeyedWriter::new(&endpoint, &config);
    let expected = write_scenario(&writer, 600);

    let outcomes = read_outcomes(&endpoint, &config, &expected);
    fail::remove("join-shard-record");
    assert_eq!(first_outcomes(&outcomes), expected);
    let mut by_click: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for record in &outcomes {
        let value = record.json();
        by_click
            .entry(value["click_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(value);
    }
    for (click_id, values) in &by_click {
        assert!(
            values.windows(2).all(|pair| pair[0] == pair[1]),
            "{click_id}: a replayed outcome equals the first: {values:?}"
        );
    }
    let exposition = metrics.encode();
    assert_eq!(
        metric(
            &exposition,
            "adjoin_actor_restarts_total",
            &[("service", "join"), ("reason", "panic")]
        ),
        1.0,
        "{exposition}"
    );
    assert_eq!(
        metric(
            &exposition,
            "adjoin_join_handovers_total",
            &[("event", "rewound")]
        ),
        1.0
    );
    service.shutdown();
}
