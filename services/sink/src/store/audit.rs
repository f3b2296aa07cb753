//! Reading the tables back whole, for `adjoin verify` and tests: what an operator
//! compares with a generator's truth. Scans the fact tables; not for dashboards.

use super::{Store, StoreError};

/// One minute of `ad_stats_minute` summed over ads; costs in micro-units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinuteRow {
    pub minute_ms: i64,
    pub impressions: i64,
    pub impression_cost_micros: i64,
    pub clicks: i64,
    pub click_cost_micros: i64,
}

const ROLLUPS_POSTGRES: &str = include_str!("../../sql/postgres/check_rollups.sql");
const ROLLUPS_SQLITE: &str = include_str!("../../sql/sqlite/check_rollups.sql");

impl Store {
    /// Every impression id.
    pub async fn impression_ids(&self) -> Result<Vec<String>, StoreError> {
        let query = "SELECT impression_id FROM impressions";
        Ok(match self {
            Store::Postgres(pool) => sqlx::query_scalar(query).fetch_all(pool).await?,
            Store::Sqlite(pool) => sqlx::query_scalar(query).fetch_all(pool).await?,
        })
    }

    /// Every click id with its stored outcome.
    pub async fn click_outcomes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let query = "SELECT click_id, outcome FROM clicks";
        Ok(match self {
            Store::Postgres(pool) => sqlx::query_as(query).fetch_all(pool).await?,
            Store::Sqlite(pool) => sqlx::query_as(query).fetch_all(pool).await?,
        })
    }

    /// Stored clicks by outcome, e.g. `[("matched", 980), ("late", 3)]`.
    pub async fn outcome_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let query = "SELECT outcome, count(*) FROM clicks GROUP BY outcome ORDER BY outcome";
        Ok(match self {
            Store::Postgres(pool) => sqlx::query_as(query).fetch_all(pool).await?,
            Store::Sqlite(pool) => sqlx::query_as(query).fetch_all(pool).await?,
        })
    }

    /// Per rollup, the rows that differ from the same aggregate recomputed from the
    /// fact tables (`services/sink/sql/*/check_rollups.sql`); all 0 when exact.
    pub async fn rollup_mismatches(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(match self {
            Store::Postgres(pool) => sqlx::query_as(ROLLUPS_POSTGRES).fetch_all(pool).await?,
            Store::Sqlite(pool) => sqlx::query_as(ROLLUPS_SQLITE).fetch_all(pool).await?,
        })
    }

    /// `ad_stats_minute` summed per minute, in minute order.
    pub async fn minute_totals(&self) -> Result<Vec<MinuteRow>, StoreError> {
        let rows: Vec<(i64, i64, i64, i64, i64)> =
            match self {
                Store::Postgres(pool) => sqlx::query_as(
                    "SELECT (extract(epoch FROM minute) * 1000)::int8, sum(impressions)::int8, \
                     (sum(impression_cost) * 1000000)::int8, sum(clicks)::int8, \
                     (sum(click_cost) * 1000000)::int8 \
                     FROM ad_stats_minute GROUP BY minute ORDER BY minute",
                )
                .fetch_all(pool)
                .await?,
                Store::Sqlite(pool) => {
                    sqlx::query_as(
                        "SELECT minute_ms, sum(impressions), sum(impression_cost_micros), \
                     sum(clicks), sum(click_cost_micros) \
                     FROM ad_stats_minute GROUP BY minute_ms ORDER BY minute_ms",
                    )
                    .fetch_all(pool)
                    .await?
                }
            };
        Ok(rows
            .into_iter()
            .map(
                |(minute_ms, impressions, impression_cost_micros, clicks, click_cost_micros)| {
                    MinuteRow {
                        minute_ms,
                        impressions,
                        impression_cost_micros,
                        clicks,
                        click_cost_micros,
                    }
                },
            )
            .collect())
    }
}
