use serde::{Deserialize, Serialize};

use super::EventTime;

/// The record format version this build writes and understands. A record may carry
/// `version` (or `schema_version`); absent means this version.
pub const SCHEMA_VERSION: u64 = 1;

/// An ad impression, validated. Field names follow DESIGN.md; the decoder also
/// accepts the seed's original names (`ImpressionID`, `AdCategory`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Impression {
    pub impression_id: String,
    pub user_id: String,
    pub session_id: String,
    pub ad_id: String,
    pub ad_category: String,
    pub device: String,
    pub os: String,
    pub browser: String,
    pub location: String,
    pub page_id: String,
    /// Empty for direct traffic.
    pub referrer: String,
    /// What showing the impression cost, in the campaign's currency.
    pub impression_cost: f64,
    pub event_time: EventTime,
}

/// A click on an impression, validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Click {
    pub click_id: String,
    /// The join key (`JoinID` in the seed).
    pub impression_id: String,
    /// Slot position of the ad on the page, counted from 0 or 1 as the producer does.
    pub click_position: u32,
    pub click_cost: f64,
    pub event_time: EventTime,
}
