use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};

use crate::kafka::KafkaEndpoint;

/// A Tansu broker process with in-memory storage on a free loopback port, for
/// system tests against a real Kafka-protocol broker. Killed when dropped.
pub struct Tansu {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Tansu {
    /// Finds the `tansu` binary as `scripts/test-stack.sh` does: `TANSU_BIN`, then
    /// `~/.cargo/bin` (where the script installs it), then `PATH`.
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("TANSU_BIN").map(PathBuf::from) {
            return path.is_file().then_some(path);
        }
        let in_cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
            .map(|home| home.join("bin").join("tansu"));
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join("tansu"));
        in_cargo_home
            .into_iter()
            .chain(on_path)
            .find(|path| path.is_file())
    }

    /// Starts a broker and waits until it answers metadata requests.
    pub fn start() -> Self {
        Self::start_advertising(None)
    }

    /// Starts a broker that tells clients, in metadata, to connect to
    /// `advertised` (`host:port`) instead of its own listener: a TLS front
    /// ([`super::TlsFront`]) or another proxy in between.
    pub fn start_advertising(advertised: Option<&str>) -> Self {
        let binary = Self::binary().unwrap_or_else(|| {
            panic!(
                "the tansu broker is not installed; run `scripts/test-stack.sh install` \
                 (cargo install tansu --locked --version 0.6.0 --features dynostore,postgres) \
                 or set TANSU_BIN"
            )
        });
        // The free port is only free when asked; if another process takes it first,
        // Tansu exits on the bind error and the next attempt uses another port.
        const ATTEMPTS: usize = 3;
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Self::start_on_free_port(&binary, advertised) {
                Ok(tansu) => return tansu,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "tansu did not start in {ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    fn start_on_free_port(binary: &Path, advertised: Option<&str>) -> Result<Self, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let url = format!("tcp://{addr}");
        let advertised_url = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
        let log_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let log_path = log_dir.path().join("tansu.log");
        let log = std::fs::File::create(&log_path).map_err(|error| error.to_string())?;
        let log_for_stdout = log.try_clone().map_err(|error| error.to_string())?;
        let child = Command::new(binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised_url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            // Tansu reads these from the environment too; keep a caller's from leaking in.
            .env_remove("CLUSTER_ID")
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let mut tansu = Self {
            child,
            addr,
            log_path,
            _log_dir: log_dir,
        };
        tansu.wait_until_ready(Duration::from_secs(30))?;
        Ok(tansu)
    }

    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    pub fn endpoint(&self) -> KafkaEndpoint {
        KafkaEndpoint::new(self.bootstrap_servers())
    }

    /// Returns what the broker logged so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn wait_until_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.exited() {
                return Err(format!(
                    "tansu exited with {status} before listening:\n{}",
                    self.log()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "tansu did not listen on {} within {limit:?}:\n{}",
                    self.addr,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let producer: BaseProducer = self
            .endpoint()
            .client_config()
            .create()
            .map_err(|error| format!("a producer for the readiness probe: {error}"))?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let probed = producer.client().fetch_metadata(None, remaining);
        // Whatever answered, it must have been our broker: one that lost the port
        // race has exited by now.
        if let Some(status) = self.exited() {
            return Err(format!(
                "tansu exited with {status}; {} belongs to another process:\n{}",
                self.addr,
                self.log()
            ));
        }
        probed.map(|_| ()).map_err(|error| {
            format!(
                "tansu on {} does not answer metadata requests ({error}):\n{}",
                self.addr,
                self.log()
            )
        })
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks the kernel for a free port; see [`Tansu::start`] for the race this leaves.
pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
