//! The database going away under a running sink: its connections terminated
//! (`pg_terminate_backend`) again and again, then the server stopped and started. The sink retries with
//! capped backoff, reports not ready meanwhile, resumes by itself, and the
//! database ends up exact: nothing lost, nothing counted twice.
//!
//! The stop and start need the local cluster that `scripts/test-stack.sh` manages
//! (`pg_ctlcluster`); it runs in its own test binary, so no other test's database
//! goes away under it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use adjoin_shared::metrics::{Health, Metrics};
use adjoin_shared::testing::{embedded_endpoint, terminate_connections, TestDatabase};
use adjoin_sink::store::Store;
use adjoin_sink::SinkService;

use common::*;

/// Runs `pg_ctlcluster ACTION` on the local cluster (the newest version installed).
fn local_cluster(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .max_by_key(|name| name.parse::<u32>().unwrap_or(0))
        })
        .expect(
            "this test stops and starts the local PostgreSQL cluster (pg_ctlcluster); \
             run scripts/test-stack.sh install to set it up",
        );
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(
        status.success(),
        "pg_ctlcluster {version} main {action} failed"
    );
}

struct StartOnDrop;

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        local_cluster("start");
    }
}

#[test]
fn the_sink_rides_out_terminated_connections_and_a_server_restart() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(TestDatabase::create());
    let endpoint = embedded_endpoint();
    let config = config(&endpoint, database.url());
    let metrics = Metrics::new();
    let health = Health::new();
    let service = SinkService::start(&config, &endpoint, &metrics, &health).unwrap();
    let writer = Writer::new(&endpoint, &config);
    let store = runtime.block_on(Store::connect(database.url(), 1)).unwrap();
    let mut expected = Expected::default();

    // Connections terminated again and again while batches flow: some die idle,
    // some in the middle of a batch's transaction.
    let (url, name) = (database.url().to_owned(), database.name().to_owned());
    let killer = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut terminated = 0;
        while Instant::now() < deadline {
            terminated += runtime.block_on(terminate_connections(&url, &name));
            std::thread::sleep(Duration::from_millis(20));
        }
        terminated
    });
    for part in 0..4_u64 {
        writer.scenario_part(part * 100..part * 100 + 100, &mut expected);
        writer.flush();
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(killer.join().unwrap() >= 1, "connections were terminated");
    runtime.block_on(wait_for(&store, &expected));

    // The server stops in the middle of the run and comes back a while later.
    local_cluster("stop");
    // Started again even if an assertion below fails, for the tests that follow.
    let restart_guard = StartOnDrop;
    writer.scenario_part(400..600, &mut expected);
    writer.flush();
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&metrics.encode(), "adjoin_sink_retries_total", &[]) < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the sink never noticed the server was down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let unready_while_down = !health.report().ready;
    drop(restart_guard);
    writer.scenario_part(600..800, &mut expected);
    writer.flush();
    let store = runtime.block_on(Store::connect(database.url(), 1)).unwrap();
    runtime.block_on(wait_for(&store, &expected));
    std::thread::sleep(Duration::from_millis(300));
    let ready_again = health.report().ready;
    service.shutdown();

    assert_eq!(
        runtime.block_on(count(&store, "impressions")) as usize,
        expected.impressions
    );
    assert_eq!(runtime.block_on(stored_outcomes(&store)), expected.outcomes);
    assert_eq!(runtime.block_on(rollup_mismatches(&store)), 0);
    // At least the scenario's own repeated deliveries: a connection terminated
    // after the server committed but before the sink saw the reply makes it write
    // that part again, and its rows then count as duplicates (facts and rollups
    // stay exact, as checked above). crash.rs checks the exact count.
    assert!(
        runtime.block_on(duplicates_counted(&store)) as usize
            >= 800_usize.div_ceil(7) + expected.outcomes.len(),
        "every repeated delivery was counted"
    );
    assert!(
        unready_while_down,
        "/readyz says not ready while the server is down"
    );
    assert!(ready_again, "/readyz ready again once writes succeed");
}
