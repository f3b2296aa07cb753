//! Test support for every crate's integration and system tests: a throwaway
//! PostgreSQL database per test, a Tansu broker process, the embedded mock cluster
//! (see [`crate::kafka::EmbeddedCluster`]) and a minimal HTTP GET for probing
//! endpoints. Enabled by the `testing` feature; never part of a release build.
//!
//! Failures panic with a message saying how to fix the environment: a system test
//! that cannot reach its stack fails, it is never skipped.

mod postgres;
mod tansu;
mod tls;
mod topics;

pub use crate::metrics::{http_get, HttpReply};
pub use postgres::{terminate_connections, TestDatabase};
pub use tansu::Tansu;
pub use tls::TlsFront;
pub use topics::{embedded_endpoint, read_until, Written};

/// Returns a name unique within this machine, for databases, topics and groups.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Sums the samples of a metric in a Prometheus text exposition whose labels
/// include all of `labels` (0 when there is none).
pub fn metric(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    crate::metrics::scrape::Scrape::parse(exposition).sum(name, labels)
}
