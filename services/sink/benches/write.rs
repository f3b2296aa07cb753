//! Sink write benchmark on PostgreSQL: impressions per second through
//! `Store::write` as the sink calls it (facts, rollups and offsets; a batch split
//! by partition into transactions written at once), commit time per batch (p50, p99), and a plain `COPY` of the same rows into the same
//! table as the practical limit.
//!
//! `cargo bench -p adjoin-sink --bench write [-- ROWS RUNS BATCH]` (defaults
//! 500,000, 3 and 5,000). Uses the server in `DATABASE_URL` or the local one, a
//! throwaway database per run.

use std::time::Instant;

use sqlx::{Connection, Executor, PgConnection};

use adjoin_shared::schema::{EventTime, Impression};
use adjoin_shared::testing::TestDatabase;
use adjoin_sink::batch::{Batch, Input, Source};
use adjoin_sink::store::Store;

const T0: i64 = 1_795_000_000_000;

/// Cardinalities as the generator's catalog has them.
fn impression(index: u64) -> Impression {
    let mixed = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Impression {
        impression_id: format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            mixed >> 32,
            (mixed >> 16) & 0xffff,
            mixed & 0xfff,
            (index >> 8) & 0xfff,
            index & 0xffff_ffff_ffff
        ),
        user_id: format!("user-{}", index % 50_000),
        session_id: format!("session-{}", index % 200_000),
        ad_id: format!("ad-{}", index % 5_000),
        // An ad belongs to one category, as in the generator's catalog.
        ad_category: format!("category-{}", (index % 5_000) % 12),
        device: ["mobile", "desktop", "tablet"][(index % 3) as usize].to_owned(),
        os: ["Android", "iOS", "Windows", "macOS", "Linux"][(index % 5) as usize].to_owned(),
        browser: ["Chrome", "Safari", "Firefox", "Edge"][(index % 4) as usize].to_owned(),
        location: format!("region-{}", index % 100),
        page_id: format!("page-{}", index % 1_000),
        referrer: String::new(),
        impression_cost: 0.002,
        // 1,000 impressions a second of event time.
        event_time: EventTime::from_millis(T0 + index as i64),
    }
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct SinkRun {
    rows_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn sink_run(url: &str, impressions: &[Impression], batch_rows: usize) -> SinkRun {
    let store = Store::open(url, 4).await.unwrap();
    let batches: Vec<Batch> = impressions
        .chunks(batch_rows)
        .enumerate()
        .map(|(chunk, rows)| {
            let mut batch = Batch::default();
            for (index, row) in rows.iter().enumerate() {
                // Four keyed partitions, as a sink reading four would see them.
                let number = chunk * batch_rows + index;
                let source = Source {
                    input: Input::Impressions,
                    partition: (number % 4) as i32,
                    offset: (number / 4) as i64,
                };
                batch.add_impression(source, row.clone(), None, 400);
            }
            batch
        })
        .collect();
    let mut commit_ms = Vec::with_capacity(batches.len());
    let started = Instant::now();
    for batch in batches {
        // As the sink writes a batch: split by partition, the parts at once.
        let batch_started = Instant::now();
        let parts = batch.split(store.parallel_writes());
        let writes = parts
            .iter()
            .map(|part| store.write("bench", &["impressions.keyed", "click-outcomes"], part));
        for written in futures::future::join_all(writes).await {
            written.unwrap();
        }
        commit_ms.push(batch_started.elapsed().as_secs_f64() * 1000.0);
    }
    let seconds = started.elapsed().as_secs_f64();
    commit_ms.sort_by(f64::total_cmp);
    SinkRun {
        rows_per_second: impressions.len() as f64 / seconds,
        p50_ms: percentile(&commit_ms, 0.5),
        p99_ms: percentile(&commit_ms, 0.99),
    }
}

/// The same rows with `COPY ... FROM STDIN` into the same (migrated, empty)
/// table, in the same batch size, one transaction per batch: no rollups, no
/// conflict handling, no offsets.
async fn copy_run(url: &str, impressions: &[Impression], batch_rows: usize) -> f64 {
    drop(Store::open(url, 1).await.unwrap());
    let mut connection = PgConnection::connect(url).await.unwrap();
    let started = Instant::now();
    for rows in impressions.chunks(batch_rows) {
        let mut text = String::with_capacity(rows.len() * 200);
        for row in rows {
            use std::fmt::Write as _;
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.6}\t{}",
                row.impression_id,
                row.user_id,
                row.session_id,
                row.ad_id,
                row.ad_category,
                row.device,
                row.os,
                row.browser,
                row.location,
                row.page_id,
                row.referrer,
                row.impression_cost,
                row.event_time
            );
        }
        let mut tx = connection.begin().await.unwrap();
        let mut copy = tx
            .copy_in_raw(
                "COPY impressions (impression_id, user_id, session_id, ad_id, ad_category, \
                 device, os, browser, location, page_id, referrer, impression_cost, event_time) \
                 FROM STDIN",
            )
            .await
            .unwrap();
        copy.send(text.as_bytes()).await.unwrap();
        copy.finish().await.unwrap();
        tx.commit().await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let copied: i64 = sqlx::query_scalar("SELECT count(*) FROM impressions")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(copied as usize, impressions.len());
    connection.execute("SELECT 1").await.unwrap();
    impressions.len() as f64 / seconds
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let num_rows = args.first().copied().unwrap_or(500_000);
    let num_runs = args.get(1).copied().unwrap_or(3);
    let batch_rows = args.get(2).copied().unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let impressions: Vec<Impression> = (0..num_rows as u64).map(impression).collect();
    let mut sink_runs = Vec::new();
    let mut copy_rates = Vec::new();
    for run in 1..=num_runs {
        let database = runtime.block_on(TestDatabase::create());
        let result = runtime.block_on(sink_run(database.url(), &impressions, batch_rows));
        println!(
            "run {run} sink: {:.0} impressions/s, commit p50 {:.1} ms, p99 {:.1} ms",
            result.rows_per_second, result.p50_ms, result.p99_ms
        );
        sink_runs.push(result);
        drop(database);
        let database = runtime.block_on(TestDatabase::create());
        let copy_rate = runtime.block_on(copy_run(database.url(), &impressions, batch_rows));
        println!("run {run} COPY: {copy_rate:.0} impressions/s");
        copy_rates.push(copy_rate);
    }
    let sink_rate = median(sink_runs.iter().map(|run| run.rows_per_second).collect());
    let copy_rate = median(copy_rates);
    println!(
        "median of {num_runs} runs, {num_rows} impressions in batches of {batch_rows}: sink {sink_rate:.0} impressions/s \
         (commit p50 {:.1} ms, p99 {:.1} ms), COPY {copy_rate:.0} impressions/s, ratio {:.2}",
        median(sink_runs.iter().map(|run| run.p50_ms).collect()),
        median(sink_runs.iter().map(|run| run.p99_ms).collect()),
        sink_rate / copy_rate
    );
}
