use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
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
    /// Finds the `tansu` binary: `TANSU_BIN`, then `PATH`, then `~/.cargo/bin`.
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("TANSU_BIN").map(PathBuf::from) {
            return path.is_file().then_some(path);
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join("tansu"));
        let in_cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
            .map(|home| home.join("bin").join("tansu"));
        on_path.chain(in_cargo_home).find(|path| path.is_file())
    }

    /// Starts a broker and waits until it answers metadata requests.
    pub fn start() -> Self {
        let binary = Self::binary().unwrap_or_else(|| {
            panic!(
                "the tansu broker is not installed; run `scripts/test-stack.sh install` \
                 (cargo install tansu --locked --version 0.6.0 --features dynostore,postgres) \
                 or set TANSU_BIN"
            )
        });
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let url = format!("tcp://{addr}");
        let log_dir = tempfile::tempdir().expect("temporary directory for the tansu log");
        let log_path = log_dir.path().join("tansu.log");
        let log = std::fs::File::create(&log_path).expect("tansu log file");
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            // Tansu reads these from the environment too; keep a caller's from leaking in.
            .env_remove("CLUSTER_ID")
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("tansu log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut tansu = Self {
            child,
            addr,
            log_path,
            _log_dir: log_dir,
        };
        tansu.wait_until_ready(Duration::from_secs(30));
        tansu
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

    fn wait_until_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tansu exited with {status} before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within {limit:?}:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let producer: BaseProducer = self
            .endpoint()
            .client_config()
            .create()
            .expect("a producer for the readiness probe");
        let remaining = deadline.saturating_duration_since(Instant::now());
        if let Err(error) = producer.client().fetch_metadata(None, remaining) {
            panic!(
                "tansu on {} does not answer metadata requests ({error}):\n{}",
                self.addr,
                self.log()
            );
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks the kernel for a free port. Another process could take it before Tansu
/// binds; the readiness check would then fail loudly rather than test the wrong thing.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
