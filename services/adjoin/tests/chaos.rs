//! The chaos run: the whole pipeline as separate processes on a Tansu broker and
//! PostgreSQL (2 × ingest, 2 × join, 1 × sink), raw topics with 4 partitions, a
//! backlog of 200k impressions (with late, duplicate, orphan and malformed records)
//! written before the services start, then live traffic. Meanwhile: a shard
//! panics (failpoint), a join process is killed with SIGKILL and started again, a
//! third join process is added, the sink is killed and started again, and the
//! sink's database connections are terminated. Once traffic stops and the pipeline
//! drains, `adjoin verify` against both runs' truths must find no difference.
//! How long each recovery took is printed (to the real stderr, so CI shows it).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use adjoin_generator::truth::Truth;
use adjoin_shared::metrics::scrape::Scrape;
use adjoin_shared::testing::{http_get, terminate_connections, Tansu, TestDatabase};

use common::{
    adjoin, free_addr, pipeline_env, start_service, stop_gracefully, wait_ready, SESSION_TIMEOUT,
};

/// The panicking shard's process fails once, after this many keyed records.
const PANIC_AFTER_RECORDS: u32 = 40_000;
const BACKLOG_IMPRESSIONS: u32 = 200_000;
const LIVE_DURATION: Duration = Duration::from_secs(70);

/// Writes to the real stderr: the test harness captures `eprintln!`, and the
/// recovery times are worth seeing in every CI log.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "[chaos] {line}");
}

fn environment(tansu: &Tansu, database_url: &str) -> Vec<(String, String)> {
    common::with(
        pipeline_env(tansu),
        &[
            ("ADJOIN__DATABASE__URL", database_url),
            ("ADJOIN__TOPICS__PARTITIONS", "4"),
            ("ADJOIN__INGEST__COMMIT_INTERVAL", "500ms"),
            ("ADJOIN__INGEST__MARKER_INTERVAL", "200ms"),
            ("ADJOIN__JOIN__COMMIT_INTERVAL", "500ms"),
            // Short lateness, so the last waiting clicks are decided soon after
            // traffic stops. The idle timeout stays long enough that no partition
            // with records still to come is taken for idle while the machine is busy.
            ("ADJOIN__WATERMARK__ALLOWED_LATENESS", "5s"),
            ("ADJOIN__WATERMARK__IDLE_TIMEOUT", "20s"),
        ],
    )
}

/// One service process and where its metrics are; killed if the test fails
/// before stopping it.
struct Process {
    name: String,
    child: Child,
    listen: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Services<'a> {
    env: &'a [(String, String)],
    logs: &'a Path,
}

impl Services<'_> {
    fn start(&self, service: &str, name: &str, extra_env: &[(&str, &str)]) -> Process {
        let listen = free_addr();
        let env: Vec<(String, String)> = self
            .env
            .iter()
            .cloned()
            .chain(
                extra_env
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
            )
            .collect();
        let child = start_service(
            &env,
            service,
            listen,
            &self.logs.join(format!("{name}.log")),
        );
        Process {
            name: name.to_owned(),
            child,
            listen,
        }
    }
}

fn scrape(listen: SocketAddr) -> Option<Scrape> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let reply = runtime.block_on(http_get(listen, "/metrics")).ok()?;
    (reply.status == 200).then(|| Scrape::parse(&reply.body))
}

fn ready(listen: SocketAddr) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(http_get(listen, "/readyz"))
        .is_ok_and(|reply| reply.status == 200)
}

/// Polls until `done` holds; returns how long it took since `since`.
fn wait_for(
    what: &str,
    since: Instant,
    within: Duration,
    mut done: impl FnMut() -> bool,
) -> Duration {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return since.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {within:?}");
}

fn metric(process: &Process, name: &str) -> f64 {
    scrape(process.listen).map_or(0.0, |scrape| scrape.sum(name, &[]))
}

fn kill(process: &mut Process) -> Instant {
    process.child.kill().unwrap();
    process.child.wait().unwrap();
    Instant::now()
}

async fn stored_counts(url: &str) -> (i64, i64) {
    use sqlx::Connection;
    let Ok(mut connection) = sqlx::PgConnection::connect(url).await else {
        return (0, 0);
    };
    let counts =
        sqlx::query_as("SELECT (SELECT count(*) FROM impressions), (SELECT count(*) FROM clicks)")
            .fetch_one(&mut connection)
            .await
            .unwrap_or((0, 0));
    let _ = connection.close().await;
    counts
}

fn generate(env: &[(String, String)], args: &[&str]) {
    let output = adjoin(
        env,
        &[&["generate"], args].concat(),
        &[("RUST_LOG", "warn".to_owned())],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "adjoin generate {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    report(String::from_utf8_lossy(&output.stdout).trim());
}

const TRAFFIC: [&str; 8] = [
    "--late-fraction",
    "0.02",
    "--duplicate-fraction",
    "0.01",
    "--orphan-fraction",
    "0.02",
    "--malformed-fraction",
    "0.002",
];

#[test]
fn the_pipeline_survives_kills_panics_and_outages_and_verify_finds_no_difference() {
    let run_started = Instant::now();
    let tansu = Tansu::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(TestDatabase::create());
    let env = environment(&tansu, database.url());
    let logs = tempfile::tempdir().unwrap();
    let services = Services {
        env: &env,
        logs: logs.path(),
    };
    let mut recoveries: BTreeMap<&str, String> = BTreeMap::new();

    // The backlog: event time from 20 minutes ago, written before any service runs.
    let backlog_truth = logs.path().join("backlog-truth.json");
    let start = humantime::format_rfc3339_millis(
        std::time::SystemTime::now() - Duration::from_secs(20 * 60),
    )
    .to_string();
    let count = BACKLOG_IMPRESSIONS.to_string();
    let mut backlog_args = vec![
        "--start", &start, "--count", &count, "--rate", "2000", "--seed", "101", "--truth",
    ];
    backlog_args.push(backlog_truth.to_str().unwrap());
    backlog_args.extend(TRAFFIC);
    generate(&env, &backlog_args);
    report(&format!(
        "backlog written after {:?}",
        run_started.elapsed()
    ));

    let failpoint = format!("join-shard-record={PANIC_AFTER_RECORDS}*off->1*panic->off");
    let ingest_1 = services.start("ingest", "ingest_1", &[]);
    let ingest_2 = services.start("ingest", "ingest_2", &[]);
    let mut join_a = services.start("join", "join_a", &[]);
    let join_b = services.start("join", "join_b", &[("FAILPOINTS", &failpoint)]);
    let mut sink = services.start("sink", "sink", &[]);
    for process in [&ingest_1, &ingest_2, &join_a, &join_b, &sink] {
        wait_ready(process.listen);
    }
    report(&format!("services ready after {:?}", run_started.elapsed()));

    // Live traffic, from a thread; the faults follow on the main thread.
    let live_truth = logs.path().join("live-truth.json");
    let live = {
        let env = env.clone();
        let live_truth = live_truth.clone();
        let duration = format!("{}s", LIVE_DURATION.as_secs());
        std::thread::spawn(move || {
            let mut args = vec![
                "--rate",
                "400",
                "--duration",
                &duration,
                "--seed",
                "202",
                "--truth",
                live_truth.to_str().unwrap(),
            ];
            args.extend(TRAFFIC);
            generate(&env, &args);
        })
    };
    let live_started = Instant::now();
    let at = |seconds: u64| {
        std::thread::sleep(Duration::from_secs(seconds).saturating_sub(live_started.elapsed()));
    };

    // The shard panic comes when join_b has handled its quota of records; its
    // supervisor restarts the shard, which replays from the committed offsets.
    let panicked_at = Instant::now();
    wait_for(
        "the failpoint's shard panic",
        panicked_at,
        Duration::from_secs(120),
        || metric(&join_b, "adjoin_actor_restarts_total") >= 1.0,
    );
    let detected = Instant::now();
    let replays_before = scrape(join_b.listen)
        .map(|scrape| replay_times(&scrape))
        .unwrap_or_default();
    let took = wait_for(
        "the panicked shard's replay",
        detected,
        Duration::from_secs(60),
        || scrape(join_b.listen).is_some_and(|scrape| replay_times(&scrape) != replays_before),
    );
    recoveries.insert(
        "1 shard panic (failpoint)",
        format!(
            "restarted by its supervisor; replay caught up {:.1}s after the restart was seen",
            took.as_secs_f64()
        ),
    );

    at(8);
    let killed = kill(&mut join_a);
    report(&format!(
        "SIGKILL {} at {:?} into live traffic",
        join_a.name,
        live_started.elapsed()
    ));
    // Tansu 0.6 moves a dead member's partitions only at the next membership change
    // after its session ran out (ingest_system.rs); an orchestrator restarting the
    // process provides that change.
    std::thread::sleep((SESSION_TIMEOUT + Duration::from_secs(4)).saturating_sub(killed.elapsed()));
    let join_a2 = services.start("join", "join_a2", &[]);
    let took = wait_for(
        "the restarted join",
        killed,
        Duration::from_secs(90),
        || ready(join_a2.listen) && metric(&join_a2, "adjoin_join_records_total") > 0.0,
    );
    recoveries.insert(
        "2 join SIGKILL + restart",
        format!(
            "replacement assigned and reading {:.1}s after the kill (it was started after the {}s session timeout + 4s)",
            took.as_secs_f64(),
            SESSION_TIMEOUT.as_secs()
        ),
    );

    at(30);
    let added = Instant::now();
    let join_c = services.start("join", "join_c", &[]);
    let took = wait_for("the added join", added, Duration::from_secs(90), || {
        ready(join_c.listen) && metric(&join_c, "adjoin_join_records_total") > 0.0
    });
    recoveries.insert(
        "3 third join added",
        format!(
            "rebalanced, reading its shards {:.1}s after start",
            took.as_secs_f64()
        ),
    );

    at(38);
    let killed = kill(&mut sink);
    report(&format!(
        "SIGKILL sink at {:?} into live traffic",
        live_started.elapsed()
    ));
    std::thread::sleep((SESSION_TIMEOUT + Duration::from_secs(4)).saturating_sub(killed.elapsed()));
    let sink_2 = services.start("sink", "sink_2", &[]);
    let took = wait_for(
        "the restarted sink",
        killed,
        Duration::from_secs(90),
        || metric(&sink_2, "adjoin_sink_commit_seconds_count") > 0.0,
    );
    recoveries.insert(
        "4 sink SIGKILL + restart",
        format!(
            "replacement committing {:.1}s after the kill (started after the session timeout + 4s)",
            took.as_secs_f64()
        ),
    );

    at(58);
    let commits_before = metric(&sink_2, "adjoin_sink_commit_seconds_count");
    let retries_before = metric(&sink_2, "adjoin_sink_retries_total");
    let terminated_at = Instant::now();
    let terminated = runtime.block_on(terminate_connections(database.url(), database.name()));
    let took = wait_for(
        "the sink after its connections went",
        terminated_at,
        Duration::from_secs(90),
        || metric(&sink_2, "adjoin_sink_commit_seconds_count") > commits_before,
    );
    recoveries.insert(
        "5 sink database connections terminated",
        format!(
            "{terminated} connection(s) terminated; committing again after {:.1}s ({} retries)",
            took.as_secs_f64(),
            metric(&sink_2, "adjoin_sink_retries_total") - retries_before
        ),
    );

    live.join().expect("live traffic");
    let traffic_stopped = Instant::now();
    report(&format!(
        "live traffic done after {:?}",
        run_started.elapsed()
    ));

    let truth = Truth::read(&backlog_truth)
        .unwrap()
        .merge(Truth::read(&live_truth).unwrap())
        .unwrap();
    assert!(
        truth.impressions.distinct >= u64::from(BACKLOG_IMPRESSIONS),
        "the backlog alone has {BACKLOG_IMPRESSIONS} impressions: {}",
        truth.impressions.distinct
    );
    for (kind, count) in [
        ("late", truth.clicks.late),
        ("duplicate", truth.clicks.duplicates),
        (
            "no_impression",
            truth
                .clicks
                .outcomes
                .get("no_impression")
                .copied()
                .unwrap_or(0),
        ),
    ] {
        assert!(count > 0, "the traffic has {kind} clicks");
    }
    assert!(
        !truth.malformed.is_empty(),
        "the traffic has malformed records"
    );
    let wanted = (
        truth.impressions.distinct as i64,
        truth.click_outcomes.len() as i64,
    );
    let mut stored = (0, 0);
    let drained = Instant::now() + Duration::from_secs(180);
    while Instant::now() < drained {
        stored = runtime.block_on(stored_counts(database.url()));
        if stored.0 >= wanted.0 && stored.1 >= wanted.1 {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    report(&format!(
        "drained {:.1}s after traffic stopped: {} of {} impressions, {} of {} clicks stored",
        traffic_stopped.elapsed().as_secs_f64(),
        stored.0,
        wanted.0,
        stored.1,
        wanted.1
    ));

    let verify = adjoin(
        &env,
        &[
            "verify",
            "--truth",
            backlog_truth.to_str().unwrap(),
            "--truth",
            live_truth.to_str().unwrap(),
        ],
        &[("RUST_LOG", "warn".to_owned())],
    )
    .output()
    .unwrap();
    let verify_output = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    report("recoveries:");
    for (fault, recovery) in &recoveries {
        report(&format!("  {fault}: {recovery}"));
    }
    report(&format!("adjoin verify:\n{verify_output}"));
    if !verify.status.success() {
        let kept = logs.keep();
        panic!(
            "adjoin verify found differences after the chaos run; service logs kept in {}",
            kept.display()
        );
    }
    let restarts = metric(&join_b, "adjoin_actor_restarts_total");
    assert!(
        restarts >= 1.0,
        "the failpoint's panic was counted: {restarts}"
    );

    let mut remaining = vec![ingest_1, ingest_2, join_b, join_a2, join_c, sink_2];
    for process in &mut remaining {
        stop_gracefully(&mut process.child);
    }
    report(&format!("chaos run passed in {:?}", run_started.elapsed()));
}

/// Each shard's last replay time, as the join reports it.
fn replay_times(scrape: &Scrape) -> Vec<(String, u64)> {
    let mut times: Vec<(String, u64)> = scrape
        .samples
        .iter()
        .filter(|sample| sample.name == "adjoin_join_replay_seconds")
        .map(|sample| {
            (
                sample.label("shard").unwrap_or_default().to_owned(),
                sample.value.to_bits(),
            )
        })
        .collect();
    times.sort();
    times
}
