//! Where a raw record goes: decoded and re-keyed into its keyed topic, or, when it
//! does not decode, to the dead-letter topic with the reason. Pure.

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

/// A valid record, ready for its keyed topic.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyedRecord {
    /// The impression id: the key every keyed topic is partitioned by.
    pub key: String,
    pub partition: i32,
    /// The record in canonical form (snake_case names, RFC 3339 UTC time).
    pub value: Vec<u8>,
    pub event_time: EventTime,
}

/// Decodes a raw record and places it among `keyed_partitions`: murmur2 of the
/// impression id, as the Java client's default partitioner, so that an impression
/// and its clicks meet in the same partition number of both keyed topics.
pub fn route(
    decoder: &Decoder,
    kind: RawKind,
    payload: &[u8],
    now: EventTime,
    keyed_partitions: i32,
) -> Result<KeyedRecord, DecodeError> {
    let (key, value, event_time) = match kind {
        RawKind::Impressions => {
            let impression = decoder.decode_impression(payload, now)?;
            let value = serde_json::to_vec(&impression).unwrap_or_default();
            (impression.impression_id, value, impression.event_time)
        }
        RawKind::Clicks => {
            let click = decoder.decode_click(payload, now)?;
            let value = serde_json::to_vec(&click).unwrap_or_default();
            (click.impression_id, value, click.event_time)
        }
    };
    let partition = partition_for_key(key.as_bytes(), keyed_partitions);
    Ok(KeyedRecord {
        key,
        partition,
        value,
        event_time,
    })
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
            let keyed_impression =
                route(&decoder, RawKind::Impressions, impression, now, partitions).unwrap();
            let keyed_click = route(&decoder, RawKind::Clicks, click, now, partitions).unwrap();
            assert_eq!(keyed_impression.key, "imp-7");
            assert_eq!(keyed_click.key, "imp-7");
            assert_eq!(keyed_impression.partition, keyed_click.partition);
        }
        let canonical: serde_json::Value = serde_json::from_slice(
            &route(&decoder, RawKind::Impressions, impression, now, 4)
                .unwrap()
                .value,
        )
        .unwrap();
        assert_eq!(
            canonical["impression_id"], "imp-7",
            "seed names become snake_case"
        );
        assert_eq!(canonical["event_time"], "2026-11-27T21:29:00.000Z");
    }

    #[test]
    fn bad_records_keep_their_reason() {
        let decoder = Decoder::default();
        let error = route(&decoder, RawKind::Clicks, b"{oops", EventTime::now(), 4).unwrap_err();
        assert_eq!(error.reason().as_str(), "invalid_json");
    }
}
