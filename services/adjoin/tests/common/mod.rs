//! Helpers for the system tests: `adjoin` processes with a given environment, each
//! on its own metrics port, and waiting for them to be ready.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adjoin_shared::testing::http_get;

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
