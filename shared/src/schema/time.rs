use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An event time in milliseconds since the Unix epoch, UTC.
///
/// Milliseconds are what producers send and what the join compares; finer digits of
/// an RFC 3339 time are truncated. Serialised as RFC 3339 with milliseconds so that
/// records stay readable in topics and dead-letter queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventTime(i64);

impl EventTime {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Returns the current wall-clock time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    /// Parses RFC 3339 (`2026-11-27T21:30:00.250Z`, any offset) into UTC milliseconds.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|time| Self(time.timestamp_millis()))
    }

    /// Returns the time as a date, or `None` beyond chrono's range (about ±262,000
    /// years), which only a rejected record can carry.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.0).single()
    }

    pub fn saturating_add_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    pub fn saturating_sub_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_sub(millis))
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(time) => formatter.write_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(formatter, "{} ms since the epoch (out of range)", self.0),
        }
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A time as it appears in a record, before range checks: either form producers use.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RawTime<'a> {
    EpochMillis(i64),
    Text(Cow<'a, str>),
    /// A JSON number that is not an integer; kept so the error can say so.
    Fractional(f64),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawTime<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawTimeVisitor;
        impl<'de> Visitor<'de> for RawTimeVisitor {
            type Value = RawTime<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an RFC 3339 string or epoch milliseconds")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(RawTime::EpochMillis(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(RawTime::EpochMillis(
                    i64::try_from(value).unwrap_or(i64::MAX),
                ))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                Ok(RawTime::Fractional(value))
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(RawTime::Text(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(RawTime::Text(Cow::Owned(value.to_owned())))
            }
        }
        deserializer.deserialize_any(RawTimeVisitor)
    }
}

impl<'de> Deserialize<'de> for EventTime {
    /// Trusted internal topics (outcomes) use the same forms as producers.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventTimeVisitor;
        impl Visitor<'_> for EventTimeVisitor {
            type Value = EventTime;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an RFC 3339 string or epoch milliseconds")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(EventTime(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                i64::try_from(value)
                    .map(EventTime)
                    .map_err(|_| E::custom("epoch milliseconds out of range"))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                EventTime::parse_rfc3339(value)
                    .ok_or_else(|| E::custom(format!("not an RFC 3339 time: {value:?}")))
            }
        }
        deserializer.deserialize_any(EventTimeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let time = EventTime::parse_rfc3339("2026-11-27T21:30:00.250+01:00").unwrap();
        assert_eq!(time.to_string(), "2026-11-27T20:30:00.250Z");
        let json = serde_json::to_string(&time).unwrap();
        assert_eq!(serde_json::from_str::<EventTime>(&json).unwrap(), time);
    }

    #[test]
    fn out_of_range_times_display_their_milliseconds() {
        let time = EventTime::from_millis(9_000_000_000_000_000_000);
        assert_eq!(
            time.to_string(),
            "9000000000000000000 ms since the epoch (out of range)"
        );
    }

    #[test]
    fn sub_millisecond_digits_are_truncated() {
        let time = EventTime::parse_rfc3339("1970-01-01T00:00:01.999999Z").unwrap();
        assert_eq!(time.as_millis(), 1999);
    }
}
