//! Reading topics back in tests, and the embedded cluster tuned for them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::Message;

use crate::config::KafkaConfig;
use crate::kafka::KafkaEndpoint;

use super::unique_name;

/// The embedded mock cluster, with clients that notice a consumer which died
/// without leaving its group after 6 s rather than 45 s.
pub fn embedded_endpoint() -> KafkaEndpoint {
    let mut kafka = KafkaConfig::default();
    kafka
        .options
        .insert("session.timeout.ms".to_owned(), "6000".to_owned());
    kafka
        .options
        .insert("heartbeat.interval.ms".to_owned(), "1000".to_owned());
    KafkaEndpoint::from_config(&kafka).unwrap()
}

/// A record read back from a topic a service writes.
#[derive(Clone, Debug)]
pub struct Written {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Written {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).unwrap()
    }
}

/// Reads the topics until `done` says enough arrived (or a minute passes).
pub fn read_until(
    endpoint: &KafkaEndpoint,
    topics: &[&str],
    done: impl Fn(&[Written]) -> bool,
) -> Vec<Written> {
    let consumer: BaseConsumer = endpoint
        .client_config()
        .set("group.id", unique_name("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    let mut written = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done(&written) && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.unwrap();
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        let value = header
                            .value
                            .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
                        (header.key.to_owned(), value.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        written.push(Written {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            value: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    written
}
