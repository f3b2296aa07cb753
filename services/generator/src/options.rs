//! The `adjoin generate` command line.

use std::path::PathBuf;
use std::time::Duration;

use adjoin_shared::schema::EventTime;

use crate::record::KeyBy;

/// Writes realistic impressions and clicks to the raw topics (or files), with the
/// truth a correct pipeline must produce from them.
#[derive(Clone, Debug, clap::Args)]
#[command(
    after_help = "Live mode (no --start): event time is the wall clock and records go out \
at --rate until --count, --duration or Ctrl-C. Backlog mode (--start TIME): a simulated clock \
from TIME, written as fast as the broker takes it; needs --count or --duration."
)]
pub struct GenerateArgs {
    /// Impressions per second of event time; clicks come on top at each ad's CTR.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Event time of the first impression (RFC 3339): write a backlog on a
    /// simulated clock instead of live traffic.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub start: Option<EventTime>,
    /// Stop after this many impressions.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this much event time (wall time when live), e.g. 10m.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Seed of the run; the same seed and flags give the same records byte for
    /// byte in backlog mode. Default: random, printed at the start.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of ads, with Zipf-like popularity.
    #[arg(long, default_value_t = 1000)]
    pub ads: usize,
    /// Exponent of the ads' popularity (1 = classic Zipf; higher = more skewed).
    #[arg(long, default_value_t = 1.1)]
    pub zipf_exponent: f64,
    /// Number of distinct users.
    #[arg(long, default_value_t = 100_000)]
    pub users: u32,
    /// Number of distinct pages.
    #[arg(long, default_value_t = 500)]
    pub pages: usize,
    /// Fraction of records delivered out of order (later than their event time).
    #[arg(long, default_value_t = 0.01)]
    pub late_fraction: f64,
    /// How far out of order a record may be delivered, in event time. Clicks
    /// displaced beyond watermark.allowed_lateness are tagged late by ingest.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub max_lateness: Duration,
    /// Fraction of clicks delivered twice (a producer retry).
    #[arg(long, default_value_t = 0.005)]
    pub duplicate_fraction: f64,
    /// Fraction of clicks whose impression never comes.
    #[arg(long, default_value_t = 0.01)]
    pub orphan_fraction: f64,
    /// Fraction of records followed by a malformed one, cycling through every
    /// decoder reason code.
    #[arg(long, default_value_t = 0.001)]
    pub malformed_fraction: f64,
    /// How raw records are keyed: not co-partitioned (random, user), as real
    /// producers write, or already by impression id.
    #[arg(long, value_enum, default_value_t = KeyBy::Random)]
    pub key_by: KeyBy,
    /// Write JSON-lines files (impressions.jsonl, clicks.jsonl) here instead of Kafka.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Write the truth of the run (docs/truth.md) to this file.
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Replay recorded events (JSON lines, either naming style) into the topics
    /// instead of generating; repeat for several files.
    #[arg(long = "from-file", value_name = "PATH.jsonl", conflicts_with_all = ["start", "count", "duration", "seed", "out_dir", "truth"])]
    pub from_file: Vec<PathBuf>,
    /// No progress bar or progress lines (`adjoin demo` prints its own summary).
    #[arg(skip)]
    pub quiet: bool,
}

fn parse_time(text: &str) -> Result<EventTime, String> {
    EventTime::parse_rfc3339(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time like 2026-11-27T12:00:00Z"))
}

impl GenerateArgs {
    /// Checks what clap cannot: ranges and combinations.
    pub fn validate(&self) -> Result<(), String> {
        for (flag, value) in [
            ("--late-fraction", self.late_fraction),
            ("--duplicate-fraction", self.duplicate_fraction),
            ("--orphan-fraction", self.orphan_fraction),
            ("--malformed-fraction", self.malformed_fraction),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(format!(
                    "{flag} must be at least 0 and below 1, got {value}"
                ));
            }
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(format!(
                "--rate must be a positive number, got {}",
                self.rate
            ));
        }
        if self.ads == 0 || self.pages == 0 || self.users == 0 {
            return Err("--ads, --pages and --users must be at least 1".to_owned());
        }
        if !(self.zipf_exponent.is_finite() && self.zipf_exponent >= 0.0) {
            return Err(format!(
                "--zipf-exponent must be 0 or more, got {}",
                self.zipf_exponent
            ));
        }
        if self.start.is_some() && self.count.is_none() && self.duration.is_none() {
            return Err("a backlog (--start) needs --count or --duration".to_owned());
        }
        if self.out_dir.is_some() && self.key_by == KeyBy::User {
            return Err(
                "--out-dir cannot record --key-by user: a click does not name its user, so a replay \
                 could not put it where the truth file assumes; use --key-by random or impression_id"
                    .to_owned(),
            );
        }
        Ok(())
    }
}
