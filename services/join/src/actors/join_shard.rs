//! `JoinShard`: owns partition p of both keyed topics, feeds their records to its
//! `ShardState`, sends each outcome to `click-outcomes` keyed by click id, and
//! commits the state's replay offsets once every outcome before them is
//! acknowledged. Runs under a `Supervisor`: after a panic or a failed delivery it
//! drops its state and asks the poller to rewind both partitions to the offsets it
//! last committed, then rebuilds by replaying.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Supervised};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use adjoin_shared::kafka::{header, send_with_backpressure};
use adjoin_shared::keyed::{self, WatermarkMarker};
use adjoin_shared::metrics::ActorMetrics;
use adjoin_shared::schema::{Click, ClickOutcome, EventTime, Impression};
use adjoin_shared::supervision::Supervision;

use crate::acks::OutputAcks;
use crate::kafka_context::{JoinProducerContext, OutputOpaque};
use crate::messages::{KeyedBatch, KeyedRecord, RecordKind, Revoke, Shutdown};
use crate::metrics::JoinMetrics;
use crate::poller::Control;
use crate::shard_state::{JoinRules, ShardCounters, ShardState};
use crate::watermark::Side;

/// Batches waiting in a shard's mailbox at most; the poller waits beyond that.
pub const MAILBOX_CAPACITY: usize = 4;

/// Header on outcome records: the outcome code, so readers can branch unparsed.
pub const HEADER_OUTCOME: &str = "adjoin-outcome";

/// Dead-letter payloads are cut to this, as in ingest.
const MAX_DEAD_LETTER_BYTES: usize = 900 * 1024;

/// What a shard is configured with.
#[derive(Clone, Debug)]
pub struct ShardSettings {
    pub partition: i32,
    pub impressions_topic: String,
    pub clicks_topic: String,
    pub outcomes_topic: String,
    pub rules: JoinRules,
    pub commit_interval: Duration,
}

impl ShardSettings {
    fn topic(&self, side: Side) -> &str {
        match side {
            Side::Impressions => &self.impressions_topic,
            Side::Clicks => &self.clicks_topic,
        }
    }
}

pub struct JoinShard {
    settings: ShardSettings,
    state: ShardState,
    epoch: u64,
    producer: Arc<ThreadedProducer<JoinProducerContext>>,
    acks: Arc<OutputAcks>,
    control: Sender<Control>,
    /// Replay offsets not yet committed, with the output sequence number they
    /// wait for.
    pending_commits: VecDeque<(u64, [Option<i64>; 2])>,
    /// The offsets last handed to the poller to commit: where a restart rewinds to.
    committed: [Option<i64>; 2],
    /// Offsets read up to before a restart; the replay is over once past them.
    replay_target_opt: Option<([Option<i64>; 2], Instant)>,
    published: ShardCounters,
    outcomes: Vec<ClickOutcome>,
    /// Origin timestamps (`adjoin-origin-ms`) of the clicks waiting for their
    /// impression, by click id: their outcomes carry it on to the sink.
    origins: HashMap<String, i64>,
    metrics: JoinMetrics,
    actor_metrics: ActorMetrics,
    supervision: Supervision,
}

impl JoinShard {
    pub fn new(
        settings: ShardSettings,
        producer: Arc<ThreadedProducer<JoinProducerContext>>,
        control: Sender<Control>,
        metrics: JoinMetrics,
        supervision: Supervision,
    ) -> Self {
        let state = ShardState::new(settings.rules);
        let actor_metrics = supervision.metrics().clone();
        Self {
            settings,
            state,
            epoch: 0,
            producer,
            acks: Arc::new(OutputAcks::default()),
            control,
            pending_commits: VecDeque::new(),
            committed: [None, None],
            replay_target_opt: None,
            published: ShardCounters::default(),
            outcomes: Vec::new(),
            origins: HashMap::new(),
            metrics,
            actor_metrics,
            supervision,
        }
    }

    fn partition(&self) -> i32 {
        self.settings.partition
    }

    fn apply(&mut self, record: KeyedRecord) -> Result<(), KafkaError> {
        fail::fail_point!("join-shard-record");
        let side = record.side;
        if self.state.read_offsets()[side as usize].is_none() {
            tracing::info!(
                shard = self.partition(),
                side = side.as_str(),
                offset = record.offset,
                epoch = self.epoch,
                "shard starts reading"
            );
        }
        let decoded = match (record.kind, side) {
            (RecordKind::Impression, Side::Impressions) => {
                serde_json::from_slice::<Impression>(&record.payload)
                    .map(|impression| {
                        self.state
                            .on_impression(record.offset, &impression, &mut self.outcomes)
                    })
                    .map_err(|error| ("invalid_impression", error.to_string()))
            }
            (RecordKind::Click, Side::Clicks) => serde_json::from_slice::<Click>(&record.payload)
                .map(|click| {
                    let click_id = click.click_id.clone();
                    let waiting_before = self.state.num_waiting_clicks();
                    self.state
                        .on_click(record.offset, click, record.late, &mut self.outcomes);
                    if let Some(origin_ms) = record.origin_ms_opt {
                        // Decided now, or waiting: either way its outcome finds it here.
                        let decided = self
                            .outcomes
                            .iter()
                            .any(|outcome| outcome.click.click_id == click_id);
                        if decided || self.state.num_waiting_clicks() > waiting_before {
                            self.origins.insert(click_id, origin_ms);
                        }
                    }
                })
                .map_err(|error| ("invalid_click", error.to_string())),
            (RecordKind::Watermark, _) => {
                serde_json::from_slice::<WatermarkMarker>(&record.payload)
                    .map(|marker| {
                        self.state
                            .on_marker(side, record.offset, &marker, &mut self.outcomes)
                    })
                    .map_err(|error| ("invalid_marker", error.to_string()))
            }
            (RecordKind::Unknown, _) => Err((
                "unknown_kind",
                format!("no known {} header", keyed::HEADER_KIND),
            )),
            (kind, side) => Err((
                "wrong_topic",
                format!("a {kind:?} record on the {} side", side.as_str()),
            )),
        };
        if let Err((reason, message)) = decoded {
            self.state.skip(side, record.offset);
            self.dead_letter(&record, reason, &message)?;
        }
        let outcomes = std::mem::take(&mut self.outcomes);
        let result = outcomes.iter().try_for_each(|outcome| {
            let origin_ms_opt = self.origins.remove(&outcome.click.click_id);
            self.send_outcome(outcome, origin_ms_opt)
        });
        self.outcomes = outcomes;
        self.outcomes.clear();
        result
    }

    fn send_outcome(
        &self,
        outcome: &ClickOutcome,
        origin_ms_opt: Option<i64>,
    ) -> Result<(), KafkaError> {
        let Ok(value) = serde_json::to_vec(outcome) else {
            // A ClickOutcome is plain data; serialising it cannot fail.
            return Ok(());
        };
        let (epoch, seq) = self.acks.sending();
        let opaque: OutputOpaque = Box::new((Arc::clone(&self.acks), epoch, seq));
        let mut headers = OwnedHeaders::new_with_capacity(3)
            .insert(header(keyed::HEADER_KIND, keyed::KIND_OUTCOME))
            .insert(header(HEADER_OUTCOME, outcome.outcome.as_str()));
        if let Some(origin_ms) = origin_ms_opt {
            headers = headers.insert(header(keyed::HEADER_ORIGIN_MS, &origin_ms.to_string()));
        }
        let record = BaseRecord::with_opaque_to(&self.settings.outcomes_topic, opaque)
            .key(outcome.click.click_id.as_str())
            .payload(value.as_slice())
            .headers(headers);
        send_with_backpressure(&self.producer, record, &self.actor_metrics)
    }

    fn dead_letter(
        &self,
        record: &KeyedRecord,
        reason: &str,
        message: &str,
    ) -> Result<(), KafkaError> {
        tracing::warn!(
            shard = self.partition(),
            side = record.side.as_str(),
            offset = record.offset,
            reason,
            "keyed record dead-lettered"
        );
        self.metrics.dead_letter(self.partition(), reason);
        let topic = self.settings.topic(record.side);
        let dlq_topic = keyed::dlq_topic(topic);
        let partition_text = self.partition().to_string();
        let offset_text = record.offset.to_string();
        let payload = &record.payload[..record.payload.len().min(MAX_DEAD_LETTER_BYTES)];
        let source = format!("{topic}/{partition_text}/{offset_text}");
        let original_size = record.payload.len().to_string();
        let (epoch, seq) = self.acks.sending();
        let opaque: OutputOpaque = Box::new((Arc::clone(&self.acks), epoch, seq));
        let mut headers = OwnedHeaders::new_with_capacity(7)
            .insert(header(keyed::HEADER_REASON, reason))
            .insert(header(keyed::HEADER_ERROR, message))
            .insert(header(keyed::HEADER_SOURCE_TOPIC, topic))
            .insert(header(keyed::HEADER_SOURCE_PARTITION, &partition_text))
            .insert(header(keyed::HEADER_SOURCE_OFFSET, &offset_text))
            .insert(header(keyed::HEADER_SOURCE, &source));
        if payload.len() < record.payload.len() {
            // As in ingest: an oversize record cannot fail its own dead-lettering.
            headers = headers.insert(header("adjoin-truncated-from", &original_size));
        }
        let mut base = BaseRecord::<[u8], [u8], OutputOpaque>::with_opaque_to(&dlq_topic, opaque)
            .payload(payload)
            .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        send_with_backpressure(&self.producer, base, &self.actor_metrics)
    }
    /// Takes a snapshot of the replay offsets and commits the newest snapshot whose
    /// outputs are all acknowledged.
    fn on_commit_tick(&mut self, ctx: &mut Context<Self>) {
        if self.acks.has_failed() {
            self.supervision
                .fail(ctx, &"an outcome or dead letter was not delivered");
            return;
        }
        let offsets = self.state.replay_offsets();
        let last_pending = self
            .pending_commits
            .back()
            .map_or(self.committed, |(_, offsets)| *offsets);
        if offsets != last_pending {
            self.pending_commits
                .push_back((self.acks.next_seq(), offsets));
        }
        tracing::debug!(shard = self.partition(), in_flight = self.acks.num_in_flight(), replay = ?offsets, read = ?self.state.read_offsets(), detail = ?self.state.impressions_replay_detail(), waiting = self.state.num_waiting_clicks(), retained = self.state.num_retained_clicks(), live = self.state.num_live_impressions(), shard_wm = ?self.state.watermark().shard(), imp_wm = ?self.state.watermark().side(Side::Impressions), clk_wm = ?self.state.watermark().side(Side::Clicks), "commit tick");
        let mut ready_opt = None;
        while let Some((seq, offsets)) = self.pending_commits.front() {
            if !self.acks.acknowledged_before(*seq) {
                break;
            }
            ready_opt = Some(*offsets);
            self.pending_commits.pop_front();
        }
        if let Some(offsets) = ready_opt {
            self.commit(offsets);
        }
        self.publish_metrics();
    }

    fn commit(&mut self, offsets: [Option<i64>; 2]) {
        if offsets == self.committed {
            return;
        }
        self.committed = offsets;
        let _ = self.control.send(Control::Commit {
            partition: self.partition(),
            offsets,
        });
    }

    fn publish_metrics(&mut self) {
        let now_ms = EventTime::now().as_millis();
        self.metrics
            .publish(self.partition(), &self.state, &self.published, now_ms);
        self.published = self.state.counters();
    }

    /// Waits for every output to be acknowledged and returns the offsets to commit
    /// on hand-over: the current replay offsets if nothing is missing, else the
    /// newest acknowledged snapshot.
    fn flush(&mut self) -> Vec<(Side, i64)> {
        if let Err(error) = self.producer.flush(Duration::from_secs(30)) {
            tracing::warn!(shard = self.partition(), %error, "flush incomplete: the next owner replays from the last commit");
        }
        let offsets = if self.acks.num_in_flight() == 0 && !self.acks.has_failed() {
            self.state.replay_offsets()
        } else {
            self.committed
        };
        self.committed = offsets;
        self.publish_metrics();
        Side::BOTH
            .into_iter()
            .zip(offsets)
            .filter_map(|(side, offset_opt)| Some((side, offset_opt?)))
            .collect()
    }

    fn track_replay(&mut self) {
        let Some((target, started)) = self.replay_target_opt else {
            return;
        };
        let read = self.state.read_offsets();
        let caught_up = Side::BOTH.into_iter().all(|side| {
            let index = side as usize;
            target[index].is_none_or(|target| read[index].is_some_and(|read| read >= target))
        });
        if caught_up {
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!(shard = self.partition(), seconds, "replay caught up");
            self.metrics
                .replay_seconds
                .get_or_create(&JoinMetrics::shard(self.partition()))
                .set(seconds);
            self.replay_target_opt = None;
        }
    }
}

impl Actor for JoinShard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        ctx.run_interval(self.settings.commit_interval, |shard, ctx| {
            shard.on_commit_tick(ctx)
        });
    }
}

impl Supervised for JoinShard {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // Everything not committed is read again; outcomes re-emitted on the way
        // are the same, and the sink keeps the first.
        let read = self.state.read_offsets();
        self.epoch += 1;
        self.acks.reset(self.epoch);
        self.state = ShardState::new(self.settings.rules);
        self.published = ShardCounters::default();
        self.pending_commits.clear();
        self.outcomes.clear();
        self.origins.clear();
        self.replay_target_opt = Some((read, Instant::now()));
        self.actor_metrics.reset_mailbox_depth();
        tracing::info!(shard = self.partition(), epoch = self.epoch, committed = ?self.committed, "shard restarting: rewinding to committed offsets");
        let _ = self.control.send(Control::Rewind {
            partition: self.partition(),
            epoch: self.epoch,
            offsets: self.committed,
        });
    }
}

impl Handler<KeyedBatch> for JoinShard {
    type Result = ();

    fn handle(&mut self, batch: KeyedBatch, ctx: &mut Context<Self>) {
        let actor_metrics = self.actor_metrics.clone();
        let _timer = actor_metrics.handling();
        if batch.epoch != self.epoch {
            return;
        }
        for record in batch.records {
            if let Err(error) = self.apply(record) {
                self.supervision.fail(ctx, &error);
                return;
            }
        }
        self.track_replay();
    }
}

impl Handler<Revoke> for JoinShard {
    type Result = Vec<(Side, i64)>;

    fn handle(&mut self, _message: Revoke, ctx: &mut Context<Self>) -> Self::Result {
        let offsets = self.flush();
        tracing::info!(shard = self.partition(), ?offsets, "shard handed over");
        self.metrics.forget_shard(self.partition());
        ctx.stop();
        offsets
    }
}

impl Handler<Shutdown> for JoinShard {
    type Result = Vec<(Side, i64)>;

    fn handle(&mut self, _message: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        let offsets = self.flush();
        ctx.stop();
        offsets
    }
}
