//! Producing with backpressure: when the producer's queue is full the caller waits
//! (and counts the wait as blocked time) instead of memory growing.

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, ToBytes};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};

use crate::metrics::ActorMetrics;

/// Enqueues `record`, retrying every millisecond while the queue is full; the time
/// spent waiting goes to the actor's blocked-seconds metric. Other errors return.
pub fn send_with_backpressure<'a, K, C>(
    producer: &ThreadedProducer<C>,
    record: BaseRecord<'a, K, [u8], C::DeliveryOpaque>,
    actor_metrics: &ActorMetrics,
) -> Result<(), KafkaError>
where
    K: ToBytes + ?Sized,
    C: ProducerContext + 'static,
{
    let mut pending = record;
    let mut blocked_since_opt: Option<Instant> = None;
    loop {
        match producer.send(pending) {
            Ok(()) => {
                if let Some(since) = blocked_since_opt {
                    actor_metrics.record_blocked(since.elapsed().as_secs_f64());
                }
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                blocked_since_opt.get_or_insert_with(Instant::now);
                pending = returned;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// Returns a client id naming this process: service, host and process id, so a
/// broker's group listing shows which process holds which partitions.
pub fn instance_name(service: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("adjoin-{service}-{host}-{}", std::process::id())
}

/// A string header, for `OwnedHeaders::insert`.
pub fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
