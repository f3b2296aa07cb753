//! The event schema: impressions and clicks as producers send them, the click
//! outcomes the join emits, and a validating decoder whose errors carry the stable
//! reason codes that dead-letter records and metrics are labelled with.

mod decode;
mod error;
mod outcome;
mod records;
mod time;

pub use decode::{DecodeLimits, Decoder};
pub use error::{DecodeError, DecodeReason};
pub use outcome::{ClickOutcome, MatchedImpression, Outcome};
pub use records::{Click, ClickRef, Impression, ImpressionRef, SCHEMA_VERSION};
pub use time::EventTime;
