use serde::{Deserialize, Serialize};

use super::{Click, EventTime};

/// What the join decided for one distinct click.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The click's impression was found within the join window.
    Matched,
    /// No impression with the click's `impression_id` can still arrive in time.
    NoImpression,
    /// The click arrived below its partition's watermark and its impression was no
    /// longer (or never) in state.
    Late,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Matched, Outcome::NoImpression, Outcome::Late];

    /// Returns the stable code used in tables, topics and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Matched => "matched",
            Outcome::NoImpression => "no_impression",
            Outcome::Late => "late",
        }
    }
}

/// The impression attributes a matched click carries, so that rollups by ad,
/// category, device, OS, browser and location need no second lookup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchedImpression {
    pub event_time: EventTime,
    pub ad_id: String,
    pub ad_category: String,
    pub device: String,
    pub os: String,
    pub browser: String,
    pub location: String,
}

/// One record on `click-outcomes`: the click, its outcome and, when matched, the
/// impression it matched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClickOutcome {
    #[serde(flatten)]
    pub click: Click,
    pub outcome: Outcome,
    /// Present exactly when `outcome` is `matched`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impression: Option<MatchedImpression>,
}

impl ClickOutcome {
    pub fn matched(click: Click, impression: MatchedImpression) -> Self {
        Self {
            click,
            outcome: Outcome::Matched,
            impression: Some(impression),
        }
    }

    pub fn unmatched(click: Click, outcome: Outcome) -> Self {
        debug_assert!(
            outcome != Outcome::Matched,
            "a match carries its impression"
        );
        Self {
            click,
            outcome,
            impression: None,
        }
    }

    /// Returns the time the outcome is accounted at in rollups: the impression's
    /// time for a match, otherwise the click's own.
    pub fn accounting_time(&self) -> EventTime {
        self.impression
            .as_ref()
            .map_or(self.click.event_time, |impression| impression.event_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click() -> Click {
        Click {
            click_id: "c1".into(),
            impression_id: "i1".into(),
            click_position: 2,
            click_cost: 0.25,
            event_time: EventTime::from_millis(1_700_000_000_000),
        }
    }

    #[test]
    fn outcome_serialises_flat_with_snake_case_code() {
        let outcome = ClickOutcome::unmatched(click(), Outcome::NoImpression);
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["outcome"], "no_impression");
        assert_eq!(json["click_id"], "c1");
        assert!(json.get("impression").is_none());
        let back: ClickOutcome = serde_json::from_value(json).unwrap();
        assert_eq!(back, outcome);
    }

    #[test]
    fn matched_outcome_round_trips_with_impression() {
        let impression = MatchedImpression {
            event_time: EventTime::from_millis(1_699_999_990_000),
            ad_id: "ad-7".into(),
            ad_category: "travel".into(),
            device: "mobile".into(),
            os: "Android".into(),
            browser: "Chrome".into(),
            location: "DE".into(),
        };
        let outcome = ClickOutcome::matched(click(), impression);
        let text = serde_json::to_string(&outcome).unwrap();
        let back: ClickOutcome = serde_json::from_str(&text).unwrap();
        assert_eq!(back, outcome);
        assert_eq!(back.accounting_time().as_millis(), 1_699_999_990_000);
    }
}
