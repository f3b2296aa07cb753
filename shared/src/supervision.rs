//! Supervision for actix actors: restarts an actor that failed or panicked, with
//! capped exponential backoff, keeping its address so senders never notice.
//!
//! actix's own `Supervisor` restarts an actor that stopped, but a panic in a
//! handler unwinds through the actor's future: the task dies, its mailbox closes
//! and every sender gets `MailboxError::Closed` from then on, with nothing counted
//! (see `tests::a_plain_actix_actor_dies_on_panic`). [`Supervisor`] polls the
//! actor's context inside `catch_unwind`, so a panic becomes a counted restart.
//! The message being handled is lost (its sender sees `MailboxError`); actors
//! rebuild state in `restarting` from what was committed, which is why that is safe.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::dev::ContextFut;
use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Supervised};

use crate::events::{ActorPanicked, ActorRestarted};
use crate::metrics::ActorMetrics;

/// Why an actor is being restarted; the `reason` label of `adjoin_actor_restarts_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// A handler or future of the actor panicked.
    Panic,
    /// The actor reported a failure with [`Supervision::fail`].
    Error,
}

impl ExitReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            ExitReason::Panic => "panic",
            ExitReason::Error => "error",
        }
    }
}

/// How quickly failed actors come back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RestartPolicy {
    /// Wait before the first restart after a healthy period.
    pub initial_backoff: Duration,
    /// The wait doubles with each consecutive failure up to this.
    pub max_backoff: Duration,
    /// An actor that ran this long since its last restart starts from
    /// `initial_backoff` again.
    pub reset_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

impl RestartPolicy {
    /// Returns the wait before restart number `consecutive_failures` (1-based).
    pub fn backoff(&self, consecutive_failures: u32) -> Duration {
        let doublings = consecutive_failures.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// The actor's side of supervision: lets it report a failure, and tells it how
/// often it was restarted. Handed to the actor when it is created.
#[derive(Clone)]
pub struct Supervision {
    failure: Rc<Cell<Option<ExitReason>>>,
    restarts: Rc<Cell<u64>>,
    metrics: ActorMetrics,
}

impl Supervision {
    /// Stops the actor so that its supervisor restarts it (counted as `error`).
    /// Use for failures that rebuilding from committed state can cure.
    pub fn fail<A>(&self, ctx: &mut Context<A>, error: &dyn std::fmt::Display)
    where
        A: Actor<Context = Context<A>>,
    {
        tracing::error!(
            service = self.metrics.service(),
            actor = self.metrics.actor(),
            %error,
            "actor failed"
        );
        self.failure.set(Some(ExitReason::Error));
        ctx.stop();
    }

    /// Returns how many times the actor has been restarted.
    pub fn restarts(&self) -> u64 {
        self.restarts.get()
    }

    pub fn metrics(&self) -> &ActorMetrics {
        &self.metrics
    }
}

/// Starts and supervises one actor; see the module documentation.
pub struct Supervisor<A>
where
    A: Actor<Context = Context<A>> + Supervised,
{
    fut: ContextFut<A, Context<A>>,
    supervision: Supervision,
    policy: RestartPolicy,
    num_consecutive_failures: u32,
    last_restart_opt: Option<Instant>,
    pending_restart_opt: Option<PendingRestart>,
}

/// A restart waiting out its backoff.
struct PendingRestart {
    reason: ExitReason,
    backoff: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<A> Supervisor<A>
where
    A: Actor<Context = Context<A>> + Supervised,
{
    /// Starts the actor on the current arbiter under supervision and returns its
    /// address, which stays valid across restarts.
    pub fn start<F>(metrics: ActorMetrics, policy: RestartPolicy, create: F) -> Addr<A>
    where
        F: FnOnce(&mut Context<A>, Supervision) -> A,
    {
        let supervision = Supervision {
            failure: Rc::new(Cell::new(None)),
            restarts: Rc::new(Cell::new(0)),
            metrics,
        };
        let mut ctx = Context::new();
        let actor = create(&mut ctx, supervision.clone());
        let addr = ctx.address();
        let supervisor = Self {
            fut: ctx.into_future(actor),
            supervision,
            policy,
            num_consecutive_failures: 0,
            last_restart_opt: None,
            pending_restart_opt: None,
        };
        actix_rt::spawn(supervisor);
        addr
    }

    fn schedule_restart(&mut self, reason: ExitReason) {
        let healthy_long_enough = self
            .last_restart_opt
            .is_none_or(|at| at.elapsed() >= self.policy.reset_after);
        if healthy_long_enough {
            self.num_consecutive_failures = 0;
        }
        self.num_consecutive_failures += 1;
        let backoff = self.policy.backoff(self.num_consecutive_failures);
        self.pending_restart_opt = Some(PendingRestart {
            reason,
            backoff,
            sleep: Box::pin(tokio::time::sleep(backoff)),
        });
    }

    fn report_panic(&self, payload: &(dyn Any + Send)) {
        ActorPanicked {
            metrics: &self.supervision.metrics,
            message: &panic_message(payload),
        }
        .emit();
    }
}

impl<A> Future for Supervisor<A>
where
    A: Actor<Context = Context<A>> + Supervised,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if let Some(pending) = this.pending_restart_opt.as_mut() {
                if pending.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            if let Some(pending) = this.pending_restart_opt.take() {
                this.last_restart_opt = Some(Instant::now());
                // `restart` clears the actor's spawned futures and calls
                // `Supervised::restarting`, where actors rebuild their state; that
                // can panic too. `started` follows on the next poll.
                match catch_unwind(AssertUnwindSafe(|| this.fut.restart())) {
                    // Every address is gone: nobody left to serve.
                    Ok(false) => return Poll::Ready(()),
                    Ok(true) => {
                        this.supervision
                            .restarts
                            .set(this.supervision.restarts.get() + 1);
                        ActorRestarted {
                            metrics: &this.supervision.metrics,
                            reason: pending.reason.as_str(),
                            num_consecutive_failures: this.num_consecutive_failures,
                            backoff: pending.backoff,
                        }
                        .emit();
                    }
                    Err(payload) => {
                        this.report_panic(payload.as_ref());
                        this.schedule_restart(ExitReason::Panic);
                    }
                }
                continue;
            }
            let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.fut).poll(cx)));
            match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(())) => match this.supervision.failure.take() {
                    Some(reason) => this.schedule_restart(reason),
                    // Stopped on purpose (shutdown, or every address dropped).
                    None => return Poll::Ready(()),
                },
                Err(payload) => {
                    this.report_panic(payload.as_ref());
                    this.supervision.failure.set(None);
                    this.schedule_restart(ExitReason::Panic);
                }
            }
        }
    }
}

/// Extracts the text of a panic payload (`panic!("...")` or a formatted one).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-text panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Handler, Message, MessageResult};

    use crate::metrics::Metrics;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            reset_after: Duration::from_secs(60),
        };
        let waits: Vec<u128> = (1..=6).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
    }

    /// A counter that panics on request, to observe what supervision does.
    struct Fragile {
        handled: u32,
        restarted: u32,
        supervision: Option<Supervision>,
        /// Panics in `restarting` this many times, like a failed state rebuild.
        num_restart_panics: u32,
    }

    impl Actor for Fragile {
        type Context = Context<Self>;
    }

    impl Supervised for Fragile {
        fn restarting(&mut self, _ctx: &mut Context<Self>) {
            if self.num_restart_panics > 0 {
                self.num_restart_panics -= 1;
                panic!("deliberate panic while rebuilding state");
            }
            self.restarted += 1;
        }
    }

    #[derive(Message)]
    #[rtype(result = "(u32, u32)")]
    struct Touch;

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Explode;

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Fail;

    impl Handler<Touch> for Fragile {
        type Result = MessageResult<Touch>;
        fn handle(&mut self, _msg: Touch, _ctx: &mut Context<Self>) -> Self::Result {
            self.handled += 1;
            MessageResult((self.handled, self.restarted))
        }
    }

    impl Handler<Explode> for Fragile {
        type Result = ();
        fn handle(&mut self, _msg: Explode, _ctx: &mut Context<Self>) {
            panic!("deliberate test panic");
        }
    }

    impl Handler<Fail> for Fragile {
        type Result = ();
        fn handle(&mut self, _msg: Fail, ctx: &mut Context<Self>) {
            let supervision = self.supervision.clone().expect("started supervised");
            supervision.fail(ctx, &"deliberate test failure");
        }
    }

    fn start_fragile(metrics: ActorMetrics, policy: RestartPolicy) -> Addr<Fragile> {
        start_fragile_with(metrics, policy, 0)
    }

    fn start_fragile_with(
        metrics: ActorMetrics,
        policy: RestartPolicy,
        num_restart_panics: u32,
    ) -> Addr<Fragile> {
        Supervisor::start(metrics, policy, move |_, supervision| Fragile {
            handled: 0,
            restarted: 0,
            supervision: Some(supervision),
            num_restart_panics,
        })
    }

    fn fast_policy() -> RestartPolicy {
        RestartPolicy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            reset_after: Duration::from_secs(60),
        }
    }

    #[actix_rt::test]
    async fn a_plain_actix_actor_dies_on_panic() {
        // What actix does by itself: the panic kills the actor's task and closes
        // its mailbox; its own Supervisor does not help.
        let addr = actix::Supervisor::start(|_| Fragile {
            handled: 0,
            restarted: 0,
            supervision: None,
            num_restart_panics: 0,
        });
        assert_eq!(addr.send(Touch).await.unwrap(), (1, 0));
        assert!(addr.send(Explode).await.is_err());
        assert!(
            addr.send(Touch).await.is_err(),
            "mailbox closed after the panic"
        );
        assert!(!addr.connected());
    }

    #[actix_rt::test]
    async fn a_panicking_actor_is_restarted_and_counted() {
        let metrics = Metrics::new();
        let actor_metrics = metrics.actor("test", "fragile");
        let addr = start_fragile(actor_metrics.clone(), fast_policy());
        assert_eq!(addr.send(Touch).await.unwrap(), (1, 0));
        assert!(
            addr.send(Explode).await.is_err(),
            "the panicking message is lost"
        );
        // Same address, restarted actor: `restarting` ran once, state kept by this actor.
        assert_eq!(addr.send(Touch).await.unwrap(), (2, 1));
        assert!(addr.send(Explode).await.is_err());
        assert_eq!(addr.send(Touch).await.unwrap(), (3, 2));
        assert_eq!(actor_metrics.restarts("panic"), 2);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"adjoin_actor_restarts_total{service="test",actor="fragile",reason="panic"} 2"#
            ),
            "{text}"
        );
    }

    #[actix_rt::test]
    async fn a_failed_actor_is_restarted_with_reason_error() {
        let metrics = Metrics::new();
        let actor_metrics = metrics.actor("test", "fragile");
        let addr = start_fragile(actor_metrics.clone(), fast_policy());
        addr.send(Fail).await.unwrap();
        assert_eq!(addr.send(Touch).await.unwrap(), (1, 1));
        assert_eq!(actor_metrics.restarts("error"), 1);
        assert_eq!(actor_metrics.restarts("panic"), 0);
    }

    #[actix_rt::test]
    async fn a_panic_while_restarting_is_caught_and_retried() {
        let metrics = Metrics::new();
        let actor_metrics = metrics.actor("test", "rebuild");
        let addr = start_fragile_with(actor_metrics.clone(), fast_policy(), 2);
        assert!(addr.send(Explode).await.is_err());
        // Two failed rebuilds, then a good one: one restart that really happened.
        assert_eq!(addr.send(Touch).await.unwrap(), (1, 1));
        assert_eq!(actor_metrics.restarts("panic"), 1);
    }

    #[actix_rt::test]
    async fn backoff_delays_the_restart() {
        let metrics = Metrics::new();
        let policy = RestartPolicy {
            initial_backoff: Duration::from_millis(150),
            max_backoff: Duration::from_secs(1),
            reset_after: Duration::from_secs(60),
        };
        let addr = start_fragile(metrics.actor("test", "slow"), policy);
        let _ = addr.send(Explode).await;
        let started = Instant::now();
        assert_eq!(addr.send(Touch).await.unwrap(), (1, 1));
        assert!(
            started.elapsed() >= Duration::from_millis(140),
            "restart waited {:?}",
            started.elapsed()
        );
    }
}
