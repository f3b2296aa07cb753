//! `adjoin demo`: in a fresh directory with neither `kafka.brokers` nor
//! `database.url` set, rows arrive in the SQLite file within a minute, the summary
//! says so, and Ctrl-C stops it cleanly; given brokers (Tansu) and PostgreSQL, it
//! uses them. The rows it leaves must be consistent: rollups equal the facts.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use adjoin_shared::testing::{read_until, unique_name, Tansu, TestDatabase};
use adjoin_sink::store::Store;

use common::{adjoin, free_addr};

/// Starts the demo in `dir` with exactly `env`; its stdout lines arrive on the
/// returned channel.
fn start_demo(
    dir: &std::path::Path,
    env: &[(String, String)],
    args: &[&str],
) -> (Child, mpsc::Receiver<String>) {
    let mut child = adjoin(env, &[&["demo"], args].concat(), &[])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("demo| {line}");
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("demo stderr| {line}");
        }
    });
    (child, lines_rx)
}

/// Reads summary lines until one reports stored impressions and clicks; returns
/// everything read so far.
fn wait_for_rows(lines: &mpsc::Receiver<String>, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = lines.recv_timeout(left) else {
            break;
        };
        let rows = stored_counts(&line);
        seen.push(line);
        if rows.is_some_and(|(impressions, clicks)| impressions > 0 && clicks > 0) {
            return seen;
        }
    }
    panic!(
        "no stored impressions and clicks reported within {within:?}:\n{}",
        seen.join("\n")
    );
}

/// `stored: 1234 impressions, 37 clicks (...)` → (1234, 37).
fn stored_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.split("stored: ").nth(1)?;
    let mut words = rest.split_whitespace();
    let impressions = words.next()?.parse().ok()?;
    let clicks = words.nth(1)?.parse().ok()?;
    Some((impressions, clicks))
}

fn rest_of_output(lines: &mpsc::Receiver<String>) -> String {
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) {
        rest.push(line);
    }
    rest.join("\n")
}

/// Rows in the database and whether the rollups equal the facts.
fn check_database(url: &str) -> (i64, i64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::connect(url, 1).await.unwrap();
        for (rollup, mismatches) in store.rollup_mismatches().await.unwrap() {
            assert_eq!(mismatches, 0, "{rollup} differs from the fact tables");
        }
        let impressions = store.impression_ids().await.unwrap().len() as i64;
        let clicks = store.click_outcomes().await.unwrap().len() as i64;
        (impressions, clicks)
    })
}

#[test]
fn demo_runs_with_no_broker_or_database_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![(
        "ADJOIN__METRICS__LISTEN".to_owned(),
        free_addr().to_string(),
    )];
    let started = Instant::now();
    let (mut child, lines) = start_demo(dir.path(), &env, &["--rate", "300", "--every", "1s"]);
    let seen = wait_for_rows(&lines, Duration::from_secs(60));
    eprintln!("rows reported after {:?}", started.elapsed());
    let banner = seen.join("\n");
    assert!(banner.contains("embedded mock cluster"), "{banner}");
    assert!(banner.contains("database  sqlite://adjoin.db"), "{banner}");
    assert!(banner.contains("CTR "), "{banner}");

    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let tail = rest_of_output(&lines);
    assert!(status.success(), "Ctrl-C stops cleanly: {status}\n{tail}");
    assert!(tail.contains("stopping (Ctrl-C)"), "{tail}");
    assert!(tail.contains("sqlite3 adjoin.db"), "{tail}");

    let database = dir.path().join("adjoin.db");
    assert!(database.exists(), "the default database is adjoin.db here");
    let (impressions, clicks) = check_database(&format!("sqlite://{}", database.display()));
    assert!(
        impressions > 0 && clicks > 0,
        "{impressions} impressions, {clicks} clicks"
    );
}

#[test]
fn demo_uses_the_brokers_and_database_it_is_given() {
    let tansu = Tansu::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(TestDatabase::create());
    let dir = tempfile::tempdir().unwrap();
    let impressions_topic = unique_name("demo_impressions");
    let env: Vec<(String, String)> = [
        ("ADJOIN__METRICS__LISTEN", free_addr().to_string()),
        ("ADJOIN__KAFKA__BROKERS", tansu.bootstrap_servers()),
        ("ADJOIN__DATABASE__URL", database.url().to_owned()),
        ("ADJOIN__TOPICS__IMPRESSIONS", impressions_topic.clone()),
        ("ADJOIN__TOPICS__CLICKS", unique_name("demo_clicks")),
        (
            "ADJOIN__INGEST__IMPRESSIONS_KEYED_TOPIC",
            unique_name("demo_impressions_keyed"),
        ),
        (
            "ADJOIN__INGEST__CLICKS_KEYED_TOPIC",
            unique_name("demo_clicks_keyed"),
        ),
        ("ADJOIN__JOIN__OUTCOMES_TOPIC", unique_name("demo_outcomes")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let (mut child, lines) = start_demo(
        dir.path(),
        &env,
        &["--rate", "300", "--every", "1s", "--duration", "25s"],
    );
    let seen = wait_for_rows(&lines, Duration::from_secs(60)).join("\n");
    assert!(
        seen.contains(&format!("kafka     {}", tansu.bootstrap_servers())),
        "{seen}"
    );
    assert!(seen.contains("database  postgres://"), "{seen}");
    let status = child.wait().unwrap();
    let tail = rest_of_output(&lines);
    assert!(
        status.success(),
        "--duration ends the demo cleanly: {status}\n{tail}"
    );
    assert!(tail.contains("stopping (--duration reached)"), "{tail}");
    assert!(tail.contains("psql"), "{tail}");
    assert!(
        !dir.path().join("adjoin.db").exists(),
        "no SQLite file when database.url is given"
    );

    let (impressions, clicks) = check_database(database.url());
    assert!(
        impressions > 0 && clicks > 0,
        "{impressions} impressions, {clicks} clicks"
    );
    // The raw impressions went through the broker it was given.
    let written = read_until(&tansu.endpoint(), &[&impressions_topic], |written| {
        written.len() as i64 >= impressions
    });
    assert!(written.len() as i64 >= impressions);
}
