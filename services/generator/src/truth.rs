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

    /// Combines the truths of runs written to the same topics one after the
    /// other (a backlog, then live traffic): their impressions and clicks must be
    /// distinct and their join settings equal, since each run's outcomes were
    /// computed on its own.
    pub fn merge(mut self, other: Truth) -> anyhow::Result<Self> {
        let join_settings = |settings: &TruthSettings| {
            (
                settings.window,
                settings.skew,
                settings.allowed_lateness,
                settings.impressions_topic.clone(),
                settings.clicks_topic.clone(),
            )
        };
        anyhow::ensure!(
            join_settings(&self.settings) == join_settings(&other.settings),
            "the truths were computed for other topics or join settings ({:?} and {:?}); \
             only runs into the same pipeline can be merged",
            join_settings(&self.settings),
            join_settings(&other.settings)
        );
        if let Some(click_id) = other
            .click_outcomes
            .keys()
            .find(|click_id| self.click_outcomes.contains_key(*click_id))
        {
            anyhow::bail!("click {click_id} is in both truths: each run must use its own seed");
        }
        let digest = |hex: &str| {
            u64::from_str_radix(hex, 16)
                .map_err(|_| anyhow::anyhow!("impression id digest {hex:?} is not hex"))
        };
        let id_digest = digest(&self.impressions.id_digest)?
            .wrapping_add(digest(&other.impressions.id_digest)?);
        self.settings.seed = None;
        self.impressions = ImpressionTruth {
            distinct: self.impressions.distinct + other.impressions.distinct,
            delivered: self.impressions.delivered + other.impressions.delivered,
            duplicates: self.impressions.duplicates + other.impressions.duplicates,
            id_digest: format!("{id_digest:016x}"),
        };
        self.clicks.distinct += other.clicks.distinct;
        self.clicks.delivered += other.clicks.delivered;
        self.clicks.duplicates += other.clicks.duplicates;
        self.clicks.late += other.clicks.late;
        self.clicks.ambiguous += other.clicks.ambiguous;
        for (outcome, count) in other.clicks.outcomes {
            *self.clicks.outcomes.entry(outcome).or_default() += count;
        }
        for (topic, reasons) in other.malformed {
            let merged = self.malformed.entry(topic).or_default();
            for (reason, count) in reasons {
                *merged.entry(reason).or_default() += count;
            }
        }
        self.totals.impressions += other.totals.impressions;
        self.totals.impression_cost += other.totals.impression_cost;
        self.totals.matched_clicks += other.totals.matched_clicks;
        self.totals.matched_click_cost += other.totals.matched_click_cost;
        self.totals.unmatched_click_cost += other.totals.unmatched_click_cost;
        let mut minutes: BTreeMap<i64, MinuteTotals> = BTreeMap::new();
        for minute in self.minutes.into_iter().chain(other.minutes) {
            let merged = minutes
                .entry(minute.minute.as_millis())
                .or_insert_with(|| MinuteTotals::new(minute.minute.as_millis()));
            merged.impressions += minute.impressions;
            merged.impression_cost += minute.impression_cost;
            merged.clicks += minute.clicks;
            merged.click_cost += minute.click_cost;
        }
        self.minutes = minutes.into_values().collect();
        self.click_outcomes.extend(other.click_outcomes);
        Ok(self)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(click_ids: &[&str], digest: u64, minute_ms: i64) -> Truth {
        let mut minute = MinuteTotals::new(minute_ms);
        minute.impressions = 2;
        minute.impression_cost = 0.5;
        minute.clicks = 1;
        minute.click_cost = 0.25;
        Truth::new(
            TruthSettings {
                seed: Some(1),
                window: std::time::Duration::from_secs(900),
                skew: std::time::Duration::from_secs(5),
                allowed_lateness: std::time::Duration::from_secs(60),
                impressions_topic: "impressions".to_owned(),
                clicks_topic: "clicks".to_owned(),
                impression_partitions: 4,
                click_partitions: 4,
                key_by: "random".to_owned(),
            },
            ImpressionTruth {
                distinct: 2,
                delivered: 3,
                duplicates: 1,
                id_digest: format!("{digest:016x}"),
            },
            ClickTruth {
                distinct: click_ids.len() as u64,
                outcomes: BTreeMap::from([("matched".to_owned(), click_ids.len() as u64)]),
                ..ClickTruth::default()
            },
            BTreeMap::from([(
                "clicks".to_owned(),
                BTreeMap::from([("bad_json".to_owned(), 1)]),
            )]),
            Totals {
                impressions: 2,
                ..Totals::default()
            },
            vec![minute],
            click_ids
                .iter()
                .map(|id| ((*id).to_owned(), "matched".to_owned()))
                .collect(),
        )
    }

    #[test]
    fn merged_runs_add_up_and_digests_wrap() {
        let merged = run(&["a", "b"], u64::MAX, 0)
            .merge(run(&["c"], 2, 0))
            .unwrap()
            .merge(run(&["d"], 0, 60_000))
            .unwrap();
        assert_eq!(merged.impressions.distinct, 6);
        assert_eq!(merged.impressions.duplicates, 3);
        assert_eq!(merged.impressions.id_digest, format!("{:016x}", 1_u64));
        assert_eq!(merged.clicks.distinct, 4);
        assert_eq!(merged.clicks.outcomes["matched"], 4);
        assert_eq!(merged.malformed["clicks"]["bad_json"], 3);
        assert_eq!(merged.totals.impressions, 6);
        assert_eq!(merged.click_outcomes.len(), 4);
        assert_eq!(merged.minutes.len(), 2, "same minutes are summed");
        assert_eq!(merged.minutes[0].impressions, 4);
        assert_eq!(merged.minutes[0].click_cost, 0.5);
        assert_eq!(merged.minutes[1].minute.as_millis(), 60_000);
    }

    #[test]
    fn runs_sharing_a_click_or_with_other_join_settings_are_refused() {
        let error = run(&["a", "b"], 1, 0).merge(run(&["b"], 2, 0)).unwrap_err();
        assert!(
            error.to_string().contains("click b is in both truths"),
            "{error}"
        );
        let mut other = run(&["c"], 2, 0);
        other.settings.window = std::time::Duration::from_secs(60);
        let error = run(&["a"], 1, 0).merge(other).unwrap_err();
        assert!(
            error.to_string().contains("other topics or join settings"),
            "{error}"
        );
    }
}
