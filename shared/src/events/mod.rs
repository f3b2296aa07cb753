//! Telemetry events: one struct per thing worth logging and counting, whose
//! `emit()` does both so the log line and the metric never drift apart.

mod actor;

pub use actor::{ActorPanicked, ActorRestarted};
