//! Any bytes through both decoders: no panic, and an accepted record re-encodes to
//! JSON that decodes to the same record.

#![no_main]

use adjoin_shared::schema::{DecodeReason, Decoder, EventTime};
use libfuzzer_sys::fuzz_target;

const NOW: EventTime = EventTime::from_millis(1_795_815_000_000);

fuzz_target!(|data: &[u8]| {
    let decoder = Decoder::default();
    match decoder.decode_impression(data, NOW) {
        Ok(impression) => {
            let encoded = serde_json::to_vec(&impression).expect("an impression encodes");
            let again = decoder
                .decode_impression(&encoded, NOW)
                .expect("a re-encoded impression decodes");
            assert_eq!(again, impression);
        }
        Err(error) => assert!(DecodeReason::ALL.contains(&error.reason())),
    }
    match decoder.decode_click(data, NOW) {
        Ok(click) => {
            let encoded = serde_json::to_vec(&click).expect("a click encodes");
            let again = decoder
                .decode_click(&encoded, NOW)
                .expect("a re-encoded click decodes");
            assert_eq!(again, click);
        }
        Err(error) => assert!(DecodeReason::ALL.contains(&error.reason())),
    }
});
