//! The truth file: what a correct pipeline must produce for a run. Written by
//! `adjoin generate --truth FILE`, read by `adjoin verify`; the format is
//! documented in `docs/truth.md` and versioned by `format`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use adjoin_shared::schema::EventTime;

pub const TRUTH_FORMAT: &str = "adjoin-truth/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub format: String,
    pub settings: TruthSettings,
    pub impressions: ImpressionTruth,
    pub clicks: ClickTruth,
    /// Rejected records by raw topic (`impressions`, `clicks`) and reason code.
    pub malformed: BTreeMap<String, BTreeMap<String, u64>>,
    pub totals: Totals,
    /// Per UTC minute of the impression's time, as `ad_stats_minute` sums them.
    pub minutes: Vec<MinuteTotals>,
    /// Every distinct click id with its expected outcome (`matched`,
    /// `no_impression`, `late`, or `ambiguous` where timing decides).
    pub click_outcomes: BTreeMap<String, String>,
}

/// The settings the outcomes were computed under.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthSettings {
    pub seed: Option<u64>,
    #[serde(with = "humantime_serde")]
    pub window: std::time::Duration,
    #[serde(with = "humantime_serde")]
    pub skew: std::time::Duration,
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: std::time::Duration,
    pub impressions_topic: String,
    pub clicks_topic: String,
    pub impression_partitions: i32,
    pub click_partitions: i32,
    pub key_by: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImpressionTruth {
    /// Distinct impression ids: the rows `impressions` must have.
    pub distinct: u64,
    /// Valid impression records written, duplicates included.
    pub delivered: u64,
    pub duplicates: u64,
    /// Wrapping sum of FNV-1a 64 hashes of every distinct impression id, hex.
    pub id_digest: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClickTruth {
    /// Distinct click ids: the rows `clicks` must have.
    pub distinct: u64,
    /// Valid click records written, duplicates included.
    pub delivered: u64,
    /// Repeated deliveries of a click already written.
    pub duplicates: u64,
    /// Distinct clicks ingest tags late (below their partition's watermark).
    pub late: u64,
    /// Clicks whose outcome depends on consumption timing.
    pub ambiguous: u64,
    /// Distinct clicks by expected outcome.
    pub outcomes: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub impressions: u64,
    pub impression_cost: f64,
    pub matched_clicks: u64,
    pub matched_click_cost: f64,
    /// Cost of clicks with outcome `no_impression` or `late`.
    pub unmatched_click_cost: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinuteTotals {
    pub minute: EventTime,
    pub impressions: u64,
    pub impression_cost: f64,
    pub clicks: u64,
    pub click_cost: f64,
}

impl MinuteTotals {
    pub fn new(minute_ms: i64) -> Self {
        Self {
            minute: EventTime::from_millis(minute_ms),
            impressions: 0,
            impression_cost: 0.0,
            clicks: 0,
            click_cost: 0.0,
        }
    }
}

impl Truth {
    pub fn new(
        settings: TruthSettings,
        impressions: ImpressionTruth,
        clicks: ClickTruth,
        malformed: BTreeMap<String, BTreeMap<String, u64>>,
        totals: Totals,
        minutes: Vec<MinuteTotals>,
        click_outcomes: BTreeMap<String, String>,
    ) -> Self {
        Self {
            format: TRUTH_FORMAT.to_owned(),
            settings,
            impressions,
            clicks,
            malformed,
            totals,
            minutes,
            click_outcomes,
        }
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use anyhow::Context;
        let file = std::fs::File::create(path)
            .with_context(|| format!("creating truth file {}", path.display()))?;
        let mut writer = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut writer, self).context("writing truth file")?;
        std::io::Write::flush(&mut writer).context("writing truth file")?;
        Ok(())
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading truth file {}", path.display()))?;
        let truth: Truth = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing truth file {}", path.display()))?;
        anyhow::ensure!(
            truth.format == TRUTH_FORMAT,
            "truth file {} has format {:?}; this build reads {TRUTH_FORMAT}",
            path.display(),
            truth.format
        );
        Ok(truth)
    }
}
