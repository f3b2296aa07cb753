use std::time::Duration;

use crate::metrics::ActorMetrics;

/// A supervisor restarted an actor after a failure and its backoff.
pub struct ActorRestarted<'a> {
    pub metrics: &'a ActorMetrics,
    pub reason: &'a str,
    pub num_consecutive_failures: u32,
    pub backoff: Duration,
}

impl ActorRestarted<'_> {
    pub fn emit(self) {
        tracing::warn!(
            service = self.metrics.service(),
            actor = self.metrics.actor(),
            reason = self.reason,
            consecutive_failures = self.num_consecutive_failures,
            backoff_ms = self.backoff.as_millis() as u64,
            "restarted actor"
        );
        self.metrics.record_restart(self.reason);
    }
}

/// A handler panicked; its supervisor caught the panic.
pub struct ActorPanicked<'a> {
    pub metrics: &'a ActorMetrics,
    pub message: &'a str,
}

impl ActorPanicked<'_> {
    /// Logs only: the restart that follows is what is counted.
    pub fn emit(self) {
        tracing::error!(
            service = self.metrics.service(),
            actor = self.metrics.actor(),
            panic = self.message,
            "actor panicked"
        );
    }
}
