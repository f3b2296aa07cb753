use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where ingest starts reading a raw partition that its group has never committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// Everything still in the topic: nothing produced before the first start is lost.
    Earliest,
    /// Only what arrives from now on.
    Latest,
}

/// The ingest service (section `ingest`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Read and re-key `topics.impressions`; off, another process can do it alone.
    pub impressions: bool,
    /// Read and re-key `topics.clicks`.
    pub clicks: bool,
    /// Keyed topic impressions go to, keyed by impression id.
    pub impressions_keyed_topic: String,
    /// Keyed topic clicks go to; must have as many partitions as the impressions one.
    pub clicks_keyed_topic: String,
    /// Consumer group prefix of the ingest processes; they share the raw partitions.
    /// Each raw topic is read by its own group, `<group_id>.impressions` and
    /// `<group_id>.clicks`.
    pub group_id: String,
    /// Where a partition without a committed offset starts.
    pub start_from: StartFrom,
    /// How often acknowledged offsets are committed.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// How often watermark markers are written to every keyed partition.
    #[serde(with = "humantime_serde")]
    pub marker_interval: Duration,
    /// Records handed from the consumer to the ingest actor at once.
    pub batch_records: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            impressions: true,
            clicks: true,
            impressions_keyed_topic: "impressions.keyed".to_owned(),
            clicks_keyed_topic: "clicks.keyed".to_owned(),
            group_id: "adjoin-ingest".to_owned(),
            start_from: StartFrom::Earliest,
            commit_interval: Duration::from_secs(1),
            marker_interval: Duration::from_secs(1),
            batch_records: 1000,
        }
    }
}
