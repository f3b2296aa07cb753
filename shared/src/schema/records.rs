use std::borrow::Cow;

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

/// An impression as the decoder sees it: text borrowed from the record's bytes where
/// it needs no unescaping. Ingest re-encodes it without copying a field; it writes
/// the same canonical JSON as [`Impression`] (same fields, same order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImpressionRef<'a> {
    pub impression_id: Cow<'a, str>,
    pub user_id: Cow<'a, str>,
    pub session_id: Cow<'a, str>,
    pub ad_id: Cow<'a, str>,
    pub ad_category: Cow<'a, str>,
    pub device: Cow<'a, str>,
    pub os: Cow<'a, str>,
    pub browser: Cow<'a, str>,
    pub location: Cow<'a, str>,
    pub page_id: Cow<'a, str>,
    pub referrer: Cow<'a, str>,
    pub impression_cost: f64,
    pub event_time: EventTime,
}

impl ImpressionRef<'_> {
    pub fn into_owned(self) -> Impression {
        Impression {
            impression_id: self.impression_id.into_owned(),
            user_id: self.user_id.into_owned(),
            session_id: self.session_id.into_owned(),
            ad_id: self.ad_id.into_owned(),
            ad_category: self.ad_category.into_owned(),
            device: self.device.into_owned(),
            os: self.os.into_owned(),
            browser: self.browser.into_owned(),
            location: self.location.into_owned(),
            page_id: self.page_id.into_owned(),
            referrer: self.referrer.into_owned(),
            impression_cost: self.impression_cost,
            event_time: self.event_time,
        }
    }
}

/// A click as the decoder sees it, text borrowed where it can be; see [`ImpressionRef`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClickRef<'a> {
    pub click_id: Cow<'a, str>,
    pub impression_id: Cow<'a, str>,
    pub click_position: u32,
    pub click_cost: f64,
    pub event_time: EventTime,
}

impl ClickRef<'_> {
    pub fn into_owned(self) -> Click {
        Click {
            click_id: self.click_id.into_owned(),
            impression_id: self.impression_id.into_owned(),
            click_position: self.click_position,
            click_cost: self.click_cost,
            event_time: self.event_time,
        }
    }
}
