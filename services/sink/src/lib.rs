//! The sink service: batches impressions (from `impressions.keyed`) and click
//! outcomes (from `click-outcomes`) into PostgreSQL or SQLite with per-minute
//! rollups, storing its input offsets in the same transaction, so every impression
//! and every click lands exactly once whatever crashes or restarts in between.
//!
//! One `SinkWriter` actor per process, under a supervisor, fed by a poll thread;
//! the database work is in [`store`], the batching rules in [`batch`].

pub mod actors;
pub mod batch;
mod kafka_context;
pub mod messages;
pub mod metrics;
mod poller;
pub mod records;
pub mod store;

use std::sync::mpsc::channel;
use std::thread::JoinHandle;

use actix::{Addr, System};
use anyhow::Context;
use rdkafka::producer::FutureProducer;

use adjoin_shared::config::{redact_url, Config, Service};
use adjoin_shared::kafka::{ensure_topics_blocking, KafkaEndpoint, TopicSpec};
use adjoin_shared::metrics::{Health, Metrics, MetricsServer};
use adjoin_shared::supervision::{RestartPolicy, Supervisor};

use actors::writer::{SinkWriter, WriterSettings};
use batch::BatchLimits;
use messages::Shutdown;
use metrics::SinkMetrics;
use store::Store;

/// A running sink: its actor system on a thread of its own.
pub struct SinkService {
    writer: Addr<SinkWriter>,
    system: System,
    thread: Option<JoinHandle<()>>,
}

impl SinkService {
    /// Migrates the database, creates the topics the sink writes (and its inputs,
    /// if missing) and starts the writer, which joins the consumer group.
    pub fn start(
        config: &Config,
        endpoint: &KafkaEndpoint,
        metrics: &Metrics,
        health: &Health,
    ) -> anyhow::Result<Self> {
        ensure_topics(config, endpoint)?;
        let sink_metrics = SinkMetrics::register(metrics);
        let producer: FutureProducer = endpoint
            .client_config()
            .set("linger.ms", "5")
            .create()
            .context("creating the sink's dead-letter producer")?;
        let settings = WriterSettings {
            group_id: config.sink.group_id.clone(),
            impressions_topic: config.ingest.impressions_keyed_topic.clone(),
            outcomes_topic: config.join.outcomes_topic.clone(),
            dlq_topic: config.sink.dlq_topic.clone(),
            limits: BatchLimits {
                rows: config.sink.batch_rows,
                bytes: config.sink.batch_bytes,
                wait: config.sink.batch_wait,
            },
            batch_records: config.sink.batch_rows.clamp(1, 10_000),
            max_retry_backoff: config.sink.max_retry_backoff,
            database_url: config.database.url.clone(),
            instance: adjoin_shared::kafka::instance_name(Service::Sink.as_str()),
        };
        let readiness = health.check("sink_writing");
        let actor_metrics = metrics.actor(Service::Sink.as_str(), "sink_writer");
        let endpoint = endpoint.clone();
        let pool_size = config.sink.pool_size;
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("sink-system".to_owned())
            .spawn(move || {
                let runner = System::new();
                let opened = runner.block_on(Store::open(&settings.database_url, pool_size));
                let store = match opened {
                    Ok(store) => store,
                    Err(error) => {
                        let _ = tx.send(Err(error));
                        return;
                    }
                };
                let writer = runner.block_on(async move {
                    Supervisor::start(actor_metrics, RestartPolicy::default(), |_, supervision| {
                        SinkWriter::new(
                            settings,
                            endpoint,
                            store,
                            producer,
                            sink_metrics,
                            supervision,
                            readiness,
                        )
                    })
                });
                let _ = tx.send(Ok((System::current(), writer)));
                if let Err(error) = runner.run() {
                    tracing::error!(%error, "sink system ended with an error");
                }
            })
            .context("starting the sink thread")?;
        let (system, writer) = rx
            .recv()
            .context("the sink thread did not start")?
            .with_context(|| {
                format!(
                    "opening the database {} (database.url / ADJOIN__DATABASE__URL)",
                    redact_url(&config.database.url)
                )
            })?;
        tracing::info!(group = %config.sink.group_id, database = %redact_url(&config.database.url), "sink started");
        Ok(Self {
            writer,
            system,
            thread: Some(thread),
        })
    }

    /// Writes what is batched, commits, leaves the group and stops.
    pub fn shutdown(mut self) {
        let writer = self.writer.clone();
        let sent =
            std::thread::spawn(move || futures::executor::block_on(writer.send(Shutdown)).is_ok())
                .join()
                .unwrap_or(false);
        if !sent {
            self.system.stop();
        }
        if let Some(thread) = self.thread.take() {
            // The writer stops its system once the last batch is written.
            let _ = thread.join();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

fn ensure_topics(config: &Config, endpoint: &KafkaEndpoint) -> anyhow::Result<()> {
    let spec = |name: &str| TopicSpec {
        name: name.to_owned(),
        partitions: config.topics.partitions,
        replication_factor: config.topics.replication_factor,
    };
    let specs = [
        spec(&config.ingest.impressions_keyed_topic),
        spec(&config.join.outcomes_topic),
        spec(&config.sink.dlq_topic),
    ];
    ensure_topics_blocking(endpoint, &specs).with_context(|| {
        format!(
            "creating or describing topics on {}",
            endpoint.bootstrap_servers()
        )
    })?;
    Ok(())
}

/// Runs `adjoin sink` until Ctrl-C or SIGTERM: the metrics server, then the sink;
/// on the signal, the batch in hand is written and the process exits.
pub fn run(config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.kafka.uses_embedded_cluster(),
        "adjoin sink needs kafka.brokers (ADJOIN__KAFKA__BROKERS): an embedded mock cluster \
         would be visible to this process only; `adjoin demo` runs every service in one process"
    );
    let endpoint = KafkaEndpoint::from_config(&config.kafka).context("configuring Kafka")?;
    let metrics = Metrics::new();
    let health = Health::new();
    let listen = config.metrics.listen_for(Service::Sink);
    let system = System::new();
    let server =
        system.block_on(async { MetricsServer::start(listen, metrics.clone(), health.clone()) })?;
    let service = SinkService::start(config, &endpoint, &metrics, &health)?;
    system.block_on(async {
        adjoin_shared::signals::wait_for_shutdown_signal().await;
    });
    tracing::info!("stopping sink");
    service.shutdown();
    system.block_on(server.stop());
    Ok(())
}
