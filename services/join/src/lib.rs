//! The join service: one `JoinShard` actor per keyed partition pair, holding
//! impression state and giving every distinct click exactly one outcome on
//! `click-outcomes`, with offsets committed so a restarted shard replays to the same
//! state. The rules live in the pure [`shard_state`] and [`watermark`] modules; the
//! actor, the poll thread and the rebalance callbacks only move records.
//!
//! Co-partitioning: one consumer per process subscribes to both keyed topics with
//! the range assignor. Range assigns each topic's partitions to the sorted group
//! members in equal runs, so with equal partition counts a member gets the same
//! partition numbers of both topics; the rebalance callback checks it.

pub mod acks;
pub mod actors;
pub mod compact;
mod kafka_context;
pub mod messages;
pub mod metrics;
mod poller;
pub mod shard_state;
mod shards;
pub mod watermark;

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle, System, SystemRunner};
use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{Producer, ThreadedProducer};

use adjoin_shared::config::{Config, Service};
use adjoin_shared::kafka::{ensure_topics_blocking, KafkaEndpoint, TopicSpec};
use adjoin_shared::keyed::dlq_topic;
use adjoin_shared::metrics::{Health, Metrics, MetricsServer};

use actors::join_shard::ShardSettings;
use kafka_context::{JoinConsumerContext, JoinProducerContext};
use metrics::JoinMetrics;
use poller::Poller;
use shard_state::JoinRules;
use shards::{ShardFactory, Shards};

/// A running join process: the poll thread and the worker threads of its shards.
pub struct JoinService {
    poller: Poller,
    workers: Vec<Arbiter>,
    producer: Arc<ThreadedProducer<JoinProducerContext>>,
    system_thread: Option<(System, JoinHandle<()>)>,
}

impl JoinService {
    /// Creates the topics the join writes (and the keyed ones, if missing), joins
    /// the consumer group and starts a shard for each partition pair it is given.
    pub fn start(
        config: &Config,
        endpoint: &KafkaEndpoint,
        metrics: &Metrics,
        health: &Health,
    ) -> anyhow::Result<Self> {
        ensure_topics(config, endpoint)?;
        let join_metrics = JoinMetrics::register(metrics);
        let producer: ThreadedProducer<JoinProducerContext> = endpoint
            .client_config()
            // Outcomes of one click go to one partition, in order, even on retries.
            .set("enable.idempotence", "true")
            // murmur2 of the click id, as the Java client partitions.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .create_with_context(JoinProducerContext {
                metrics: join_metrics.clone(),
            })
            .context("creating the join producer")?;
        producer
            .client()
            .fetch_metadata(None, Duration::from_secs(30))
            .with_context(|| {
                format!(
                    "connecting the join producer to {}",
                    endpoint.bootstrap_servers()
                )
            })?;
        health.check("producer_connected").set(true);
        let producer = Arc::new(producer);

        let (system, system_thread, workers) = start_workers(config.join.workers)?;
        let (control_tx, control_rx) = channel();
        let factory = ShardFactory {
            template: ShardSettings {
                partition: -1,
                impressions_topic: config.ingest.impressions_keyed_topic.clone(),
                clicks_topic: config.ingest.clicks_keyed_topic.clone(),
                outcomes_topic: config.join.outcomes_topic.clone(),
                rules: JoinRules::new(config.join.window, config.join.skew),
                commit_interval: config.join.commit_interval,
            },
            producer: Arc::clone(&producer),
            control: control_tx,
            metrics: join_metrics.clone(),
            registry: metrics.clone(),
            arbiters: workers
                .iter()
                .map(Arbiter::handle)
                .collect::<Vec<ArbiterHandle>>(),
            service: Service::Join.as_str(),
        };
        let shards = Arc::new(Mutex::new(Shards::new(
            factory,
            health.check("shards_assigned"),
        )));
        let consumer: BaseConsumer<JoinConsumerContext> = endpoint
            .client_config()
            .set("group.id", &config.join.group_id)
            .set(
                "client.id",
                adjoin_shared::kafka::instance_name(Service::Join.as_str()),
            )
            // Offsets are the shards' replay points, committed by hand.
            .set("enable.auto.commit", "false")
            // Keyed topics hold everything ingest wrote: a new group starts there.
            .set("auto.offset.reset", "earliest")
            // Range gives a member the same partition numbers of both keyed topics.
            .set("partition.assignment.strategy", "range")
            .set(
                "statistics.interval.ms",
                adjoin_shared::kafka::STATISTICS_INTERVAL_MS,
            )
            .create_with_context(JoinConsumerContext {
                shards,
                impressions_topic: config.ingest.impressions_keyed_topic.clone(),
                clicks_topic: config.ingest.clicks_keyed_topic.clone(),
                metrics: join_metrics,
            })
            .context("creating the join consumer")?;
        consumer
            .subscribe(&[
                &config.ingest.impressions_keyed_topic,
                &config.ingest.clicks_keyed_topic,
            ])
            .context("subscribing to the keyed topics")?;
        let poller = Poller::spawn(consumer, control_rx, config.join.batch_records)
            .context("starting the join poll thread")?;
        tracing::info!(group = %config.join.group_id, "join started");
        Ok(Self {
            poller,
            workers,
            producer,
            system_thread: Some((system, system_thread)),
        })
    }

    /// Stops polling, flushes every shard, commits its offsets, leaves the group and
    /// stops the worker threads.
    pub fn shutdown(mut self) {
        self.poller.shutdown();
        if let Err(error) = self.producer.flush(Duration::from_secs(30)) {
            tracing::warn!(%error, "join producer flush incomplete");
        }
        for worker in &self.workers {
            worker.stop();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        if let Some((system, thread)) = self.system_thread.take() {
            system.stop();
            let _ = thread.join();
        }
    }

    /// Returns whether the poll thread ended (it only does on shutdown).
    pub fn is_finished(&self) -> bool {
        self.poller.is_finished()
    }
}

/// Starts an actix system on its own thread and `num_workers` arbiters (threads)
/// under it for the shards; 0 means one per CPU core.
fn start_workers(num_workers: usize) -> anyhow::Result<(System, JoinHandle<()>, Vec<Arbiter>)> {
    let num_workers = if num_workers == 0 {
        std::thread::available_parallelism().map_or(2, usize::from)
    } else {
        num_workers
    };
    let (tx, rx) = channel();
    let thread = std::thread::Builder::new()
        .name("join-system".to_owned())
        .spawn(move || {
            let runner: SystemRunner = System::new();
            let workers: Vec<Arbiter> = (0..num_workers).map(|_| Arbiter::new()).collect();
            let _ = tx.send((System::current(), workers));
            if let Err(error) = runner.run() {
                tracing::error!(%error, "join system ended with an error");
            }
        })
        .context("starting the join system thread")?;
    let (system, workers) = rx.recv().context("the join system thread did not start")?;
    Ok((system, thread, workers))
}

fn ensure_topics(config: &Config, endpoint: &KafkaEndpoint) -> anyhow::Result<()> {
    let spec = |name: &str| TopicSpec {
        name: name.to_owned(),
        partitions: config.topics.partitions,
        replication_factor: config.topics.replication_factor,
    };
    let specs = [
        spec(&config.ingest.impressions_keyed_topic),
        spec(&config.ingest.clicks_keyed_topic),
        spec(&config.join.outcomes_topic),
        spec(&dlq_topic(&config.ingest.impressions_keyed_topic)),
        spec(&dlq_topic(&config.ingest.clicks_keyed_topic)),
    ];
    let statuses = ensure_topics_blocking(endpoint, &specs).with_context(|| {
        format!(
            "creating or describing topics on {}",
            endpoint.bootstrap_servers()
        )
    })?;
    let (impressions, clicks) = (statuses[0].partitions, statuses[1].partitions);
    anyhow::ensure!(
        impressions == clicks,
        "{} has {impressions} partitions but {} has {clicks}: the join needs equal counts \
         (partition p of both is one shard); add partitions to the smaller one",
        config.ingest.impressions_keyed_topic,
        config.ingest.clicks_keyed_topic
    );
    Ok(())
}

/// Runs `adjoin join` until Ctrl-C or SIGTERM: the metrics server, then the join;
/// on the signal, a graceful shutdown.
pub fn run(config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.kafka.uses_embedded_cluster(),
        "adjoin join needs kafka.brokers (ADJOIN__KAFKA__BROKERS): an embedded mock cluster \
         would be visible to this process only; `adjoin demo` runs every service in one process"
    );
    let endpoint = KafkaEndpoint::from_config(&config.kafka).context("configuring Kafka")?;
    let metrics = Metrics::new();
    let health = Health::new();
    let listen = config.metrics.listen_for(Service::Join);
    let system = System::new();
    let server =
        system.block_on(async { MetricsServer::start(listen, metrics.clone(), health.clone()) })?;
    let service = JoinService::start(config, &endpoint, &metrics, &health)?;
    system.block_on(async {
        adjoin_shared::signals::wait_for_shutdown_signal().await;
    });
    tracing::info!("stopping join");
    service.shutdown();
    system.block_on(server.stop());
    Ok(())
}
