//! Ingest against the embedded mock cluster: every valid raw record comes out
//! re-keyed in its keyed topic, every malformed one in the dead-letter topic with
//! its reason and origin; impressions and clicks of one impression id meet in the
//! same partition number; markers are present and monotone; late records are
//! tagged exactly as the generator's oracle expects.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use adjoin_ingest::IngestService;
use adjoin_shared::kafka::partitioner::partition_for_key;
use adjoin_shared::keyed::{self, dlq_topic, WatermarkMarker};
use adjoin_shared::metrics::{Health, Metrics};
use adjoin_shared::schema::DecodeReason;

use common::{config, generate, read_until, Written};

#[test]
fn valid_records_are_rekeyed_and_bad_ones_dead_lettered() {
    common::logs();
    let endpoint = common::embedded_endpoint();
    let config = config(&endpoint, 3);
    let (summary, truth) = generate(
        &endpoint,
        &config,
        "--start 2026-11-27T00:00:00Z --count 3000 --seed 41 --late-fraction 0.2 --max-lateness 3m \
         --duplicate-fraction 0.05 --orphan-fraction 0.05 --malformed-fraction 0.03",
    );
    let num_valid = summary.num_records - summary.num_malformed;
    let metrics = Metrics::new();
    let health = Health::new();
    let service = IngestService::start(&config, &endpoint, &metrics, &health).unwrap();

    let impressions_keyed = config.ingest.impressions_keyed_topic.clone();
    let clicks_keyed = config.ingest.clicks_keyed_topic.clone();
    let impressions_dlq = dlq_topic(&config.topics.impressions);
    let clicks_dlq = dlq_topic(&config.topics.clicks);
    let is_data = |record: &Written| record.header(keyed::HEADER_KIND) != keyed::KIND_WATERMARK;
    let written = read_until(
        &endpoint,
        &[
            &impressions_keyed,
            &clicks_keyed,
            &impressions_dlq,
            &clicks_dlq,
        ],
        |written| {
            let num_data = written.iter().filter(|record| is_data(record)).count() as u64;
            let marked: HashSet<(&str, i32)> = written
                .iter()
                .filter(|record| !is_data(record))
                .map(|record| (record.topic.as_str(), record.partition))
                .collect();
            num_data >= summary.num_records && marked.len() == 6
        },
    );
    assert!(health.report().ready, "{:?}", health.report());
    service.shutdown();

    let keyed: Vec<&Written> = written
        .iter()
        .filter(|record| {
            is_data(record) && (record.topic == impressions_keyed || record.topic == clicks_keyed)
        })
        .collect();
    let dead: Vec<&Written> = written
        .iter()
        .filter(|record| record.topic == impressions_dlq || record.topic == clicks_dlq)
        .collect();
    assert_eq!(
        keyed.len() as u64,
        num_valid,
        "every valid record keyed, once"
    );
    assert_eq!(
        dead.len() as u64,
        summary.num_malformed,
        "every malformed record dead-lettered"
    );

    // Keys, partitions and canonical values.
    let mut partition_of_impression = HashMap::new();
    for record in &keyed {
        let value = record.json();
        let key = record.key.clone().expect("keyed records have a key");
        assert_eq!(value["impression_id"], key.as_str());
        assert_eq!(record.partition, partition_for_key(key.as_bytes(), 3));
        let expected_kind = if record.topic == impressions_keyed {
            "impression"
        } else {
            "click"
        };
        assert_eq!(record.header(keyed::HEADER_KIND), expected_kind);
        assert!(record.header(keyed::HEADER_SOURCE).contains('/'));
        if record.topic == impressions_keyed {
            partition_of_impression.insert(key, record.partition);
        }
    }
    let mut num_joined = 0;
    for record in keyed.iter().filter(|record| record.topic == clicks_keyed) {
        if let Some(partition) = partition_of_impression.get(record.key.as_deref().unwrap()) {
            assert_eq!(*partition, record.partition, "co-partitioned");
            num_joined += 1;
        }
    }
    assert!(num_joined > 0);

    // Dead letters keep the original bytes and say why and where from.
    let mut reasons: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for record in &dead {
        let reason = record.header(keyed::HEADER_REASON);
        assert!(
            DecodeReason::ALL
                .iter()
                .any(|known| known.as_str() == reason),
            "{reason}"
        );
        assert!(!record.header(keyed::HEADER_ERROR).is_empty());
        let source_topic = record.header(keyed::HEADER_SOURCE_TOPIC);
        assert!(source_topic == config.topics.impressions || source_topic == config.topics.clicks);
        assert!(record
            .header(keyed::HEADER_SOURCE_PARTITION)
            .parse::<i32>()
            .is_ok());
        assert!(record
            .header(keyed::HEADER_SOURCE_OFFSET)
            .parse::<i64>()
            .is_ok());
        let raw_kind = if source_topic == config.topics.impressions {
            "impressions"
        } else {
            "clicks"
        };
        *reasons
            .entry(raw_kind.to_owned())
            .or_default()
            .entry(reason.to_owned())
            .or_default() += 1;
    }
    assert_eq!(reasons, truth.malformed, "dead letters by topic and reason");

    // Late tags: the first delivery of each click, as the oracle counts them.
    let mut first_by_click: HashMap<String, (String, &Written)> = HashMap::new();
    for record in keyed.iter().filter(|record| record.topic == clicks_keyed) {
        let click_id = record.json()["click_id"].as_str().unwrap().to_owned();
        let source = record.header(keyed::HEADER_SOURCE).to_owned();
        let offset: i64 = source.rsplit('/').next().unwrap().parse().unwrap();
        first_by_click
            .entry(click_id)
            .and_modify(|(existing, best)| {
                let existing_offset: i64 = existing.rsplit('/').next().unwrap().parse().unwrap();
                if offset < existing_offset {
                    *existing = source.clone();
                    *best = record;
                }
            })
            .or_insert((source.clone(), record));
    }
    let num_late_clicks = first_by_click
        .values()
        .filter(|(_, record)| record.header(keyed::HEADER_LATE) == "1")
        .count() as u64;
    assert_eq!(
        num_late_clicks, truth.clicks.late,
        "late clicks as the oracle tags them"
    );
    assert!(truth.clicks.late > 0);
    assert!(
        keyed
            .iter()
            .filter(|record| record.topic == impressions_keyed)
            .all(|record| record.header(keyed::HEADER_LATE) == "0"),
        "the generator never makes late impressions"
    );

    // Markers: in every keyed partition, each raw partition's watermark never goes back.
    let mut last: HashMap<(String, i32, String, i32), i64> = HashMap::new();
    let mut marker_partitions = HashSet::new();
    for record in written.iter().filter(|record| !is_data(record)) {
        let marker: WatermarkMarker = serde_json::from_slice(&record.value).unwrap();
        marker_partitions.insert((record.topic.clone(), record.partition));
        for watermark in &marker.partitions {
            let Some(value) = watermark.watermark_ms else {
                continue;
            };
            let slot = (
                record.topic.clone(),
                record.partition,
                marker.source_topic.clone(),
                watermark.partition,
            );
            let previous = last.insert(slot, value).unwrap_or(i64::MIN);
            assert!(value >= previous, "markers are monotone");
        }
        assert_eq!(marker.source_partitions, 3);
    }
    for topic in [&impressions_keyed, &clicks_keyed] {
        for partition in 0..3 {
            assert!(
                marker_partitions.contains(&((*topic).clone(), partition)),
                "markers in {topic}/{partition}"
            );
        }
    }

    let text = metrics.encode();
    assert!(
        text.contains(
            "adjoin_ingest_dead_letters_total{topic=\"impressions\",reason=\"invalid_json\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("adjoin_ingest_late_records_total{topic=\"clicks\"}"),
        "{text}"
    );
}

/// Partitions of `topic` (the label's value) that `name` has a series for.
fn partitions_shown(metrics: &Metrics, name: &str, topic: &str) -> HashSet<String> {
    let label = format!("topic=\"{topic}\"");
    metrics
        .encode()
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(&label))
        .filter_map(|line| {
            let start = line.find("partition=\"")? + "partition=\"".len();
            let end = start + line[start..].find('"')?;
            Some(line[start..end].to_owned())
        })
        .collect()
}

#[test]
fn after_a_rebalance_each_process_shows_only_the_partitions_it_reads() {
    common::logs();
    let endpoint = common::embedded_endpoint();
    let config = config(&endpoint, 4);
    generate(
        &endpoint,
        &config,
        "--start 2026-11-27T00:00:00Z --count 400 --seed 7",
    );
    const WATERMARK: &str = "adjoin_ingest_watermark_lag_seconds";
    const LAG: &str = "adjoin_consumer_lag_records";
    // Ingest's own series label the topic by kind, the consumer lag by its name.
    let raw = config.topics.impressions.as_str();
    let all: HashSet<String> = (0..4).map(|p| p.to_string()).collect();
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };

    let first_metrics = Metrics::new();
    let first = IngestService::start(&config, &endpoint, &first_metrics, &Health::new()).unwrap();
    wait_for("the only process shows every partition", &|| {
        partitions_shown(&first_metrics, WATERMARK, "impressions") == all
            && partitions_shown(&first_metrics, LAG, raw) == all
    });

    let second_metrics = Metrics::new();
    let second = IngestService::start(&config, &endpoint, &second_metrics, &Health::new()).unwrap();
    wait_for(
        "after the rebalance, the two processes' partitions split",
        &|| {
            let first_lag = partitions_shown(&first_metrics, LAG, raw);
            let second_lag = partitions_shown(&second_metrics, LAG, raw);
            !first_lag.is_empty()
                && !second_lag.is_empty()
                && first_lag.is_disjoint(&second_lag)
                && first_lag.union(&second_lag).cloned().collect::<HashSet<_>>() == all
                // Revoked partitions lost their watermark series too.
                && partitions_shown(&first_metrics, WATERMARK, "impressions").is_subset(&first_lag)
        },
    );
    second.shutdown();
    first.shutdown();
}
