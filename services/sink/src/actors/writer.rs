//! `SinkWriter`: decodes what the poll thread reads from `impressions.keyed` and
//! `click-outcomes`, gathers rows into a batch and writes each batch in one
//! transaction with the input offsets it covers. Runs under a `Supervisor`: after a
//! failure or panic it drops what it had not written and starts a new consumer,
//! which resumes from the offsets in the database.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Supervised, WrapFuture,
};
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use adjoin_shared::kafka::{header, KafkaEndpoint};
use adjoin_shared::keyed;
use adjoin_shared::metrics::{ActorMetrics, ReadinessCheck};
use adjoin_shared::schema::EventTime;
use adjoin_shared::supervision::Supervision;

use crate::batch::{Batch, BatchLimits, Input, Source};
use crate::kafka_context::SinkConsumerContext;
use crate::messages::{PartitionsRevoked, RecordBatch, Shutdown};
use crate::metrics::SinkMetrics;
use crate::poller::Poller;
use crate::records::{decode, Decoded};
use crate::store::{OffsetReader, Store, StoreError, Written};

/// A dead letter on its way: resolves once the broker acknowledged it.
type PendingDelivery = BoxFuture<'static, Result<(), String>>;

/// Batches waiting in the mailbox at most; the poll thread waits beyond that.
const MAILBOX_CAPACITY: usize = 4;

/// How often the writer checks whether a partial batch has waited long enough.
const TICK: Duration = Duration::from_millis(50);

/// Dead-letter payloads are cut to this, so an oversize record cannot fail its own
/// dead-lettering; `adjoin-truncated-from` keeps the original size.
const MAX_DEAD_LETTER_BYTES: usize = 900 * 1024;

/// Everything a sink writer is configured with.
#[derive(Clone)]
pub struct WriterSettings {
    pub group_id: String,
    pub impressions_topic: String,
    pub outcomes_topic: String,
    pub dlq_topic: String,
    pub limits: BatchLimits,
    pub batch_records: usize,
    pub max_retry_backoff: Duration,
    pub database_url: String,
    pub instance: String,
}

impl WriterSettings {
    fn topic(&self, input: Input) -> &str {
        match input {
            Input::Impressions => &self.impressions_topic,
            Input::Outcomes => &self.outcomes_topic,
        }
    }
}

pub struct SinkWriter {
    settings: WriterSettings,
    endpoint: KafkaEndpoint,
    store: Store,
    producer: FutureProducer,
    metrics: SinkMetrics,
    actor_metrics: ActorMetrics,
    supervision: Supervision,
    readiness: ReadinessCheck,
    batch: Batch,
    /// Dead letters of records in `batch`: acknowledged before the batch's offsets
    /// are written, so a dead letter is never lost.
    dead_letters: Vec<PendingDelivery>,
    consumer_opt: Option<Arc<BaseConsumer<SinkConsumerContext>>>,
    poller_opt: Option<Poller>,
    stopping: bool,
}

/// What one batch write did.
struct Report {
    written: Written,
    num_rows: usize,
    bytes: usize,
    commit_seconds: f64,
    next_offsets: Vec<(Input, i32, i64)>,
    origins_ms: Vec<i64>,
}

impl SinkWriter {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: WriterSettings,
        endpoint: KafkaEndpoint,
        store: Store,
        producer: FutureProducer,
        metrics: SinkMetrics,
        supervision: Supervision,
        readiness: ReadinessCheck,
    ) -> Self {
        Self {
            actor_metrics: supervision.metrics().clone(),
            settings,
            endpoint,
            store,
            producer,
            metrics,
            supervision,
            readiness,
            batch: Batch::default(),
            dead_letters: Vec::new(),
            consumer_opt: None,
            poller_opt: None,
            stopping: false,
        }
    }

    /// Joins the group with a new consumer; its rebalance callback starts every
    /// assigned partition at the database's offsets.
    fn start_consuming(&mut self, ctx: &mut Context<Self>) -> anyhow::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let offsets = OffsetReader::open(&self.settings.database_url)?;
        self.readiness.set(false);
        let context = SinkConsumerContext {
            impressions_topic: self.settings.impressions_topic.clone(),
            outcomes_topic: self.settings.outcomes_topic.clone(),
            group_id: self.settings.group_id.clone(),
            offsets,
            assignment: AtomicU64::new(0),
            revoked: ctx.address().recipient(),
            readiness: self.readiness.clone(),
            metrics: self.metrics.clone(),
            stop: Arc::clone(&stop),
            max_retry_backoff: self.settings.max_retry_backoff,
        };
        let consumer: BaseConsumer<SinkConsumerContext> = self
            .endpoint
            .client_config()
            .set("group.id", &self.settings.group_id)
            .set("client.id", &self.settings.instance)
            // Offsets live in the database; Kafka commits are for lag monitoring.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // The rebalance callback assigns and unassigns whole assignments
            // (eager); a cooperative strategy from kafka.options would break it.
            .set("partition.assignment.strategy", "range")
            .set(
                "statistics.interval.ms",
                adjoin_shared::kafka::STATISTICS_INTERVAL_MS,
            )
            .create_with_context(context)?;
        consumer.subscribe(&[
            &self.settings.impressions_topic,
            &self.settings.outcomes_topic,
        ])?;
        let consumer = Arc::new(consumer);
        let poller = Poller::spawn(
            Arc::clone(&consumer),
            ctx.address(),
            self.settings.batch_records,
            self.actor_metrics.clone(),
            stop,
        )?;
        self.consumer_opt = Some(consumer);
        self.poller_opt = Some(poller);
        Ok(())
    }

    fn stop_consuming(&mut self) {
        if let Some(poller) = self.poller_opt.take() {
            poller.stop();
        }
        self.consumer_opt = None;
        self.batch = Batch::default();
        self.dead_letters.clear();
        self.readiness.set(false);
        self.actor_metrics.reset_mailbox_depth();
    }

    fn current_assignment(&self) -> Option<u64> {
        self.consumer_opt
            .as_ref()
            .map(|consumer| consumer.context().assignment())
    }

    fn take_record(&mut self, batch: &RecordBatch, index: usize) {
        let record = &batch.records[index];
        let value = &batch.bytes[record.value.clone()];
        let source = Source {
            input: record.input,
            partition: record.partition,
            offset: record.offset,
        };
        let size = value.len() + record.key.as_ref().map_or(0, |key| key.len());
        match decode(record.input, record.kind_opt, value) {
            Ok(Decoded::Impression(impression)) => {
                self.batch
                    .add_impression(source, impression, record.origin_ms_opt, size);
            }
            Ok(Decoded::Outcome(outcome)) => {
                self.batch
                    .add_outcome(source, outcome, record.origin_ms_opt, size);
            }
            Ok(Decoded::Marker) => self.batch.pass(source, size),
            Err(unreadable) => {
                tracing::warn!(
                    topic = self.settings.topic(record.input),
                    partition = record.partition,
                    offset = record.offset,
                    reason = unreadable.reason,
                    detail = %unreadable.detail,
                    "record dead-lettered"
                );
                let key_opt = record.key.clone().map(|key| &batch.bytes[key]);
                let delivery = self.dead_letter(
                    source,
                    key_opt,
                    value,
                    unreadable.reason,
                    &unreadable.detail,
                );
                self.dead_letters.push(delivery);
                let time_ms = record
                    .origin_ms_opt
                    .unwrap_or_else(|| EventTime::now().as_millis());
                self.batch.add_dead_letter(source, time_ms, size);
            }
        }
    }

    fn dead_letter(
        &self,
        source: Source,
        key_opt: Option<&[u8]>,
        value: &[u8],
        reason: &str,
        detail: &str,
    ) -> PendingDelivery {
        self.metrics.record_dead_letter(reason);
        dead_letter(
            &self.producer,
            &self.settings,
            source,
            key_opt,
            value,
            reason,
            detail,
        )
    }

    /// Writes the batch (and waits for it: no other message is handled meanwhile,
    /// so the mailbox fills and the poll thread pauses).
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let dead_letters = std::mem::take(&mut self.dead_letters);
        let job = WriteJob {
            store: self.store.clone(),
            producer: self.producer.clone(),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
            readiness: self.readiness.clone(),
        };
        ctx.wait(
            async move { job.run(batch, dead_letters).await }
                .into_actor(self)
                .map(|result, actor, ctx| match result {
                    Ok(report) => actor.after_commit(report),
                    Err(error) => actor.supervision.fail(ctx, &error),
                }),
        );
    }

    fn after_commit(&mut self, report: Report) {
        self.metrics.record_written(&report.written);
        self.metrics.batch_rows.observe(report.num_rows as f64);
        self.metrics.batch_bytes.observe(report.bytes as f64);
        self.metrics.commit_seconds.observe(report.commit_seconds);
        let now_ms = EventTime::now().as_millis();
        for origin_ms in report.origins_ms {
            self.metrics
                .latency_seconds
                .observe((now_ms - origin_ms).max(0) as f64 / 1000.0);
        }
        if let Some(consumer) = &self.consumer_opt {
            let mut list = TopicPartitionList::new();
            for (input, partition, next) in &report.next_offsets {
                let _ = list.add_partition_offset(
                    self.settings.topic(*input),
                    *partition,
                    Offset::Offset(*next),
                );
            }
            // Partitions revoked meanwhile refuse the commit; the database is what
            // counts, this only feeds lag monitoring.
            if let Err(error) = consumer.commit(&list, CommitMode::Async) {
                tracing::debug!(%error, "lag-monitoring commit refused");
            }
        }
    }
}

/// A batch on its way into the database, with what it needs off the actor.
struct WriteJob {
    store: Store,
    producer: FutureProducer,
    settings: WriterSettings,
    metrics: SinkMetrics,
    readiness: ReadinessCheck,
}

impl WriteJob {
    /// Writes the batch once its dead letters are acknowledged: split by input and
    /// partition into transactions written at the same time ([`Batch::split`]).
    async fn run(self, batch: Batch, dead_letters: Vec<PendingDelivery>) -> Result<Report, String> {
        await_dead_letters(dead_letters).await?;
        fail::fail_point!("sink-before-write", |_| Err(
            "failpoint sink-before-write".to_owned()
        ));
        let parts = batch.split(self.store.parallel_writes());
        let reports =
            futures::future::join_all(parts.into_iter().map(|part| self.write(part))).await;
        let mut total = Report {
            written: Written::default(),
            num_rows: 0,
            bytes: 0,
            commit_seconds: 0.0,
            next_offsets: Vec::new(),
            origins_ms: Vec::new(),
        };
        for report in reports {
            let report = report?;
            total.written.impressions_inserted += report.written.impressions_inserted;
            total.written.impressions_skipped += report.written.impressions_skipped;
            total.written.clicks_inserted += report.written.clicks_inserted;
            total.written.clicks_skipped += report.written.clicks_skipped;
            total.num_rows += report.num_rows;
            total.bytes += report.bytes;
            total.commit_seconds = total.commit_seconds.max(report.commit_seconds);
            total.next_offsets.extend(report.next_offsets);
            total.origins_ms.extend(report.origins_ms);
        }
        Ok(total)
    }

    /// Writes one transaction, retrying while the database is unavailable (with
    /// capped backoff) and dead-lettering rows the database rejects. Fails only
    /// when the sink cannot go on without a restart.
    async fn write(&self, mut batch: Batch) -> Result<Report, String> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let error = match self
                .store
                .write(&self.settings.group_id, &self.topics(), &batch)
                .await
            {
                Ok(written) => {
                    self.readiness.set(true);
                    fail::fail_point!("sink-after-commit", |_| Err(
                        "failpoint sink-after-commit".to_owned()
                    ));
                    return Ok(Report {
                        written,
                        num_rows: batch.num_rows(),
                        bytes: batch.bytes(),
                        commit_seconds: started.elapsed().as_secs_f64(),
                        next_offsets: batch.next_offsets().collect(),
                        origins_ms: batch.origins_ms().collect(),
                    });
                }
                Err(error) => error,
            };
            match error {
                StoreError::Unavailable(_) => {
                    self.readiness.set(false);
                    self.metrics.retries.inc();
                    tracing::warn!(%error, retry_in = ?backoff, "database unavailable; consumption paused");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.settings.max_retry_backoff);
                }
                StoreError::Rejected(_) => {
                    let rejected = match self.store.find_rejected(&batch).await {
                        Ok(rejected) => rejected,
                        Err(error) if error.is_unavailable() => continue,
                        Err(error) => return Err(error.to_string()),
                    };
                    if rejected.is_empty() {
                        return Err(format!("{error}, but no single row is rejected on its own"));
                    }
                    let mut deliveries = Vec::new();
                    for row in batch.remove_rows(&rejected) {
                        tracing::warn!(
                            topic = self.settings.topic(row.source.input),
                            partition = row.source.partition,
                            offset = row.source.offset,
                            reason = %row.reason,
                            "row rejected by the database; dead-lettered"
                        );
                        self.metrics.record_dead_letter("rejected_by_database");
                        deliveries.push(dead_letter(
                            &self.producer,
                            &self.settings,
                            row.source,
                            None,
                            &row.json,
                            "rejected_by_database",
                            &row.reason,
                        ));
                    }
                    await_dead_letters(deliveries).await?;
                }
                StoreError::Other(_) => return Err(error.to_string()),
            }
        }
    }

    fn topics(&self) -> [&str; 2] {
        [
            self.settings.impressions_topic.as_str(),
            self.settings.outcomes_topic.as_str(),
        ]
    }
}

async fn await_dead_letters(deliveries: Vec<PendingDelivery>) -> Result<(), String> {
    for delivery in deliveries {
        delivery.await?;
    }
    Ok(())
}

fn dead_letter(
    producer: &FutureProducer,
    settings: &WriterSettings,
    source: Source,
    key_opt: Option<&[u8]>,
    value: &[u8],
    reason: &str,
    detail: &str,
) -> PendingDelivery {
    let topic = settings.topic(source.input);
    let partition_text = source.partition.to_string();
    let offset_text = source.offset.to_string();
    let source_text = format!("{topic}/{}/{}", source.partition, source.offset);
    let original_size = value.len().to_string();
    let mut payload = value;
    let mut headers = OwnedHeaders::new()
        .insert(header(keyed::HEADER_REASON, reason))
        .insert(header(keyed::HEADER_ERROR, detail))
        .insert(header(keyed::HEADER_SOURCE_TOPIC, topic))
        .insert(header(keyed::HEADER_SOURCE_PARTITION, &partition_text))
        .insert(header(keyed::HEADER_SOURCE_OFFSET, &offset_text))
        .insert(header(keyed::HEADER_SOURCE, &source_text));
    if payload.len() > MAX_DEAD_LETTER_BYTES {
        payload = &payload[..MAX_DEAD_LETTER_BYTES];
        headers = headers.insert(header("adjoin-truncated-from", &original_size));
    }
    let mut record = FutureRecord::<[u8], [u8]>::to(&settings.dlq_topic)
        .payload(payload)
        .headers(headers);
    if let Some(key) = key_opt {
        record = record.key(key);
    }
    match producer.send_result(record) {
        Ok(delivery) => Box::pin(async move {
            match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((error, _))) => Err(format!("a dead letter was not delivered: {error}")),
                Err(_) => Err("a dead letter's delivery was cancelled".to_owned()),
            }
        }),
        // The local queue is full or the producer is closing: a failed delivery,
        // which fails the batch; the restarted sink reads the record again.
        Err((error, _)) => {
            let message = format!("a dead letter could not be queued: {error}");
            Box::pin(async move { Err(message) })
        }
    }
}

impl Actor for SinkWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if let Err(error) = self.start_consuming(ctx) {
            self.supervision.fail(ctx, &error);
            return;
        }
        ctx.run_interval(TICK, |actor, ctx| {
            if !actor.stopping && actor.poller_opt.as_ref().is_some_and(Poller::is_finished) {
                actor.supervision.fail(ctx, &"the sink poll thread ended");
                return;
            }
            if actor.batch.is_due(actor.settings.limits, Instant::now()) {
                actor.flush(ctx);
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stop_consuming();
    }
}

impl Supervised for SinkWriter {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // `started` follows: a new consumer, resuming from the database's offsets.
        self.stop_consuming();
    }
}

impl Handler<RecordBatch> for SinkWriter {
    type Result = ();

    fn handle(&mut self, batch: RecordBatch, ctx: &mut Context<Self>) {
        let actor_metrics = self.actor_metrics.clone();
        let _timer = actor_metrics.handling();
        if self.stopping || self.current_assignment() != Some(batch.assignment) {
            // Read before a rebalance: every partition was revoked and assigned
            // again from the database's offsets, so these records come again.
            return;
        }
        for index in 0..batch.records.len() {
            fail::fail_point!("sink-record");
            self.take_record(&batch, index);
        }
        if self.batch.is_due(self.settings.limits, Instant::now()) {
            self.flush(ctx);
        }
    }
}

impl Handler<PartitionsRevoked> for SinkWriter {
    type Result = ();

    fn handle(&mut self, message: PartitionsRevoked, _ctx: &mut Context<Self>) {
        for (input, partition) in message.partitions {
            self.batch.drop_partition(input, partition);
        }
    }
}

impl Handler<Shutdown> for SinkWriter {
    type Result = ();

    fn handle(&mut self, _message: Shutdown, ctx: &mut Context<Self>) {
        tracing::info!("sink stopping: writing what is batched");
        self.stopping = true;
        if let Some(poller) = &self.poller_opt {
            poller.stop();
        }
        self.flush(ctx);
        ctx.wait(async {}.into_actor(self).map(|(), actor, ctx| {
            let _ = actor.producer.flush(Duration::from_secs(10));
            ctx.stop();
            actix::System::current().stop();
        }));
    }
}
