//! Where a raw record goes: decoded and re-keyed into its keyed topic, or, when it
//! does not decode, to the dead-letter topic with the reason. Pure.

use std::ops::Range;

use serde::Serialize;

use adjoin_shared::kafka::partitioner::partition_for_key;
use adjoin_shared::schema::{DecodeError, Decoder, EventTime};

/// Which raw topic an ingest actor reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawKind {
    Impressions,
    Clicks,
}

impl RawKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            RawKind::Impressions => "impressions",
            RawKind::Clicks => "clicks",
        }
    }

    pub const fn keyed_kind(self) -> &'static str {
        match self {
            RawKind::Impressions => adjoin_shared::keyed::KIND_IMPRESSION,
            RawKind::Clicks => adjoin_shared::keyed::KIND_CLICK,
        }
    }
}

/// A valid record, ready for its keyed topic: its key and value are ranges of the
/// buffer `route` wrote them into, so a batch of records costs one allocation, not
/// several per record.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyedRecord {
    /// The impression id: the key every keyed topic is partitioned by.
    pub key: Range<usize>,
    pub partition: i32,
    /// The record in canonical form (snake_case names, RFC 3339 UTC time).
    pub value: Range<usize>,
    pub event_time: EventTime,
}

/// Decodes a raw record and places it among `keyed_partitions`: murmur2 of the
/// impression id, as the Java client's default partitioner, so that an impression
/// and its clicks meet in the same partition number of both keyed topics. The key
/// and the canonical value are appended to `out`.
pub fn route(
    decoder: &Decoder,
    kind: RawKind,
    payload: &[u8],
    now: EventTime,
    keyed_partitions: i32,
    out: &mut Vec<u8>,
) -> Result<KeyedRecord, DecodeError> {
    let key_start = out.len();
    let (key_end, event_time) = match kind {
        RawKind::Impressions => {
            let impression = decoder.decode_impression_ref(payload, now)?;
            let key_end = append(out, &impression.impression_id, &impression);
            (key_end, impression.event_time)
        }
        RawKind::Clicks => {
            let click = decoder.decode_click_ref(payload, now)?;
            let key_end = append(out, &click.impression_id, &click);
            (key_end, click.event_time)
        }
    };
    let key = key_start..key_end;
    let partition = partition_for_key(&out[key.clone()], keyed_partitions);
    Ok(KeyedRecord {
        key,
        partition,
        value: key_end..out.len(),
        event_time,
    })
}

/// Appends the key, then the record's JSON; returns where the key ends.
fn append<T: Serialize>(out: &mut Vec<u8>, key: &str, record: &T) -> usize {
    out.extend_from_slice(key.as_bytes());
    let key_end = out.len();
    // Serialising plain fields into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, record);
    key_end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_land_where_their_impression_does() {
        let decoder = Decoder::default();
        let now = EventTime::from_millis(1_795_815_000_000);
        let impression = br#"{"ImpressionID":"imp-7","UserID":"u","SessionID":"s","AdID":"a","AdCategory":"c","Device":"d","OS":"o","Browser":"b","Location":"l","PageID":"p","Referrer":"","ImpressionCost":0.1,"event_time":1795814940000}"#;
        let click = br#"{"click_id":"c1","impression_id":"imp-7","click_position":1,"click_cost":0.2,"event_time":"2026-11-27T21:29:30Z"}"#;
        for partitions in [1, 4, 12] {
            let mut out = Vec::new();
            let keyed_impression = route(
                &decoder,
                RawKind::Impressions,
                impression,
                now,
                partitions,
                &mut out,
            )
            .unwrap();
            let keyed_click =
                route(&decoder, RawKind::Clicks, click, now, partitions, &mut out).unwrap();
            assert_eq!(&out[keyed_impression.key], b"imp-7");
            assert_eq!(&out[keyed_click.key], b"imp-7");
            assert_eq!(keyed_impression.partition, keyed_click.partition);
            let value: serde_json::Value = serde_json::from_slice(&out[keyed_click.value]).unwrap();
            assert_eq!(value["click_id"], "c1", "each value is its own record");
        }
        let mut out = Vec::new();
        let keyed = route(&decoder, RawKind::Impressions, impression, now, 4, &mut out).unwrap();
        let canonical: serde_json::Value = serde_json::from_slice(&out[keyed.value]).unwrap();
        assert_eq!(
            canonical["impression_id"], "imp-7",
            "seed names become snake_case"
        );
        assert_eq!(canonical["event_time"], "2026-11-27T21:29:00.000Z");
    }

    #[test]
    fn the_canonical_value_is_what_the_owned_record_writes() {
        // The join and the sink decode keyed values as `Impression`/`Click`; the
        // borrowed form must write exactly what the owned one would, escapes included.
        let decoder = Decoder::default();
        let now = EventTime::from_millis(1_795_815_000_000);
        let impression = br#"{"impression_id":"imp-\"8\"","user_id":"u\u00e9","session_id":"s","ad_id":"a","ad_category":"c","device":"d","os":"o","browser":"b","location":"l","page_id":"p","referrer":"https://x/?a=1&b=\/2","impression_cost":"0.25","event_time":"2026-11-27T21:29:00+01:00"}"#;
        let mut out = Vec::new();
        let keyed = route(&decoder, RawKind::Impressions, impression, now, 4, &mut out).unwrap();
        let owned = decoder.decode_impression(impression, now).unwrap();
        assert_eq!(out[keyed.key.clone()], *owned.impression_id.as_bytes());
        assert_eq!(out[keyed.value], serde_json::to_vec(&owned).unwrap());
        let click = br#"{"ClickID":7,"JoinID":"imp-\"8\"","ClickPosition":2.0,"ClickCost":0.5,"event_time":1795814940000}"#;
        let mut out = Vec::new();
        let keyed = route(&decoder, RawKind::Clicks, click, now, 4, &mut out).unwrap();
        let owned = decoder.decode_click(click, now).unwrap();
        assert_eq!(out[keyed.key], *owned.impression_id.as_bytes());
        assert_eq!(out[keyed.value], serde_json::to_vec(&owned).unwrap());
    }

    #[test]
    fn bad_records_keep_their_reason_and_write_nothing() {
        let decoder = Decoder::default();
        let mut out = Vec::new();
        let error = route(
            &decoder,
            RawKind::Clicks,
            b"{oops",
            EventTime::now(),
            4,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(error.reason().as_str(), "invalid_json");
        assert!(out.is_empty());
    }
}
