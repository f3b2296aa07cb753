//! SQLite: no array parameters and no data-modifying CTEs, so each fact row is
//! its own prepared `INSERT ... ON CONFLICT DO NOTHING` (cheap in-process), the
//! rows it really inserted are summed here, and the rollups get one upsert per
//! key. Same transaction, same semantics as PostgreSQL; statements in
//! `services/sink/sql/sqlite/`.

use std::collections::BTreeMap;

use sqlx::{Connection, SqliteConnection, SqlitePool};

use adjoin_shared::schema::{ClickOutcome, Impression, Outcome};

use crate::batch::{Batch, Input, Located, Rejected};

use super::postgres::{micros, note_rejection};
use super::{StoreError, Written};

const INSERT_IMPRESSION: &str = include_str!("../../sql/sqlite/insert_impression.sql");
const INSERT_OUTCOME: &str = include_str!("../../sql/sqlite/insert_outcome.sql");
const ADD_AD_STATS: &str = include_str!("../../sql/sqlite/add_ad_stats.sql");
const ADD_DIMENSION_STATS: &str = include_str!("../../sql/sqlite/add_dimension_stats.sql");
const ADD_CLICK_OUTCOMES: &str = include_str!("../../sql/sqlite/add_click_outcomes.sql");
const ADD_SINK_HEALTH: &str = include_str!("../../sql/sqlite/add_sink_health.sql");
const UPSERT_OFFSET: &str = include_str!("../../sql/sqlite/upsert_offset.sql");

/// impressions, clicks, impression cost and click cost (micro-units).
type Measures = [i64; 4];

/// What a batch adds to the rollups: sums of the rows it really inserted.
#[derive(Default)]
struct Deltas<'a> {
    ad: BTreeMap<(i64, &'a str, &'a str), Measures>,
    dimension: BTreeMap<(&'static str, i64, &'a str), Measures>,
    /// clicks and click cost per accounting minute and outcome.
    outcomes: BTreeMap<(i64, &'static str), [i64; 2]>,
    /// duplicate impressions, duplicate clicks, dead-lettered impressions and
    /// dead-lettered clicks per minute.
    health: BTreeMap<i64, [i64; 4]>,
}

fn minute_of(time_ms: i64) -> i64 {
    time_ms - time_ms.rem_euclid(60_000)
}

fn add(target: &mut [i64], delta: &[i64]) {
    for (sum, value) in target.iter_mut().zip(delta) {
        *sum += value;
    }
}

impl<'a> Deltas<'a> {
    /// An impression or a matched click at the impression's minute, under its ad
    /// and each of its five dimensions.
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        minute: i64,
        ad_id: &'a str,
        ad_category: &'a str,
        dimensions: [&'a str; 4],
        measures: Measures,
    ) {
        add(
            self.ad.entry((minute, ad_id, ad_category)).or_default(),
            &measures,
        );
        let [device, os, browser, location] = dimensions;
        for (dimension, value) in [
            ("ad_category", ad_category),
            ("device", device),
            ("os", os),
            ("browser", browser),
            ("location", location),
        ] {
            add(
                self.dimension
                    .entry((dimension, minute, value))
                    .or_default(),
                &measures,
            );
        }
    }

    fn impression(&mut self, row: &'a Impression) {
        self.measure(
            minute_of(row.event_time.as_millis()),
            &row.ad_id,
            &row.ad_category,
            [&row.device, &row.os, &row.browser, &row.location],
            [1, 0, micros(row.impression_cost), 0],
        );
    }

    fn outcome(&mut self, row: &'a ClickOutcome) {
        let minute = minute_of(row.accounting_time().as_millis());
        let cost = micros(row.click.click_cost);
        add(
            self.outcomes
                .entry((minute, row.outcome.as_str()))
                .or_default(),
            &[1, cost],
        );
        if let (Outcome::Matched, Some(impression)) = (row.outcome, &row.impression) {
            self.measure(
                minute,
                &impression.ad_id,
                &impression.ad_category,
                [
                    &impression.device,
                    &impression.os,
                    &impression.browser,
                    &impression.location,
                ],
                [0, 1, 0, cost],
            );
        }
    }

    fn health(&mut self, time_ms: i64, column: usize) {
        self.health.entry(minute_of(time_ms)).or_default()[column] += 1;
    }
}

pub async fn write(
    pool: &SqlitePool,
    group: &str,
    topics: &[&str; 2],
    batch: &Batch,
) -> Result<Written, StoreError> {
    let mut tx = pool.begin().await?;
    let mut deltas = Deltas::default();
    let mut written = Written::default();
    for located in &batch.impressions {
        if insert_impression(&mut tx, located).await? {
            written.impressions_inserted += 1;
            deltas.impression(&located.row);
        } else {
            written.impressions_skipped += 1;
            deltas.health(located.row.event_time.as_millis(), 0);
        }
    }
    for located in &batch.outcomes {
        if insert_outcome(&mut tx, located).await? {
            written.clicks_inserted += 1;
            deltas.outcome(&located.row);
        } else {
            written.clicks_skipped += 1;
            deltas.health(located.row.accounting_time().as_millis(), 1);
        }
    }
    for (source, time_ms) in &batch.dead_letters {
        let column = if source.input == Input::Impressions {
            2
        } else {
            3
        };
        deltas.health(*time_ms, column);
    }
    for ((minute, ad_id, ad_category), [impressions, clicks, impression_cost, click_cost]) in
        &deltas.ad
    {
        sqlx::query(ADD_AD_STATS)
            .bind(minute)
            .bind(ad_id)
            .bind(ad_category)
            .bind(impressions)
            .bind(clicks)
            .bind(impression_cost)
            .bind(click_cost)
            .execute(&mut *tx)
            .await?;
    }
    for ((dimension, minute, value), [impressions, clicks, impression_cost, click_cost]) in
        &deltas.dimension
    {
        sqlx::query(ADD_DIMENSION_STATS)
            .bind(dimension)
            .bind(minute)
            .bind(value)
            .bind(impressions)
            .bind(clicks)
            .bind(impression_cost)
            .bind(click_cost)
            .execute(&mut *tx)
            .await?;
    }
    for ((minute, outcome), [clicks, click_cost]) in &deltas.outcomes {
        sqlx::query(ADD_CLICK_OUTCOMES)
            .bind(minute)
            .bind(outcome)
            .bind(clicks)
            .bind(click_cost)
            .execute(&mut *tx)
            .await?;
    }
    for (minute, [duplicate_impressions, duplicate_clicks, dead_impressions, dead_clicks]) in
        &deltas.health
    {
        sqlx::query(ADD_SINK_HEALTH)
            .bind(minute)
            .bind(duplicate_impressions)
            .bind(duplicate_clicks)
            .bind(dead_impressions)
            .bind(dead_clicks)
            .execute(&mut *tx)
            .await?;
    }
    for (input, partition, next) in batch.next_offsets() {
        sqlx::query(UPSERT_OFFSET)
            .bind(group)
            .bind(topics[input as usize])
            .bind(partition)
            .bind(next)
            .execute(&mut *tx)
            .await?;
    }
    fail::fail_point!("sink-before-commit", |_| Err(StoreError::Other(
        "failpoint sink-before-commit".to_owned()
    )));
    tx.commit().await?;
    Ok(written)
}

/// Tries every row on its own behind a savepoint, in a transaction that is rolled
/// back; see the PostgreSQL version.
pub async fn find_rejected(pool: &SqlitePool, batch: &Batch) -> Result<Vec<Rejected>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut rejected = Vec::new();
    for (index, located) in batch.impressions.iter().enumerate() {
        let mut savepoint = tx.begin().await?;
        let result = insert_impression(&mut savepoint, located).await;
        savepoint.rollback().await?;
        note_rejection(result, Input::Impressions, index, &mut rejected)?;
    }
    for (index, located) in batch.outcomes.iter().enumerate() {
        let mut savepoint = tx.begin().await?;
        let result = insert_outcome(&mut savepoint, located).await;
        savepoint.rollback().await?;
        note_rejection(result, Input::Outcomes, index, &mut rejected)?;
    }
    tx.rollback().await?;
    Ok(rejected)
}

/// Returns whether the row was inserted (false: the id was already there).
async fn insert_impression(
    conn: &mut SqliteConnection,
    located: &Located<Impression>,
) -> Result<bool, StoreError> {
    let row = &located.row;
    let result = sqlx::query(INSERT_IMPRESSION)
        .bind(&row.impression_id)
        .bind(&row.user_id)
        .bind(&row.session_id)
        .bind(&row.ad_id)
        .bind(&row.ad_category)
        .bind(&row.device)
        .bind(&row.os)
        .bind(&row.browser)
        .bind(&row.location)
        .bind(&row.page_id)
        .bind(&row.referrer)
        .bind(micros(row.impression_cost))
        .bind(row.event_time.as_millis())
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

async fn insert_outcome(
    conn: &mut SqliteConnection,
    located: &Located<ClickOutcome>,
) -> Result<bool, StoreError> {
    let row = &located.row;
    let impression = row.impression.as_ref();
    let result = sqlx::query(INSERT_OUTCOME)
        .bind(&row.click.click_id)
        .bind(&row.click.impression_id)
        .bind(i64::from(row.click.click_position))
        .bind(micros(row.click.click_cost))
        .bind(row.click.event_time.as_millis())
        .bind(row.outcome.as_str())
        .bind(impression.map(|impression| impression.event_time.as_millis()))
        .bind(impression.map(|impression| impression.ad_id.as_str()))
        .bind(impression.map(|impression| impression.ad_category.as_str()))
        .bind(impression.map(|impression| impression.device.as_str()))
        .bind(impression.map(|impression| impression.os.as_str()))
        .bind(impression.map(|impression| impression.browser.as_str()))
        .bind(impression.map(|impression| impression.location.as_str()))
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}
