//! The join checked against a brute-force oracle: random impressions and clicks
//! (duplicates, orphans, disorder, late records) cut into random raw partitions,
//! passed through a model of ingest (late tags and in-band markers, as
//! `services/ingest` writes them), consumed by one shard in a random interleaving of
//! its two keyed partitions, with random restarts from the shard's replay offsets.
//! Every distinct click must get the oracle's outcome, and an outcome emitted again
//! after a restart must be the same.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use adjoin_join::shard_state::{JoinRules, ShardState};
use adjoin_join::watermark::Side;
use adjoin_shared::keyed::{PartitionWatermark, WatermarkMarker};
use adjoin_shared::schema::{Click, ClickOutcome, EventTime, Impression, Outcome};

const SECOND: i64 = 1_000;
const T0: i64 = 1_795_000_000_000;
const WINDOW_MS: i64 = 120 * SECOND;
const SKEW_MS: i64 = 5 * SECOND;
const LATENESS_MS: i64 = 20 * SECOND;

/// What the oracle expects of one distinct click.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Exactly(Outcome),
    /// Depends on consumption speed (a late impression, or a late click whose
    /// impression may already have left); either outcome is accepted.
    Ambiguous,
}

#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // test data, a few thousand at most
enum Event {
    Impression(Impression),
    Click(Click),
}

impl Event {
    fn time_ms(&self) -> i64 {
        match self {
            Event::Impression(impression) => impression.event_time.as_millis(),
            Event::Click(click) => click.event_time.as_millis(),
        }
    }
}

/// One record of a keyed partition, as the shard reads it.
#[derive(Clone, Debug)]
enum Keyed {
    Impression(Impression),
    Click(Click, bool),
    Marker(WatermarkMarker),
}

fn id(rng: &mut ChaCha8Rng, prefix: &str, index: usize) -> String {
    if rng.gen_bool(0.5) {
        format!(
            "{index:08x}-{:04x}-4000-8000-000000000000",
            rng.gen_range(0..0xffff_u32)
        )
    } else {
        format!("{prefix}-{index}")
    }
}

/// Raw partitions of one topic, each a list of events in delivery order.
fn raw_partitions(
    rng: &mut ChaCha8Rng,
    events: Vec<Event>,
    num_partitions: usize,
) -> Vec<Vec<Event>> {
    let mut partitions = vec![Vec::new(); num_partitions];
    for event in events {
        let partition = rng.gen_range(0..num_partitions);
        partitions[partition].push(event);
    }
    for partition in &mut partitions {
        // Mostly in time order, with local disorder: some records a little out of
        // order, a few well behind (late).
        partition.sort_by_cached_key(|event| {
            event.time_ms() + rng.gen_range(-15 * SECOND..=15 * SECOND)
        });
        for index in 0..partition.len() {
            if rng.gen_bool(0.05) && index + 30 < partition.len() {
                let late = partition.remove(index);
                partition.insert(index + rng.gen_range(10..30), late);
            }
        }
        // Duplicates a few records after the original, as producer retries.
        let mut index = 0;
        while index < partition.len() {
            if rng.gen_bool(0.05) {
                let copy = partition[index].clone();
                let at = (index + rng.gen_range(1..4)).min(partition.len());
                partition.insert(at, copy);
            }
            index += 1;
        }
    }
    partitions
}

/// Per raw partition: each event with its late tag and the newest time before it.
fn tag_late(partition: &[Event]) -> Vec<(Event, bool, Option<i64>)> {
    let mut newest_opt: Option<i64> = None;
    partition
        .iter()
        .map(|event| {
            let before_opt = newest_opt;
            let late = before_opt.is_some_and(|newest| event.time_ms() < newest - LATENESS_MS);
            newest_opt =
                Some(newest_opt.map_or(event.time_ms(), |newest| newest.max(event.time_ms())));
            (event.clone(), late, before_opt)
        })
        .collect()
}

/// Ingest's model: raw partitions merged in a random interleaving into one keyed
/// partition, with a marker of every raw partition's watermark now and then, and a
/// final marker with every partition idle (traffic has stopped).
fn keyed_partition(rng: &mut ChaCha8Rng, raw: &[Vec<(Event, bool, Option<i64>)>]) -> Vec<Keyed> {
    let mut positions = vec![0_usize; raw.len()];
    let mut newest: Vec<Option<i64>> = vec![None; raw.len()];
    let mut keyed = Vec::new();
    let marker = |newest: &[Option<i64>], idle: bool| {
        Keyed::Marker(WatermarkMarker {
            source_topic: "raw".into(),
            source_partitions: newest.len() as i32,
            instance: "model".into(),
            emitted_at_ms: 0,
            partitions: newest
                .iter()
                .enumerate()
                .map(|(partition, newest_opt)| PartitionWatermark {
                    partition: partition as i32,
                    watermark_ms: newest_opt.map(|newest| newest - LATENESS_MS),
                    idle,
                })
                .collect(),
        })
    };
    // Ingest started before traffic: every raw partition idle, none with a record.
    keyed.push(marker(&newest, true));
    loop {
        let open: Vec<usize> = (0..raw.len())
            .filter(|p| positions[*p] < raw[*p].len())
            .collect();
        if open.is_empty() {
            break;
        }
        let partition = open[rng.gen_range(0..open.len())];
        let (event, late, _) = &raw[partition][positions[partition]];
        positions[partition] += 1;
        newest[partition] =
            Some(newest[partition].map_or(event.time_ms(), |n| n.max(event.time_ms())));
        keyed.push(match event {
            Event::Impression(impression) => Keyed::Impression(impression.clone()),
            Event::Click(click) => Keyed::Click(click.clone(), *late),
        });
        if rng.gen_bool(0.2) {
            keyed.push(marker(&newest, false));
        }
    }
    keyed.push(marker(&newest, false));
    // Traffic has stopped: the partitions go idle and ingest moves their watermarks
    // on with the wall clock, here by a day.
    let moved_on: Vec<Option<i64>> = newest
        .iter()
        .map(|newest_opt| newest_opt.map(|newest| newest + 24 * 3_600 * SECOND))
        .collect();
    keyed.push(marker(&moved_on, true));
    keyed
}

/// The brute-force oracle: nested loops over the delivered records with the rules
/// of docs/truth.md.
fn oracle(
    impressions: &[Vec<(Event, bool, Option<i64>)>],
    clicks: &[Vec<(Event, bool, Option<i64>)>],
) -> BTreeMap<String, Expected> {
    let rules = JoinRules {
        window_ms: WINDOW_MS,
        skew_ms: SKEW_MS,
    };
    // First delivery of each impression id, and whether it was late.
    let mut first_impressions: Vec<(&Impression, bool)> = Vec::new();
    for partition in impressions {
        for (event, late, _) in partition {
            let Event::Impression(impression) = event else {
                continue;
            };
            if !first_impressions
                .iter()
                .any(|(known, _)| known.impression_id == impression.impression_id)
            {
                first_impressions.push((impression, *late));
            }
        }
    }
    let mut expected = BTreeMap::new();
    for partition in clicks {
        for (event, late, newest_before_opt) in partition {
            let Event::Click(click) = event else { continue };
            if expected.contains_key(&click.click_id) {
                continue;
            }
            let click_ms = click.event_time.as_millis();
            let mut in_window_opt = None;
            for (impression, impression_late) in &first_impressions {
                if impression.impression_id == click.impression_id
                    && rules.in_window(impression.event_time.as_millis(), click_ms)
                {
                    in_window_opt = Some((impression.event_time.as_millis(), *impression_late));
                }
            }
            let outcome = match (in_window_opt, late) {
                (Some((_, true)), _) => Expected::Ambiguous,
                (Some(_), false) => Expected::Exactly(Outcome::Matched),
                (None, false) => Expected::Exactly(Outcome::NoImpression),
                (Some((impression_ms, false)), true) => {
                    let watermark = newest_before_opt.map(|newest| newest - LATENESS_MS);
                    if watermark.is_some_and(|w| w <= impression_ms + WINDOW_MS) {
                        Expected::Exactly(Outcome::Matched)
                    } else {
                        Expected::Ambiguous
                    }
                }
                (None, true) => Expected::Exactly(Outcome::Late),
            };
            expected.insert(click.click_id.clone(), outcome);
        }
    }
    expected
}

/// An outcome, and the clicks offset the shard that emitted it replayed from.
struct Emitted {
    outcome: ClickOutcome,
    clicks_replay_offset: usize,
}

/// Runs one shard over the two keyed partitions in a random interleaving, restarting
/// it from its replay offsets `num_restarts` times at random points.
fn run_shard(
    rng: &mut ChaCha8Rng,
    impressions: &[Keyed],
    clicks: &[Keyed],
    num_restarts: usize,
) -> Vec<Emitted> {
    let rules = JoinRules::new(
        Duration::from_millis(WINDOW_MS as u64),
        Duration::from_millis(SKEW_MS as u64),
    );
    let total = impressions.len() + clicks.len();
    let restart_at: HashSet<usize> = (0..num_restarts)
        .map(|_| rng.gen_range(0..total.max(1)))
        .collect();
    let mut state = ShardState::new(rules);
    let mut positions = [0_usize, 0_usize];
    let mut out = Vec::new();
    let mut emitted = Vec::new();
    let mut clicks_replay_offset = 0_usize;
    let mut step = 0_usize;
    let mut num_steps_left = 10 * total + 100;
    while positions[0] < impressions.len() || positions[1] < clicks.len() {
        num_steps_left -= 1;
        assert!(num_steps_left > 0, "the run makes progress");
        if restart_at.contains(&step) {
            let replay = state.replay_offsets();
            positions = [
                replay[0].map_or(0, |offset| offset as usize),
                replay[1].map_or(0, |offset| offset as usize),
            ];
            state = ShardState::new(rules);
            clicks_replay_offset = positions[1];
        }
        step += 1;
        let side = if positions[0] >= impressions.len() {
            Side::Clicks
        } else if positions[1] >= clicks.len() || rng.gen_bool(0.5) {
            Side::Impressions
        } else {
            Side::Clicks
        };
        let (records, position) = match side {
            Side::Impressions => (impressions, &mut positions[0]),
            Side::Clicks => (clicks, &mut positions[1]),
        };
        let offset = *position as i64;
        match &records[*position] {
            Keyed::Impression(impression) => state.on_impression(offset, impression, &mut out),
            Keyed::Click(click, late) => state.on_click(offset, click.clone(), *late, &mut out),
            Keyed::Marker(marker) => state.on_marker(side, offset, marker, &mut out),
        }
        *position += 1;
        emitted.extend(out.drain(..).map(|outcome| Emitted {
            outcome,
            clicks_replay_offset,
        }));
    }
    // Ingest keeps writing markers while traffic is stopped: a shard restarted after
    // the last ones reads newer ones.
    for (side, records) in [(Side::Impressions, impressions), (Side::Clicks, clicks)] {
        if let Some(Keyed::Marker(last)) = records.last() {
            state.on_marker(side, records.len() as i64, last, &mut out);
        }
    }
    emitted.extend(out.drain(..).map(|outcome| Emitted {
        outcome,
        clicks_replay_offset,
    }));
    assert_eq!(
        state.num_waiting_clicks(),
        0,
        "idle markers drain every waiting click"
    );
    emitted
}

/// What one run exercised, so the larger test can show it is not vacuous.
#[derive(Debug, Default)]
struct Exercised {
    expected: BTreeMap<String, usize>,
    num_reemitted_compared: usize,
}

fn check(
    seed: u64,
    num_impressions: usize,
    num_clicks: usize,
    num_restarts: usize,
) -> Result<Exercised, TestCaseError> {
    let mut exercised = Exercised::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut impression_events = Vec::new();
    let mut impression_ids = Vec::new();
    for index in 0..num_impressions {
        let impression_id = id(&mut rng, "imp", index);
        impression_ids.push((impression_id.clone(), 0_i64));
        // About two seconds of event time per impression, as in steady traffic.
        let time_ms = T0 + rng.gen_range(0..(2 * SECOND * num_impressions as i64).max(10 * SECOND));
        impression_ids.last_mut().unwrap().1 = time_ms;
        impression_events.push(Event::Impression(Impression {
            impression_id,
            user_id: "u".into(),
            session_id: "s".into(),
            ad_id: format!("ad-{}", index % 7),
            ad_category: "c".into(),
            device: "d".into(),
            os: "o".into(),
            browser: "b".into(),
            location: "l".into(),
            page_id: "p".into(),
            referrer: String::new(),
            impression_cost: 0.01,
            event_time: EventTime::from_millis(time_ms),
        }));
    }
    let mut click_events = Vec::new();
    for index in 0..num_clicks {
        let (impression_id, impression_ms) = if impression_ids.is_empty() || rng.gen_bool(0.15) {
            (
                format!("orphan-{index}"),
                T0 + rng.gen_range(0..(2 * SECOND * num_impressions as i64).max(10 * SECOND)),
            )
        } else {
            impression_ids[rng.gen_range(0..impression_ids.len())].clone()
        };
        // Mostly inside the window, some just outside either bound.
        let delay_ms = rng.gen_range(-2 * SKEW_MS..WINDOW_MS + 10 * SECOND);
        click_events.push(Event::Click(Click {
            click_id: id(&mut rng, "clk", index),
            impression_id,
            click_position: 1,
            click_cost: 0.1,
            event_time: EventTime::from_millis(impression_ms + delay_ms),
        }));
    }
    let num_impression_partitions = rng.gen_range(1..=3);
    let num_click_partitions = rng.gen_range(1..=3);
    let raw_impressions: Vec<_> =
        raw_partitions(&mut rng, impression_events, num_impression_partitions)
            .iter()
            .map(|partition| tag_late(partition))
            .collect();
    let raw_clicks: Vec<_> = raw_partitions(&mut rng, click_events, num_click_partitions)
        .iter()
        .map(|partition| tag_late(partition))
        .collect();
    let expected = oracle(&raw_impressions, &raw_clicks);
    let keyed_impressions = keyed_partition(&mut rng, &raw_impressions);
    let keyed_clicks = keyed_partition(&mut rng, &raw_clicks);
    let emitted = run_shard(&mut rng, &keyed_impressions, &keyed_clicks, num_restarts);
    let outcomes: Vec<&ClickOutcome> = emitted.iter().map(|emitted| &emitted.outcome).collect();
    let mut first_delivery: HashMap<&str, usize> = HashMap::new();
    for (offset, record) in keyed_clicks.iter().enumerate() {
        if let Keyed::Click(click, _) = record {
            first_delivery
                .entry(click.click_id.as_str())
                .or_insert(offset);
        }
    }

    // The sink keeps a click's first outcome. A shard that replays a click from its
    // first delivery must decide it as before (an earlier outcome may have been
    // lost); one that replays only a later, duplicate delivery may decide that
    // differently, but the first outcome was acknowledged before its offset was
    // committed, so the sink ignores it.
    let mut first: HashMap<&str, &ClickOutcome> = HashMap::new();
    for emitted in &emitted {
        let outcome = &emitted.outcome;
        let click_id = outcome.click.click_id.as_str();
        match first.get(click_id) {
            None => {
                first.insert(click_id, outcome);
            }
            Some(earlier) => {
                let replayed_from_first_delivery =
                    first_delivery[click_id] >= emitted.clicks_replay_offset;
                if replayed_from_first_delivery
                    && matches!(expected.get(click_id), Some(Expected::Exactly(_)))
                {
                    prop_assert_eq!(*earlier, outcome, "a replayed outcome equals the first");
                    exercised.num_reemitted_compared += 1;
                }
            }
        }
    }
    prop_assert_eq!(
        first.len(),
        expected.len(),
        "every distinct click gets an outcome"
    );
    for (click_id, expectation) in &expected {
        let Some(outcome) = first.get(click_id.as_str()) else {
            return Err(TestCaseError::fail(format!("no outcome for {click_id}")));
        };
        if let Expected::Exactly(wanted) = expectation {
            prop_assert_eq!(outcome.outcome, *wanted, "click {}", click_id);
        }
        prop_assert_eq!(
            outcome.impression.is_some(),
            outcome.outcome == Outcome::Matched
        );
        let kind = match expectation {
            Expected::Exactly(wanted) => wanted.as_str(),
            Expected::Ambiguous => "ambiguous",
        };
        *exercised.expected.entry(kind.to_owned()).or_default() += 1;
    }
    if num_restarts == 0 {
        let repeated: Vec<&&ClickOutcome> = outcomes
            .iter()
            .filter(|outcome| {
                outcomes
                    .iter()
                    .filter(|other| other.click.click_id == outcome.click.click_id)
                    .count()
                    > 1
            })
            .collect();
        prop_assert!(
            repeated.is_empty(),
            "without restarts, one outcome per click: {:?}",
            repeated
        );
    }
    Ok(exercised)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_join_agrees_with_the_oracle(
        seed in any::<u64>(),
        num_impressions in 1_usize..60, // with none at all, clicks wait for the first (docs/join.md)
        num_clicks in 0_usize..60,
        num_restarts in 0_usize..4,
    ) {
        check(seed, num_impressions, num_clicks, num_restarts)?;
    }
}

#[test]
fn a_larger_run_with_many_restarts() {
    for seed in 0..5 {
        let exercised = check(seed, 2_000, 1_500, 20).unwrap();
        for kind in ["matched", "no_impression", "late"] {
            assert!(
                exercised
                    .expected
                    .get(kind)
                    .is_some_and(|count| *count >= 5),
                "seed {seed}: too few {kind} clicks to mean much: {exercised:?}"
            );
        }
        assert!(
            exercised.expected.get("ambiguous").copied().unwrap_or(0) * 5 < 1_500,
            "seed {seed}: most clicks have one right answer: {exercised:?}"
        );
        assert!(
            exercised.num_reemitted_compared > 0,
            "seed {seed}: restarts re-emitted outcomes: {exercised:?}"
        );
        println!("seed {seed}: {exercised:?}");
    }
}
