use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ActorLabels {
    service: String,
    actor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RestartLabels {
    service: String,
    actor: String,
    reason: String,
}

fn handler_histogram() -> Histogram {
    // 10 µs to ~2.6 s: handlers are meant to stay well under a millisecond, and the
    // top buckets catch the ones that block.
    Histogram::new(exponential_buckets(0.000_01, 4.0, 10))
}

pub(crate) struct ActorFamilies {
    mailbox_depth: Family<ActorLabels, Gauge>,
    messages_handled: Family<ActorLabels, Counter>,
    handler_seconds: Family<ActorLabels, Histogram, fn() -> Histogram>,
    restarts: Family<RestartLabels, Counter>,
    blocked_seconds: Family<ActorLabels, Counter<f64>>,
}

impl ActorFamilies {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let families = Self {
            mailbox_depth: Family::default(),
            messages_handled: Family::default(),
            handler_seconds: Family::new_with_constructor(handler_histogram),
            restarts: Family::default(),
            blocked_seconds: Family::default(),
        };
        registry.register(
            "adjoin_actor_mailbox_depth",
            "Messages sent to the actor and not yet handled",
            families.mailbox_depth.clone(),
        );
        registry.register(
            "adjoin_actor_messages_handled",
            "Messages the actor has handled",
            families.messages_handled.clone(),
        );
        registry.register(
            "adjoin_actor_handler_duration_seconds",
            "Time the actor spent in one message handler",
            families.handler_seconds.clone(),
        );
        registry.register(
            "adjoin_actor_restarts",
            "Restarts of the actor by its supervisor, by reason (panic, error)",
            families.restarts.clone(),
        );
        registry.register(
            "adjoin_actor_blocked_seconds",
            "Time the actor spent waiting for a full downstream mailbox or queue (backpressure)",
            families.blocked_seconds.clone(),
        );
        families
    }
}

/// The standard series of one actor. Cheap to clone; all clones update the same
/// series.
#[derive(Clone)]
pub struct ActorMetrics {
    service: String,
    actor: String,
    mailbox_depth: Gauge,
    messages_handled: Counter,
    handler_seconds: Histogram,
    blocked_seconds: Counter<f64>,
    restarts: Family<RestartLabels, Counter>,
}

impl ActorMetrics {
    pub(crate) fn new(families: &ActorFamilies, service: &str, actor: &str) -> Self {
        let labels = ActorLabels {
            service: service.to_owned(),
            actor: actor.to_owned(),
        };
        let metrics = Self {
            service: service.to_owned(),
            actor: actor.to_owned(),
            mailbox_depth: families.mailbox_depth.get_or_create(&labels).clone(),
            messages_handled: families.messages_handled.get_or_create(&labels).clone(),
            handler_seconds: families.handler_seconds.get_or_create(&labels).clone(),
            blocked_seconds: families.blocked_seconds.get_or_create(&labels).clone(),
            restarts: families.restarts.clone(),
        };
        // Restart series exist from the start at 0, so `increase()` on a
        // dashboard sees the first restart rather than a series appearing at 1.
        for reason in ["panic", "error"] {
            metrics.restart_counter(reason);
        }
        metrics
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Counts a message sent to the actor. actix does not expose its queue length,
    /// so depth is counted at both ends: every send paired with one `handling`.
    pub fn message_enqueued(&self) {
        self.mailbox_depth.inc();
    }

    /// Marks the start of a handler: takes the message off the depth gauge and
    /// returns a timer that records the handler's time and counts the message when
    /// dropped.
    pub fn handling(&self) -> HandlerTimer<'_> {
        self.mailbox_depth.dec();
        HandlerTimer {
            metrics: self,
            started: Instant::now(),
        }
    }

    pub fn record_blocked(&self, seconds: f64) {
        self.blocked_seconds.inc_by(seconds);
    }

    pub fn record_restart(&self, reason: &str) {
        self.restart_counter(reason).inc();
    }

    pub fn restarts(&self, reason: &str) -> u64 {
        self.restart_counter(reason).get()
    }

    fn restart_counter(&self, reason: &str) -> Counter {
        self.restarts
            .get_or_create(&RestartLabels {
                service: self.service.clone(),
                actor: self.actor.clone(),
                reason: reason.to_owned(),
            })
            .clone()
    }

    pub fn messages_handled(&self) -> u64 {
        self.messages_handled.get()
    }

    pub fn mailbox_depth(&self) -> i64 {
        self.mailbox_depth.get()
    }

    /// A mailbox emptied by a restart or shutdown no longer holds what was counted.
    pub fn reset_mailbox_depth(&self) {
        self.mailbox_depth.set(0);
    }
}

/// Records one handler's duration and counts the message when dropped.
pub struct HandlerTimer<'a> {
    metrics: &'a ActorMetrics,
    started: Instant,
}

impl Drop for HandlerTimer<'_> {
    fn drop(&mut self) {
        self.metrics.messages_handled.inc();
        self.metrics
            .handler_seconds
            .observe(self.started.elapsed().as_secs_f64());
    }
}
