//! What a record read by the sink becomes: a row, nothing (a watermark marker), or a
//! dead letter with its reason. Pure.

use adjoin_shared::keyed;
use adjoin_shared::schema::{ClickOutcome, Impression, Outcome};

use crate::batch::Input;

/// A decoded input record.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Impression(Impression),
    Outcome(ClickOutcome),
    /// A watermark marker on the impressions topic: no row, but its offset counts.
    Marker,
}

/// Why the sink could not read a record; the reason code goes into the
/// dead-letter headers and the metric label.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub reason: &'static str,
    pub detail: String,
}

/// Decodes one record of `input` given its `adjoin-kind` header and value.
pub fn decode(input: Input, kind_opt: Option<&str>, value: &[u8]) -> Result<Decoded, Unreadable> {
    match input {
        Input::Impressions => match kind_opt {
            Some(keyed::KIND_WATERMARK) => Ok(Decoded::Marker),
            Some(keyed::KIND_IMPRESSION) => serde_json::from_slice::<Impression>(value)
                .map(Decoded::Impression)
                .map_err(|error| Unreadable {
                    reason: "invalid_impression",
                    detail: format!("not a keyed impression: {error}"),
                }),
            // As the join: a record that does not say what it is is not guessed at.
            other => Err(Unreadable {
                reason: "unknown_kind",
                detail: format!(
                    "header {} is {}; expected {:?} or {:?}",
                    keyed::HEADER_KIND,
                    other.map_or("missing".to_owned(), |kind| format!("{kind:?}")),
                    keyed::KIND_IMPRESSION,
                    keyed::KIND_WATERMARK
                ),
            }),
        },
        Input::Outcomes => {
            let outcome =
                serde_json::from_slice::<ClickOutcome>(value).map_err(|error| Unreadable {
                    reason: "invalid_outcome",
                    detail: format!("not a click outcome: {error}"),
                })?;
            let matched = outcome.outcome == Outcome::Matched;
            if matched != outcome.impression.is_some() {
                return Err(Unreadable {
                    reason: "invalid_outcome",
                    detail: format!(
                        "outcome {} {} impression attributes",
                        outcome.outcome.as_str(),
                        if matched { "without" } else { "with" }
                    ),
                });
            }
            Ok(Decoded::Outcome(outcome))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMPRESSION: &str = r#"{"impression_id":"i1","user_id":"u","session_id":"s","ad_id":"a","ad_category":"c","device":"d","os":"o","browser":"b","location":"l","page_id":"p","referrer":"","impression_cost":0.1,"event_time":"2026-11-27T21:29:00.000Z"}"#;

    #[test]
    fn markers_impressions_and_outcomes() {
        assert_eq!(
            decode(Input::Impressions, Some("watermark"), b"{}"),
            Ok(Decoded::Marker)
        );
        let Ok(Decoded::Impression(impression)) = decode(
            Input::Impressions,
            Some("impression"),
            IMPRESSION.as_bytes(),
        ) else {
            panic!("an impression decodes");
        };
        assert_eq!(impression.impression_id, "i1");
        let matched = r#"{"click_id":"c","impression_id":"i1","click_position":1,"click_cost":0.5,"event_time":"2026-11-27T21:29:30.000Z","outcome":"matched","impression":{"event_time":"2026-11-27T21:29:00.000Z","ad_id":"a","ad_category":"c","device":"d","os":"o","browser":"b","location":"l"}}"#;
        let Ok(Decoded::Outcome(outcome)) = decode(Input::Outcomes, None, matched.as_bytes())
        else {
            panic!("a matched outcome decodes");
        };
        assert_eq!(outcome.outcome, Outcome::Matched);
    }

    #[test]
    fn unreadable_records_say_why() {
        let error = decode(Input::Impressions, Some("impression"), b"{\"x\":1}").unwrap_err();
        assert_eq!(error.reason, "invalid_impression");
        let error = decode(Input::Impressions, Some("click"), IMPRESSION.as_bytes()).unwrap_err();
        assert_eq!(error.reason, "unknown_kind");
        let error = decode(Input::Impressions, None, IMPRESSION.as_bytes()).unwrap_err();
        assert_eq!(error.reason, "unknown_kind", "no header, no guess");
        assert!(error.detail.contains("missing"), "{}", error.detail);
        let unmatched_with_impression = r#"{"click_id":"c","impression_id":"i1","click_position":1,"click_cost":0.5,"event_time":"2026-11-27T21:29:30.000Z","outcome":"late","impression":{"event_time":"2026-11-27T21:29:00.000Z","ad_id":"a","ad_category":"c","device":"d","os":"o","browser":"b","location":"l"}}"#;
        let error =
            decode(Input::Outcomes, None, unmatched_with_impression.as_bytes()).unwrap_err();
        assert_eq!(error.reason, "invalid_outcome");
        assert!(
            error.detail.contains("late with impression"),
            "{}",
            error.detail
        );
        let matched_without = r#"{"click_id":"c","impression_id":"i1","click_position":1,"click_cost":0.5,"event_time":"2026-11-27T21:29:30.000Z","outcome":"matched"}"#;
        assert_eq!(
            decode(Input::Outcomes, None, matched_without.as_bytes())
                .unwrap_err()
                .reason,
            "invalid_outcome"
        );
    }
}
