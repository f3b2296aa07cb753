//! Helpers for the system tests: `adjoin` processes with a given environment, each
//! on its own metrics port, and waiting for them to be ready.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adjoin_shared::testing::{http_get, unique_name, Tansu};

/// A killed member is noticed after this rather than after Kafka's 45 s. Not less:
/// Tansu refreshes a member's session only on heartbeats, not during its 3 s joins.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// What every system test's pipeline starts from: the broker, fresh names for
/// every topic and consumer group, the short session timeout, logs at info.
/// Tests append their own settings; a later entry for a variable wins.
pub fn pipeline_env(tansu: &Tansu) -> Vec<(String, String)> {
    [
        ("ADJOIN__KAFKA__BROKERS", tansu.bootstrap_servers()),
        (
            "ADJOIN__TOPICS__IMPRESSIONS",
            unique_name("raw_impressions"),
        ),
        ("ADJOIN__TOPICS__CLICKS", unique_name("raw_clicks")),
        (
            "ADJOIN__INGEST__IMPRESSIONS_KEYED_TOPIC",
            unique_name("impressions_keyed"),
        ),
        (
            "ADJOIN__INGEST__CLICKS_KEYED_TOPIC",
            unique_name("clicks_keyed"),
        ),
        ("ADJOIN__INGEST__GROUP_ID", unique_name("ingest")),
        (
            "ADJOIN__JOIN__OUTCOMES_TOPIC",
            unique_name("click_outcomes"),
        ),
        ("ADJOIN__JOIN__GROUP_ID", unique_name("join")),
        ("ADJOIN__SINK__GROUP_ID", unique_name("sink")),
        ("ADJOIN__SINK__DLQ_TOPIC", unique_name("sink_dlq")),
        (
            "ADJOIN__KAFKA__OPTIONS__SESSION_TIMEOUT_MS",
            SESSION_TIMEOUT.as_millis().to_string(),
        ),
        (
            "ADJOIN__KAFKA__OPTIONS__HEARTBEAT_INTERVAL_MS",
            "1000".to_owned(),
        ),
        ("RUST_LOG", "info,rdkafka=warn".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// Appends `settings` to `env`.
pub fn with(mut env: Vec<(String, String)>, settings: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(
        settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    env
}

/// The value `env` gives `name` (its last entry, as a process would see it).
pub fn env_value<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    env.iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("{name} is not in the environment"))
}

/// An `adjoin` command with exactly `env` as its `ADJOIN*` environment (the
/// caller's own `ADJOIN*` variables removed) plus `extra_env`.
pub fn adjoin(env: &[(String, String)], args: &[&str], extra_env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_adjoin"));
    command.args(args).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("ADJOIN") {
            command.env_remove(name);
        }
    }
    command.envs(
        env.iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    command.envs(
        extra_env
            .iter()
            .map(|(name, value)| (*name, value.as_str())),
    );
    command
}

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts `adjoin <service>` with its metrics on `listen`, its log in `log`.
pub fn start_service(
    env: &[(String, String)],
    service: &str,
    listen: SocketAddr,
    log: &Path,
) -> Child {
    let log_file = std::fs::File::create(log).unwrap();
    adjoin(
        env,
        &[service],
        &[("ADJOIN__METRICS__LISTEN", listen.to_string())],
    )
    .stdout(Stdio::null())
    .stderr(log_file)
    .spawn()
    .unwrap()
}

/// Waits until the service on `listen` answers `/readyz` with 200.
pub fn wait_ready(listen: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let ready = runtime.block_on(http_get(listen, "/readyz"));
        if ready.is_ok_and(|reply| reply.status == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the service on {listen} did not become ready");
}

/// Sends SIGTERM and expects a clean exit.
pub fn stop_gracefully(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status}");
}
