//! What can go wrong writing a batch, sorted by what the sink does about it.

use std::borrow::Cow;

/// A database failure, classified.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable, restarting, overloaded or dropped the
    /// connection: nothing was committed; retry the whole batch after a backoff.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused a row's data (a constraint, an encoding, a range):
    /// retrying cannot help; the row goes to the dead-letter topic.
    #[error("row rejected by the database: {0}")]
    Rejected(String),
    /// Anything else (a bug, a schema the sink does not know): the batch is not
    /// written and the sink stops retrying blindly.
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let text = error.to_string();
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(text),
            sqlx::Error::Database(database) => {
                classify_code(database.code().unwrap_or(Cow::Borrowed("")).as_ref(), text)
            }
            _ => StoreError::Other(text),
        }
    }
}

/// Sorts by SQLSTATE (PostgreSQL) or SQLite's extended result code.
fn classify_code(code: &str, text: String) -> StoreError {
    match code {
        // PostgreSQL: connection exceptions (08), shutdown and recovery (57P0x),
        // too many connections (53300), serialization and deadlock (40001, 40P01).
        code if code.starts_with("08") => StoreError::Unavailable(text),
        "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" => StoreError::Unavailable(text),
        // PostgreSQL: data exceptions (22) and integrity constraints (23).
        code if code.len() == 5 && (code.starts_with("22") || code.starts_with("23")) => {
            StoreError::Rejected(text)
        }
        // SQLite: busy and locked (5, 6 and their extended codes) are another
        // writer holding the file; constraints (19 and extended: 275 CHECK,
        // 1299 NOT NULL, ...) and type mismatches (20) are the row's fault.
        code => match code.parse::<i32>() {
            Ok(sqlite) if matches!(sqlite & 0xff, 5 | 6) => StoreError::Unavailable(text),
            Ok(sqlite) if matches!(sqlite & 0xff, 19 | 20) => StoreError::Rejected(text),
            _ => StoreError::Other(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_sort_into_retry_reject_and_other() {
        let class = |code: &str| match classify_code(code, String::new()) {
            StoreError::Unavailable(_) => "retry",
            StoreError::Rejected(_) => "reject",
            StoreError::Other(_) => "other",
        };
        assert_eq!(class("08006"), "retry");
        assert_eq!(
            class("57P01"),
            "retry",
            "admin shutdown / pg_terminate_backend"
        );
        assert_eq!(class("22021"), "reject", "bad encoding (a NUL byte)");
        assert_eq!(class("23514"), "reject", "check constraint");
        assert_eq!(class("42P01"), "other", "undefined table");
        assert_eq!(class("5"), "retry", "SQLITE_BUSY");
        assert_eq!(class("517"), "retry", "SQLITE_BUSY_SNAPSHOT");
        assert_eq!(class("275"), "reject", "SQLITE_CONSTRAINT_CHECK");
        assert_eq!(class("1"), "other");
    }
}
