use std::fmt;

use serde::{Deserialize, Serialize};

/// Where results are written (section `database`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:5432/db` for production, or `sqlite://FILE`
    /// for the embedded default. The password is never printed.
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: default_database_url(),
        }
    }
}

/// An SQLite file in the working directory, so a fresh machine needs no server.
pub fn default_database_url() -> String {
    "sqlite://adjoin.db".to_owned()
}

/// The database engines adjoin writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

impl DatabaseConfig {
    /// Returns the engine named by the URL scheme, or a message saying what is accepted.
    pub fn kind(&self) -> Result<DatabaseKind, String> {
        let scheme = self
            .url
            .split_once(':')
            .map(|(scheme, _)| scheme)
            .unwrap_or_default();
        match scheme {
            "postgres" | "postgresql" => Ok(DatabaseKind::Postgres),
            "sqlite" => Ok(DatabaseKind::Sqlite),
            _ => Err(format!(
                "database.url must start with postgres:// or sqlite://, got {:?}",
                redact_url(&self.url)
            )),
        }
    }

    pub fn redacted(&self) -> Self {
        Self {
            url: redact_url(&self.url),
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// Replaces the password of a URL (`scheme://user:password@host`) and any
/// `password=` query parameter with `[redacted]`; other text is left as it is.
pub fn redact_url(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(scheme_end) = shown.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = shown[authority_start..]
            .find(['/', '?', '#'])
            .map_or(shown.len(), |offset| authority_start + offset);
        if let Some(at) = shown[authority_start..authority_end].rfind('@') {
            let userinfo = &shown[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                let password_start = authority_start + colon + 1;
                shown.replace_range(password_start..authority_start + at, super::REDACTED);
            }
        }
    }
    if let Some(query_start) = shown.find('?') {
        let (base, raw_query) = shown.split_at(query_start + 1);
        let query = raw_query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}={}", super::REDACTED)
                }
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        shown = format!("{base}{query}");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_userinfo_and_query() {
        assert_eq!(
            redact_url("postgres://adjoin:s3cr@t@db:5432/adjoin"),
            "postgres://adjoin:[redacted]@db:5432/adjoin"
        );
        assert_eq!(
            redact_url("postgres://db/adjoin?user=a&password=hunter2"),
            "postgres://db/adjoin?user=a&password=[redacted]"
        );
        assert_eq!(
            redact_url("postgres://adjoin@db/adjoin"),
            "postgres://adjoin@db/adjoin"
        );
        assert_eq!(redact_url("sqlite://adjoin.db"), "sqlite://adjoin.db");
    }

    #[test]
    fn kind_follows_the_scheme() {
        let url = |url: &str| DatabaseConfig {
            url: url.to_owned(),
        };
        assert_eq!(url("postgresql://h/d").kind(), Ok(DatabaseKind::Postgres));
        assert_eq!(url("sqlite://x.db").kind(), Ok(DatabaseKind::Sqlite));
        assert!(url("mysql://h/d")
            .kind()
            .unwrap_err()
            .contains("postgres://"));
    }
}
