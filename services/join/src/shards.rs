//! The shards of one join process: which partition pairs it owns, each shard's
//! address and epoch, and the records polled for it but not yet handed over.
//! Used from the poll thread only (the poll loop and the rebalance callbacks
//! inside `poll`), behind a mutex because both reach it through the consumer.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use actix::{Addr, ArbiterHandle};
use rdkafka::producer::ThreadedProducer;

use adjoin_shared::metrics::{ActorMetrics, Metrics, ReadinessCheck};
use adjoin_shared::supervision::{RestartPolicy, Supervisor};

use crate::actors::join_shard::{JoinShard, ShardSettings};
use crate::kafka_context::{wait, JoinProducerContext};
use crate::messages::{KeyedRecord, Revoke, Shutdown};
use crate::metrics::JoinMetrics;
use crate::poller::Control;
use crate::watermark::Side;

/// Everything needed to start a shard.
pub struct ShardFactory {
    pub template: ShardSettings,
    pub producer: Arc<ThreadedProducer<JoinProducerContext>>,
    pub control: Sender<Control>,
    pub metrics: JoinMetrics,
    pub registry: Metrics,
    pub arbiters: Vec<ArbiterHandle>,
    pub service: &'static str,
}

struct ShardEntry {
    addr: Addr<JoinShard>,
    epoch: u64,
    actor_metrics: ActorMetrics,
}

/// Polled records on their way to a shard.
pub struct Handover {
    pub partition: i32,
    pub addr: Addr<JoinShard>,
    pub epoch: u64,
    pub actor_metrics: ActorMetrics,
    pub records: Vec<KeyedRecord>,
}

pub struct Shards {
    factory: ShardFactory,
    entries: BTreeMap<i32, ShardEntry>,
    pending: HashMap<i32, Vec<KeyedRecord>>,
    num_pending: usize,
    readiness: ReadinessCheck,
}

impl Shards {
    pub fn new(factory: ShardFactory, readiness: ReadinessCheck) -> Self {
        Self {
            factory,
            entries: BTreeMap::new(),
            pending: HashMap::new(),
            num_pending: 0,
            readiness,
        }
    }

    /// Starts the shard of partition pair `partition` on one of the worker threads.
    pub fn assign(&mut self, partition: i32) {
        if self.entries.contains_key(&partition) {
            return;
        }
        let factory = &self.factory;
        let arbiter = &factory.arbiters[partition as usize % factory.arbiters.len()];
        let mut settings = factory.template.clone();
        settings.partition = partition;
        let producer = Arc::clone(&factory.producer);
        let control = factory.control.clone();
        let metrics = factory.metrics.clone();
        let actor_metrics = factory
            .registry
            .actor(factory.service, &format!("shard_{partition}"));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let supervised_metrics = actor_metrics.clone();
        let spawned = arbiter.spawn_fn(move || {
            let addr = Supervisor::start(
                supervised_metrics,
                RestartPolicy::default(),
                move |_, supervision| {
                    JoinShard::new(settings, producer, control, metrics, supervision)
                },
            );
            let _ = addr_tx.send(addr);
        });
        let addr_opt = spawned.then(|| addr_rx.recv().ok()).flatten();
        let Some(addr) = addr_opt else {
            tracing::error!(
                shard = partition,
                "cannot start the shard: its worker thread is gone"
            );
            return;
        };
        self.pending.remove(&partition);
        actor_metrics.reset_mailbox_depth();
        self.entries.insert(
            partition,
            ShardEntry {
                addr,
                epoch: 0,
                actor_metrics,
            },
        );
    }

    /// Hands a shard over: it flushes, stops and returns the offsets to commit.
    pub fn revoke(&mut self, partition: i32) -> Option<Vec<(Side, i64)>> {
        self.drop_pending(partition);
        let entry = self.entries.remove(&partition)?;
        wait(entry.addr.send(Revoke)).ok()
    }

    /// Stops every shard; returns each one's offsets to commit.
    pub fn shutdown(&mut self) -> Vec<(i32, Vec<(Side, i64)>)> {
        self.pending.clear();
        self.num_pending = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|(partition, entry)| {
                Some((partition, wait(entry.addr.send(Shutdown)).ok()?))
            })
            .collect()
    }

    /// Records a shard's new epoch after its partitions were rewound; records
    /// polled for it before the rewind are dropped.
    pub fn rewound(&mut self, partition: i32, epoch: u64) {
        self.drop_pending(partition);
        if let Some(entry) = self.entries.get_mut(&partition) {
            entry.epoch = epoch;
        }
    }

    fn drop_pending(&mut self, partition: i32) {
        if let Some(records) = self.pending.remove(&partition) {
            self.num_pending -= records.len();
        }
    }

    pub fn owns(&self, partition: i32) -> bool {
        self.entries.contains_key(&partition)
    }

    /// Ready once the group has given this process its share, even none: a spare
    /// process beyond the partition count is healthy, waiting to take over.
    pub fn set_ready(&self) {
        self.readiness.set(true);
    }

    pub fn push(&mut self, partition: i32, record: KeyedRecord) -> usize {
        self.pending.entry(partition).or_default().push(record);
        self.num_pending += 1;
        self.num_pending
    }

    /// Takes the polled records of every shard, with the address and epoch to
    /// send them to.
    pub fn take_batches(&mut self) -> Vec<Handover> {
        self.num_pending = 0;
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .filter_map(|(partition, records)| {
                let entry = self.entries.get(&partition)?;
                Some(Handover {
                    partition,
                    addr: entry.addr.clone(),
                    epoch: entry.epoch,
                    actor_metrics: entry.actor_metrics.clone(),
                    records,
                })
            })
            .collect()
    }
}
