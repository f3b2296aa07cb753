//! Handing work from a plain thread (a Kafka poll loop) to an actor's bounded
//! mailbox.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::SendError;
use actix::{Actor, Addr, Handler, Message};

use crate::metrics::ActorMetrics;

/// Puts a message into the actor's bounded mailbox, waiting while it is full: that
/// wait is the backpressure that keeps memory flat when the actor is slow. Gives
/// up quietly once `stop` is set; fails when the mailbox is closed.
pub fn send_blocking<A, M>(
    actor: &Addr<A>,
    message: M,
    actor_metrics: &ActorMetrics,
    stop: &AtomicBool,
) -> Result<(), String>
where
    A: Actor + Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    let mut pending = message;
    let mut blocked_since_opt: Option<Instant> = None;
    loop {
        match actor.try_send(pending) {
            Ok(()) => {
                actor_metrics.message_enqueued();
                if let Some(since) = blocked_since_opt {
                    actor_metrics.record_blocked(since.elapsed().as_secs_f64());
                }
                return Ok(());
            }
            Err(SendError::Full(returned)) => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                blocked_since_opt.get_or_insert_with(Instant::now);
                pending = returned;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(SendError::Closed(_)) => {
                return Err(format!(
                    "the mailbox of {} is closed",
                    actor_metrics.actor()
                ))
            }
        }
    }
}
