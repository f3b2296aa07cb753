//! Reads topics from the beginning with one consumer connection and reports records
//! per second: the broker's consume ceiling that ingest's throughput is compared
//! with in `docs/benchmarks.md`.
//!
//! cargo run --release -p adjoin-ingest --example consume_ceiling -- BROKERS EXPECTED TOPIC...

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: consume_ceiling BROKERS EXPECTED_RECORDS TOPIC...";
    let brokers = args.next().expect(usage);
    let expected: u64 = args.next().and_then(|text| text.parse().ok()).expect(usage);
    let topics: Vec<String> = args.collect();
    assert!(!topics.is_empty(), "{usage}");
    let group = format!("consume-ceiling-{}", std::process::id());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).expect("subscribed");
    let mut count = 0u64;
    let mut started_opt: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while count < expected && Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            started_opt.get_or_insert_with(Instant::now);
            count += 1;
        }
    }
    let seconds = started_opt.map_or(0.0, |started| started.elapsed().as_secs_f64());
    println!(
        "{count} records in {seconds:.2}s from the first record: {:.0} records/s",
        count as f64 / seconds.max(1e-9)
    );
}
