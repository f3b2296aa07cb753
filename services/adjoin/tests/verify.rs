//! `adjoin verify` against an SQLite database the sink's store wrote: no
//! differences when the database holds what the truth says; a non-zero exit that
//! names each kind of difference once rows are missing, outcomes changed or rollups
//! tampered with.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use adjoin_generator::oracle::fnv1a64;
use adjoin_generator::truth::{
    ClickTruth, ImpressionTruth, MinuteTotals, Totals, Truth, TruthSettings,
};
use adjoin_shared::schema::{
    Click, ClickOutcome, EventTime, Impression, MatchedImpression, Outcome,
};
use adjoin_sink::batch::{Batch, Input, Source};
use adjoin_sink::store::Store;

use common::adjoin;

const T0: i64 = 1_795_000_000_000;

fn impression(index: u64) -> Impression {
    Impression {
        impression_id: format!("imp-{index}"),
        user_id: "u".to_owned(),
        session_id: "s".to_owned(),
        ad_id: format!("ad-{}", index % 3),
        ad_category: "travel".to_owned(),
        device: "mobile".to_owned(),
        os: "iOS".to_owned(),
        browser: "Safari".to_owned(),
        location: "DE".to_owned(),
        page_id: "p".to_owned(),
        referrer: String::new(),
        impression_cost: 0.0013,
        event_time: EventTime::from_millis(T0 + index as i64 * 7_000),
    }
}

/// Forty impressions over five minutes, a click on every fourth one (matched, or
/// no_impression for every third click), and the truth a correct pipeline implies.
fn scenario() -> (Vec<Impression>, Vec<ClickOutcome>, Truth) {
    let impressions: Vec<Impression> = (0..40).map(impression).collect();
    let mut outcomes = Vec::new();
    for (index, shown) in impressions.iter().enumerate().step_by(4) {
        let click = Click {
            click_id: format!("clk-{index}"),
            impression_id: shown.impression_id.clone(),
            click_position: 1,
            click_cost: 0.21,
            event_time: EventTime::from_millis(shown.event_time.as_millis() + 3_000),
        };
        outcomes.push(if index % 12 == 0 {
            ClickOutcome::unmatched(click, Outcome::NoImpression)
        } else {
            ClickOutcome::matched(
                click,
                MatchedImpression {
                    event_time: shown.event_time,
                    ad_id: shown.ad_id.clone(),
                    ad_category: shown.ad_category.clone(),
                    device: shown.device.clone(),
                    os: shown.os.clone(),
                    browser: shown.browser.clone(),
                    location: shown.location.clone(),
                },
            )
        });
    }
    let truth = truth_of(&impressions, &outcomes);
    (impressions, outcomes, truth)
}

/// The truth a correct pipeline implies for these impressions and click outcomes.
fn truth_of(impressions: &[Impression], outcomes: &[ClickOutcome]) -> Truth {
    let mut minutes: BTreeMap<i64, MinuteTotals> = BTreeMap::new();
    let minute_of = |time: EventTime| time.as_millis() - time.as_millis().rem_euclid(60_000);
    for shown in impressions {
        let minute = minutes
            .entry(minute_of(shown.event_time))
            .or_insert_with(|| MinuteTotals::new(minute_of(shown.event_time)));
        minute.impressions += 1;
        minute.impression_cost += shown.impression_cost;
    }
    for outcome in outcomes {
        if let Some(matched) = &outcome.impression {
            let minute = minutes.get_mut(&minute_of(matched.event_time)).unwrap();
            minute.clicks += 1;
            minute.click_cost += outcome.click.click_cost;
        }
    }
    let digest = impressions.iter().fold(0_u64, |sum, shown| {
        sum.wrapping_add(fnv1a64(shown.impression_id.as_bytes()))
    });
    let click_outcomes: BTreeMap<String, String> = outcomes
        .iter()
        .map(|outcome| {
            (
                outcome.click.click_id.clone(),
                outcome.outcome.as_str().to_owned(),
            )
        })
        .collect();
    Truth::new(
        TruthSettings {
            seed: None,
            window: Duration::from_secs(900),
            skew: Duration::from_secs(5),
            allowed_lateness: Duration::from_secs(60),
            impressions_topic: "impressions".to_owned(),
            clicks_topic: "clicks".to_owned(),
            impression_partitions: 1,
            click_partitions: 1,
            key_by: "random".to_owned(),
        },
        ImpressionTruth {
            distinct: impressions.len() as u64,
            delivered: impressions.len() as u64,
            duplicates: 0,
            id_digest: format!("{digest:016x}"),
        },
        ClickTruth::default(),
        BTreeMap::new(),
        Totals::default(),
        minutes.into_values().collect(),
        click_outcomes,
    )
}

/// Runs `adjoin verify` on the database; returns its exit success and output.
fn verify(url: &str, truth: &std::path::Path, extra_env: &[(&str, String)]) -> (bool, String) {
    verify_all(url, &[truth], extra_env)
}

/// Runs `adjoin verify` with one `--truth` per file.
fn verify_all(
    url: &str,
    truths: &[&std::path::Path],
    extra_env: &[(&str, String)],
) -> (bool, String) {
    let mut args = vec!["verify"];
    for truth in truths {
        args.extend(["--truth", truth.to_str().unwrap()]);
    }
    let output = adjoin(
        &[("ADJOIN__DATABASE__URL".to_owned(), url.to_owned())],
        &args,
        extra_env,
    )
    .output()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn verify_passes_on_the_truth_and_names_every_kind_of_difference() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("adjoin.db").display());
    let truth_path = dir.path().join("truth.json");
    let (impressions, outcomes, truth) = scenario();
    truth.write(&truth_path).unwrap();
    // The same traffic as two runs (a backlog, then live traffic), each with its
    // own truth file.
    let (first_path, second_path) = (
        dir.path().join("first.json"),
        dir.path().join("second.json"),
    );
    let in_first = |impression_id: &str| {
        impressions[..20]
            .iter()
            .any(|shown| shown.impression_id == impression_id)
    };
    let (first_outcomes, second_outcomes): (Vec<ClickOutcome>, Vec<ClickOutcome>) = outcomes
        .iter()
        .cloned()
        .partition(|outcome| in_first(&outcome.click.impression_id));
    truth_of(&impressions[..20], &first_outcomes)
        .write(&first_path)
        .unwrap();
    truth_of(&impressions[20..], &second_outcomes)
        .write(&second_path)
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(Store::open(&url, 1)).unwrap();
    let mut batch = Batch::default();
    for (offset, shown) in impressions.into_iter().enumerate() {
        let source = Source {
            input: Input::Impressions,
            partition: 0,
            offset: offset as i64,
        };
        batch.add_impression(source, shown, None, 100);
    }
    for (offset, outcome) in outcomes.into_iter().enumerate() {
        let source = Source {
            input: Input::Outcomes,
            partition: 0,
            offset: offset as i64,
        };
        batch.add_outcome(source, outcome, None, 100);
    }
    runtime
        .block_on(store.write("sink", &["impressions.keyed", "click-outcomes"], &batch))
        .unwrap();

    let (passed, output) = verify(&url, &truth_path, &[]);
    assert!(passed, "{output}");
    assert!(output.contains("no differences"), "{output}");
    let (passed, output) = verify_all(&url, &[&first_path, &second_path], &[]);
    assert!(
        passed,
        "both runs' truths together are the whole truth:\n{output}"
    );
    let (passed, output) = verify_all(&url, &[&first_path], &[]);
    assert!(!passed, "the first run's truth alone is not:\n{output}");
    assert!(
        output.contains("click not in the truth: 5 difference"),
        "{output}"
    );
    let (passed, output) = verify(
        &url,
        &truth_path,
        &[("ADJOIN__JOIN__WINDOW", "10m".to_owned())],
    );
    assert!(!passed, "another join window is a difference:\n{output}");
    assert!(
        output.contains("join.window is 10m here, the truth was computed with 15m"),
        "{output}"
    );

    let Store::Sqlite(pool) = &store else {
        unreachable!()
    };
    runtime.block_on(async {
        for statement in [
            // A lost impression (its rollup rows left as they were).
            "DELETE FROM impressions WHERE impression_id = 'imp-5'",
            // A click decided differently, and one never written.
            "UPDATE clicks SET outcome = 'late', impression_time_ms = NULL, ad_id = NULL, \
             ad_category = NULL, device = NULL, os = NULL, browser = NULL, location = NULL \
             WHERE click_id = 'clk-4'",
            "DELETE FROM clicks WHERE click_id = 'clk-8'",
            // A rollup that counts what no truth minute has.
            "UPDATE ad_stats_minute SET impressions = impressions + 2 \
             WHERE minute_ms = (SELECT min(minute_ms) FROM ad_stats_minute) AND ad_id = 'ad-0'",
            // A click nobody generated.
            "INSERT INTO clicks (click_id, impression_id, click_position, click_cost_micros, \
             event_time_ms, outcome) VALUES ('clk-x', 'imp-x', 1, 1, 1795000000000, 'late')",
        ] {
            sqlx::query(statement).execute(pool).await.unwrap();
        }
    });
    let (passed, output) = verify(&url, &truth_path, &[]);
    assert!(!passed, "verify must fail:\n{output}");
    for kind in [
        "impressions: 1 difference",
        "click with another outcome: 1 difference",
        "clk-4: late, truth: matched",
        "click missing: 1 difference",
        "click not in the truth: 1 difference",
        "rollup differs from the facts",
        "minute totals differ from the truth",
    ] {
        assert!(output.contains(kind), "{kind:?} missing in:\n{output}");
    }
}
