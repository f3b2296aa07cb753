//! PostgreSQL: a batch is a handful of statements whatever its size, each taking
//! whole columns as array parameters (`UNNEST`); the statements themselves, with
//! their parameter lists, are in `services/sink/sql/postgres/`.

use sqlx::{Connection, PgConnection, PgPool};

use adjoin_shared::schema::{ClickOutcome, Impression};

use crate::batch::{Batch, Input, Located, Rejected};

use super::{StoreError, Written};

const INSERT_IMPRESSIONS: &str = include_str!("../../sql/postgres/insert_impressions.sql");
const INSERT_OUTCOMES: &str = include_str!("../../sql/postgres/insert_outcomes.sql");
const ADD_DEAD_LETTERS: &str = include_str!("../../sql/postgres/add_dead_letters.sql");
const UPSERT_OFFSETS: &str = include_str!("../../sql/postgres/upsert_offsets.sql");

pub async fn write(
    pool: &PgPool,
    group: &str,
    topics: &[&str; 2],
    batch: &Batch,
) -> Result<Written, StoreError> {
    // No lock: a batch holds one kind of row (Batch::split), so its transaction
    // takes rollup row locks in one statement, table after table, each in key
    // order; concurrent batches (this sink's or another's) wait, never deadlock.
    let mut tx = pool.begin().await?;
    let (impressions_inserted, impressions_skipped) =
        insert_impressions(&mut tx, &batch.impressions).await?;
    let (clicks_inserted, clicks_skipped) = insert_outcomes(&mut tx, &batch.outcomes).await?;
    if !batch.dead_letters.is_empty() {
        let times: Vec<i64> = batch.dead_letters.iter().map(|(_, time)| *time).collect();
        let count = |wanted: Input| -> Vec<i64> {
            batch
                .dead_letters
                .iter()
                .map(|(source, _)| i64::from(source.input == wanted))
                .collect()
        };
        sqlx::query(ADD_DEAD_LETTERS)
            .bind(times)
            .bind(count(Input::Impressions))
            .bind(count(Input::Outcomes))
            .execute(&mut *tx)
            .await?;
    }
    let offsets: Vec<(&str, i32, i64)> = batch
        .next_offsets()
        .map(|(input, partition, next)| (topics[input as usize], partition, next))
        .collect();
    sqlx::query(UPSERT_OFFSETS)
        .bind(group)
        .bind(offsets.iter().map(|row| row.0).collect::<Vec<_>>())
        .bind(offsets.iter().map(|row| row.1).collect::<Vec<_>>())
        .bind(offsets.iter().map(|row| row.2).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    fail::fail_point!("sink-before-commit", |_| Err(StoreError::Other(
        "failpoint sink-before-commit".to_owned()
    )));
    tx.commit().await?;
    Ok(Written {
        impressions_inserted,
        impressions_skipped,
        clicks_inserted,
        clicks_skipped,
    })
}

/// Tries every row on its own, each behind a savepoint, in a transaction that is
/// rolled back: what fails with a data error is what the database rejects.
pub async fn find_rejected(pool: &PgPool, batch: &Batch) -> Result<Vec<Rejected>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut rejected = Vec::new();
    for (index, located) in batch.impressions.iter().enumerate() {
        let mut savepoint = tx.begin().await?;
        let result = insert_impressions(&mut savepoint, std::slice::from_ref(located)).await;
        savepoint.rollback().await?;
        note_rejection(result, Input::Impressions, index, &mut rejected)?;
    }
    for (index, located) in batch.outcomes.iter().enumerate() {
        let mut savepoint = tx.begin().await?;
        let result = insert_outcomes(&mut savepoint, std::slice::from_ref(located)).await;
        savepoint.rollback().await?;
        note_rejection(result, Input::Outcomes, index, &mut rejected)?;
    }
    tx.rollback().await?;
    Ok(rejected)
}

pub(super) fn note_rejection<T>(
    result: Result<T, StoreError>,
    input: Input,
    index: usize,
    rejected: &mut Vec<Rejected>,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(StoreError::Rejected(reason)) => {
            rejected.push(Rejected {
                input,
                index,
                reason,
            });
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Costs travel as integer micro-units: the tables keep them exactly (numeric),
/// so rollups summed batch by batch equal sums over the facts.
pub(super) fn micros(cost: f64) -> i64 {
    (cost * 1e6).round() as i64
}

async fn insert_impressions(
    conn: &mut PgConnection,
    rows: &[Located<Impression>],
) -> Result<(u64, u64), StoreError> {
    if rows.is_empty() {
        return Ok((0, 0));
    }
    let column = |field: fn(&Impression) -> &str| -> Vec<&str> {
        rows.iter().map(|located| field(&located.row)).collect()
    };
    let (inserted, skipped): (i64, i64) = sqlx::query_as(INSERT_IMPRESSIONS)
        .bind(column(|row| &row.impression_id))
        .bind(column(|row| &row.user_id))
        .bind(column(|row| &row.session_id))
        .bind(column(|row| &row.ad_id))
        .bind(column(|row| &row.ad_category))
        .bind(column(|row| &row.device))
        .bind(column(|row| &row.os))
        .bind(column(|row| &row.browser))
        .bind(column(|row| &row.location))
        .bind(column(|row| &row.page_id))
        .bind(column(|row| &row.referrer))
        .bind(
            rows.iter()
                .map(|located| micros(located.row.impression_cost))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|located| located.row.event_time.as_millis())
                .collect::<Vec<_>>(),
        )
        .fetch_one(conn)
        .await?;
    Ok((inserted as u64, skipped as u64))
}

async fn insert_outcomes(
    conn: &mut PgConnection,
    rows: &[Located<ClickOutcome>],
) -> Result<(u64, u64), StoreError> {
    if rows.is_empty() {
        return Ok((0, 0));
    }
    let click = |field: fn(&ClickOutcome) -> &str| -> Vec<&str> {
        rows.iter().map(|located| field(&located.row)).collect()
    };
    let matched = |field: fn(&adjoin_shared::schema::MatchedImpression) -> &str| {
        rows.iter()
            .map(|located| located.row.impression.as_ref().map(field))
            .collect::<Vec<Option<&str>>>()
    };
    let (inserted, skipped): (i64, i64) = sqlx::query_as(INSERT_OUTCOMES)
        .bind(click(|row| &row.click.click_id))
        .bind(click(|row| &row.click.impression_id))
        .bind(
            rows.iter()
                .map(|located| i64::from(located.row.click.click_position))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|located| micros(located.row.click.click_cost))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|located| located.row.click.event_time.as_millis())
                .collect::<Vec<_>>(),
        )
        .bind(click(|row| row.outcome.as_str()))
        .bind(
            rows.iter()
                .map(|located| {
                    located
                        .row
                        .impression
                        .as_ref()
                        .map(|impression| impression.event_time.as_millis())
                })
                .collect::<Vec<_>>(),
        )
        .bind(matched(|impression| &impression.ad_id))
        .bind(matched(|impression| &impression.ad_category))
        .bind(matched(|impression| &impression.device))
        .bind(matched(|impression| &impression.os))
        .bind(matched(|impression| &impression.browser))
        .bind(matched(|impression| &impression.location))
        .fetch_one(conn)
        .await?;
    Ok((inserted as u64, skipped as u64))
}
