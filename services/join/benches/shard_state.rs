//! Shard state benchmark: bytes per live impression (counted by a global counting
//! allocator, so every container's real footprint is included) and the pure join's
//! throughput. `cargo bench -p adjoin-join --bench shard_state [-- IMPRESSIONS RUNS]`
//! (defaults 1,000,000 and 5); prints each run and the medians.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use adjoin_join::shard_state::{JoinRules, ShardState};
use adjoin_join::watermark::Side;
use adjoin_shared::keyed::{PartitionWatermark, WatermarkMarker};
use adjoin_shared::schema::{Click, EventTime, Impression};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const T0: i64 = 1_795_000_000_000;

fn uuid(index: u64) -> String {
    // Spread like random v4 UUIDs, so hashing sees realistic keys.
    let mixed = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        mixed >> 32,
        (mixed >> 16) & 0xffff,
        mixed & 0xfff,
        (index >> 8) & 0xfff,
        index & 0xffff_ffff_ffff
    )
}

/// Attribute cardinalities as the generator's catalog has them: thousands of
/// ads, a dozen categories, a handful of devices, OSes and browsers, ~100 places.
fn impression(index: u64) -> Impression {
    Impression {
        impression_id: uuid(index),
        user_id: format!("user-{}", index % 50_000),
        session_id: format!("session-{}", index % 200_000),
        ad_id: format!("ad-{}", index % 5_000),
        ad_category: format!("category-{}", index % 12),
        device: ["mobile", "desktop", "tablet"][(index % 3) as usize].to_owned(),
        os: ["Android", "iOS", "Windows", "macOS", "Linux"][(index % 5) as usize].to_owned(),
        browser: ["Chrome", "Safari", "Firefox", "Edge"][(index % 4) as usize].to_owned(),
        location: format!("region-{}", index % 100),
        page_id: format!("page-{}", index % 1_000),
        referrer: String::new(),
        impression_cost: 0.002,
        event_time: EventTime::from_millis(T0 + index as i64),
    }
}

fn marker(watermark_ms: i64) -> WatermarkMarker {
    WatermarkMarker {
        source_topic: "raw".into(),
        source_partitions: 1,
        instance: "bench".into(),
        emitted_at_ms: 0,
        partitions: vec![PartitionWatermark {
            partition: 0,
            watermark_ms: Some(watermark_ms),
            idle: false,
        }],
    }
}

enum Event {
    Impression(Impression),
    Click(Click),
    Marker(Side, WatermarkMarker),
}

/// A steady stream as one shard sees it: 1,000 impressions per second of event
/// time, a click on one in 33 (10 s later), a marker per side every 1,000 events at
/// newest time minus 1 min. Long enough (event time 50 min) for eviction to run.
fn stream(num_events: u64) -> Vec<Event> {
    let mut events = Vec::with_capacity(num_events as usize);
    let mut index = 0_u64;
    while (events.len() as u64) < num_events {
        events.push(Event::Impression(impression(index)));
        if index % 33 == 0 && index >= 10_000 {
            let clicked = index - 10_000;
            events.push(Event::Click(Click {
                click_id: uuid(clicked + (1 << 40)),
                impression_id: uuid(clicked),
                click_position: 1,
                click_cost: 0.4,
                event_time: EventTime::from_millis(T0 + index as i64),
            }));
        }
        if index % 1_000 == 999 {
            let watermark_ms = T0 + index as i64 - 60_000;
            events.push(Event::Marker(Side::Impressions, marker(watermark_ms)));
            events.push(Event::Marker(Side::Clicks, marker(watermark_ms)));
        }
        index += 1;
    }
    events
}

/// Returns events per second through the core on a decoded stream.
fn run_stream(events: &[Event]) -> f64 {
    let rules = JoinRules::new(Duration::from_secs(15 * 60), Duration::from_secs(5));
    let mut state = ShardState::new(rules);
    let mut out = Vec::new();
    let mut offsets = [0_i64, 0_i64];
    let started = Instant::now();
    for event in events {
        match event {
            Event::Impression(impression) => {
                state.on_impression(offsets[0], impression, &mut out);
                offsets[0] += 1;
            }
            Event::Click(click) => {
                state.on_click(offsets[1], click.clone(), false, &mut out);
                offsets[1] += 1;
            }
            Event::Marker(side, marker) => {
                let offset = &mut offsets[*side as usize];
                state.on_marker(*side, *offset, marker, &mut out);
                *offset += 1;
            }
        }
        out.clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let replay = state.replay_offsets();
    println!(
        "  after the stream: read up to {offsets:?}, replay offsets {replay:?}, {} live impressions, {} retained clicks",
        state.num_live_impressions(),
        state.num_retained_clicks()
    );
    assert!(state.counters().evicted_impressions > 0, "eviction ran");
    assert!(state.counters().matched > 0);
    events.len() as f64 / seconds
}

struct Run {
    bytes_per_impression: f64,
    impressions_per_second: f64,
    clicks_per_second: f64,
    evictions_per_second: f64,
}

fn run(num_impressions: u64) -> Run {
    let rules = JoinRules::new(Duration::from_secs(15 * 60), Duration::from_secs(5));
    let impressions: Vec<Impression> = (0..num_impressions).map(impression).collect();
    let mut out = Vec::new();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut state = ShardState::new(rules);
    let started = Instant::now();
    for (offset, impression) in impressions.iter().enumerate() {
        state.on_impression(offset as i64, impression, &mut out);
    }
    let insert_seconds = started.elapsed().as_secs_f64();
    let state_bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
    assert_eq!(state.num_live_impressions(), num_impressions as usize);

    // One click per 30 impressions, matched against live state.
    let clicks: Vec<Click> = (0..num_impressions)
        .step_by(30)
        .map(|index| Click {
            click_id: uuid(index + (1 << 40)),
            impression_id: uuid(index),
            click_position: 1,
            click_cost: 0.4,
            event_time: EventTime::from_millis(T0 + index as i64 + 10_000),
        })
        .collect();
    let num_clicks = clicks.len();
    let started = Instant::now();
    for (offset, click) in clicks.into_iter().enumerate() {
        state.on_click(offset as i64, click, false, &mut out);
    }
    let click_seconds = started.elapsed().as_secs_f64();
    assert_eq!(out.len(), num_clicks, "every click matched");

    // Then the watermark passes everything: eviction in event-time order.
    let started = Instant::now();
    let far = T0 + num_impressions as i64 + 3_600_000;
    state.on_marker(
        Side::Impressions,
        num_impressions as i64,
        &marker(far),
        &mut out,
    );
    state.on_marker(Side::Clicks, num_clicks as i64, &marker(far), &mut out);
    let evict_seconds = started.elapsed().as_secs_f64();
    assert_eq!(state.num_live_impressions(), 0);
    Run {
        bytes_per_impression: state_bytes as f64 / num_impressions as f64,
        impressions_per_second: num_impressions as f64 / insert_seconds,
        clicks_per_second: num_clicks as f64 / click_seconds,
        evictions_per_second: num_impressions as f64 / evict_seconds,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let num_impressions = args.first().copied().unwrap_or(1_000_000);
    let num_runs = args.get(1).copied().unwrap_or(5);
    let mut runs = Vec::new();
    for index in 0..num_runs {
        let result = run(num_impressions);
        println!(
            "run {}: {:.1} bytes per live impression, {:.0} impressions/s in, {:.0} clicks/s matched, {:.0} evictions/s",
            index + 1,
            result.bytes_per_impression,
            result.impressions_per_second,
            result.clicks_per_second,
            result.evictions_per_second
        );
        runs.push(result);
    }
    let events = stream(3_000_000);
    let stream_rates: Vec<f64> = (0..num_runs).map(|_| run_stream(&events)).collect();
    for (index, rate) in stream_rates.iter().enumerate() {
        println!("stream run {}: {rate:.0} events/s", index + 1);
    }
    println!(
        "median of {num_runs} stream runs ({} events: impressions, 3% clicks, markers; ~900k live): {:.0} events/s on one core",
        events.len(),
        median(stream_rates.clone())
    );
    println!(
        "median of {num_runs} runs with {num_impressions} live impressions: {:.1} bytes per live impression, \
         {:.0} impressions/s, {:.0} clicks/s, {:.0} evictions/s",
        median(runs.iter().map(|run| run.bytes_per_impression).collect()),
        median(runs.iter().map(|run| run.impressions_per_second).collect()),
        median(runs.iter().map(|run| run.clicks_per_second).collect()),
        median(runs.iter().map(|run| run.evictions_per_second).collect()),
    );
}
