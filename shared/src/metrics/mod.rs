//! Prometheus metrics and health: a registry every service registers into, the
//! standard per-actor series, readiness checks, and the HTTP server that exposes
//! `/metrics`, `/healthz` and `/readyz`.
//!
//! Names follow `adjoin_<subsystem>_<name>_<unit>`; counters are registered without
//! `_total` because the encoder appends it. Labels are bounded codes, never ids.

mod actor;
mod health;
mod http;
mod lag;
pub mod scrape;
mod server;

use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

pub use actor::{ActorMetrics, HandlerTimer};
pub use health::{Health, ReadinessCheck, ReadinessReport};
pub use http::{http_get, HttpReply};
pub use lag::ConsumerLag;
pub use server::{MetricsServer, MetricsServerError};

use actor::ActorFamilies;
use lag::LagLabels;

/// A process's metrics registry. Clones share it; in `adjoin demo` every service
/// registers into the same one.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    actors: Arc<ActorFamilies>,
    consumer_lag: Family<LagLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register(
            "adjoin_build_info",
            "adjoin version running in this process (always 1)",
            build_info,
        );
        let actors = ActorFamilies::register(&mut registry);
        // Here rather than per service: in `adjoin demo` the services share one
        // registry, and a name registers once.
        let consumer_lag = Family::<LagLabels, Gauge>::default();
        registry.register(
            "adjoin_consumer_lag_records",
            "Records between a consumer's position and the end of a partition it reads, \
             from librdkafka's statistics (every 5 s)",
            consumer_lag.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            actors: Arc::new(actors),
            consumer_lag,
        }
    }

    /// Registers a service's own metric. Register each name once per process.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// Returns the standard series of one actor (mailbox depth, messages handled,
    /// handler time, restarts), labelled with its service and actor name.
    pub fn actor(&self, service: &str, actor: &str) -> ActorMetrics {
        ActorMetrics::new(&self.actors, service, actor)
    }

    /// Returns the consumer-lag series of one consumer of `service`.
    pub fn consumer_lag(&self, service: &str) -> ConsumerLag {
        ConsumerLag::new(&self.consumer_lag, service)
    }

    /// Renders every metric in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.lock());
        text
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while registering leaves the registry usable; keep serving.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
