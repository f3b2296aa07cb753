//! The ingest service: one actix System per raw topic (impressions, clicks), each
//! with a supervised `TopicIngestor` that decodes and validates producer records,
//! re-keys them by impression id into the co-partitioned keyed topics, sends bad
//! records to `<topic>.dlq` with their reason, tags late records and writes the
//! in-band watermark markers the join relies on. Raw offsets are committed only
//! once everything produced from them is acknowledged.

pub mod actors;
mod kafka_context;
pub mod messages;
pub mod metrics;
pub mod offsets;
mod poller;
pub mod routing;
pub mod watermark;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use actix::{Addr, System};
use anyhow::Context;
use rdkafka::producer::{Producer, ThreadedProducer};

use adjoin_shared::config::{Config, Service};
use adjoin_shared::kafka::{ensure_topics_blocking, KafkaEndpoint, TopicSpec};
use adjoin_shared::keyed::dlq_topic;
use adjoin_shared::metrics::{Health, Metrics, MetricsServer};
use adjoin_shared::schema::Decoder;
use adjoin_shared::supervision::{RestartPolicy, Supervisor};

use actors::topic_ingestor::{IngestorSettings, TopicIngestor};
use kafka_context::IngestProducerContext;
use messages::Shutdown;
use metrics::IngestMetrics;
use offsets::OffsetTracker;
use routing::RawKind;

/// A running ingest service: one system thread per enabled raw topic.
pub struct IngestService {
    topics: Vec<(RawKind, Addr<TopicIngestor>, JoinHandle<()>)>,
}

impl IngestService {
    /// Starts ingest for the enabled raw topics: creates the topics it writes (and
    /// the raw ones, if missing), then one supervised actor per raw topic.
    pub fn start(
        config: &Config,
        endpoint: &KafkaEndpoint,
        metrics: &Metrics,
        health: &Health,
    ) -> anyhow::Result<Self> {
        let kinds: Vec<RawKind> = [
            (RawKind::Impressions, config.ingest.impressions),
            (RawKind::Clicks, config.ingest.clicks),
        ]
        .into_iter()
        .filter_map(|(kind, enabled)| enabled.then_some(kind))
        .collect();
        anyhow::ensure!(
            !kinds.is_empty(),
            "ingest.impressions and ingest.clicks are both off: nothing to ingest"
        );
        let partitions = ensure_topics(config, endpoint)?;
        let ingest_metrics = IngestMetrics::register(metrics);
        let instance = adjoin_shared::kafka::instance_name(Service::Ingest.as_str());
        let mut topics = Vec::new();
        for kind in kinds {
            let raw_topic = match kind {
                RawKind::Impressions => config.topics.impressions.clone(),
                RawKind::Clicks => config.topics.clicks.clone(),
            };
            let keyed_topic = match kind {
                RawKind::Impressions => config.ingest.impressions_keyed_topic.clone(),
                RawKind::Clicks => config.ingest.clicks_keyed_topic.clone(),
            };
            let settings = IngestorSettings {
                kind,
                raw_partitions: partitions.raw(kind),
                raw_topic: raw_topic.clone(),
                keyed_topic,
                keyed_partitions: partitions.keyed,
                dlq_topic: dlq_topic(&raw_topic),
                // A group per raw topic: a restart or rebalance on one topic leaves
                // the other's consumers alone.
                group_id: format!("{}.{}", config.ingest.group_id, kind.as_str()),
                start_from: config.ingest.start_from,
                commit_interval: config.ingest.commit_interval,
                marker_interval: config.ingest.marker_interval,
                batch_records: config.ingest.batch_records,
                allowed_lateness: config.watermark.allowed_lateness,
                idle_timeout: config.watermark.idle_timeout,
                instance: instance.clone(),
            };
            let (addr, thread) = start_topic(
                settings,
                endpoint.clone(),
                Decoder::new(config.decode.clone()),
                ingest_metrics.clone(),
                metrics,
                health,
            )?;
            topics.push((kind, addr, thread));
        }
        Ok(Self { topics })
    }

    /// Stops consuming, flushes, commits what is acknowledged and waits for the
    /// topic systems to end.
    pub fn shutdown(self) {
        for (kind, addr, _) in &self.topics {
            if futures::executor::block_on(addr.send(Shutdown)).is_err() {
                tracing::warn!(topic = kind.as_str(), "ingest actor already gone");
            }
        }
        for (_, _, thread) in self.topics {
            let _ = thread.join();
        }
    }

    /// The actor of a raw topic, for tests.
    pub fn ingestor(&self, kind: RawKind) -> Option<&Addr<TopicIngestor>> {
        self.topics
            .iter()
            .find(|(candidate, _, _)| *candidate == kind)
            .map(|(_, addr, _)| addr)
    }
}

struct Partitions {
    impressions: i32,
    clicks: i32,
    keyed: i32,
}

impl Partitions {
    fn raw(&self, kind: RawKind) -> i32 {
        match kind {
            RawKind::Impressions => self.impressions,
            RawKind::Clicks => self.clicks,
        }
    }
}

fn ensure_topics(config: &Config, endpoint: &KafkaEndpoint) -> anyhow::Result<Partitions> {
    let spec = |name: &str| TopicSpec {
        name: name.to_owned(),
        partitions: config.topics.partitions,
        replication_factor: config.topics.replication_factor,
    };
    let specs = [
        spec(&config.topics.impressions),
        spec(&config.topics.clicks),
        spec(&config.ingest.impressions_keyed_topic),
        spec(&config.ingest.clicks_keyed_topic),
        spec(&dlq_topic(&config.topics.impressions)),
        spec(&dlq_topic(&config.topics.clicks)),
    ];
    let statuses = ensure_topics_blocking(endpoint, &specs).with_context(|| {
        format!(
            "creating or describing topics on {}",
            endpoint.bootstrap_servers()
        )
    })?;
    let (impressions_keyed, clicks_keyed) = (statuses[2].partitions, statuses[3].partitions);
    anyhow::ensure!(
        impressions_keyed == clicks_keyed,
        "{} has {impressions_keyed} partitions but {} has {clicks_keyed}: co-partitioning needs equal \
         counts; add partitions to the smaller one or configure other ingest keyed topics",
        config.ingest.impressions_keyed_topic,
        config.ingest.clicks_keyed_topic
    );
    Ok(Partitions {
        impressions: statuses[0].partitions,
        clicks: statuses[1].partitions,
        keyed: impressions_keyed,
    })
}

fn start_topic(
    settings: IngestorSettings,
    endpoint: KafkaEndpoint,
    decoder: Decoder,
    ingest_metrics: IngestMetrics,
    metrics: &Metrics,
    health: &Health,
) -> anyhow::Result<(Addr<TopicIngestor>, JoinHandle<()>)> {
    let kind = settings.kind;
    let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
    let producer: ThreadedProducer<IngestProducerContext> = endpoint
        .client_config()
        // Keeps each keyed partition in the order written, so a marker follows the
        // records before it even when a send is retried.
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(IngestProducerContext {
            tracker: Arc::clone(&tracker),
            metrics: ingest_metrics.clone(),
            kind: kind.as_str(),
        })
        .context("creating the ingest producer")?;
    let producer_connected = health.check(&format!("{}_producer_connected", kind.as_str()));
    producer
        .client()
        .fetch_metadata(None, Duration::from_secs(30))
        .with_context(|| {
            format!(
                "connecting the ingest producer to {}",
                endpoint.bootstrap_servers()
            )
        })?;
    producer_connected.set(true);
    let readiness = health.check(&format!("{}_partitions_assigned", kind.as_str()));
    let actor_metrics = metrics.actor(
        Service::Ingest.as_str(),
        &format!("{}_ingestor", kind.as_str()),
    );
    let producer = Arc::new(producer);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("ingest-{}", kind.as_str()))
        .spawn(move || {
            let system = System::new();
            system.block_on(async move {
                let addr = Supervisor::start(
                    actor_metrics,
                    RestartPolicy::default(),
                    move |_, supervision| {
                        TopicIngestor::new(
                            settings,
                            endpoint,
                            decoder,
                            producer,
                            tracker,
                            ingest_metrics,
                            supervision,
                            readiness,
                        )
                    },
                );
                let _ = addr_tx.send(addr);
            });
            if let Err(error) = system.run() {
                tracing::error!(%error, "ingest system ended with an error");
            }
        })
        .context("starting an ingest thread")?;
    let addr = addr_rx.recv().context("the ingest thread did not start")?;
    Ok((addr, thread))
}

/// Runs `adjoin ingest` until Ctrl-C or SIGTERM: the metrics server, then ingest
/// for the enabled raw topics; on the signal, a graceful shutdown.
pub fn run(config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.kafka.uses_embedded_cluster(),
        "adjoin ingest needs kafka.brokers (ADJOIN__KAFKA__BROKERS): an embedded mock cluster \
         would be visible to this process only; `adjoin demo` runs every service in one process"
    );
    let endpoint = KafkaEndpoint::from_config(&config.kafka).context("configuring Kafka")?;
    let metrics = Metrics::new();
    let health = Health::new();
    let listen = config.metrics.listen_for(Service::Ingest);
    let system = System::new();
    let server =
        system.block_on(async { MetricsServer::start(listen, metrics.clone(), health.clone()) })?;
    let service = IngestService::start(config, &endpoint, &metrics, &health)?;
    system.block_on(async {
        adjoin_shared::signals::wait_for_shutdown_signal().await;
    });
    tracing::info!("stopping ingest");
    service.shutdown();
    system.block_on(server.stop());
    Ok(())
}
