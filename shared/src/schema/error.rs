use std::fmt;

/// The stable reason code of a rejected record: the `reason` header on dead-letter
/// records and the `reason` label on metrics. Codes are never renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeReason {
    TooLarge,
    InvalidJson,
    WrongType,
    DuplicateField,
    UnknownVersion,
    MissingField,
    EmptyField,
    FieldTooLong,
    BadCost,
    BadPosition,
    BadTime,
}

impl DecodeReason {
    /// Every code, for registering metric series up front and for test coverage.
    pub const ALL: [DecodeReason; 11] = [
        DecodeReason::TooLarge,
        DecodeReason::InvalidJson,
        DecodeReason::WrongType,
        DecodeReason::DuplicateField,
        DecodeReason::UnknownVersion,
        DecodeReason::MissingField,
        DecodeReason::EmptyField,
        DecodeReason::FieldTooLong,
        DecodeReason::BadCost,
        DecodeReason::BadPosition,
        DecodeReason::BadTime,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DecodeReason::TooLarge => "too_large",
            DecodeReason::InvalidJson => "invalid_json",
            DecodeReason::WrongType => "wrong_type",
            DecodeReason::DuplicateField => "duplicate_field",
            DecodeReason::UnknownVersion => "unknown_version",
            DecodeReason::MissingField => "missing_field",
            DecodeReason::EmptyField => "empty_field",
            DecodeReason::FieldTooLong => "field_too_long",
            DecodeReason::BadCost => "bad_cost",
            DecodeReason::BadPosition => "bad_position",
            DecodeReason::BadTime => "bad_time",
        }
    }
}

impl fmt::Display for DecodeReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a record was rejected. The message is for people (it goes into the
/// dead-letter headers); branch on [`DecodeError::reason`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("record is {size} bytes, over the limit of {limit} bytes (decode.max_record_bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid JSON: {detail}")]
    InvalidJson { detail: String },
    #[error("wrong type: {detail}")]
    WrongType { detail: String },
    #[error("{detail}")]
    DuplicateField { detail: String },
    #[error("unknown record version {version}; this build reads version {supported}")]
    UnknownVersion { version: u64, supported: u64 },
    #[error("missing field `{field}`")]
    MissingField { field: &'static str },
    #[error("field `{field}` is empty")]
    EmptyField { field: &'static str },
    #[error(
        "field `{field}` is {len} bytes, over the limit of {limit} bytes (decode.max_field_bytes)"
    )]
    FieldTooLong {
        field: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("field `{field}`: {detail}")]
    BadCost { field: &'static str, detail: String },
    #[error("field `click_position`: {detail}")]
    BadPosition { detail: String },
    #[error("field `event_time`: {detail}")]
    BadTime { detail: String },
}

impl DecodeError {
    pub fn reason(&self) -> DecodeReason {
        match self {
            DecodeError::TooLarge { .. } => DecodeReason::TooLarge,
            DecodeError::InvalidJson { .. } => DecodeReason::InvalidJson,
            DecodeError::WrongType { .. } => DecodeReason::WrongType,
            DecodeError::DuplicateField { .. } => DecodeReason::DuplicateField,
            DecodeError::UnknownVersion { .. } => DecodeReason::UnknownVersion,
            DecodeError::MissingField { .. } => DecodeReason::MissingField,
            DecodeError::EmptyField { .. } => DecodeReason::EmptyField,
            DecodeError::FieldTooLong { .. } => DecodeReason::FieldTooLong,
            DecodeError::BadCost { .. } => DecodeReason::BadCost,
            DecodeError::BadPosition { .. } => DecodeReason::BadPosition,
            DecodeError::BadTime { .. } => DecodeReason::BadTime,
        }
    }
}
