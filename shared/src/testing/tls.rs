use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::kafka::KafkaEndpoint;

use super::tansu::{free_port, Tansu};

/// A Tansu broker behind TLS: `socat` terminates TLS on a loopback port with a
/// certificate for `localhost` signed by a throwaway CA, and forwards to Tansu,
/// which advertises the TLS port, so every connection a client makes (bootstrap,
/// then the advertised broker) is TLS. Tansu 0.6.0 cannot serve TLS itself (its
/// `--cert` and `--key` flags exclude each other). Stopped when dropped.
pub struct TlsFront {
    proxy: Child,
    port: u16,
    ca: PathBuf,
    _tansu: Tansu,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    /// Needs the `openssl` and `socat` commands (`scripts/test-stack.sh install`).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = make_certificates(dir.path());
        let port = free_port();
        let tansu = Tansu::start_advertising(Some(&format!("localhost:{port}")));
        let cert = dir.path().join("server.pem");
        let key = dir.path().join("server.key");
        let proxy = Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                cert.display(),
                key.display()
            ))
            .arg(format!("TCP:{}", tansu.bootstrap_servers()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start socat ({error}); run `scripts/test-stack.sh install`")
            });
        let mut front = Self {
            proxy,
            port,
            ca,
            _tansu: tansu,
            _dir: dir,
        };
        front.wait_until_listening(Duration::from_secs(10));
        front
    }

    /// An endpoint that speaks TLS to the front and trusts the throwaway CA.
    pub fn endpoint(&self) -> KafkaEndpoint {
        KafkaEndpoint::new(format!("localhost:{}", self.port))
            .with_option("security.protocol", "ssl")
            .with_option("ssl.ca.location", &self.ca.display().to_string())
            // socat listens on 127.0.0.1 only; localhost may resolve to ::1 first.
            .with_option("broker.address.family", "v4")
    }

    /// The CA certificate that signed the front's certificate.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn wait_until_listening(&mut self, limit: Duration) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + limit;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.proxy.try_wait() {
                panic!("socat exited with {status} before listening on {addr}");
            }
            assert!(
                Instant::now() < deadline,
                "socat did not listen on {addr} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// A CA and a server certificate for `localhost` signed by it, in `dir`; returns
/// the CA certificate's path.
fn make_certificates(dir: &Path) -> PathBuf {
    let path = |name: &str| dir.join(name).display().to_string();
    let (ca_key, ca, key, csr, cert, san) = (
        path("ca.key"),
        path("ca.pem"),
        path("server.key"),
        path("server.csr"),
        path("server.pem"),
        path("san.cnf"),
    );
    std::fs::write(&san, "subjectAltName=DNS:localhost\n").expect("writing san.cnf");
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=adjoin test CA",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-CAcreateserial",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-extfile",
            &san,
            "-out",
            &cert,
        ],
    ];
    for args in steps {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run openssl ({error}); install openssl"));
        assert!(
            output.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    PathBuf::from(ca)
}
