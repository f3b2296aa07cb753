//! `adjoin verify --truth FILE`: compares the sink's database with a generator's
//! truth file and exits non-zero on any difference, printing the first few of each
//! kind. Checks: the distinct impressions (count and id digest), each click id's
//! outcome (ambiguous ones accept either), no click id twice, rollups equal to the
//! fact tables, per-minute totals equal to the truth's, and the join settings the
//! truth was computed with equal to this configuration's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use adjoin_generator::oracle::fnv1a64;
use adjoin_generator::truth::Truth;
use adjoin_shared::config::{redact_url, Config};
use adjoin_sink::store::{MinuteRow, Store};

use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The truth file `adjoin generate --truth FILE` wrote. Repeat it for runs
    /// written one after the other (a backlog, then live traffic): their truths
    /// are combined.
    #[arg(long, value_name = "FILE", required = true)]
    pub truth: Vec<PathBuf>,
    /// How many differences of each kind to print.
    #[arg(long, default_value_t = 5)]
    pub show: usize,
}

/// What was read from the database.
#[derive(Debug, Default)]
pub struct Observed {
    pub impression_ids: Vec<String>,
    pub clicks: Vec<(String, String)>,
    pub rollup_mismatches: Vec<(String, i64)>,
    pub minutes: Vec<MinuteRow>,
}

/// Differences by kind, each a list of one-line descriptions.
pub type Differences = BTreeMap<&'static str, Vec<String>>;

pub fn run(cli: &Cli, args: &VerifyArgs) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    let mut truths = args.truth.iter();
    let first = truths.next().context("no --truth file given")?;
    let mut truth = Truth::read(first)?;
    for path in truths {
        truth = truth
            .merge(Truth::read(path)?)
            .with_context(|| format!("combining {} with the truths before it", path.display()))?;
    }
    let truth_names: Vec<String> = args
        .truth
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    let url = config.database.url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let observed = runtime
        .block_on(read(&url))
        .with_context(|| format!("reading the database {}", redact_url(&url)))?;
    let mut differences = compare(&truth, &observed);
    for line in settings_differences(&truth, &config) {
        differences.entry("settings").or_default().push(line);
    }
    let total: usize = differences.values().map(Vec::len).sum();
    println!(
        "verify {} against {}: {} impressions, {} clicks, {} minutes",
        redact_url(&url),
        truth_names.join(" + "),
        observed.impression_ids.len(),
        observed.clicks.len(),
        observed.minutes.len()
    );
    for (kind, found) in &differences {
        println!("{kind}: {} difference(s)", found.len());
        for line in found.iter().take(args.show) {
            println!("  {line}");
        }
    }
    anyhow::ensure!(
        total == 0,
        "{total} difference(s) between the database and the truth"
    );
    println!("no differences");
    Ok(())
}

async fn read(url: &str) -> anyhow::Result<Observed> {
    let store = Store::connect(url, 1).await?;
    Ok(Observed {
        impression_ids: store.impression_ids().await?,
        clicks: store.click_outcomes().await?,
        rollup_mismatches: store.rollup_mismatches().await?,
        minutes: store.minute_totals().await?,
    })
}

/// The truth's outcomes hold only for a pipeline with its join settings: a
/// deployment configured otherwise is reported, not compared silently.
fn settings_differences(truth: &Truth, config: &Config) -> Vec<String> {
    let show = |duration: std::time::Duration| humantime::format_duration(duration).to_string();
    [
        ("join.window", truth.settings.window, config.join.window),
        ("join.skew", truth.settings.skew, config.join.skew),
        (
            "watermark.allowed_lateness",
            truth.settings.allowed_lateness,
            config.watermark.allowed_lateness,
        ),
    ]
    .into_iter()
    .filter(|(_, expected, configured)| expected != configured)
    .map(|(key, expected, configured)| {
        format!(
            "{key} is {} here, the truth was computed with {}",
            show(configured),
            show(expected)
        )
    })
    .collect()
}

fn micros(cost: f64) -> i64 {
    (cost * 1e6).round() as i64
}

/// Compares what the database holds with the truth.
pub fn compare(truth: &Truth, observed: &Observed) -> Differences {
    let mut differences = Differences::new();
    let mut note = |kind: &'static str, line: String| {
        differences.entry(kind).or_default().push(line);
    };

    let digest = observed
        .impression_ids
        .iter()
        .fold(0_u64, |sum, id| sum.wrapping_add(fnv1a64(id.as_bytes())));
    let digest = format!("{digest:016x}");
    if observed.impression_ids.len() as u64 != truth.impressions.distinct
        || digest != truth.impressions.id_digest
    {
        note(
            "impressions",
            format!(
                "{} rows with id digest {digest}; the truth has {} distinct impressions, digest {}",
                observed.impression_ids.len(),
                truth.impressions.distinct,
                truth.impressions.id_digest
            ),
        );
    }

    let mut stored: HashMap<&str, &str> = HashMap::with_capacity(observed.clicks.len());
    for (click_id, outcome) in &observed.clicks {
        if stored.insert(click_id, outcome).is_some() {
            note("click stored twice", click_id.clone());
        }
    }
    for (click_id, expected) in &truth.click_outcomes {
        match stored.get(click_id.as_str()) {
            None => note("click missing", format!("{click_id} (truth: {expected})")),
            Some(outcome) if expected != "ambiguous" && outcome != expected => note(
                "click with another outcome",
                format!("{click_id}: {outcome}, truth: {expected}"),
            ),
            Some(_) => {}
        }
    }
    for (click_id, outcome) in &observed.clicks {
        if !truth.click_outcomes.contains_key(click_id) {
            note("click not in the truth", format!("{click_id} ({outcome})"));
        }
    }

    for (rollup, mismatches) in &observed.rollup_mismatches {
        if *mismatches != 0 {
            note(
                "rollup differs from the facts",
                format!("{rollup}: {mismatches} row(s)"),
            );
        }
    }

    // Costs are stored as micro-units, rounded per row; the truth sums raw costs.
    let mut by_minute: BTreeMap<i64, (Option<&MinuteRow>, Option<MinuteRow>)> = BTreeMap::new();
    for row in &observed.minutes {
        by_minute.entry(row.minute_ms).or_default().0 = Some(row);
    }
    for minute in &truth.minutes {
        let minute_ms = minute.minute.as_millis();
        by_minute.entry(minute_ms).or_default().1 = Some(MinuteRow {
            minute_ms,
            impressions: minute.impressions as i64,
            impression_cost_micros: micros(minute.impression_cost),
            clicks: minute.clicks as i64,
            click_cost_micros: micros(minute.click_cost),
        });
    }
    for (minute_ms, rows) in by_minute {
        let empty = MinuteRow {
            minute_ms,
            impressions: 0,
            impression_cost_micros: 0,
            clicks: 0,
            click_cost_micros: 0,
        };
        let stored = rows.0.copied().unwrap_or(empty);
        let expected = rows.1.unwrap_or(empty);
        // Per-row rounding can move a sum by half a micro-unit per row.
        let slack = |rows: i64| rows / 2 + 1;
        let costs_agree = (stored.impression_cost_micros - expected.impression_cost_micros).abs()
            <= slack(expected.impressions)
            && (stored.click_cost_micros - expected.click_cost_micros).abs()
                <= slack(expected.clicks);
        if stored.impressions != expected.impressions
            || stored.clicks != expected.clicks
            || !costs_agree
        {
            note(
                "minute totals differ from the truth",
                format!(
                    "{}: impressions {} (truth {}), clicks {} (truth {}), impression cost {:.6} (truth {:.6}), click cost {:.6} (truth {:.6})",
                    adjoin_shared::schema::EventTime::from_millis(minute_ms),
                    stored.impressions,
                    expected.impressions,
                    stored.clicks,
                    expected.clicks,
                    stored.impression_cost_micros as f64 / 1e6,
                    expected.impression_cost_micros as f64 / 1e6,
                    stored.click_cost_micros as f64 / 1e6,
                    expected.click_cost_micros as f64 / 1e6,
                ),
            );
        }
    }
    differences
}
