//! The metrics server: `/metrics` serves registered counters and actor series,
//! `/healthz` answers, `/readyz` flips with its checks.

use std::net::SocketAddr;

use adjoin_shared::metrics::{Health, Metrics, MetricsServer};
use adjoin_shared::testing::http_get;
use prometheus_client::metrics::counter::Counter;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[actix_rt::test]
async fn serves_a_counter_and_actor_series() {
    let metrics = Metrics::new();
    let records = Counter::<u64>::default();
    metrics.register(
        "adjoin_test_records",
        "Records seen by the test",
        records.clone(),
    );
    records.inc_by(41);
    records.inc();
    let actor = metrics.actor("ingest", "impressions_consumer");
    actor.message_enqueued();
    actor.message_enqueued();
    drop(actor.handling());

    let server = MetricsServer::start(any_port(), metrics.clone(), Health::new()).unwrap();
    let reply = http_get(server.local_addr(), "/metrics").await.unwrap();
    assert_eq!(reply.status, 200);
    let body = reply.body;
    assert!(body.contains("adjoin_test_records_total 42"), "{body}");
    assert!(
        body.contains(
            r#"adjoin_actor_mailbox_depth{service="ingest",actor="impressions_consumer"} 1"#
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"adjoin_actor_messages_handled_total{service="ingest",actor="impressions_consumer"} 1"#),
        "{body}"
    );
    assert!(
        body.contains("adjoin_actor_handler_duration_seconds_count"),
        "{body}"
    );
    // Restart series exist at 0 before any restart, for dashboards' increase().
    for reason in ["panic", "error"] {
        assert!(
            body.contains(&format!(
                r#"adjoin_actor_restarts_total{{service="ingest",actor="impressions_consumer",reason="{reason}"}} 0"#
            )),
            "{body}"
        );
    }
    assert!(body.contains(r#"adjoin_build_info{version=""#), "{body}");
    assert!(
        body.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );

    let not_found = http_get(server.local_addr(), "/nope").await.unwrap();
    assert_eq!(not_found.status, 404);
    server.stop().await;
}

#[actix_rt::test]
async fn readyz_flips_with_its_checks_and_healthz_stays_up() {
    let health = Health::new();
    let assigned = health.check("partitions_assigned");
    let connected = health.check("producer_connected");
    let server = MetricsServer::start(any_port(), Metrics::new(), health).unwrap();
    let addr = server.local_addr();

    let reply = http_get(addr, "/readyz").await.unwrap();
    assert_eq!(reply.status, 503);
    assert!(reply.body.contains("partitions_assigned"), "{}", reply.body);
    assert_eq!(http_get(addr, "/healthz").await.unwrap().status, 200);

    assigned.set(true);
    let reply = http_get(addr, "/readyz").await.unwrap();
    assert_eq!(reply.status, 503);
    assert!(
        !reply.body.contains("partitions_assigned"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("producer_connected"), "{}", reply.body);

    connected.set(true);
    assert_eq!(http_get(addr, "/readyz").await.unwrap().status, 200);

    assigned.set(false);
    assert_eq!(http_get(addr, "/readyz").await.unwrap().status, 503);
    server.stop().await;
}

#[actix_rt::test]
async fn a_taken_port_is_a_clear_error() {
    let first = MetricsServer::start(any_port(), Metrics::new(), Health::new()).unwrap();
    let error = match MetricsServer::start(first.local_addr(), Metrics::new(), Health::new()) {
        Ok(_) => panic!("binding a taken port must fail"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains(&first.local_addr().to_string()), "{error}");
    assert!(error.contains("metrics.listen"), "{error}");
    first.stop().await;
}

#[test]
fn probes_are_answered_while_the_starting_thread_is_busy() {
    // A service starts the server, then blocks its thread for a long start-up
    // (topics, migrations, a broker that is down) without running its actix
    // system: /healthz must answer all the same.
    let system = actix_rt::System::new();
    let server = system
        .block_on(async { MetricsServer::start(any_port(), Metrics::new(), Health::new()) })
        .unwrap();
    let addr = server.local_addr();
    let probe = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                http_get(addr, "/healthz"),
            )
            .await
        })
    });
    // The starting thread is busy until the probe has its answer (or gave up).
    let reply = probe.join().unwrap();
    let reply = reply.expect("/healthz did not answer within 5 s").unwrap();
    assert_eq!(reply.status, 200);
    system.block_on(server.stop());
}
