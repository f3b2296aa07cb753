//! `TopicIngestor`: reads one raw topic, decodes and validates each record, writes
//! valid ones re-keyed to the keyed topic and bad ones to the dead-letter topic,
//! tags late records, writes watermark markers, and commits raw offsets once their
//! outputs are acknowledged. Runs under a `Supervisor`: after a panic or a failed
//! delivery it starts a new consumer generation from the committed offsets.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Supervised};
use prometheus_client::metrics::counter::Counter;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use adjoin_shared::config::StartFrom;
use adjoin_shared::kafka::{header, send_with_backpressure, KafkaEndpoint};
use adjoin_shared::keyed::{self, WatermarkMarker};
use adjoin_shared::metrics::{ActorMetrics, ReadinessCheck};
use adjoin_shared::schema::{DecodeError, Decoder, EventTime};
use adjoin_shared::supervision::Supervision;

use crate::kafka_context::{
    commit, lock, DeliveryOpaque, IngestConsumerContext, IngestProducerContext,
};
use crate::messages::{
    PartitionsAssigned, PartitionsRevoked, PollerStopped, RawBatch, RawMessage, Shutdown,
};
use crate::metrics::IngestMetrics;
use crate::offsets::OffsetTracker;
use crate::poller::Poller;
use crate::routing::{route, KeyedRecord, RawKind};
use crate::watermark::Watermarks;

/// Batches waiting in the mailbox at most; the poller waits beyond that.
const MAILBOX_CAPACITY: usize = 4;

/// Dead-letter payloads are cut to this, so an oversize record cannot fail its own
/// dead-lettering; the header `adjoin-truncated-from` keeps the original size.
const MAX_DEAD_LETTER_BYTES: usize = 900 * 1024;

/// A decoded record, its watermark bookkeeping done, before it is tracked.
struct Prepared {
    record: RawMessage,
    routed: Result<KeyedRecord, DecodeError>,
    late: bool,
    newest_before_opt: Option<i64>,
    newest_after_opt: Option<i64>,
}

struct HotCounters {
    keyed: Counter,
    dead_letter: Counter,
    late: Counter,
}

/// Everything an ingest actor is configured with.
#[derive(Clone)]
pub struct IngestorSettings {
    pub kind: RawKind,
    pub raw_topic: String,
    pub raw_partitions: i32,
    pub keyed_topic: String,
    pub keyed_partitions: i32,
    pub dlq_topic: String,
    pub group_id: String,
    pub start_from: StartFrom,
    pub commit_interval: Duration,
    pub marker_interval: Duration,
    pub batch_records: usize,
    pub allowed_lateness: Duration,
    pub idle_timeout: Duration,
    pub instance: String,
}

pub struct TopicIngestor {
    settings: IngestorSettings,
    endpoint: KafkaEndpoint,
    decoder: Decoder,
    producer: Arc<ThreadedProducer<IngestProducerContext>>,
    tracker: Arc<Mutex<OffsetTracker>>,
    watermarks: Watermarks,
    consumer_opt: Option<Arc<BaseConsumer<IngestConsumerContext>>>,
    poller_opt: Option<Poller>,
    generation: u64,
    /// The newest event time before each partition's last committed offset: where
    /// its watermark resumes when the broker keeps no commit metadata (Tansu).
    resume_newest_ms: HashMap<i32, i64>,
    metrics: IngestMetrics,
    /// The per-record series, looked up once: a family lookup per record would
    /// allocate its labels every time.
    counters: HotCounters,
    /// The `adjoin-source` header of the record being produced, reused.
    source: String,
    /// The keys and values of the batch being produced, reused from batch to batch.
    out: Vec<u8>,
    /// The `adjoin-origin-ms` header of the record being produced, reused.
    origin: String,
    actor_metrics: ActorMetrics,
    supervision: Supervision,
    readiness: ReadinessCheck,
}

impl TopicIngestor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: IngestorSettings,
        endpoint: KafkaEndpoint,
        decoder: Decoder,
        producer: Arc<ThreadedProducer<IngestProducerContext>>,
        tracker: Arc<Mutex<OffsetTracker>>,
        metrics: IngestMetrics,
        supervision: Supervision,
        readiness: ReadinessCheck,
    ) -> Self {
        let watermarks = Watermarks::new(settings.allowed_lateness, settings.idle_timeout);
        let actor_metrics = supervision.metrics().clone();
        let kind = settings.kind.as_str();
        // One statement each: a family hands out its series under a read guard that
        // lives to the end of the statement, and creating the next series of the
        // same family needs its write lock.
        let keyed = metrics
            .records
            .get_or_create(&IngestMetrics::result(kind, "keyed"))
            .clone();
        let dead_letter = metrics
            .records
            .get_or_create(&IngestMetrics::result(kind, "dead_letter"))
            .clone();
        let late = metrics
            .late_records
            .get_or_create(&IngestMetrics::topic(kind))
            .clone();
        let counters = HotCounters {
            keyed,
            dead_letter,
            late,
        };
        Self {
            counters,
            source: String::with_capacity(64),
            out: Vec::new(),
            origin: String::with_capacity(16),
            settings,
            endpoint,
            decoder,
            producer,
            tracker,
            watermarks,
            consumer_opt: None,
            poller_opt: None,
            generation: 0,
            resume_newest_ms: HashMap::new(),
            metrics,
            actor_metrics,
            supervision,
            readiness,
        }
    }

    fn kind(&self) -> &'static str {
        self.settings.kind.as_str()
    }

    /// Starts a consumer generation: a new consumer in the group, reading from the
    /// committed offsets, and the thread that polls it.
    fn start_generation(&mut self, ctx: &mut Context<Self>) -> Result<(), KafkaError> {
        self.generation += 1;
        lock(&self.tracker).reset(self.generation);
        let address = ctx.address();
        let context = IngestConsumerContext {
            tracker: Arc::clone(&self.tracker),
            generation: self.generation,
            raw_topic: self.settings.raw_topic.clone(),
            assigned: address.clone().recipient(),
            revoked: address.clone().recipient(),
            metrics: self.metrics.clone(),
            kind: self.kind(),
            readiness: self.readiness.clone(),
        };
        let reset = match self.settings.start_from {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        };
        let consumer: BaseConsumer<IngestConsumerContext> = self
            .endpoint
            .client_config()
            .set("group.id", &self.settings.group_id)
            .set("client.id", &self.settings.instance)
            // Offsets are committed by hand, only once outputs are acknowledged.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", reset)
            .set(
                "statistics.interval.ms",
                adjoin_shared::kafka::STATISTICS_INTERVAL_MS,
            )
            .create_with_context(context)?;
        consumer.subscribe(&[&self.settings.raw_topic])?;
        let consumer = Arc::new(consumer);
        let poller = Poller::spawn(
            Arc::clone(&consumer),
            address,
            self.generation,
            self.settings.batch_records,
            self.actor_metrics.clone(),
            format!("ingest-{}-poll", self.kind()),
        )
        .map_err(|_| KafkaError::Subscription("cannot start the poller thread".to_owned()))?;
        self.consumer_opt = Some(consumer);
        self.poller_opt = Some(poller);
        tracing::info!(topic = %self.settings.raw_topic, generation = self.generation, "consuming");
        Ok(())
    }

    fn stop_generation(&mut self) {
        if let Some(poller) = self.poller_opt.take() {
            poller.stop();
        }
        self.consumer_opt = None;
        self.watermarks =
            Watermarks::new(self.settings.allowed_lateness, self.settings.idle_timeout);
        self.readiness.set(false);
        self.actor_metrics.reset_mailbox_depth();
    }

    /// Decodes a record and advances its partition's watermark; nothing is produced
    /// or tracked yet.
    /// The key and value of a valid record are appended to `out`.
    fn prepare(
        &mut self,
        record: RawMessage,
        raw: &[u8],
        out: &mut Vec<u8>,
        now: EventTime,
        instant: Instant,
    ) -> Prepared {
        fail::fail_point!("ingest-record");
        let partition = record.partition;
        let newest_before_opt = self.watermarks.newest_ms(partition);
        let routed = route(
            &self.decoder,
            self.settings.kind,
            &raw[record.payload.clone()],
            now,
            self.settings.keyed_partitions,
            out,
        );
        let late = match &routed {
            Ok(keyed) => self
                .watermarks
                .observe(partition, keyed.event_time.as_millis(), instant),
            Err(_) => false,
        };
        Prepared {
            newest_before_opt,
            newest_after_opt: self.watermarks.newest_ms(partition),
            record,
            routed,
            late,
        }
    }

    /// Produces a tracked record's output: keyed, or dead-lettered. `raw` holds the
    /// batch's raw records, `out` the keyed keys and values `prepare` wrote.
    fn emit(&mut self, prepared: Prepared, raw: &[u8], out: &[u8]) -> Result<(), KafkaError> {
        let Prepared {
            record,
            routed,
            late,
            ..
        } = prepared;
        let partition = record.partition;
        self.source.clear();
        // Writing into a String cannot fail.
        let _ = write!(
            self.source,
            "{}/{}/{}",
            self.settings.raw_topic, partition, record.offset
        );
        let opaque: DeliveryOpaque = Box::new(Some((self.generation, partition, record.offset)));
        match routed {
            Ok(keyed) => {
                let mut headers = OwnedHeaders::new_with_capacity(4)
                    .insert(header(keyed::HEADER_KIND, self.settings.kind.keyed_kind()))
                    .insert(header(keyed::HEADER_LATE, if late { "1" } else { "0" }))
                    .insert(header(keyed::HEADER_SOURCE, &self.source));
                if let Some(timestamp_ms) = record.timestamp_ms_opt {
                    self.origin.clear();
                    let _ = write!(self.origin, "{timestamp_ms}");
                    headers = headers.insert(header(keyed::HEADER_ORIGIN_MS, &self.origin));
                }
                let base = BaseRecord::with_opaque_to(&self.settings.keyed_topic, opaque)
                    .partition(keyed.partition)
                    .key(&out[keyed.key])
                    .payload(&out[keyed.value])
                    .headers(headers);
                send_with_backpressure(&self.producer, base, &self.actor_metrics)?;
                self.counters.keyed.inc();
                if late {
                    self.counters.late.inc();
                }
            }
            Err(error) => {
                let source = std::mem::take(&mut self.source);
                let result = self.dead_letter(&record, raw, &error, &source, opaque);
                self.source = source;
                result?;
            }
        }
        Ok(())
    }

    fn dead_letter(
        &mut self,
        record: &RawMessage,
        raw: &[u8],
        error: &DecodeError,
        source: &str,
        opaque: DeliveryOpaque,
    ) -> Result<(), KafkaError> {
        let reason = error.reason().as_str();
        let message = error.to_string();
        let partition_text = record.partition.to_string();
        let offset_text = record.offset.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(header(keyed::HEADER_REASON, reason))
            .insert(header(keyed::HEADER_ERROR, &message))
            .insert(header(keyed::HEADER_SOURCE_TOPIC, &self.settings.raw_topic))
            .insert(header(keyed::HEADER_SOURCE_PARTITION, &partition_text))
            .insert(header(keyed::HEADER_SOURCE_OFFSET, &offset_text))
            .insert(header(keyed::HEADER_SOURCE, source));
        let mut payload = &raw[record.payload.clone()];
        let original_size = payload.len().to_string();
        if payload.len() > MAX_DEAD_LETTER_BYTES {
            payload = &payload[..MAX_DEAD_LETTER_BYTES];
            headers = headers.insert(header("adjoin-truncated-from", &original_size));
        }
        let mut base = BaseRecord::<[u8], [u8], DeliveryOpaque>::with_opaque_to(
            &self.settings.dlq_topic,
            opaque,
        )
        .payload(payload)
        .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(&raw[key.clone()]);
        }
        send_with_backpressure(&self.producer, base, &self.actor_metrics)?;
        self.counters.dead_letter.inc();
        self.metrics
            .dead_letters
            .get_or_create(&crate::metrics::ReasonLabels {
                topic: self.kind().to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
        Ok(())
    }
    fn commit_acknowledged(&mut self, mode: CommitMode) {
        let positions = lock(&self.tracker).committable();
        for position in &positions {
            if let Some(newest) = position.newest_ms_opt {
                self.resume_newest_ms.insert(position.partition, newest);
            }
        }
        if let Some(consumer) = &self.consumer_opt {
            commit(
                consumer,
                &self.settings.raw_topic,
                &positions,
                mode,
                &self.metrics,
                self.kind(),
            );
        }
    }

    fn on_commit_tick(&mut self, ctx: &mut Context<Self>) {
        let (failed, num_in_flight) = {
            let tracker = lock(&self.tracker);
            (tracker.has_failed(), tracker.num_in_flight())
        };
        self.metrics
            .in_flight
            .get_or_create(&IngestMetrics::topic(self.kind()))
            .set(num_in_flight as i64);
        if failed {
            // What was not acknowledged is not committed; the next generation reads it again.
            self.supervision
                .fail(ctx, &"a keyed or dead-letter record was not delivered");
            return;
        }
        if self.poller_opt.as_ref().is_some_and(Poller::is_finished) {
            self.supervision.fail(ctx, &"the poller thread ended");
            return;
        }
        self.commit_acknowledged(CommitMode::Async);
    }

    fn on_marker_tick(&mut self) {
        let now_ms = EventTime::now().as_millis();
        let instant = Instant::now();
        let newly_idle = self.watermarks.tick(instant);
        if !newly_idle.is_empty() {
            tracing::info!(topic = %self.settings.raw_topic, partitions = ?newly_idle, "raw partitions idle");
        }
        let partitions = self.watermarks.snapshot(instant);
        if partitions.is_empty() {
            return;
        }
        for watermark in &partitions {
            if let Some(watermark_ms) = watermark.watermark_ms {
                self.metrics
                    .watermark_lag_seconds
                    .get_or_create(&crate::metrics::PartitionLabels {
                        topic: self.kind().to_owned(),
                        partition: watermark.partition.to_string(),
                    })
                    .set((now_ms - watermark_ms) as f64 / 1000.0);
            }
        }
        let marker = WatermarkMarker {
            source_topic: self.settings.raw_topic.clone(),
            source_partitions: self.settings.raw_partitions,
            instance: self.settings.instance.clone(),
            emitted_at_ms: now_ms,
            partitions,
        };
        let Ok(value) = serde_json::to_vec(&marker) else {
            return;
        };
        for keyed_partition in 0..self.settings.keyed_partitions {
            let headers =
                OwnedHeaders::new().insert(header(keyed::HEADER_KIND, keyed::KIND_WATERMARK));
            let base = BaseRecord::<[u8], [u8], DeliveryOpaque>::with_opaque_to(
                &self.settings.keyed_topic,
                Box::new(None),
            )
            .partition(keyed_partition)
            .payload(value.as_slice())
            .headers(headers);
            // Markers are sent behind the records before them in each keyed
            // partition; a full queue just skips this round.
            match self.producer.send(base) {
                Ok(()) => {
                    self.metrics
                        .markers
                        .get_or_create(&IngestMetrics::topic(self.kind()))
                        .inc();
                }
                Err((error, _)) => tracing::debug!(%error, "marker skipped"),
            }
        }
    }

    /// Reads the newest event time stored with each partition's committed offset.
    fn committed_newest(&self, partitions: &[i32]) -> HashMap<i32, i64> {
        let Some(consumer) = &self.consumer_opt else {
            return HashMap::new();
        };
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            let _ =
                list.add_partition_offset(&self.settings.raw_topic, *partition, Offset::Invalid);
        }
        match consumer.committed_offsets(list, Duration::from_secs(10)) {
            Ok(committed) => committed
                .elements()
                .iter()
                .filter_map(|element| {
                    Some((element.partition(), element.metadata().parse::<i64>().ok()?))
                })
                .collect(),
            Err(error) => {
                tracing::warn!(topic = %self.settings.raw_topic, %error, "cannot read committed offsets");
                HashMap::new()
            }
        }
    }
}

impl Actor for TopicIngestor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if let Err(error) = self.start_generation(ctx) {
            self.supervision.fail(ctx, &error);
            return;
        }
        ctx.run_interval(self.settings.commit_interval, |actor, ctx| {
            actor.on_commit_tick(ctx)
        });
        ctx.run_interval(self.settings.marker_interval, |actor, _| {
            actor.on_marker_tick()
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stop_generation();
    }
}

impl Supervised for TopicIngestor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // `started` follows and opens the next generation from committed offsets.
        self.stop_generation();
    }
}

impl Handler<RawBatch> for TopicIngestor {
    type Result = ();

    fn handle(&mut self, batch: RawBatch, ctx: &mut Context<Self>) {
        let actor_metrics = self.actor_metrics.clone();
        let _timer = actor_metrics.handling();
        if batch.generation != self.generation
            || lock(&self.tracker).assignment_version() != batch.assignment_version
        {
            // Polled before a rebalance (or a restart): its partitions were revoked
            // and are read again from their committed offsets. Refused before any
            // watermark sees it, so re-read records are tagged as the first time.
            return;
        }
        let now = EventTime::now();
        let instant = Instant::now();
        let RawBatch {
            records,
            bytes: raw,
            assignment_version,
            ..
        } = batch;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let mut prepared: Vec<Prepared> = records
            .into_iter()
            .map(|record| self.prepare(record, &raw, &mut out, now, instant))
            .collect();
        // One lock per batch, and before anything is produced, so no acknowledgement
        // can arrive for a record not yet tracked.
        {
            let mut tracker = lock(&self.tracker);
            if tracker.assignment_version() != assignment_version {
                return;
            }
            // A partition revoked since the poll: its next owner reads the record.
            prepared.retain(|entry| {
                tracker.consumed(
                    entry.record.partition,
                    entry.record.offset,
                    entry.newest_before_opt,
                    entry.newest_after_opt,
                )
            });
        }
        let emitted = prepared
            .into_iter()
            .try_for_each(|entry| self.emit(entry, &raw, &out));
        self.out = out;
        if let Err(error) = emitted {
            self.supervision.fail(ctx, &error);
        }
    }
}

impl Handler<PartitionsAssigned> for TopicIngestor {
    type Result = ();

    fn handle(&mut self, message: PartitionsAssigned, _ctx: &mut Context<Self>) {
        if message.generation != self.generation {
            return;
        }
        let committed = self.committed_newest(&message.partitions);
        let now = Instant::now();
        for partition in message.partitions {
            let newest_opt = committed
                .get(&partition)
                .or_else(|| self.resume_newest_ms.get(&partition))
                .copied();
            self.watermarks.assign(partition, newest_opt, now);
        }
    }
}

impl Handler<PartitionsRevoked> for TopicIngestor {
    type Result = ();

    fn handle(&mut self, message: PartitionsRevoked, _ctx: &mut Context<Self>) {
        if message.generation != self.generation {
            return;
        }
        for partition in message.partitions {
            self.watermarks.revoke(partition);
            // The new owner reports it; a last value kept here would read as a
            // second, frozen watermark for the same partition.
            self.metrics
                .watermark_lag_seconds
                .remove(&crate::metrics::PartitionLabels {
                    topic: self.kind().to_owned(),
                    partition: partition.to_string(),
                });
        }
    }
}

impl Handler<PollerStopped> for TopicIngestor {
    type Result = ();

    fn handle(&mut self, message: PollerStopped, ctx: &mut Context<Self>) {
        if message.generation == self.generation {
            self.supervision.fail(ctx, &message.error);
        }
    }
}

impl Handler<Shutdown> for TopicIngestor {
    type Result = ();

    fn handle(&mut self, _message: Shutdown, ctx: &mut Context<Self>) {
        tracing::info!(topic = %self.settings.raw_topic, "stopping: flushing and committing");
        if let Some(poller) = &self.poller_opt {
            poller.stop();
        }
        if let Err(error) = self.producer.flush(Duration::from_secs(30)) {
            tracing::warn!(%error, "flush incomplete; unacknowledged records will be read again");
        }
        self.commit_acknowledged(CommitMode::Sync);
        ctx.stop();
        // One system per raw topic: with its actor done, the system is too.
        actix::System::current().stop();
    }
}
