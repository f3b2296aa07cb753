use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};

use super::{EmbeddedCluster, KafkaEndpoint};

/// A topic a service owns and creates when missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// `-1` leaves it to the broker's default.
    pub replication_factor: i32,
}

/// What [`TopicAdmin::ensure_topics`] found or did for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicStatus {
    pub name: String,
    /// True when this call created it.
    pub created: bool,
    /// Partitions the topic has now (an existing topic keeps its own count).
    pub partitions: i32,
}

/// Creates the topics a service owns, if missing, from synchronous start-up code
/// (a runtime of its own for the admin calls), and reports their partition counts.
pub fn ensure_topics_blocking(
    endpoint: &KafkaEndpoint,
    specs: &[TopicSpec],
) -> Result<Vec<TopicStatus>, KafkaError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            KafkaError::AdminOpCreation(format!("starting a runtime for the topic admin: {error}"))
        })?;
    let admin = TopicAdmin::new(endpoint)?;
    let result = runtime.block_on(admin.ensure_topics(specs));
    if result.is_err() && !endpoint.is_embedded() {
        // The admin error alone is often just "timed out"; say why, before the
        // caller exits with it.
        for problem in connection_problems(endpoint, Duration::from_secs(5)) {
            tracing::error!(%problem, "librdkafka reports, connecting to the brokers");
        }
    }
    result
}

/// What librdkafka says, within `wait`, about connecting to `endpoint`'s
/// brokers: refused connections, TLS handshakes, SASL. A client hears of these
/// only as log and error events on its main queue, which an admin client never
/// serves, so a failing admin call says no more than "operation timed out"; a
/// producer polled for a while brings them out. Warnings and errors only, each
/// once, in the order first seen.
pub fn connection_problems(endpoint: &KafkaEndpoint, wait: Duration) -> Vec<String> {
    let producer: BaseProducer<Problems> = match endpoint
        .client_config()
        .create_with_context(Problems::default())
    {
        Ok(producer) => producer,
        Err(error) => return vec![error.to_string()],
    };
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        producer.poll(Duration::from_millis(100));
    }
    let problems = producer.context().0.lock().expect("problems lock").clone();
    problems
}

#[derive(Default)]
struct Problems(Mutex<Vec<String>>);

impl Problems {
    fn note(&self, problem: String) {
        let mut seen = self.0.lock().expect("problems lock");
        if !seen.contains(&problem) {
            seen.push(problem);
        }
    }
}

impl ClientContext for Problems {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if !matches!(
            level,
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug
        ) {
            self.note(format!("{facility}: {message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.note(format!("{error}: {reason}"));
    }
}

impl ProducerContext for Problems {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Creates and describes topics.
pub struct TopicAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    embedded: Option<EmbeddedCluster>,
    timeout: Duration,
}

impl TopicAdmin {
    pub fn new(endpoint: &KafkaEndpoint) -> Result<Self, KafkaError> {
        let client = endpoint
            .client_config()
            // Looking a topic up must not create it with the broker's defaults.
            .set("allow.auto.create.topics", "false")
            .create::<AdminClient<DefaultClientContext>>()?;
        Ok(Self {
            client: Arc::new(client),
            embedded: endpoint.embedded().cloned(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Creates each topic that does not exist yet and reports every topic's
    /// partition count. Topics that exist are left as they are: a different
    /// partition count is for the caller to judge (co-partitioning needs equal
    /// counts), so it is reported, not changed.
    pub async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<Vec<TopicStatus>, KafkaError> {
        if let Some(embedded) = &self.embedded {
            return self.ensure_embedded_topics(embedded, specs).await;
        }
        let new_topics: Vec<NewTopic<'_>> = specs
            .iter()
            .map(|spec| {
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication_factor),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = self
            .client
            .create_topics(new_topics.iter(), &options)
            .await?;
        let mut statuses = Vec::with_capacity(specs.len());
        for (spec, result) in specs.iter().zip(results) {
            let created = match result {
                Ok(_) => true,
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => false,
                Err((name, code)) => {
                    return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                        tracing::error!(topic = %name, error = %code, "cannot create topic");
                    });
                }
            };
            let partitions = self.wait_for_partitions(&spec.name).await?;
            if created {
                tracing::info!(topic = %spec.name, partitions, "created topic");
            } else if partitions != spec.partitions {
                tracing::warn!(
                    topic = %spec.name,
                    partitions,
                    configured = spec.partitions,
                    "topic exists with a different partition count than topics.partitions"
                );
            }
            statuses.push(TopicStatus {
                name: spec.name.clone(),
                created,
                partitions,
            });
        }
        Ok(statuses)
    }

    async fn ensure_embedded_topics(
        &self,
        embedded: &EmbeddedCluster,
        specs: &[TopicSpec],
    ) -> Result<Vec<TopicStatus>, KafkaError> {
        let mut statuses = Vec::with_capacity(specs.len());
        for spec in specs {
            let existing = self.partition_count(&spec.name).await?;
            if existing.is_none() {
                embedded.create_topic(&spec.name, spec.partitions, spec.replication_factor)?;
            }
            let partitions = self.wait_for_partitions(&spec.name).await?;
            statuses.push(TopicStatus {
                name: spec.name.clone(),
                created: existing.is_none(),
                partitions,
            });
        }
        Ok(statuses)
    }

    /// Returns the partition count of a topic, or `None` when it does not exist.
    pub async fn partition_count(&self, topic: &str) -> Result<Option<i32>, KafkaError> {
        let client = Arc::clone(&self.client);
        let topic_name = topic.to_owned();
        let timeout = self.timeout;
        // fetch_metadata blocks on the network; keep it off the actor threads.
        let metadata = tokio::task::spawn_blocking(move || {
            client.inner().fetch_metadata(Some(&topic_name), timeout)
        })
        .await
        .map_err(|_| KafkaError::MetadataFetch(RDKafkaErrorCode::Fail))??;
        let Some(found) = metadata
            .topics()
            .iter()
            .find(|candidate| candidate.name() == topic)
        else {
            return Ok(None);
        };
        if found.error().is_some() || found.partitions().is_empty() {
            return Ok(None);
        }
        Ok(Some(found.partitions().len() as i32))
    }

    /// Brokers propagate a new topic's metadata asynchronously; wait until it shows.
    async fn wait_for_partitions(&self, topic: &str) -> Result<i32, KafkaError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(partitions) = self.partition_count(topic).await? {
                return Ok(partitions);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
