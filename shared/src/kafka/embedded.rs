use std::fmt;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;

/// librdkafka's in-process mock cluster, for the zero-setup demo and tests.
///
/// `MockCluster` is neither `Send` nor `Sync`, so it lives on a thread of its own
/// until the last handle is dropped; clients reach it over TCP on loopback like
/// any broker.
#[derive(Clone)]
pub struct EmbeddedCluster {
    inner: Arc<Inner>,
}

struct Inner {
    bootstrap_servers: String,
    /// Dropping the sender ends the cluster's thread.
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<thread::JoinHandle<()>>,
}

enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        replication_factor: i32,
        reply: mpsc::Sender<Result<(), KafkaError>>,
    },
}

fn cluster_gone() -> KafkaError {
    KafkaError::MockCluster(rdkafka::types::RDKafkaErrorCode::Fail)
}

impl EmbeddedCluster {
    /// Starts a mock cluster of one broker.
    pub fn start() -> Result<Self, KafkaError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (command_tx, command_rx) = mpsc::channel::<Command>();
        let thread = thread::Builder::new()
            .name("kafka-mock-cluster".to_owned())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Serves commands until every handle is gone (the sender is dropped).
                for command in command_rx {
                    match command {
                        Command::CreateTopic {
                            name,
                            partitions,
                            replication_factor,
                            reply,
                        } => {
                            let _ = reply.send(cluster.create_topic(
                                &name,
                                partitions,
                                replication_factor.max(1),
                            ));
                        }
                    }
                }
                drop(cluster);
            })
            .map_err(|_| cluster_gone())?;
        let bootstrap_servers = ready_rx.recv().map_err(|_| cluster_gone())??;
        Ok(Self {
            inner: Arc::new(Inner {
                bootstrap_servers,
                commands: Some(command_tx),
                thread: Some(thread),
            }),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.inner.bootstrap_servers
    }

    /// Creates a topic. The mock cluster does not implement the CreateTopics API,
    /// so [`super::TopicAdmin`] comes here for embedded clusters.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
    ) -> Result<(), KafkaError> {
        let (reply_tx, reply_rx) = mpsc::channel();
        let commands = self.inner.commands.as_ref().ok_or_else(cluster_gone)?;
        commands
            .send(Command::CreateTopic {
                name: name.to_owned(),
                partitions,
                replication_factor,
                reply: reply_tx,
            })
            .map_err(|_| cluster_gone())?;
        reply_rx.recv().map_err(|_| cluster_gone())?
    }
}

impl fmt::Debug for EmbeddedCluster {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("EmbeddedCluster")
            .field("bootstrap_servers", &self.inner.bootstrap_servers)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
