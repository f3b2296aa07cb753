//! Where generated records go: the raw Kafka topics, or JSON-lines files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use adjoin_shared::kafka::KafkaEndpoint;

use crate::record::{RawRecord, Topic};

/// What an output managed to deliver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub num_delivered: u64,
    pub num_failed: u64,
    /// The first delivery error, for the summary.
    pub first_error_opt: Option<String>,
}

pub trait Output {
    /// Writes a record; false when `stop` was raised while waiting to write it.
    fn write(&mut self, record: &RawRecord, stop: &AtomicBool) -> anyhow::Result<bool>;
    /// Waits for everything written to be delivered (or fail) and reports.
    fn finish(&mut self) -> anyhow::Result<Delivery>;
}

/// Counts delivery reports; librdkafka retries failed sends by itself first.
#[derive(Default)]
pub struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// The producer's context: hands delivery reports to the shared counter.
pub struct CountingContext(Arc<DeliveryCounter>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        let counter = &self.0;
        match result {
            Ok(_) => {
                counter.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                counter.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = counter
                    .first_error
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if first.is_none() {
                    *first = Some(error.to_string());
                }
            }
        }
    }
}

impl DeliveryCounter {
    pub fn snapshot(&self) -> Delivery {
        Delivery {
            num_delivered: self.delivered.load(Ordering::Relaxed),
            num_failed: self.failed.load(Ordering::Relaxed),
            first_error_opt: self
                .first_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }
}

/// Writes to the raw topics with explicit partitions, so the truth file knows
/// where every record went.
pub struct KafkaOutput {
    producer: ThreadedProducer<CountingContext>,
    counter: Arc<DeliveryCounter>,
    impressions_topic: String,
    clicks_topic: String,
    num_sent: u64,
}

impl KafkaOutput {
    pub fn new(
        endpoint: &KafkaEndpoint,
        impressions_topic: &str,
        clicks_topic: &str,
    ) -> anyhow::Result<Self> {
        let counter = Arc::new(DeliveryCounter::default());
        let producer: ThreadedProducer<CountingContext> = endpoint
            .client_config()
            // Keeps each partition in the order written even when a send is
            // retried; the truth depends on that order.
            .set("enable.idempotence", "true")
            // Small batches flushed often enough for live traffic, large enough
            // for backlogs.
            .set("linger.ms", "5")
            .create_with_context(CountingContext(Arc::clone(&counter)))
            .context("creating the Kafka producer")?;
        Ok(Self {
            producer,
            counter,
            impressions_topic: impressions_topic.to_owned(),
            clicks_topic: clicks_topic.to_owned(),
            num_sent: 0,
        })
    }
}

impl Output for KafkaOutput {
    fn write(&mut self, record: &RawRecord, stop: &AtomicBool) -> anyhow::Result<bool> {
        let topic = match record.topic {
            Topic::Impressions => &self.impressions_topic,
            Topic::Clicks => &self.clicks_topic,
        };
        let mut base = BaseRecord::to(topic)
            .partition(record.partition)
            .payload(&record.payload);
        if let Some(key) = &record.key {
            base = base.key(key);
        }
        loop {
            match self.producer.send(base) {
                Ok(()) => break,
                // The local queue is full: wait for deliveries rather than grow.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                    base = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => return Err(error).context(format!("producing to {topic}")),
            }
        }
        self.num_sent += 1;
        Ok(true)
    }

    fn finish(&mut self) -> anyhow::Result<Delivery> {
        // Bounded by librdkafka's message.timeout.ms: every record is delivered or
        // reported failed by then.
        let flushed = self.producer.flush(rdkafka::util::Timeout::Never);
        let mut delivery = self.counter.snapshot();
        let num_unreported = self
            .num_sent
            .saturating_sub(delivery.num_delivered + delivery.num_failed);
        if let Err(error) = flushed {
            delivery.num_failed += num_unreported;
            delivery
                .first_error_opt
                .get_or_insert_with(|| format!("flush: {error}"));
        }
        Ok(delivery)
    }
}

/// Writes `impressions.jsonl` and `clicks.jsonl` in delivery order, one raw
/// record a line.
pub struct FileOutput {
    impressions: BufWriter<File>,
    clicks: BufWriter<File>,
    num_written: u64,
}

impl FileOutput {
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let open = |name: &str| -> anyhow::Result<BufWriter<File>> {
            let path = dir.join(name);
            let file =
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            Ok(BufWriter::with_capacity(1 << 20, file))
        };
        Ok(Self {
            impressions: open("impressions.jsonl")?,
            clicks: open("clicks.jsonl")?,
            num_written: 0,
        })
    }
}

impl Output for FileOutput {
    fn write(&mut self, record: &RawRecord, _stop: &AtomicBool) -> anyhow::Result<bool> {
        let writer = match record.topic {
            Topic::Impressions => &mut self.impressions,
            Topic::Clicks => &mut self.clicks,
        };
        // A record with a raw newline would split into two lines; JSON escapes
        // newlines inside strings, so only broken records can have one.
        let line: Vec<u8> = record
            .payload
            .iter()
            .map(|&b| if b == b'\n' { b' ' } else { b })
            .collect();
        writer.write_all(&line)?;
        writer.write_all(b"\n")?;
        self.num_written += 1;
        Ok(true)
    }

    fn finish(&mut self) -> anyhow::Result<Delivery> {
        self.impressions
            .flush()
            .context("writing impressions.jsonl")?;
        self.clicks.flush().context("writing clicks.jsonl")?;
        Ok(Delivery {
            num_delivered: self.num_written,
            ..Delivery::default()
        })
    }
}
