//! `adjoin generate`: realistic ad impressions and clicks for the raw topics (or
//! JSON-lines files), with out-of-order delivery, duplicates, orphans and malformed
//! records on request, and the truth a correct pipeline must produce from them:
//! every later test, demo and benchmark stands on it.
//!
//! The shape of the traffic is in [`catalog`] and [`traffic`]; [`oracle`] computes
//! the truth by a plain batch join over the records in delivery order.

pub mod catalog;
pub mod malformed;
pub mod options;
pub mod oracle;
pub mod output;
mod progress;
pub mod record;
mod replay;
pub mod sampling;
pub mod traffic;
pub mod truth;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use adjoin_shared::config::Config;
use adjoin_shared::kafka::{ensure_topics_blocking, KafkaEndpoint, TopicSpec};
use adjoin_shared::schema::EventTime;

pub use options::GenerateArgs;
pub use output::Delivery;

use oracle::{JoinRules, Oracle};
use output::{FileOutput, KafkaOutput, Output};
use progress::Progress;
use record::{Content, RawRecord};
use traffic::{Traffic, TrafficSettings};
use truth::TruthSettings;

/// What a run wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub seed_opt: Option<u64>,
    pub num_records: u64,
    pub num_impressions: u64,
    /// Click records, repeated deliveries included.
    pub num_clicks: u64,
    pub num_duplicates: u64,
    pub num_malformed: u64,
    pub delivery: Delivery,
    pub elapsed: Duration,
    pub records_per_second: f64,
    pub truth_path_opt: Option<PathBuf>,
}

impl Summary {
    /// True when every record written was acknowledged.
    pub fn all_delivered(&self) -> bool {
        self.delivery.num_failed == 0 && self.delivery.num_delivered == self.num_records
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "sent {} records ({} impressions, {} clicks incl. {} duplicates, {} malformed) in {:.1}s, {:.0} records/s; {} delivered, {} failed",
            self.num_records,
            self.num_impressions,
            self.num_clicks,
            self.num_duplicates,
            self.num_malformed,
            self.elapsed.as_secs_f64(),
            self.records_per_second,
            self.delivery.num_delivered,
            self.delivery.num_failed,
        );
        if let Some(error) = &self.delivery.first_error_opt {
            line.push_str(&format!(" (first error: {error})"));
        }
        if let Some(seed) = self.seed_opt {
            line.push_str(&format!("; seed {seed}"));
        }
        line
    }
}

/// Runs `adjoin generate` as configured: to files with `--out-dir`, else to the
/// configured brokers. `stop` ends a live run early (Ctrl-C).
pub fn run(config: &Config, args: &GenerateArgs, stop: &AtomicBool) -> anyhow::Result<Summary> {
    args.validate().map_err(anyhow::Error::msg)?;
    if let Some(dir) = &args.out_dir {
        let partitions = config.topics.partitions;
        let mut output = FileOutput::create(dir)?;
        return generate(config, args, &mut output, partitions, partitions, stop);
    }
    anyhow::ensure!(
        !config.kafka.uses_embedded_cluster(),
        "adjoin generate needs kafka.brokers (ADJOIN__KAFKA__BROKERS) or --out-dir: an embedded \
         mock cluster would live and die inside this one process; `adjoin demo` runs the generator \
         next to the pipeline"
    );
    let endpoint = KafkaEndpoint::from_config(&config.kafka).context("configuring Kafka")?;
    run_with_endpoint(&endpoint, config, args, stop)
}

/// Runs against the given brokers: creates the raw topics if missing, then
/// generates (or replays) into them.
pub fn run_with_endpoint(
    endpoint: &KafkaEndpoint,
    config: &Config,
    args: &GenerateArgs,
    stop: &AtomicBool,
) -> anyhow::Result<Summary> {
    args.validate().map_err(anyhow::Error::msg)?;
    let (impression_partitions, click_partitions) = ensure_raw_topics(endpoint, config)?;
    let mut output = KafkaOutput::new(endpoint, &config.topics.impressions, &config.topics.clicks)?;
    if !args.from_file.is_empty() {
        return replay::replay(
            config,
            args,
            &mut output,
            impression_partitions,
            click_partitions,
            stop,
        );
    }
    generate(
        config,
        args,
        &mut output,
        impression_partitions,
        click_partitions,
        stop,
    )
}

fn ensure_raw_topics(endpoint: &KafkaEndpoint, config: &Config) -> anyhow::Result<(i32, i32)> {
    let specs: Vec<TopicSpec> = [&config.topics.impressions, &config.topics.clicks]
        .into_iter()
        .map(|name| TopicSpec {
            name: name.clone(),
            partitions: config.topics.partitions,
            replication_factor: config.topics.replication_factor,
        })
        .collect();
    let statuses = ensure_topics_blocking(endpoint, &specs).with_context(|| {
        format!(
            "creating or describing topics on {}",
            endpoint.bootstrap_servers()
        )
    })?;
    Ok((statuses[0].partitions, statuses[1].partitions))
}

/// Builds the traffic settings from the configuration and flags.
pub fn traffic_settings(
    config: &Config,
    args: &GenerateArgs,
    seed: u64,
    impression_partitions: i32,
    click_partitions: i32,
) -> anyhow::Result<TrafficSettings> {
    let start = args.start.unwrap_or_else(EventTime::now);
    anyhow::ensure!(
        start >= config.decode.min_event_time,
        "--start {start} is before decode.min_event_time ({}); ingest would reject every record",
        config.decode.min_event_time
    );
    let end_opt = args
        .duration
        .map(|duration| start.saturating_add_millis(traffic::duration_ms(duration)));
    // The last click can come a window after the last impression.
    let span_ms = match (end_opt, args.count) {
        (Some(end), _) => end.as_millis() - start.as_millis(),
        (None, Some(count)) => (count as f64 / args.rate * 1000.0) as i64,
        (None, None) => 0,
    };
    let latest = start.saturating_add_millis(span_ms + traffic::duration_ms(config.join.window));
    let limit =
        EventTime::now().saturating_add_millis(traffic::duration_ms(config.decode.max_future));
    anyhow::ensure!(
        args.start.is_none() || latest <= limit,
        "the backlog would reach {latest}, past decode.max_future ({}) ahead of now: ingest would \
         reject its last records as bad_time; start earlier or generate less",
        humantime::format_duration(config.decode.max_future)
    );
    Ok(TrafficSettings {
        seed,
        start,
        rate: args.rate,
        num_impressions_opt: args.count,
        end_opt,
        num_ads: args.ads,
        num_users: args.users,
        num_pages: args.pages,
        zipf_exponent: args.zipf_exponent,
        late_fraction: args.late_fraction,
        max_lateness: args.max_lateness,
        duplicate_fraction: args.duplicate_fraction,
        orphan_fraction: args.orphan_fraction,
        malformed_fraction: args.malformed_fraction,
        key_by: args.key_by,
        drain_clicks: args.start.is_some(),
        impression_partitions,
        click_partitions,
        window: config.join.window,
        skew: config.join.skew,
        allowed_lateness: config.watermark.allowed_lateness,
        limits: config.decode.clone(),
    })
}

fn generate(
    config: &Config,
    args: &GenerateArgs,
    output: &mut dyn Output,
    impression_partitions: i32,
    click_partitions: i32,
    stop: &AtomicBool,
) -> anyhow::Result<Summary> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let live = args.start.is_none();
    tracing::info!(seed, live, rate = args.rate, "generating traffic");
    let settings = traffic_settings(config, args, seed, impression_partitions, click_partitions)?;
    let rules = JoinRules {
        window: settings.window,
        skew: settings.skew,
        allowed_lateness: settings.allowed_lateness,
    };
    let mut oracle_opt = args.truth.as_ref().map(|_| Oracle::new(rules));
    let mut summary = Summary {
        seed_opt: Some(seed),
        truth_path_opt: args.truth.clone(),
        ..Summary::default()
    };
    let mut progress = Progress::new(args.count, !args.quiet);
    let mut traffic = Traffic::new(settings);
    while let Some(record) = traffic.next() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Once the last impression is out, what is still held back for
        // out-of-order delivery goes at once rather than minutes later.
        if live && traffic.impressions_remain() && !wait_until(record.deliver_at, stop) {
            break;
        }
        if !output.write(&record, stop)? {
            break;
        }
        if let Some(oracle) = oracle_opt.as_mut() {
            oracle.observe(&record);
        }
        count(&mut summary, &record);
        progress.record(
            matches!(record.content, Content::Impression(_)),
            matches!(
                record.content,
                Content::Click(_) | Content::DuplicateClick(_)
            ),
        );
    }
    progress.finish();
    summary.delivery = output.finish()?;
    summary.elapsed = progress.elapsed();
    summary.records_per_second = progress.records_per_second();
    if let (Some(oracle), Some(path)) = (oracle_opt, &args.truth) {
        let truth = oracle.finish(TruthSettings {
            seed: Some(seed),
            window: config.join.window,
            skew: config.join.skew,
            allowed_lateness: config.watermark.allowed_lateness,
            impressions_topic: config.topics.impressions.clone(),
            clicks_topic: config.topics.clicks.clone(),
            impression_partitions,
            click_partitions,
            key_by: args.key_by.as_str().to_owned(),
        });
        if truth.clicks.ambiguous > 0 {
            tracing::warn!(
                ambiguous = truth.clicks.ambiguous,
                "some clicks' outcomes depend on consumption timing; verify accepts either outcome for them"
            );
        }
        truth.write(path)?;
    }
    Ok(summary)
}

/// Adds a written record to the summary's tallies.
pub(crate) fn count(summary: &mut Summary, record: &RawRecord) {
    summary.num_records += 1;
    match record.content {
        Content::Impression(_) => summary.num_impressions += 1,
        Content::Click(_) => summary.num_clicks += 1,
        Content::DuplicateClick(_) => {
            summary.num_clicks += 1;
            summary.num_duplicates += 1;
        }
        Content::Malformed(_) => summary.num_malformed += 1,
    }
}

/// Sleeps until the wall clock reaches `at`; false when stopped meanwhile.
fn wait_until(at: EventTime, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let remaining_ms = at.as_millis() - EventTime::now().as_millis();
        if remaining_ms <= 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(remaining_ms.min(100) as u64));
    }
}
