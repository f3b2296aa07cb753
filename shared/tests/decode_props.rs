//! Property tests: the decoder never panics, accepts every well-formed record it
//! could have been sent, and classifies any byte string.

use adjoin_shared::schema::{DecodeReason, Decoder, EventTime, Impression};
use proptest::prelude::*;

const NOW: EventTime = EventTime::from_millis(1_795_815_000_000);

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,40}"
}

fn attribute() -> impl Strategy<Value = String> {
    // Any Unicode text, including quotes and escapes, within the field limit.
    "\\PC{0,60}"
}

prop_compose! {
    fn impression()(
        ids in proptest::collection::vec(id(), 5),
        attributes in proptest::collection::vec(attribute(), 6),
        cost_micros in 0u64..1_000_000_000,
        time in 946_684_800_000i64..1_795_815_000_000,
    ) -> Impression {
        Impression {
            impression_id: ids[0].clone(),
            user_id: ids[1].clone(),
            session_id: ids[2].clone(),
            ad_id: ids[3].clone(),
            page_id: ids[4].clone(),
            ad_category: attributes[0].clone(),
            device: attributes[1].clone(),
            os: attributes[2].clone(),
            browser: attributes[3].clone(),
            location: attributes[4].clone(),
            referrer: attributes[5].clone(),
            impression_cost: cost_micros as f64 / 1e6,
            event_time: EventTime::from_millis(time),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_valid_impression_round_trips(expected in impression()) {
        let encoded = serde_json::to_vec(&expected).unwrap();
        let decoded = Decoder::default().decode_impression(&encoded, NOW).unwrap();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn any_bytes_are_classified_without_panicking(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let decoder = Decoder::default();
        if let Err(error) = decoder.decode_impression(&raw, NOW) {
            prop_assert!(DecodeReason::ALL.contains(&error.reason()));
            prop_assert!(!error.to_string().is_empty());
        }
        let _ = decoder.decode_click(&raw, NOW);
    }

    #[test]
    fn truncating_a_valid_record_is_invalid_json(expected in impression(), cut in 1usize..200) {
        let encoded = serde_json::to_vec(&expected).unwrap();
        let cut = cut.min(encoded.len() - 1);
        let error = Decoder::default().decode_impression(&encoded[..encoded.len() - cut], NOW).unwrap_err();
        prop_assert_eq!(error.reason(), DecodeReason::InvalidJson);
    }

    #[test]
    fn dropping_any_required_field_is_missing_field(expected in impression(), index in 0usize..13) {
        let mut value = serde_json::to_value(&expected).unwrap();
        let object = value.as_object_mut().unwrap();
        let key = object.keys().nth(index).unwrap().clone();
        object.remove(&key);
        let error = Decoder::default().decode_impression(&serde_json::to_vec(&value).unwrap(), NOW).unwrap_err();
        prop_assert_eq!(error.reason(), DecodeReason::MissingField);
    }
}
