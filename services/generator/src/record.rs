//! Records as the generator writes them to the raw topics, and where they go.

use adjoin_shared::kafka::partitioner::partition_for_key;
use adjoin_shared::schema::{Click, DecodeReason, EventTime, Impression};

/// Which raw topic a record is written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    Impressions,
    Clicks,
}

impl Topic {
    pub const fn as_str(self) -> &'static str {
        match self {
            Topic::Impressions => "impressions",
            Topic::Clicks => "clicks",
        }
    }
}

/// What a record holds, as the generator knows it (the oracle's input).
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// Boxed: an impression is four times the size of the other variants.
    Impression(Box<Impression>),
    Click(Click),
    /// A second delivery of a click already written.
    DuplicateClick(Click),
    /// A record built to be rejected with this reason.
    Malformed(DecodeReason),
}

/// One record for a raw topic, in delivery order.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRecord {
    pub topic: Topic,
    pub partition: i32,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    /// When the record is delivered, on the run's clock. Equal to its event time
    /// unless the record is delivered out of order.
    pub deliver_at: EventTime,
    pub content: Content,
}

/// How raw records are keyed and partitioned. Real producers do not co-partition
/// impressions and clicks; ingest re-keys them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyBy {
    /// No key; the partition is spread by the record's own id (click id for clicks),
    /// as a sticky or random partitioner would.
    Random,
    /// Keyed by user id (a click by its impression's user).
    User,
    /// Keyed by impression id: already co-partitioned.
    #[value(name = "impression_id")]
    ImpressionId,
}

impl KeyBy {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyBy::Random => "random",
            KeyBy::User => "user",
            KeyBy::ImpressionId => "impression_id",
        }
    }
}

/// Returns the key and partition of a record whose ids are known. `own_id` is the
/// impression id of an impression and the click id of a click.
pub fn place_known(
    key_by: KeyBy,
    own_id: &str,
    impression_id: &str,
    user_id: &str,
    num_partitions: i32,
) -> (Option<String>, i32) {
    match key_by {
        KeyBy::Random => (None, partition_for_key(own_id.as_bytes(), num_partitions)),
        KeyBy::User => (
            Some(user_id.to_owned()),
            partition_for_key(user_id.as_bytes(), num_partitions),
        ),
        KeyBy::ImpressionId => (
            Some(impression_id.to_owned()),
            partition_for_key(impression_id.as_bytes(), num_partitions),
        ),
    }
}

/// Returns the key and partition of a record from its bytes alone, as a replay of a
/// recorded file must: the ids it names, else a hash of the bytes. For a valid
/// record this agrees with [`place_known`] (except `User` for clicks, which do not
/// name their user; replay refuses that mode).
pub fn place_from_payload(
    key_by: KeyBy,
    payload: &[u8],
    num_partitions: i32,
) -> (Option<String>, i32) {
    let value: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    let field = |names: &[&str]| -> Option<String> {
        let object = value.as_ref()?.as_object()?;
        names.iter().find_map(|name| match object.get(*name)? {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
    };
    let by_bytes = || (None, partition_for_key(payload, num_partitions));
    match key_by {
        KeyBy::Random => match field(&["click_id", "ClickID"])
            .or_else(|| field(&["impression_id", "ImpressionID"]))
        {
            Some(id) => (None, partition_for_key(id.as_bytes(), num_partitions)),
            None => by_bytes(),
        },
        KeyBy::User => match field(&["user_id", "UserID"]) {
            Some(user) => {
                let partition = partition_for_key(user.as_bytes(), num_partitions);
                (Some(user), partition)
            }
            None => by_bytes(),
        },
        KeyBy::ImpressionId => match field(&["impression_id", "ImpressionID", "JoinID"]) {
            Some(id) => {
                let partition = partition_for_key(id.as_bytes(), num_partitions);
                (Some(id), partition)
            }
            None => by_bytes(),
        },
    }
}

/// Tells a recorded event's topic by the fields it names (either naming style).
pub fn topic_of_payload(payload: &[u8]) -> Option<Topic> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let object = value.as_object()?;
    if object.contains_key("click_id") || object.contains_key("ClickID") {
        Some(Topic::Clicks)
    } else if object.contains_key("impression_id") || object.contains_key("ImpressionID") {
        Some(Topic::Impressions)
    } else {
        None
    }
}
