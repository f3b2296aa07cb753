//! Records built to be rejected, one kind per decoder reason code, so that dead
//! letters, their headers and their counters are exercised by every run.

use adjoin_shared::schema::{DecodeLimits, DecodeReason};
use serde_json::Value;

use crate::record::Topic;

/// The malformed kinds in the order a run cycles through them: every reason on
/// both topics, except `bad_position`, which only a click can have.
pub fn kinds() -> Vec<(DecodeReason, Topic)> {
    DecodeReason::ALL
        .into_iter()
        .flat_map(|reason| {
            let topics: &[Topic] = if reason == DecodeReason::BadPosition {
                &[Topic::Clicks]
            } else {
                &[Topic::Impressions, Topic::Clicks]
            };
            topics.iter().map(move |topic| (reason, *topic))
        })
        .collect()
}

/// Breaks a valid record (`template`, as JSON, of the given topic) so that the
/// decoder rejects it with `reason` under `limits`.
pub fn break_record(
    template: &Value,
    topic: Topic,
    reason: DecodeReason,
    limits: &DecodeLimits,
) -> Vec<u8> {
    let mut record = template.clone();
    let set = |record: &mut Value, field: &str, value: Value| {
        if let Some(object) = record.as_object_mut() {
            object.insert(field.to_owned(), value);
        }
    };
    let (id_field, seed_id_field) = match topic {
        Topic::Impressions => ("impression_id", "ImpressionID"),
        Topic::Clicks => ("click_id", "ClickID"),
    };
    let cost_field = match topic {
        Topic::Impressions => "impression_cost",
        Topic::Clicks => "click_cost",
    };
    match reason {
        DecodeReason::TooLarge => {
            set(
                &mut record,
                "padding",
                Value::String("x".repeat(limits.max_record_bytes)),
            );
        }
        DecodeReason::InvalidJson => {
            let text = record.to_string();
            return text.as_bytes()[..text.len() / 2].to_vec();
        }
        DecodeReason::WrongType => set(&mut record, id_field, Value::Bool(true)),
        DecodeReason::DuplicateField => {
            let text = record.to_string();
            let twice = format!("{{\"{seed_id_field}\":\"second-name\",{}", &text[1..]);
            return twice.into_bytes();
        }
        DecodeReason::UnknownVersion => set(&mut record, "version", Value::from(99)),
        DecodeReason::MissingField => {
            if let Some(object) = record.as_object_mut() {
                object.remove("event_time");
            }
        }
        DecodeReason::EmptyField => set(&mut record, id_field, Value::String(String::new())),
        DecodeReason::FieldTooLong => set(
            &mut record,
            "impression_id",
            Value::String("i".repeat(limits.max_field_bytes + 1)),
        ),
        DecodeReason::BadCost => set(&mut record, cost_field, Value::from(-1.5)),
        DecodeReason::BadPosition => set(&mut record, "click_position", Value::from(-3)),
        DecodeReason::BadTime => set(
            &mut record,
            "event_time",
            Value::String("not-a-time".to_owned()),
        ),
    }
    record.to_string().into_bytes()
}
