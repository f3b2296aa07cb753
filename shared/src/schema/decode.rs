use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::time::RawTime;
use super::{Click, ClickRef, DecodeError, EventTime, Impression, ImpressionRef, SCHEMA_VERSION};

/// Limits that separate a plausible record from garbage (config section `decode`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeLimits {
    /// Largest record accepted, in bytes; larger ones go to the dead-letter topic
    /// unparsed, so a runaway producer cannot make ingest allocate without bound.
    pub max_record_bytes: usize,
    /// Longest string field accepted, in bytes (ids, attributes, referrer).
    pub max_field_bytes: usize,
    /// Highest cost accepted for one impression or click, in currency units.
    pub max_cost: f64,
    /// How far ahead of this machine's clock an event time may be. Old times are
    /// legitimate backfills; times far in the future are broken clocks.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Earliest event time accepted. The default (2000-01-01) catches producers that
    /// send epoch seconds where milliseconds are expected.
    pub min_event_time: EventTime,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_record_bytes: 16 * 1024,
            max_field_bytes: 1024,
            max_cost: 1_000.0,
            max_future: Duration::from_secs(3600),
            // 2000-01-01T00:00:00Z
            min_event_time: EventTime::from_millis(946_684_800_000),
        }
    }
}

/// Decodes and validates raw JSON records. Cheap to clone; holds only limits.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    limits: DecodeLimits,
}

impl Decoder {
    pub fn new(limits: DecodeLimits) -> Self {
        Self { limits }
    }

    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// Decodes one impression; `now` bounds how far in the future its time may be.
    pub fn decode_impression(
        &self,
        bytes: &[u8],
        now: EventTime,
    ) -> Result<Impression, DecodeError> {
        self.decode_impression_ref(bytes, now)
            .map(ImpressionRef::into_owned)
    }

    /// Decodes one click; `now` bounds how far in the future its time may be.
    pub fn decode_click(&self, bytes: &[u8], now: EventTime) -> Result<Click, DecodeError> {
        self.decode_click_ref(bytes, now).map(ClickRef::into_owned)
    }

    /// As [`Decoder::decode_impression`], with text borrowed from `bytes` where it
    /// needs no unescaping: what ingest uses, as it only re-encodes the record.
    pub fn decode_impression_ref<'a>(
        &self,
        bytes: &'a [u8],
        now: EventTime,
    ) -> Result<ImpressionRef<'a>, DecodeError> {
        let raw: RawImpression = self.parse(bytes)?;
        check_version(raw.version.as_ref())?;
        let fields = FieldCheck {
            limits: &self.limits,
        };
        Ok(ImpressionRef {
            impression_id: fields.id(raw.impression_id, "impression_id")?,
            user_id: fields.id(raw.user_id, "user_id")?,
            session_id: fields.id(raw.session_id, "session_id")?,
            ad_id: fields.id(raw.ad_id, "ad_id")?,
            ad_category: fields.text(raw.ad_category, "ad_category")?,
            device: fields.text(raw.device, "device")?,
            os: fields.text(raw.os, "os")?,
            browser: fields.text(raw.browser, "browser")?,
            location: fields.text(raw.location, "location")?,
            page_id: fields.id(raw.page_id, "page_id")?,
            referrer: fields.text(raw.referrer, "referrer")?,
            impression_cost: fields.cost(raw.impression_cost, "impression_cost")?,
            event_time: fields.time(raw.event_time, now)?,
        })
    }

    /// As [`Decoder::decode_click`], with text borrowed from `bytes` where it can be.
    pub fn decode_click_ref<'a>(
        &self,
        bytes: &'a [u8],
        now: EventTime,
    ) -> Result<ClickRef<'a>, DecodeError> {
        let raw: RawClick = self.parse(bytes)?;
        check_version(raw.version.as_ref())?;
        let fields = FieldCheck {
            limits: &self.limits,
        };
        Ok(ClickRef {
            click_id: fields.id(raw.click_id, "click_id")?,
            impression_id: fields.id(raw.impression_id, "impression_id")?,
            click_position: position(raw.click_position)?,
            click_cost: fields.cost(raw.click_cost, "click_cost")?,
            event_time: fields.time(raw.event_time, now)?,
        })
    }

    fn parse<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8]) -> Result<T, DecodeError> {
        if bytes.len() > self.limits.max_record_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_record_bytes,
            });
        }
        // serde's derive also accepts a JSON array as a struct (fields by position),
        // which no producer means; only objects are records.
        let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(DecodeError::InvalidJson {
                detail: "expected a JSON object".to_owned(),
            });
        }
        serde_json::from_slice(bytes).map_err(|error| classify::<T>(bytes, error))
    }
}

/// Maps a serde_json failure to a reason. Data errors are parsed a second time with
/// path tracking so the message names the field; that cost is paid only on errors.
fn classify<'a, T: Deserialize<'a>>(bytes: &'a [u8], error: serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Io | Category::Syntax | Category::Eof => DecodeError::InvalidJson {
            detail: error.to_string(),
        },
        Category::Data => {
            let message = error.to_string();
            if message.starts_with("duplicate field") {
                return DecodeError::DuplicateField {
                    detail: format!("{message}; a field may appear once, under one of its names"),
                };
            }
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            let detail = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
                Err(path_error) => format!("field `{}`: {}", path_error.path(), path_error.inner()),
                Ok(_) => message,
            };
            DecodeError::WrongType { detail }
        }
    }
}

fn check_version(version: Option<&RawNumber>) -> Result<(), DecodeError> {
    match version {
        None => Ok(()),
        Some(RawNumber::Int(version)) if *version == i128::from(SCHEMA_VERSION) => Ok(()),
        Some(RawNumber::Int(version)) => Err(DecodeError::UnknownVersion {
            version: u64::try_from(*version).unwrap_or(u64::MAX),
            supported: SCHEMA_VERSION,
        }),
        Some(RawNumber::Text(text)) => match text.trim().parse::<u64>() {
            Ok(SCHEMA_VERSION) => Ok(()),
            Ok(version) => Err(DecodeError::UnknownVersion {
                version,
                supported: SCHEMA_VERSION,
            }),
            Err(_) => Err(DecodeError::WrongType {
                detail: format!("field `version` is {text:?}, expected an integer"),
            }),
        },
        Some(RawNumber::Float(version)) => Err(DecodeError::WrongType {
            detail: format!("field `version` is {version}, expected an integer"),
        }),
    }
}

struct FieldCheck<'l> {
    limits: &'l DecodeLimits,
}

impl FieldCheck<'_> {
    /// An identifier: present, non-empty, within the field limit.
    fn id<'a>(
        &self,
        value: Option<RawText<'a>>,
        field: &'static str,
    ) -> Result<Cow<'a, str>, DecodeError> {
        let text = self.text(value, field)?;
        if text.trim().is_empty() {
            return Err(DecodeError::EmptyField { field });
        }
        Ok(text)
    }

    /// An attribute: present (possibly empty), within the field limit.
    fn text<'a>(
        &self,
        value: Option<RawText<'a>>,
        field: &'static str,
    ) -> Result<Cow<'a, str>, DecodeError> {
        let RawText(text) = value.ok_or(DecodeError::MissingField { field })?;
        if text.len() > self.limits.max_field_bytes {
            return Err(DecodeError::FieldTooLong {
                field,
                len: text.len(),
                limit: self.limits.max_field_bytes,
            });
        }
        Ok(text)
    }

    fn cost(&self, value: Option<RawNumber>, field: &'static str) -> Result<f64, DecodeError> {
        let bad_cost = |detail: String| DecodeError::BadCost { field, detail };
        let cost = match value.ok_or(DecodeError::MissingField { field })? {
            RawNumber::Int(cost) => cost as f64,
            RawNumber::Float(cost) => cost,
            RawNumber::Text(text) => text
                .trim()
                .parse::<f64>()
                .map_err(|_| bad_cost(format!("{text:?} is not a number")))?,
        };
        if !cost.is_finite() {
            return Err(bad_cost(format!("{cost} is not finite")));
        }
        if cost < 0.0 {
            return Err(bad_cost(format!("{cost} is negative")));
        }
        if cost > self.limits.max_cost {
            return Err(bad_cost(format!(
                "{cost} is over the limit of {} (decode.max_cost)",
                self.limits.max_cost
            )));
        }
        Ok(cost)
    }

    fn time(&self, value: Option<RawTime>, now: EventTime) -> Result<EventTime, DecodeError> {
        let bad_time = |detail: String| DecodeError::BadTime { detail };
        let time = match value.ok_or(DecodeError::MissingField {
            field: "event_time",
        })? {
            RawTime::EpochMillis(millis) => EventTime::from_millis(millis),
            RawTime::Text(text) => EventTime::parse_rfc3339(&text).ok_or_else(|| {
                bad_time(format!(
                    "{text:?} is not an RFC 3339 time or epoch milliseconds"
                ))
            })?,
            // Producers in languages without integers (JSON from JavaScript, Python
            // floats) write `1.7e12`: fine when it is a whole number.
            RawTime::Fractional(value) => match whole_number(value) {
                Some(millis) => EventTime::from_millis(millis),
                None => {
                    return Err(bad_time(format!(
                        "{value} is not an integer number of epoch milliseconds"
                    )))
                }
            },
        };
        if time < self.limits.min_event_time {
            return Err(bad_time(format!(
                "{} ({} ms) is before {} (decode.min_event_time); epoch seconds sent as milliseconds?",
                time,
                time.as_millis(),
                self.limits.min_event_time
            )));
        }
        let max_future_millis =
            i64::try_from(self.limits.max_future.as_millis()).unwrap_or(i64::MAX);
        let latest = now.saturating_add_millis(max_future_millis);
        if time > latest {
            return Err(bad_time(format!(
                "{} is more than {} ahead of the clock ({}) (decode.max_future)",
                time,
                humantime::format_duration(self.limits.max_future),
                now
            )));
        }
        Ok(time)
    }
}

fn position(value: Option<RawNumber>) -> Result<u32, DecodeError> {
    let bad_position = |detail: String| DecodeError::BadPosition { detail };
    match value.ok_or(DecodeError::MissingField {
        field: "click_position",
    })? {
        RawNumber::Int(position) => u32::try_from(position).map_err(|_| {
            bad_position(format!(
                "{position} is not a position from 0 to {}",
                u32::MAX
            ))
        }),
        RawNumber::Float(position) => whole_number(position)
            .and_then(|whole| u32::try_from(whole).ok())
            .ok_or_else(|| {
                bad_position(format!(
                    "{position} is not a position from 0 to {}",
                    u32::MAX
                ))
            }),
        RawNumber::Text(text) => text.trim().parse::<u32>().map_err(|_| {
            bad_position(format!("{text:?} is not a position from 0 to {}", u32::MAX))
        }),
    }
}

/// Returns a float's value as an integer when it is a whole number that fits.
fn whole_number(value: f64) -> Option<i64> {
    // i64::MAX is not exactly representable; stay strictly inside the range.
    let in_range = value > i64::MIN as f64 && value < i64::MAX as f64;
    (value.fract() == 0.0 && in_range).then_some(value as i64)
}

/// Field names: snake_case as in DESIGN.md, the seed's names as aliases. A record
/// that names a field twice (both spellings) is rejected as `duplicate_field`.
#[derive(Deserialize)]
struct RawImpression<'a> {
    #[serde(borrow, default, alias = "ImpressionID")]
    impression_id: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "UserID")]
    user_id: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "SessionID")]
    session_id: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "AdID")]
    ad_id: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "AdCategory")]
    ad_category: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "Device")]
    device: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "OS")]
    os: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "Browser")]
    browser: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "Location")]
    location: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "PageID")]
    page_id: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "Referrer")]
    referrer: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "ImpressionCost")]
    impression_cost: Option<RawNumber<'a>>,
    #[serde(
        borrow,
        default,
        alias = "EventTime",
        alias = "timestamp",
        alias = "Timestamp"
    )]
    event_time: Option<RawTime<'a>>,
    #[serde(borrow, default, alias = "schema_version")]
    version: Option<RawNumber<'a>>,
}

#[derive(Deserialize)]
struct RawClick<'a> {
    #[serde(borrow, default, alias = "ClickID")]
    click_id: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "JoinID")]
    impression_id: Option<RawText<'a>>,
    #[serde(borrow, default, alias = "ClickPosition")]
    click_position: Option<RawNumber<'a>>,
    #[serde(borrow, default, alias = "ClickCost")]
    click_cost: Option<RawNumber<'a>>,
    #[serde(
        borrow,
        default,
        alias = "EventTime",
        alias = "timestamp",
        alias = "Timestamp"
    )]
    event_time: Option<RawTime<'a>>,
    #[serde(borrow, default, alias = "schema_version")]
    version: Option<RawNumber<'a>>,
}

/// A string field. Integers are accepted too, since many producers send numeric ids.
struct RawText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for RawText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawTextVisitor;
        impl<'de> Visitor<'de> for RawTextVisitor {
            type Value = RawText<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(RawText(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(RawText(Cow::Owned(value.to_owned())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(RawText(Cow::Owned(value)))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(RawText(Cow::Owned(value.to_string())))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(RawText(Cow::Owned(value.to_string())))
            }
        }
        deserializer.deserialize_any(RawTextVisitor)
    }
}

/// A numeric field: a JSON number, or a string holding one (checked later).
enum RawNumber<'a> {
    Int(i128),
    Float(f64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawNumber<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawNumberVisitor;
        impl<'de> Visitor<'de> for RawNumberVisitor {
            type Value = RawNumber<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a number or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(RawNumber::Int(value.into()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(RawNumber::Int(value.into()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                Ok(RawNumber::Float(value))
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(RawNumber::Text(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(RawNumber::Text(Cow::Owned(value.to_owned())))
            }
        }
        deserializer.deserialize_any(RawNumberVisitor)
    }
}
