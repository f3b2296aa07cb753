//! The database side of the sink: PostgreSQL (production) or SQLite (the embedded
//! default), the same tables and the same semantics. A batch is one transaction:
//! facts inserted with `ON CONFLICT DO NOTHING` (the first outcome of a click wins),
//! rollups increased by what was really inserted, and the batch's next offsets
//! upserted into `adjoin_offsets`. The schema is in `docs/schema.md`.

mod audit;
mod error;
mod postgres;
mod sqlite;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use adjoin_shared::config::{redact_url, DatabaseConfig, DatabaseKind};

use crate::batch::{Batch, Rejected};

pub use audit::MinuteRow;
pub use error::StoreError;

/// What one batch did to the fact tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub impressions_inserted: u64,
    /// Impressions already in the table (or twice in the batch): not counted again.
    pub impressions_skipped: u64,
    pub clicks_inserted: u64,
    /// Clicks that already had an outcome: the first one stays.
    pub clicks_skipped: u64,
}

/// Fails on a certificate or key file named in a PostgreSQL URL (or in the `PG*`
/// variables sqlx also reads) that does not exist: sqlx would report a bare "No
/// such file or directory" on every attempt, which reads as an outage and would be
/// retried for ever.
fn check_tls_files(url: &str) -> Result<(), String> {
    const PARAMETERS: [(&str, &str); 3] = [
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
    ];
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let in_url = query.split('&').filter_map(|pair| pair.split_once('='));
    let in_env = PARAMETERS
        .iter()
        .filter_map(|(name, variable)| Some((*name, std::env::var(variable).ok()?)));
    let named: Vec<(String, String)> = in_url
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .chain(in_env.map(|(name, value)| (name.to_owned(), value)))
        .filter(|(name, _)| PARAMETERS.iter().any(|(known, _)| known == name))
        .collect();
    for (name, path) in named {
        // Inline PEM and percent-encoded paths are sqlx's to read.
        if path.starts_with("-----BEGIN") || path.contains('%') {
            continue;
        }
        if !std::path::Path::new(&path).is_file() {
            return Err(format!(
                "{name} {path} does not exist or is not a file; fix the path in database.url \
                 (or the PG* variable) or copy the file there"
            ));
        }
    }
    Ok(())
}

/// A connection pool to the sink's database. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// How long a connection attempt waits before the sink counts the database as
/// unavailable and retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Connects to `url` (`postgres://...` or `sqlite://FILE`, created if missing)
    /// and applies the schema migrations.
    pub async fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let store = Self::connect(url, pool_size).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating (for readers of a database `open` prepared).
    /// `pool_size` applies to PostgreSQL; SQLite gets one connection.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let config = DatabaseConfig {
            url: url.to_owned(),
        };
        let shown = redact_url(url);
        match config.kind().map_err(StoreError::Other)? {
            DatabaseKind::Postgres => {
                check_tls_files(url)
                    .map_err(|error| StoreError::Other(format!("{shown}: {error}")))?;
                let pool = PgPoolOptions::new()
                    .max_connections(pool_size)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(|error| annotate(error, &shown))?;
                Ok(Store::Postgres(pool))
            }
            DatabaseKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|error| StoreError::Other(format!("{shown}: {error}")))?
                    .create_if_missing(true)
                    // Readers (dashboards, `adjoin verify`) never block the writer.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(CONNECT_TIMEOUT);
                // One writer at a time is all SQLite allows, whatever `pool_size` says.
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|error| annotate(error, &shown))?;
                Ok(Store::Sqlite(pool))
            }
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let result = match self {
            Store::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
            Store::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
        };
        result.map_err(|error| match error {
            sqlx::migrate::MigrateError::Execute(error) => StoreError::from(error),
            other => StoreError::Other(format!(
                "cannot migrate the database schema: {other} (was this database written by a newer adjoin?)"
            )),
        })
    }

    /// Into how many parts per input the sink splits a batch ([`Batch::split`]),
    /// all written at once: two on PostgreSQL, where each connection is a server
    /// process of its own (measured 1.5x on 2 cores, docs/benchmarks.md), so up to
    /// four transactions run together and `sink.pool_size` should be at least 4;
    /// one on SQLite, which has one writer.
    pub fn parallel_writes(&self) -> i32 {
        match self {
            Store::Postgres(_) => 2,
            Store::Sqlite(_) => 1,
        }
    }

    /// Writes a batch in one transaction with the next offsets of `group`;
    /// `topics` names the impressions and outcomes inputs, in that order.
    pub async fn write(
        &self,
        group: &str,
        topics: &[&str; 2],
        batch: &Batch,
    ) -> Result<Written, StoreError> {
        match self {
            Store::Postgres(pool) => postgres::write(pool, group, topics, batch).await,
            Store::Sqlite(pool) => sqlite::write(pool, group, topics, batch).await,
        }
    }

    /// After a write failed with [`StoreError::Rejected`]: tries each row on its
    /// own in a transaction that is rolled back, and returns those the database
    /// refuses, with its reason.
    pub async fn find_rejected(&self, batch: &Batch) -> Result<Vec<Rejected>, StoreError> {
        match self {
            Store::Postgres(pool) => postgres::find_rejected(pool, batch).await,
            Store::Sqlite(pool) => sqlite::find_rejected(pool, batch).await,
        }
    }

    /// Returns `(topic, partition, next offset)` of everything `group` wrote.
    pub async fn offsets(&self, group: &str) -> Result<Vec<(String, i32, i64)>, StoreError> {
        let rows: Vec<(String, i32, i64)> = match self {
            Store::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT topic, partition_id, next_offset FROM adjoin_offsets WHERE consumer_group = $1",
                )
                .bind(group)
                .fetch_all(pool)
                .await?
            }
            Store::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT topic, partition_id, next_offset FROM adjoin_offsets WHERE consumer_group = ?1",
                )
                .bind(group)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows)
    }
}

fn annotate(error: sqlx::Error, shown_url: &str) -> StoreError {
    match StoreError::from(error) {
        StoreError::Unavailable(detail) => {
            StoreError::Unavailable(format!("{shown_url}: {detail}"))
        }
        StoreError::Rejected(detail) => StoreError::Rejected(detail),
        StoreError::Other(detail) => StoreError::Other(format!(
            "{shown_url}: {detail} (check database.url / ADJOIN__DATABASE__URL)"
        )),
    }
}

/// A blocking reader of the stored offsets, for the rebalance callback (which runs
/// on the poll thread, outside any async runtime): its own single connection on
/// its own small runtime.
pub struct OffsetReader {
    runtime: tokio::runtime::Runtime,
    url: String,
    store_opt: std::sync::Mutex<Option<Store>>,
}

impl OffsetReader {
    /// Prepares the reader; it connects on first use (and again after a failure),
    /// so an outage while partitions are assigned is retried like any other.
    pub fn open(url: &str) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            runtime,
            url: url.to_owned(),
            store_opt: std::sync::Mutex::new(None),
        })
    }

    pub fn read(&self, group: &str) -> Result<Vec<(String, i32, i64)>, StoreError> {
        let mut store_opt = self
            .store_opt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.runtime.block_on(async {
            if store_opt.is_none() {
                *store_opt = Some(Store::connect(&self.url, 1).await?);
            }
            let Some(store) = store_opt.as_ref() else {
                return Err(StoreError::Other("no offsets connection".to_owned()));
            };
            let result = store.offsets(group).await;
            if result.as_ref().is_err_and(StoreError::is_unavailable) {
                // A fresh connection next time: the old one may be dead.
                *store_opt = None;
            }
            result
        })
    }
}
