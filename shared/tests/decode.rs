//! The decoder on valid records in both naming styles and on every kind of bad
//! input, each yielding its stable reason code.

use std::collections::BTreeSet;
use std::time::Duration;

use adjoin_shared::schema::{DecodeLimits, DecodeReason, Decoder, EventTime};

/// 2026-11-27T21:30:00Z, the clock the tests decode against.
const NOW: EventTime = EventTime::from_millis(1_795_815_000_000);

fn snake_impression() -> serde_json::Value {
    serde_json::json!({
        "impression_id": "imp-1",
        "user_id": "user-9",
        "session_id": "sess-3",
        "ad_id": "ad-42",
        "ad_category": "travel",
        "device": "mobile",
        "os": "Android",
        "browser": "Chrome",
        "location": "DE",
        "page_id": "page-7",
        "referrer": "https://news.example/",
        "impression_cost": 0.0021,
        "event_time": "2026-11-27T21:29:00.125Z"
    })
}

fn seed_impression() -> serde_json::Value {
    serde_json::json!({
        "ImpressionID": "imp-1",
        "UserID": "user-9",
        "SessionID": "sess-3",
        "AdID": "ad-42",
        "AdCategory": "travel",
        "Device": "mobile",
        "OS": "Android",
        "Browser": "Chrome",
        "Location": "DE",
        "PageID": "page-7",
        "Referrer": "https://news.example/",
        "ImpressionCost": 0.0021,
        "event_time": 1_795_814_940_125_i64
    })
}

fn snake_click() -> serde_json::Value {
    serde_json::json!({
        "click_id": "clk-1",
        "impression_id": "imp-1",
        "click_position": 2,
        "click_cost": 0.35,
        "event_time": "2026-11-27T21:29:30Z"
    })
}

fn seed_click() -> serde_json::Value {
    serde_json::json!({
        "ClickID": "clk-1",
        "JoinID": "imp-1",
        "ClickPosition": 2,
        "ClickCost": 0.35,
        "event_time": 1_795_814_970_000_i64
    })
}

fn bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn with(mut value: serde_json::Value, key: &str, field: serde_json::Value) -> serde_json::Value {
    value[key] = field;
    value
}

fn without(mut value: serde_json::Value, key: &str) -> serde_json::Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

fn impression_reason(value: &serde_json::Value) -> DecodeReason {
    impression_reason_bytes(&bytes(value))
}

fn impression_reason_bytes(raw: &[u8]) -> DecodeReason {
    Decoder::default()
        .decode_impression(raw, NOW)
        .expect_err("record must be rejected")
        .reason()
}

fn click_reason(value: &serde_json::Value) -> DecodeReason {
    Decoder::default()
        .decode_click(&bytes(value), NOW)
        .expect_err("record must be rejected")
        .reason()
}

#[test]
fn both_naming_styles_decode_to_the_same_impression() {
    let decoder = Decoder::default();
    let snake = decoder
        .decode_impression(&bytes(&snake_impression()), NOW)
        .unwrap();
    let seed = decoder
        .decode_impression(&bytes(&seed_impression()), NOW)
        .unwrap();
    assert_eq!(snake, seed);
    assert_eq!(snake.impression_id, "imp-1");
    assert_eq!(snake.os, "Android");
    assert_eq!(snake.impression_cost, 0.0021);
    assert_eq!(snake.event_time.to_string(), "2026-11-27T21:29:00.125Z");
}

#[test]
fn both_naming_styles_decode_to_the_same_click() {
    let decoder = Decoder::default();
    let snake = decoder.decode_click(&bytes(&snake_click()), NOW).unwrap();
    let seed = decoder.decode_click(&bytes(&seed_click()), NOW).unwrap();
    assert_eq!(snake, seed);
    assert_eq!(snake.impression_id, "imp-1");
    assert_eq!(snake.click_position, 2);
}

#[test]
fn lenient_forms_producers_use_are_accepted() {
    let decoder = Decoder::default();
    let impression = with(snake_impression(), "user_id", serde_json::json!(12345));
    let impression = with(impression, "impression_cost", serde_json::json!("0.5"));
    let impression = with(impression, "referrer", serde_json::json!(""));
    let impression = with(impression, "version", serde_json::json!(1));
    let impression = with(
        impression,
        "unrelated_extra",
        serde_json::json!({"nested": true}),
    );
    let decoded = decoder.decode_impression(&bytes(&impression), NOW).unwrap();
    assert_eq!(decoded.user_id, "12345");
    assert_eq!(decoded.impression_cost, 0.5);
    assert_eq!(decoded.referrer, "");
    let escaped = br#"{"click_id":"c\u0031","impression_id":"i","click_position":"3","click_cost":0,"event_time":"2026-11-27T21:29:30\u005a"}"#;
    let click = decoder.decode_click(escaped, NOW).unwrap();
    assert_eq!(click.click_id, "c1");
    assert_eq!(click.click_position, 3);
    // Whole numbers written as floats, as JavaScript and Python producers do.
    let floats = with(
        snake_click(),
        "event_time",
        serde_json::json!(1.79581497e12),
    );
    let floats = with(floats, "click_position", serde_json::json!(2.0));
    let click = decoder.decode_click(&bytes(&floats), NOW).unwrap();
    assert_eq!(click.event_time.as_millis(), 1_795_814_970_000);
    assert_eq!(click.click_position, 2);
}

#[test]
fn every_reason_code_has_a_record_that_triggers_it() {
    let limits = DecodeLimits::default();
    let cases: Vec<(DecodeReason, DecodeReason)> = vec![
        (
            DecodeReason::TooLarge,
            impression_reason(&with(
                snake_impression(),
                "padding",
                serde_json::json!("x".repeat(limits.max_record_bytes)),
            )),
        ),
        (
            DecodeReason::InvalidJson,
            impression_reason_bytes(b"{\"impression_id\": "),
        ),
        (
            DecodeReason::InvalidJson,
            impression_reason_bytes(b"[\"imp-1\", \"user\"]"),
        ),
        (DecodeReason::InvalidJson, impression_reason_bytes(b"")),
        (
            DecodeReason::InvalidJson,
            impression_reason_bytes(b"{\"impression_cost\": NaN}"),
        ),
        (
            DecodeReason::WrongType,
            impression_reason(&with(snake_impression(), "device", serde_json::json!(true))),
        ),
        (
            DecodeReason::WrongType,
            impression_reason(&with(snake_impression(), "ad_id", serde_json::json!(["a"]))),
        ),
        (
            DecodeReason::DuplicateField,
            impression_reason_bytes(
                &[
                    &bytes(&snake_impression())[..1],
                    br#""ImpressionID":"other","#,
                    &bytes(&snake_impression())[1..],
                ]
                .concat(),
            ),
        ),
        (
            DecodeReason::UnknownVersion,
            impression_reason(&with(snake_impression(), "version", serde_json::json!(2))),
        ),
        (
            DecodeReason::MissingField,
            impression_reason(&without(snake_impression(), "ad_category")),
        ),
        (
            DecodeReason::MissingField,
            impression_reason(&with(
                snake_impression(),
                "user_id",
                serde_json::Value::Null,
            )),
        ),
        (
            DecodeReason::EmptyField,
            impression_reason(&with(
                snake_impression(),
                "impression_id",
                serde_json::json!(""),
            )),
        ),
        (
            DecodeReason::EmptyField,
            click_reason(&with(snake_click(), "click_id", serde_json::json!("   "))),
        ),
        (
            DecodeReason::FieldTooLong,
            impression_reason(&with(
                snake_impression(),
                "referrer",
                serde_json::json!("r".repeat(limits.max_field_bytes + 1)),
            )),
        ),
        (
            DecodeReason::BadCost,
            impression_reason(&with(
                snake_impression(),
                "impression_cost",
                serde_json::json!(-0.01),
            )),
        ),
        (
            DecodeReason::BadCost,
            impression_reason(&with(
                snake_impression(),
                "impression_cost",
                serde_json::json!("inf"),
            )),
        ),
        (
            DecodeReason::BadCost,
            impression_reason(&with(
                snake_impression(),
                "impression_cost",
                serde_json::json!("NaN"),
            )),
        ),
        (
            DecodeReason::BadCost,
            click_reason(&with(snake_click(), "click_cost", serde_json::json!(1e9))),
        ),
        (
            DecodeReason::BadCost,
            click_reason(&with(
                snake_click(),
                "click_cost",
                serde_json::json!("cheap"),
            )),
        ),
        (
            DecodeReason::BadPosition,
            click_reason(&with(
                snake_click(),
                "click_position",
                serde_json::json!(-1),
            )),
        ),
        (
            DecodeReason::BadPosition,
            click_reason(&with(
                snake_click(),
                "click_position",
                serde_json::json!(1.5),
            )),
        ),
        (
            DecodeReason::BadTime,
            click_reason(&with(
                snake_click(),
                "event_time",
                serde_json::json!("yesterday"),
            )),
        ),
        (
            DecodeReason::BadTime,
            click_reason(&with(
                snake_click(),
                "event_time",
                serde_json::json!(1_795_814_970),
            )),
        ),
        (
            DecodeReason::BadTime,
            click_reason(&with(
                snake_click(),
                "event_time",
                serde_json::json!(1_795_814_970_000.5),
            )),
        ),
        (
            DecodeReason::BadTime,
            click_reason(&with(
                snake_click(),
                "event_time",
                serde_json::json!("2027-11-27T21:30:00Z"),
            )),
        ),
    ];
    let mut seen = BTreeSet::new();
    for (index, (expected, actual)) in cases.iter().enumerate() {
        assert_eq!(expected, actual, "case {index}");
        seen.insert(*actual);
    }
    let all: BTreeSet<DecodeReason> = DecodeReason::ALL.into_iter().collect();
    assert_eq!(seen, all, "every reason code is covered");
}

#[test]
fn messages_name_the_field_and_the_fix() {
    let decoder = Decoder::default();
    let error = decoder
        .decode_impression(
            &bytes(&with(snake_impression(), "device", serde_json::json!(true))),
            NOW,
        )
        .unwrap_err();
    assert!(error.to_string().contains("device"), "{error}");
    let error = decoder
        .decode_click(
            &bytes(&with(
                snake_click(),
                "event_time",
                serde_json::json!(1_795_814_970),
            )),
            NOW,
        )
        .unwrap_err();
    assert!(error.to_string().contains("epoch seconds"), "{error}");
    let error = decoder
        .decode_impression(&bytes(&without(snake_impression(), "os")), NOW)
        .unwrap_err();
    assert_eq!(error.to_string(), "missing field `os`");
}

#[test]
fn future_limit_is_configurable_and_old_times_are_backfills() {
    let tomorrow = with(
        snake_click(),
        "event_time",
        serde_json::json!("2026-11-28T21:00:00Z"),
    );
    assert_eq!(click_reason(&tomorrow), DecodeReason::BadTime);
    let lenient = Decoder::new(DecodeLimits {
        max_future: Duration::from_secs(2 * 24 * 3600),
        ..DecodeLimits::default()
    });
    assert!(lenient.decode_click(&bytes(&tomorrow), NOW).is_ok());
    let backfill = with(
        snake_click(),
        "event_time",
        serde_json::json!("2009-01-03T18:15:05Z"),
    );
    assert!(Decoder::default()
        .decode_click(&bytes(&backfill), NOW)
        .is_ok());
}
