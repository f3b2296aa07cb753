//! What every adjoin service stands on: the event schema and its validating decoder,
//! layered configuration, telemetry, the metrics and health server, per-actor metrics,
//! Kafka plumbing (client config, topic admin, the embedded mock cluster) and the
//! supervision that restarts failed or panicking actors.
//!
//! Without the default `runtime` feature only [`schema`] is built, which keeps the
//! fuzz target and offline tools free of librdkafka and actix.

pub mod keyed;
pub mod schema;

#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "runtime")]
pub mod events;
#[cfg(feature = "runtime")]
pub mod kafka;
#[cfg(feature = "runtime")]
pub mod mailbox;
#[cfg(feature = "runtime")]
pub mod metrics;
#[cfg(feature = "runtime")]
pub mod signals;
#[cfg(feature = "runtime")]
pub mod supervision;
#[cfg(feature = "runtime")]
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
