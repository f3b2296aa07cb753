//! The sink's database writes against a real PostgreSQL and a real SQLite file:
//! applying the same input twice changes nothing, the first outcome of a click
//! wins, rollups always equal aggregates recomputed from the fact tables (and the
//! totals of a plain computation over the input), rejected rows are found one by
//! one, and offsets are stored with the rows.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use adjoin_shared::schema::{
    Click, ClickOutcome, EventTime, Impression, MatchedImpression, Outcome,
};
use adjoin_shared::testing::TestDatabase;
use adjoin_sink::batch::{Batch, Input, Source};
use adjoin_sink::store::{Store, StoreError, Written};

const GROUP: &str = "test-sink";
const TOPICS: [&str; 2] = ["impressions.keyed", "click-outcomes"];
const T0: i64 = 1_795_000_000_000;

/// A store of each kind, with what keeps its database alive.
struct Backend {
    name: &'static str,
    store: Store,
    _postgres: Option<TestDatabase>,
    _sqlite: Option<tempfile::TempDir>,
}

async fn backends() -> Vec<Backend> {
    let database = TestDatabase::create().await;
    let postgres = Store::open(database.url(), 4)
        .await
        .expect("PostgreSQL opens");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sink.db").display());
    let sqlite = Store::open(&url, 1).await.expect("SQLite opens");
    vec![
        Backend {
            name: "postgres",
            store: postgres,
            _postgres: Some(database),
            _sqlite: None,
        },
        Backend {
            name: "sqlite",
            store: sqlite,
            _postgres: None,
            _sqlite: Some(dir),
        },
    ]
}

fn impression(index: u64, user: &str) -> Impression {
    Impression {
        impression_id: format!("imp-{index}"),
        user_id: user.to_owned(),
        session_id: format!("s-{}", index % 7),
        ad_id: format!("ad-{}", index % 5),
        ad_category: format!("cat-{}", index % 3),
        device: ["mobile", "desktop"][(index % 2) as usize].to_owned(),
        os: ["Android", "iOS", "Linux"][(index % 3) as usize].to_owned(),
        browser: ["Chrome", "Firefox"][(index % 2) as usize].to_owned(),
        location: format!("region-{}", index % 4),
        page_id: "p".to_owned(),
        referrer: String::new(),
        // Costs that float sums would get wrong: 0.1 and friends.
        impression_cost: 0.1 + (index % 10) as f64 * 0.001,
        // Spread over several minutes.
        event_time: EventTime::from_millis(T0 + index as i64 * 7_919),
    }
}

fn outcome(click: u64, of: &Impression, outcome: Outcome) -> ClickOutcome {
    let click = Click {
        click_id: format!("clk-{click}"),
        impression_id: of.impression_id.clone(),
        click_position: (click % 4) as u32,
        click_cost: 0.3 + (click % 7) as f64 * 0.01,
        event_time: EventTime::from_millis(of.event_time.as_millis() + 30_000),
    };
    match outcome {
        Outcome::Matched => ClickOutcome::matched(
            click,
            MatchedImpression {
                event_time: of.event_time,
                ad_id: of.ad_id.clone(),
                ad_category: of.ad_category.clone(),
                device: of.device.clone(),
                os: of.os.clone(),
                browser: of.browser.clone(),
                location: of.location.clone(),
            },
        ),
        other => ClickOutcome::unmatched(click, other),
    }
}

/// One record of the input, in the order the sink reads it.
#[derive(Clone)]
enum Record {
    Impression(Impression),
    Outcome(ClickOutcome),
}

/// A deterministic input with duplicates of both kinds (the same click twice with
/// different outcomes, the same impression twice with different attributes).
fn input(num_impressions: u64, seed: u64) -> Vec<Record> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut records = Vec::new();
    for index in 0..num_impressions {
        let shown = impression(index, "first");
        records.push(Record::Impression(shown.clone()));
        if next() % 10 == 0 {
            records.push(Record::Impression(impression(index, "second")));
        }
        match next() % 6 {
            0 => records.push(Record::Outcome(outcome(index, &shown, Outcome::Matched))),
            1 => records.push(Record::Outcome(outcome(
                index,
                &shown,
                Outcome::NoImpression,
            ))),
            2 => records.push(Record::Outcome(outcome(index, &shown, Outcome::Late))),
            3 => {
                records.push(Record::Outcome(outcome(index, &shown, Outcome::Matched)));
                records.push(Record::Outcome(outcome(
                    index,
                    &shown,
                    Outcome::NoImpression,
                )));
            }
            _ => {}
        }
    }
    records
}

/// Cuts records into batches of `size`, with offsets on two partitions per input.
fn batches(records: &[Record], size: usize) -> Vec<Batch> {
    let mut offsets = BTreeMap::new();
    records
        .chunks(size)
        .map(|chunk| {
            let mut batch = Batch::default();
            for record in chunk {
                let (input, partition) = match record {
                    Record::Impression(row) => {
                        (Input::Impressions, (row.impression_id.len() % 2) as i32)
                    }
                    Record::Outcome(row) => {
                        (Input::Outcomes, (row.click.click_id.len() % 2) as i32)
                    }
                };
                let offset = offsets.entry((input, partition)).or_insert(0_i64);
                let source = Source {
                    input,
                    partition,
                    offset: *offset,
                };
                *offset += 1;
                match record {
                    Record::Impression(row) => batch.add_impression(source, row.clone(), None, 100),
                    Record::Outcome(row) => batch.add_outcome(source, row.clone(), None, 100),
                }
            }
            batch
        })
        .collect()
}

/// Everything a replay must not change: facts (ids and the values that say
/// which delivery won), rollups and offsets; ordered, as text.
async fn snapshot(store: &Store) -> Vec<String> {
    let queries: &[&str] = match store {
        Store::Postgres(_) => &[
            "SELECT impression_id || ' ' || user_id || ' ' || impression_cost::text FROM impressions",
            "SELECT click_id || ' ' || outcome || ' ' || COALESCE(ad_id, '-') FROM clicks",
            "SELECT concat_ws(' ', minute, ad_id, ad_category, impressions, clicks, impression_cost, click_cost) FROM ad_stats_minute",
            "SELECT concat_ws(' ', dimension, minute, value, impressions, clicks, impression_cost, click_cost) FROM dimension_stats_minute",
            "SELECT concat_ws(' ', minute, outcome, clicks, click_cost) FROM click_outcomes_minute",
            "SELECT concat_ws(' ', consumer_group, topic, partition_id, next_offset) FROM adjoin_offsets",
        ],
        Store::Sqlite(_) => &[
            "SELECT impression_id || ' ' || user_id || ' ' || impression_cost_micros FROM impressions",
            "SELECT click_id || ' ' || outcome || ' ' || COALESCE(ad_id, '-') FROM clicks",
            "SELECT minute_ms || ' ' || ad_id || ' ' || ad_category || ' ' || impressions || ' ' || clicks || ' ' || impression_cost_micros || ' ' || click_cost_micros FROM ad_stats_minute",
            "SELECT dimension || ' ' || minute_ms || ' ' || value || ' ' || impressions || ' ' || clicks || ' ' || impression_cost_micros || ' ' || click_cost_micros FROM dimension_stats_minute",
            "SELECT minute_ms || ' ' || outcome || ' ' || clicks || ' ' || click_cost_micros FROM click_outcomes_minute",
            "SELECT consumer_group || ' ' || topic || ' ' || partition_id || ' ' || next_offset FROM adjoin_offsets",
        ],
    };
    let mut lines = Vec::new();
    for (table, query) in queries.iter().enumerate() {
        let mut rows: Vec<String> = match store {
            Store::Postgres(pool) => sqlx::query_scalar(query).fetch_all(pool).await.unwrap(),
            Store::Sqlite(pool) => sqlx::query_scalar(query).fetch_all(pool).await.unwrap(),
        };
        rows.sort();
        lines.extend(rows.into_iter().map(|row| format!("{table}: {row}")));
    }
    lines
}

/// Fails with the first few lines that differ (a whole snapshot is too long to read).
fn assert_unchanged(before: &[String], after: &[String], name: &str) {
    let before_set: BTreeSet<&String> = before.iter().collect();
    let after_set: BTreeSet<&String> = after.iter().collect();
    let gone: Vec<&&String> = before_set.difference(&after_set).take(5).collect();
    let new: Vec<&&String> = after_set.difference(&before_set).take(5).collect();
    assert!(
        gone.is_empty() && new.is_empty() && before.len() == after.len(),
        "{name}: the replay changed the tables; gone: {gone:?}, new: {new:?}"
    );
}

/// Rows where a rollup differs from the same aggregate recomputed from the facts
/// (services/sink/sql/*/check_rollups.sql), per rollup.
async fn rollup_mismatches(store: &Store) -> Vec<(String, i64)> {
    let rows: Vec<(String, i64)> = match store {
        Store::Postgres(pool) => sqlx::query(include_str!("../sql/postgres/check_rollups.sql"))
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect(),
        Store::Sqlite(pool) => sqlx::query(include_str!("../sql/sqlite/check_rollups.sql"))
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect(),
    };
    assert_eq!(rows.len(), 3, "one row per rollup");
    rows
}

/// Totals over the whole input computed in plain Rust: distinct impressions and
/// their cost, first outcome per click id, matched clicks and their cost.
struct Expected {
    impressions: i64,
    impression_micros: i64,
    outcomes: BTreeMap<String, Outcome>,
    matched_clicks: i64,
    matched_click_micros: i64,
}

fn expected(records: &[Record]) -> Expected {
    let mut seen = BTreeSet::new();
    let mut result = Expected {
        impressions: 0,
        impression_micros: 0,
        outcomes: BTreeMap::new(),
        matched_clicks: 0,
        matched_click_micros: 0,
    };
    for record in records {
        match record {
            Record::Impression(row) => {
                if seen.insert(row.impression_id.clone()) {
                    result.impressions += 1;
                    result.impression_micros += (row.impression_cost * 1e6).round() as i64;
                }
            }
            Record::Outcome(row) => {
                if !result.outcomes.contains_key(&row.click.click_id) {
                    result
                        .outcomes
                        .insert(row.click.click_id.clone(), row.outcome);
                    if row.outcome == Outcome::Matched {
                        result.matched_clicks += 1;
                        result.matched_click_micros += (row.click.click_cost * 1e6).round() as i64;
                    }
                }
            }
        }
    }
    result
}

async fn totals(store: &Store) -> (i64, i64, i64, i64) {
    let query = match store {
        Store::Postgres(_) => {
            "SELECT COALESCE(sum(impressions), 0)::int8, COALESCE(sum(impression_cost) * 1000000, 0)::int8, \
             COALESCE(sum(clicks), 0)::int8, COALESCE(sum(click_cost) * 1000000, 0)::int8 FROM ad_stats_minute"
        }
        Store::Sqlite(_) => {
            "SELECT COALESCE(sum(impressions), 0), COALESCE(sum(impression_cost_micros), 0), \
             COALESCE(sum(clicks), 0), COALESCE(sum(click_cost_micros), 0) FROM ad_stats_minute"
        }
    };
    match store {
        Store::Postgres(pool) => sqlx::query_as(query).fetch_one(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_as(query).fetch_one(pool).await.unwrap(),
    }
}

async fn outcomes(store: &Store) -> BTreeMap<String, String> {
    let query = "SELECT click_id, outcome FROM clicks";
    let rows: Vec<(String, String)> = match store {
        Store::Postgres(pool) => sqlx::query_as(query).fetch_all(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_as(query).fetch_all(pool).await.unwrap(),
    };
    rows.into_iter().collect()
}

async fn write_all(store: &Store, batches: &[Batch]) -> Written {
    let mut total = Written::default();
    for batch in batches {
        let written = store.write(GROUP, &TOPICS, batch).await.unwrap();
        total.impressions_inserted += written.impressions_inserted;
        total.impressions_skipped += written.impressions_skipped;
        total.clicks_inserted += written.clicks_inserted;
        total.clicks_skipped += written.clicks_skipped;
    }
    total
}

#[tokio::test]
async fn the_same_input_twice_changes_nothing() {
    for backend in backends().await {
        let records = input(400, 1);
        let batches = batches(&records, 97);
        let first = write_all(&backend.store, &batches).await;
        let expected = expected(&records);
        assert_eq!(
            first.impressions_inserted as i64, expected.impressions,
            "{}",
            backend.name
        );
        assert_eq!(
            first.clicks_inserted as usize,
            expected.outcomes.len(),
            "{}",
            backend.name
        );
        let before = snapshot(&backend.store).await;
        assert!(
            before.len() > 500,
            "{}: the snapshot sees the data",
            backend.name
        );

        let again = write_all(&backend.store, &batches).await;
        assert_eq!(
            again.impressions_inserted + again.clicks_inserted,
            0,
            "{}",
            backend.name
        );
        assert_eq!(
            again.impressions_skipped + again.clicks_skipped,
            (records.len()) as u64,
            "{}: every row of the replay is a duplicate",
            backend.name
        );
        assert_unchanged(&before, &snapshot(&backend.store).await, backend.name);
        for (rollup, mismatches) in rollup_mismatches(&backend.store).await {
            assert_eq!(
                mismatches, 0,
                "{}: {rollup} differs from the facts",
                backend.name
            );
        }
    }
}

#[tokio::test]
async fn rollups_equal_the_facts_and_a_plain_computation_whatever_the_batching() {
    for seed in [2, 3] {
        for backend in backends().await {
            let records = input(300, seed);
            // Batches of different sizes, some applied twice, out of order between
            // partitions (a replay after a crash re-applies a suffix).
            let batches = batches(&records, 1 + (seed as usize * 37) % 120);
            for (index, batch) in batches.iter().enumerate() {
                backend.store.write(GROUP, &TOPICS, batch).await.unwrap();
                if index % 3 == 1 {
                    backend
                        .store
                        .write(GROUP, &TOPICS, &batches[index - 1])
                        .await
                        .unwrap();
                }
            }
            for (rollup, mismatches) in rollup_mismatches(&backend.store).await {
                assert_eq!(
                    mismatches, 0,
                    "{} seed {seed}: {rollup} differs",
                    backend.name
                );
            }
            let expected = expected(&records);
            assert_eq!(
                totals(&backend.store).await,
                (
                    expected.impressions,
                    expected.impression_micros,
                    expected.matched_clicks,
                    expected.matched_click_micros
                ),
                "{} seed {seed}: rollup totals against the plain computation",
                backend.name
            );
            let stored = outcomes(&backend.store).await;
            let wanted: BTreeMap<String, String> = expected
                .outcomes
                .iter()
                .map(|(id, outcome)| (id.clone(), outcome.as_str().to_owned()))
                .collect();
            assert_eq!(
                stored, wanted,
                "{} seed {seed}: the first outcome wins",
                backend.name
            );
            let query = "SELECT count(*) FROM impressions WHERE user_id <> 'first'";
            let later_won: i64 = match &backend.store {
                Store::Postgres(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
                Store::Sqlite(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
            };
            assert_eq!(
                later_won, 0,
                "{} seed {seed}: the first impression wins",
                backend.name
            );
        }
    }
}

#[tokio::test]
async fn parts_written_at_once_stay_exact() {
    // As the sink writes: each batch split by input and partition, the parts in
    // concurrent transactions on one pool; they touch the same rollup rows.
    for backend in backends().await {
        let records = input(600, 5);
        for batch in batches(&records, 150) {
            let parts = batch.split(2);
            let writes = parts
                .iter()
                .map(|part| backend.store.write(GROUP, &TOPICS, part));
            for written in futures::future::join_all(writes).await {
                written.unwrap();
            }
        }
        for (rollup, mismatches) in rollup_mismatches(&backend.store).await {
            assert_eq!(mismatches, 0, "{}: {rollup} differs", backend.name);
        }
        let expected = expected(&records);
        assert_eq!(
            totals(&backend.store).await,
            (
                expected.impressions,
                expected.impression_micros,
                expected.matched_clicks,
                expected.matched_click_micros
            ),
            "{}",
            backend.name
        );
    }
}

#[tokio::test]
async fn offsets_are_stored_with_the_rows() {
    for backend in backends().await {
        let records = input(50, 4);
        let batches = batches(&records, 1_000);
        assert_eq!(batches.len(), 1);
        write_all(&backend.store, &batches).await;
        let mut stored = backend.store.offsets(GROUP).await.unwrap();
        stored.sort();
        let mut wanted: Vec<(String, i32, i64)> = batches[0]
            .next_offsets()
            .map(|(input, partition, next)| (TOPICS[input as usize].to_owned(), partition, next))
            .collect();
        wanted.sort();
        assert_eq!(stored, wanted, "{}", backend.name);
        assert!(backend
            .store
            .offsets("another-group")
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn a_rejected_row_is_found_on_its_own_and_the_rest_is_written() {
    for backend in backends().await {
        let mut bad = impression(1, "bad");
        // The decoder upstream never lets this through; a producer writing keyed
        // records directly could. The CHECK constraint refuses it.
        bad.impression_cost = -1.0;
        let mut batch = Batch::default();
        let source = |offset| Source {
            input: Input::Impressions,
            partition: 0,
            offset,
        };
        batch.add_impression(source(0), impression(0, "ok"), None, 10);
        batch.add_impression(source(1), bad, None, 10);
        batch.add_impression(source(2), impression(2, "ok"), None, 10);
        let error = backend
            .store
            .write(GROUP, &TOPICS, &batch)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Rejected(_)),
            "{}: {error}",
            backend.name
        );
        assert!(
            snapshot(&backend.store).await.is_empty(),
            "{}: nothing written",
            backend.name
        );

        let rejected = backend.store.find_rejected(&batch).await.unwrap();
        assert_eq!(rejected.len(), 1, "{}", backend.name);
        assert_eq!(
            (rejected[0].input, rejected[0].index),
            (Input::Impressions, 1)
        );
        assert!(
            snapshot(&backend.store).await.is_empty(),
            "{}: the search writes nothing",
            backend.name
        );

        let removed = batch.remove_rows(&rejected);
        assert_eq!(removed[0].source.offset, 1);
        let written = backend.store.write(GROUP, &TOPICS, &batch).await.unwrap();
        assert_eq!(written.impressions_inserted, 2, "{}", backend.name);
        assert_eq!(
            backend.store.offsets(GROUP).await.unwrap(),
            vec![(TOPICS[0].to_owned(), 0, 3)],
            "{}: the offset moves past the rejected row",
            backend.name
        );
    }
}

#[tokio::test]
async fn postgres_rejects_a_nul_byte_and_says_so() {
    let database = TestDatabase::create().await;
    let store = Store::open(database.url(), 1).await.unwrap();
    let mut batch = Batch::default();
    let mut bad = impression(1, "bad");
    bad.referrer = "https://x/\u{0}".to_owned();
    batch.add_impression(
        Source {
            input: Input::Impressions,
            partition: 0,
            offset: 0,
        },
        bad,
        None,
        10,
    );
    let error = store.write(GROUP, &TOPICS, &batch).await.unwrap_err();
    assert!(matches!(error, StoreError::Rejected(_)), "{error}");
    let rejected = store.find_rejected(&batch).await.unwrap();
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0].reason.contains("0x00"),
        "{}",
        rejected[0].reason
    );
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_data_error() {
    // Nothing listens on port 1: the sink must treat this as an outage to wait out.
    let error = Store::open("postgres://postgres@127.0.0.1:1/none", 1)
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
}

#[tokio::test]
async fn postgres_over_tls_when_the_url_asks_for_it() {
    // The local server has ssl = on (Debian's default, with its snakeoil
    // certificate): sslmode=require must give an encrypted session, which a build
    // without a TLS backend refuses outright.
    let database = TestDatabase::create().await;
    let url = format!("{}?sslmode=require", database.url());
    let store = Store::open(&url, 1).await.unwrap();
    let Store::Postgres(pool) = &store else {
        unreachable!("a postgres:// URL opens PostgreSQL")
    };
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(encrypted, "sslmode=require gave an unencrypted session");

    // verify-full with the server's own (self-signed) certificate as the root: the
    // certificate names localhost, so connecting by that name passes and by
    // 127.0.0.1 fails the host name check.
    let certificate: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(pool)
        .await
        .unwrap();
    let verify_full = format!("sslmode=verify-full&sslrootcert={certificate}");
    let by_name = database.url().replacen("@127.0.0.1:", "@localhost:", 1);
    Store::open(&format!("{by_name}?{verify_full}"), 1)
        .await
        .unwrap();
    let error = Store::open(&format!("{}?{verify_full}", database.url()), 1)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");

    // verify-full against a CA that does not exist is a configuration error the
    // operator must see, not an outage to wait out.
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
        database.url()
    );
    let error = Store::open(&url, 1).await.unwrap_err();
    assert!(!error.is_unavailable(), "{error}");
    assert!(
        error
            .to_string()
            .contains("sslrootcert /nonexistent/root.crt does not exist"),
        "{error}"
    );
}
