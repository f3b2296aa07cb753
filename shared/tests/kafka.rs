//! Kafka plumbing against the embedded mock cluster (in-process) and Tansu (a real
//! Kafka-protocol broker in its own process): topics are created once, and the
//! client configuration produces and consumes.

use std::time::Duration;

use adjoin_shared::config::KafkaConfig;
use adjoin_shared::kafka::{connection_problems, KafkaEndpoint, TopicAdmin, TopicSpec};
use adjoin_shared::testing::{unique_name, Tansu, TlsFront};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        name: name.to_owned(),
        partitions,
        replication_factor: 1,
    }
}

async fn topics_are_created_once_and_carry_records(endpoint: &KafkaEndpoint) {
    let admin = TopicAdmin::new(endpoint).unwrap();
    let impressions = unique_name("impressions");
    let clicks = unique_name("clicks");
    let specs = [spec(&impressions, 4), spec(&clicks, 4)];

    let first = admin.ensure_topics(&specs).await.unwrap();
    assert!(first.iter().all(|status| status.created), "{first:?}");
    assert!(
        first.iter().all(|status| status.partitions == 4),
        "{first:?}"
    );

    // Existing topics are found, not recreated; their real partition count wins.
    let again = admin.ensure_topics(&[spec(&impressions, 8)]).await.unwrap();
    assert!(!again[0].created);
    assert_eq!(again[0].partitions, 4);
    assert_eq!(
        admin.partition_count(&unique_name("absent")).await.unwrap(),
        None
    );

    let producer: FutureProducer = endpoint.client_config().create().unwrap();
    for partition in 0..4 {
        producer
            .send(
                FutureRecord::to(&impressions)
                    .partition(partition)
                    .key("imp-1")
                    .payload(&format!("record {partition}")),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .unwrap();
    }

    let consumer: BaseConsumer = endpoint
        .client_config()
        .set("group.id", unique_name("test"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&impressions]).unwrap();
    let mut payloads = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while payloads.len() < 4 && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            payloads.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
        }
    }
    payloads.sort();
    assert_eq!(
        payloads,
        vec!["record 0", "record 1", "record 2", "record 3"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_cluster_when_no_brokers_are_configured() {
    let endpoint = KafkaEndpoint::from_config(&KafkaConfig::default()).unwrap();
    assert!(endpoint.is_embedded());
    assert!(!endpoint.bootstrap_servers().is_empty());
    topics_are_created_once_and_carry_records(&endpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_broker_process() {
    let tansu = Tansu::start();
    let config = KafkaConfig {
        brokers: tansu.bootstrap_servers(),
        ..KafkaConfig::default()
    };
    let endpoint = KafkaEndpoint::from_config(&config).unwrap();
    assert!(!endpoint.is_embedded());
    topics_are_created_once_and_carry_records(&endpoint).await;
}

#[test]
fn options_reach_the_client_config() {
    let mut config = KafkaConfig {
        brokers: "127.0.0.1:9".to_owned(),
        ..KafkaConfig::default()
    };
    config
        .options
        .insert("client.id".to_owned(), "adjoin-test".to_owned());
    let client_config = KafkaEndpoint::from_config(&config).unwrap().client_config();
    assert_eq!(client_config.get("bootstrap.servers"), Some("127.0.0.1:9"));
    assert_eq!(client_config.get("client.id"), Some("adjoin-test"));
}

#[test]
fn clients_take_tls_and_sasl_settings() {
    // librdkafka checks these when a client is created: without OpenSSL in the
    // build, SSL and SASL_SSL are refused ("OpenSSL not available at build time")
    // and SCRAM is not offered. No TLS broker runs here, so this guards the build,
    // not a handshake.
    for (protocol, mechanism) in [
        ("SSL", None),
        ("SASL_SSL", Some("PLAIN")),
        ("SASL_SSL", Some("SCRAM-SHA-512")),
        ("SASL_PLAINTEXT", Some("SCRAM-SHA-256")),
    ] {
        let mut endpoint = KafkaEndpoint::new("127.0.0.1:9")
            .with_option("security.protocol", protocol)
            .with_option("ssl.ca.location", "probe");
        if let Some(mechanism) = mechanism {
            endpoint = endpoint
                .with_option("sasl.mechanisms", mechanism)
                .with_option("sasl.username", "adjoin")
                .with_option("sasl.password", "secret");
        }
        let created: Result<BaseConsumer, _> = endpoint
            .client_config()
            .set("group.id", "adjoin-tls-test")
            .create();
        if let Err(error) = created {
            panic!("{protocol} {mechanism:?}: {error}");
        }
    }
}

#[tokio::test]
async fn tls_to_a_real_broker_and_its_certificate_checked() {
    let front = TlsFront::start();
    // Topics created, records produced and consumed, every byte over TLS.
    topics_are_created_once_and_carry_records(&front.endpoint()).await;

    // A client that does not trust the CA refuses the broker's certificate...
    let untrusted = KafkaEndpoint::new(format!("localhost:{}", front.port()))
        .with_option("security.protocol", "ssl")
        .with_option("broker.address.family", "v4");
    // ... and one that trusts it but names the broker by address fails the
    // host name check.
    let by_address = KafkaEndpoint::new(format!("127.0.0.1:{}", front.port()))
        .with_option("security.protocol", "ssl")
        .with_option("ssl.ca.location", &front.ca().display().to_string());
    for (name, endpoint) in [("untrusted CA", untrusted), ("host name", by_address)] {
        let consumer: BaseConsumer = endpoint
            .client_config()
            .set("group.id", "adjoin-tls-test")
            .create()
            .unwrap();
        let metadata = consumer
            .client()
            .fetch_metadata(None, Duration::from_secs(5));
        assert!(
            metadata.is_err(),
            "{name}: metadata fetched over an unverified TLS connection"
        );
        // ... and the reason reaches the operator (services log these when
        // creating topics fails), not just "timed out".
        let problems = connection_problems(&endpoint, Duration::from_secs(3));
        assert!(
            problems
                .iter()
                .any(|problem| problem.contains("certificate verify failed")),
            "{name}: {problems:?}"
        );
    }
}

#[test]
fn consumer_lag_comes_from_librdkafka_statistics() {
    use adjoin_shared::kafka::{consumer_lags, ensure_topics_blocking};
    use adjoin_shared::testing::embedded_endpoint;
    use rdkafka::consumer::ConsumerContext;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Lags(Mutex<Vec<(String, i32, i64)>>);
    impl ClientContext for Lags {
        fn stats(&self, statistics: Statistics) {
            *self.0.lock().unwrap() = consumer_lags(&statistics)
                .into_iter()
                .map(|(topic, partition, lag)| (topic.to_owned(), partition, lag))
                .collect();
        }
    }
    impl ConsumerContext for Lags {}

    let endpoint = embedded_endpoint();
    let topic = unique_name("lag");
    ensure_topics_blocking(&endpoint, &[spec(&topic, 2)]).unwrap();
    let producer: BaseProducer = endpoint.client_config().create().unwrap();
    for index in 0..10 {
        producer
            .send(
                BaseRecord::to(&topic)
                    .partition(0)
                    .key("k")
                    .payload(&format!("{index}")),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let consumer: BaseConsumer<Lags> = endpoint
        .client_config()
        .set("group.id", unique_name("lag-group"))
        .set("enable.auto.commit", "false")
        .set("statistics.interval.ms", "100")
        .create_with_context(Lags::default())
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut read = 0;
    while read < 3 {
        if let Some(message) = consumer.poll(Duration::from_secs(5)) {
            message.unwrap();
            read += 1;
        }
    }
    // Read no further; keep serving the statistics.
    consumer.pause(&consumer.assignment().unwrap()).unwrap();
    let expected = vec![(topic.clone(), 0, 7)];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(consumer.poll(Duration::from_millis(100)).is_none());
        let lags = consumer.context().0.lock().unwrap().clone();
        if lags == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lags {lags:?}, expected {expected:?} (partition 1 is not assigned, so not reported)"
        );
    }
}
