//! The state of one join shard and every rule of DESIGN.md's join semantics, with no
//! actor or Kafka types: impressions in state until the shard watermark passes
//! `time + window`, clicks waiting for their impression until the impressions'
//! watermark passes `time + skew`, first delivery wins for clicks and impressions,
//! and the lowest input offset each side still needs, so a shard rebuilt by
//! replaying from there reaches the same state and re-emits the same outcomes.
//!
//! Why decided clicks are kept for a while: they catch duplicates, and they hold
//! the clicks side's replay offset back, so a replay sees them again. A decided
//! click is retained until the shard watermark passes `max(click time, shard
//! watermark when decided) + skew + window`, past which any further delivery of it
//! is late anyway. And every click
//! a replay will read again must meet the impression it matched, or it could be
//! decided differently: so the impressions side replays from the oldest impression
//! in state or matched by a click at or after the clicks side's replay offset.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::BuildHasher;
use std::time::Duration;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use adjoin_shared::keyed::WatermarkMarker;
use adjoin_shared::schema::{
    Click, ClickOutcome, EventTime, Impression, MatchedImpression, Outcome,
};

use crate::compact::{CompactId, Interner};
use crate::watermark::{ShardWatermark, Side, Watermark};

/// Width of an eviction bucket: impressions leave state at most this much later
/// than the rule says.
const EXPIRY_BUCKET_MS: i64 = 1_000;

/// The join's time rules, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinRules {
    pub window_ms: i64,
    pub skew_ms: i64,
}

impl JoinRules {
    pub fn new(window: Duration, skew: Duration) -> Self {
        Self {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            skew_ms: i64::try_from(skew.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Returns whether a click at `click_ms` is in the window of an impression at
    /// `impression_ms`; both bounds inclusive.
    pub fn in_window(self, impression_ms: i64, click_ms: i64) -> bool {
        impression_ms.saturating_sub(self.skew_ms) <= click_ms
            && click_ms <= impression_ms.saturating_add(self.window_ms)
    }
}

/// An impression as a shard keeps it: 64 bytes, attributes interned.
#[derive(Clone, Debug)]
struct StoredImpression {
    id: CompactId,
    time_ms: i64,
    offset: i64,
    /// ad, category, device, OS, browser, location
    attributes: [u32; 6],
}

/// A click waiting for its impression.
#[derive(Clone, Debug)]
struct WaitingClick {
    click: Click,
    late: bool,
    offset: i64,
}

/// A click whose outcome is out, kept to catch duplicates and pin the replay.
#[derive(Clone, Copy, Debug)]
struct DecidedClick {
    offset: i64,
}

/// What a shard has counted since it started; never reset by eviction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardCounters {
    pub impressions: u64,
    pub duplicate_impressions: u64,
    pub clicks: u64,
    pub duplicate_clicks: u64,
    pub late_clicks: u64,
    pub matched: u64,
    pub no_impression: u64,
    pub late: u64,
    pub evicted_impressions: u64,
    pub expired_waiting_clicks: u64,
    pub markers: u64,
}

impl ShardCounters {
    pub fn outcomes(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Matched => self.matched,
            Outcome::NoImpression => self.no_impression,
            Outcome::Late => self.late,
        }
    }
}

/// One shard's join state. Feed it the records of one partition of each keyed
/// topic in offset order (the two sides interleaved in any way); it appends each
/// outcome it decides to `out`.
pub struct ShardState {
    rules: JoinRules,
    watermark: ShardWatermark,
    hasher: DefaultHashBuilder,
    /// Impressions in arrival (= offset) order; `None` once evicted, popped from
    /// the front. Arrival order makes the oldest offset still needed the front's.
    impressions: VecDeque<Option<StoredImpression>>,
    /// Sequence number of `impressions[0]`; wraps, as only differences matter.
    front_seq: u32,
    /// Impression id → sequence number, hashed by id; holds 4 bytes per entry.
    index: HashTable<u32>,
    /// Sequence numbers by event-time bucket: eviction in event-time order, a whole
    /// bucket at a time once the watermark passes its end plus the window. Buckets
    /// cost 4 bytes an impression and O(1) work where a heap would cost 16 bytes
    /// and a cache miss per level.
    expiry: BTreeMap<i64, Vec<u32>>,
    interner: Interner,
    /// Heap bytes of impression ids that are not UUIDs.
    id_heap_bytes: usize,
    /// Click id → waiting click.
    waiting: HashMap<CompactId, WaitingClick>,
    /// Impression id → ids of the clicks waiting for it.
    waiting_by_impression: HashMap<CompactId, Vec<CompactId>>,
    /// (click time + skew, click id): expiry order of waiting clicks.
    waiting_expiry: BTreeSet<(i64, CompactId)>,
    decided: HashMap<CompactId, DecidedClick>,
    decided_expiry: BTreeSet<(i64, CompactId)>,
    /// Offsets of clicks waiting or retained: the clicks side replays from the first.
    needed_click_offsets: BTreeSet<i64>,
    /// Matched clicks at or after the clicks side's replay offset: click offset →
    /// the offset of the impression it matched.
    matched_by_click_offset: BTreeMap<i64, i64>,
    /// The values of `matched_by_click_offset`, with how many clicks refer to each.
    pinned_impression_offsets: BTreeMap<i64, u32>,
    /// The offset after the last record read, per side.
    next_offsets: [Option<i64>; 2],
    counters: ShardCounters,
}

impl ShardState {
    pub fn new(rules: JoinRules) -> Self {
        Self {
            rules,
            watermark: ShardWatermark::default(),
            hasher: DefaultHashBuilder::default(),
            impressions: VecDeque::new(),
            front_seq: 0,
            index: HashTable::new(),
            expiry: BTreeMap::new(),
            interner: Interner::default(),
            id_heap_bytes: 0,
            waiting: HashMap::new(),
            waiting_by_impression: HashMap::new(),
            waiting_expiry: BTreeSet::new(),
            decided: HashMap::new(),
            decided_expiry: BTreeSet::new(),
            needed_click_offsets: BTreeSet::new(),
            matched_by_click_offset: BTreeMap::new(),
            pinned_impression_offsets: BTreeMap::new(),
            next_offsets: [None, None],
            counters: ShardCounters::default(),
        }
    }

    pub fn counters(&self) -> ShardCounters {
        self.counters
    }

    pub fn watermark(&self) -> &ShardWatermark {
        &self.watermark
    }

    pub fn num_live_impressions(&self) -> usize {
        self.index.len()
    }

    pub fn num_waiting_clicks(&self) -> usize {
        self.waiting.len()
    }

    pub fn num_retained_clicks(&self) -> usize {
        self.decided.len()
    }

    fn read(&mut self, side: Side, offset: i64) {
        let next = &mut self.next_offsets[side as usize];
        debug_assert!(next.is_none_or(|next| offset >= next), "offsets go forward");
        *next = Some(offset + 1);
    }

    /// Records a record this shard does not use (a malformed one, say) so the offset
    /// can move past it.
    pub fn skip(&mut self, side: Side, offset: i64) {
        self.read(side, offset);
    }

    fn slot(&self, seq: u32) -> Option<&StoredImpression> {
        self.impressions
            .get(seq.wrapping_sub(self.front_seq) as usize)?
            .as_ref()
    }

    /// Takes an impression read at `offset` of the impressions partition.
    pub fn on_impression(
        &mut self,
        offset: i64,
        impression: &Impression,
        out: &mut Vec<ClickOutcome>,
    ) {
        self.read(Side::Impressions, offset);
        let id = CompactId::new(&impression.impression_id);
        let hash = self.hasher.hash_one(&id);
        let seq = self.front_seq.wrapping_add(self.impressions.len() as u32);
        // One probe for the duplicate check and the insert: with a million live
        // impressions the probe is this method's cache miss.
        let impressions = &self.impressions;
        let front_seq = self.front_seq;
        let hasher = &self.hasher;
        let slot = |seq: u32| impressions[seq.wrapping_sub(front_seq) as usize].as_ref();
        match self.index.entry(
            hash,
            |candidate| slot(*candidate).is_some_and(|stored| stored.id == id),
            |candidate| slot(*candidate).map_or(0, |stored| hasher.hash_one(&stored.id)),
        ) {
            Entry::Occupied(_) => {
                self.counters.duplicate_impressions += 1;
                return;
            }
            Entry::Vacant(vacant) => {
                vacant.insert(seq);
            }
        }
        self.counters.impressions += 1;
        let attributes = [
            self.interner.intern(&impression.ad_id),
            self.interner.intern(&impression.ad_category),
            self.interner.intern(&impression.device),
            self.interner.intern(&impression.os),
            self.interner.intern(&impression.browser),
            self.interner.intern(&impression.location),
        ];
        let time_ms = impression.event_time.as_millis();
        self.id_heap_bytes += id.heap_bytes();
        // Clicks that came first are decided now: matched, or not in this (the only)
        // impression's window. Looked up before `id` moves into the slot.
        let click_ids_opt = if self.waiting_by_impression.is_empty() {
            None
        } else {
            self.waiting_by_impression.remove(&id)
        };
        self.impressions.push_back(Some(StoredImpression {
            id,
            time_ms,
            offset,
            attributes,
        }));
        let bucket = time_ms.div_euclid(EXPIRY_BUCKET_MS);
        // Times mostly arrive in order: the newest bucket first, no tree walk.
        match self.expiry.last_entry() {
            Some(mut last) if *last.key() == bucket => last.get_mut().push(seq),
            _ => self.expiry.entry(bucket).or_default().push(seq),
        }
        if let Some(click_ids) = click_ids_opt {
            for click_id in click_ids {
                let Some(waiting) = self.waiting.remove(&click_id) else {
                    continue;
                };
                let deadline_ms = waiting
                    .click
                    .event_time
                    .as_millis()
                    .saturating_add(self.rules.skew_ms);
                self.waiting_expiry.remove(&(deadline_ms, click_id));
                self.decide_against(waiting.click, waiting.late, waiting.offset, seq, out);
            }
        }
    }

    /// Takes a click read at `offset` of the clicks partition; `late` is ingest's tag.
    pub fn on_click(&mut self, offset: i64, click: Click, late: bool, out: &mut Vec<ClickOutcome>) {
        self.read(Side::Clicks, offset);
        let click_id = CompactId::new(&click.click_id);
        if self.decided.contains_key(&click_id) || self.waiting.contains_key(&click_id) {
            self.counters.duplicate_clicks += 1;
            return;
        }
        self.counters.clicks += 1;
        if late {
            self.counters.late_clicks += 1;
        }
        let impression_id = CompactId::new(&click.impression_id);
        let hash = self.hasher.hash_one(&impression_id);
        let found_opt = self
            .index
            .find(hash, |seq| {
                self.slot(*seq)
                    .is_some_and(|stored| stored.id == impression_id)
            })
            .copied();
        if let Some(seq) = found_opt {
            self.decide_against(click, late, offset, seq, out);
            return;
        }
        let deadline_ms = click
            .event_time
            .as_millis()
            .saturating_add(self.rules.skew_ms);
        if self.watermark.side(Side::Impressions).passes(deadline_ms) {
            let outcome = if late {
                Outcome::Late
            } else {
                Outcome::NoImpression
            };
            self.decide_unmatched(click, outcome, offset, out);
            return;
        }
        self.needed_click_offsets.insert(offset);
        self.waiting_expiry.insert((deadline_ms, click_id.clone()));
        self.waiting_by_impression
            .entry(impression_id)
            .or_default()
            .push(click_id.clone());
        self.waiting.insert(
            click_id,
            WaitingClick {
                click,
                late,
                offset,
            },
        );
    }

    /// Decides a click against the impression with sequence number `seq`.
    fn decide_against(
        &mut self,
        click: Click,
        late: bool,
        offset: i64,
        seq: u32,
        out: &mut Vec<ClickOutcome>,
    ) {
        let Some(stored) = self.slot(seq) else {
            debug_assert!(false, "a found impression is in state");
            return;
        };
        if !self
            .rules
            .in_window(stored.time_ms, click.event_time.as_millis())
        {
            let outcome = if late {
                Outcome::Late
            } else {
                Outcome::NoImpression
            };
            self.decide_unmatched(click, outcome, offset, out);
            return;
        }
        let impression_offset = stored.offset;
        let [ad, category, device, os, browser, location] = stored.attributes;
        let matched = MatchedImpression {
            event_time: EventTime::from_millis(stored.time_ms),
            ad_id: self.interner.get(ad).to_owned(),
            ad_category: self.interner.get(category).to_owned(),
            device: self.interner.get(device).to_owned(),
            os: self.interner.get(os).to_owned(),
            browser: self.interner.get(browser).to_owned(),
            location: self.interner.get(location).to_owned(),
        };
        self.counters.matched += 1;
        self.retain(&click, offset, Some(impression_offset));
        out.push(ClickOutcome::matched(click, matched));
    }

    fn decide_unmatched(
        &mut self,
        click: Click,
        outcome: Outcome,
        offset: i64,
        out: &mut Vec<ClickOutcome>,
    ) {
        match outcome {
            Outcome::NoImpression => self.counters.no_impression += 1,
            Outcome::Late => self.counters.late += 1,
            Outcome::Matched => debug_assert!(false, "a match goes through decide_against"),
        }
        self.retain(&click, offset, None);
        out.push(ClickOutcome::unmatched(click, outcome));
    }

    fn retain(&mut self, click: &Click, offset: i64, impression_offset_opt: Option<i64>) {
        // A click decided far behind the shard watermark is kept as long after it
        // as an on-time one, so its retried deliveries (right behind it on its raw
        // partition) are still caught. Not the highest partition's watermark: in a
        // backlog one raw partition can run far ahead, and clicks kept that long
        // pin the replay offsets to the start of the backlog (seen in the join
        // benchmark: a restart re-read everything).
        let base_ms = match self.watermark.shard().millis_opt() {
            Some(watermark_ms) => click.event_time.as_millis().max(watermark_ms),
            None => click.event_time.as_millis(),
        };
        let retain_until_ms = base_ms
            .saturating_add(self.rules.skew_ms)
            .saturating_add(self.rules.window_ms);
        let click_id = CompactId::new(&click.click_id);
        self.needed_click_offsets.insert(offset);
        if let Some(impression_offset) = impression_offset_opt {
            self.matched_by_click_offset
                .insert(offset, impression_offset);
            *self
                .pinned_impression_offsets
                .entry(impression_offset)
                .or_default() += 1;
        }
        self.decided_expiry
            .insert((retain_until_ms, click_id.clone()));
        self.decided.insert(click_id, DecidedClick { offset });
    }

    /// Takes a watermark marker read at `offset` of `side`'s partition, and applies
    /// what the new watermarks allow: waiting clicks decided, impressions evicted,
    /// decided clicks forgotten.
    pub fn on_marker(
        &mut self,
        side: Side,
        offset: i64,
        marker: &WatermarkMarker,
        out: &mut Vec<ClickOutcome>,
    ) {
        self.read(side, offset);
        self.counters.markers += 1;
        self.watermark.observe(side, marker);
        self.advance(out);
    }

    fn advance(&mut self, out: &mut Vec<ClickOutcome>) {
        let impressions_watermark = self.watermark.side(Side::Impressions);
        let shard_watermark = self.watermark.shard();
        self.expire_waiting(impressions_watermark, out);
        self.evict_impressions(shard_watermark);
        self.forget_decided(shard_watermark);
    }

    fn expire_waiting(&mut self, watermark: Watermark, out: &mut Vec<ClickOutcome>) {
        while let Some(click_id) = pop_passed(&mut self.waiting_expiry, watermark) {
            let Some(waiting) = self.waiting.remove(&click_id) else {
                continue;
            };
            let impression_id = CompactId::new(&waiting.click.impression_id);
            if let Some(ids) = self.waiting_by_impression.get_mut(&impression_id) {
                ids.retain(|id| *id != click_id);
                if ids.is_empty() {
                    self.waiting_by_impression.remove(&impression_id);
                }
            }
            // Its offset stays needed: the click is retained as decided.
            self.counters.expired_waiting_clicks += 1;
            let outcome = if waiting.late {
                Outcome::Late
            } else {
                Outcome::NoImpression
            };
            self.decide_unmatched(waiting.click, outcome, waiting.offset, out);
        }
    }

    fn evict_impressions(&mut self, watermark: Watermark) {
        while let Some((&bucket, _)) = self.expiry.first_key_value() {
            // The bucket's newest possible time: nothing in it leaves before the
            // rule lets it (keeping an impression a little longer is always safe).
            let bucket_end_ms = bucket
                .saturating_mul(EXPIRY_BUCKET_MS)
                .saturating_add(EXPIRY_BUCKET_MS - 1);
            if !watermark.passes(bucket_end_ms.saturating_add(self.rules.window_ms)) {
                break;
            }
            let Some((_, seqs)) = self.expiry.pop_first() else {
                break;
            };
            for seq in seqs {
                let position = seq.wrapping_sub(self.front_seq) as usize;
                let Some(stored) = self.impressions.get_mut(position).and_then(Option::take) else {
                    continue;
                };
                self.id_heap_bytes -= stored.id.heap_bytes();
                let hash = self.hasher.hash_one(&stored.id);
                if let Ok(entry) = self.index.find_entry(hash, |candidate| *candidate == seq) {
                    entry.remove();
                }
                self.counters.evicted_impressions += 1;
            }
        }
        while self.impressions.front().is_some_and(Option::is_none) {
            self.impressions.pop_front();
            self.front_seq = self.front_seq.wrapping_add(1);
        }
    }

    fn forget_decided(&mut self, watermark: Watermark) {
        while let Some(click_id) = pop_passed(&mut self.decided_expiry, watermark) {
            let Some(decided) = self.decided.remove(&click_id) else {
                continue;
            };
            self.needed_click_offsets.remove(&decided.offset);
        }
        self.unpin_before_click_replay();
    }

    /// Matched clicks before the clicks side's replay offset will not be read again,
    /// so the impressions they matched are no longer needed for them.
    fn unpin_before_click_replay(&mut self) {
        let Some(clicks_replay) = self.replay_offsets()[Side::Clicks as usize] else {
            return;
        };
        let kept = self.matched_by_click_offset.split_off(&clicks_replay);
        let released = std::mem::replace(&mut self.matched_by_click_offset, kept);
        for impression_offset in released.into_values() {
            if let Some(count) = self.pinned_impression_offsets.get_mut(&impression_offset) {
                *count -= 1;
                if *count == 0 {
                    self.pinned_impression_offsets.remove(&impression_offset);
                }
            }
        }
    }

    /// Returns what holds the impressions replay offset: the oldest live
    /// impression's offset and time, and the oldest pinned one (for diagnosis).
    pub fn impressions_replay_detail(&self) -> (Option<(i64, i64)>, Option<i64>) {
        let front_opt = self
            .impressions
            .front()
            .and_then(Option::as_ref)
            .map(|stored| (stored.offset, stored.time_ms));
        (
            front_opt,
            self.pinned_impression_offsets.keys().next().copied(),
        )
    }

    /// Returns, per side, the offset after the last record read.
    pub fn read_offsets(&self) -> [Option<i64>; 2] {
        self.next_offsets
    }

    /// Returns, per side, the lowest offset this shard still needs: where a shard
    /// that lost its state must replay from to rebuild it. `None` until the side has
    /// had a record.
    pub fn replay_offsets(&self) -> [Option<i64>; 2] {
        let front_opt = self
            .impressions
            .front()
            .and_then(Option::as_ref)
            .map(|stored| stored.offset);
        let pinned_opt = self.pinned_impression_offsets.keys().next().copied();
        let impressions_opt = [
            front_opt,
            pinned_opt,
            self.next_offsets[Side::Impressions as usize],
        ]
        .into_iter()
        .flatten()
        .min();
        let clicks_opt = [
            self.needed_click_offsets.first().copied(),
            self.next_offsets[Side::Clicks as usize],
        ]
        .into_iter()
        .flatten()
        .min();
        [impressions_opt, clicks_opt]
    }

    /// Returns an estimate of the bytes the state holds, from its containers'
    /// capacities (the benchmark measures the real figure with a counting allocator).
    pub fn state_bytes(&self) -> usize {
        use std::mem::size_of;
        let impressions = self.impressions.capacity() * size_of::<Option<StoredImpression>>()
            + self.id_heap_bytes;
        let index = self.index.capacity() * (size_of::<u32>() + 1);
        let expiry = self
            .expiry
            .values()
            .map(|seqs| seqs.capacity() * size_of::<u32>() + 64)
            .sum::<usize>();
        let clicks = (self.waiting.len() + self.decided.len()) * 256;
        impressions + index + expiry + self.interner.heap_bytes() + clicks
    }
}

/// Takes the earliest entry of an expiry set if the watermark has passed its time.
fn pop_passed(expiry: &mut BTreeSet<(i64, CompactId)>, watermark: Watermark) -> Option<CompactId> {
    if !expiry
        .first()
        .is_some_and(|(time_ms, _)| watermark.passes(*time_ms))
    {
        return None;
    }
    expiry.pop_first().map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use adjoin_shared::keyed::PartitionWatermark;

    const MINUTE: i64 = 60_000;
    const T0: i64 = 1_795_000_000_000;

    fn rules() -> JoinRules {
        JoinRules::new(Duration::from_secs(15 * 60), Duration::from_secs(5))
    }

    fn impression(id: &str, time_ms: i64) -> Impression {
        Impression {
            impression_id: id.to_owned(),
            user_id: "u".into(),
            session_id: "s".into(),
            ad_id: format!("ad-{id}"),
            ad_category: "travel".into(),
            device: "mobile".into(),
            os: "Android".into(),
            browser: "Chrome".into(),
            location: "DE".into(),
            page_id: "p".into(),
            referrer: String::new(),
            impression_cost: 0.01,
            event_time: EventTime::from_millis(time_ms),
        }
    }

    fn click(id: &str, impression_id: &str, time_ms: i64) -> Click {
        Click {
            click_id: id.to_owned(),
            impression_id: impression_id.to_owned(),
            click_position: 1,
            click_cost: 0.5,
            event_time: EventTime::from_millis(time_ms),
        }
    }

    /// A marker for a raw topic with the given partitions' watermarks (None = idle
    /// and never had a record).
    fn marker(watermarks: &[Option<i64>]) -> WatermarkMarker {
        WatermarkMarker {
            source_topic: "raw".into(),
            source_partitions: watermarks.len() as i32,
            instance: "test".into(),
            emitted_at_ms: 0,
            partitions: watermarks
                .iter()
                .enumerate()
                .map(|(partition, watermark_opt)| PartitionWatermark {
                    partition: partition as i32,
                    watermark_ms: *watermark_opt,
                    idle: watermark_opt.is_none(),
                })
                .collect(),
        }
    }

    /// A shard fed through fixed offsets, collecting outcomes.
    struct Harness {
        state: ShardState,
        offsets: [i64; 2],
        out: Vec<ClickOutcome>,
    }

    impl Harness {
        fn new() -> Self {
            Self {
                state: ShardState::new(rules()),
                offsets: [0, 0],
                out: Vec::new(),
            }
        }

        fn next(&mut self, side: Side) -> i64 {
            let offset = self.offsets[side as usize];
            self.offsets[side as usize] += 1;
            offset
        }

        fn impression(&mut self, id: &str, time_ms: i64) {
            let offset = self.next(Side::Impressions);
            self.state
                .on_impression(offset, &impression(id, time_ms), &mut self.out);
        }

        fn click(&mut self, id: &str, impression_id: &str, time_ms: i64, late: bool) {
            let offset = self.next(Side::Clicks);
            self.state.on_click(
                offset,
                click(id, impression_id, time_ms),
                late,
                &mut self.out,
            );
        }

        /// Both sides' single raw partition at `watermark_ms`.
        fn watermarks(&mut self, impressions_ms: i64, clicks_ms: i64) {
            self.side_marker(Side::Impressions, &[Some(impressions_ms)]);
            self.side_marker(Side::Clicks, &[Some(clicks_ms)]);
        }

        fn side_marker(&mut self, side: Side, watermarks: &[Option<i64>]) {
            let offset = self.next(side);
            self.state
                .on_marker(side, offset, &marker(watermarks), &mut self.out);
        }

        /// Every raw partition of `side` idle, its watermark moved on to `watermark_ms`.
        fn idle_marker(&mut self, side: Side, num_partitions: usize, watermark_ms: i64) {
            let offset = self.next(side);
            let mut idle = marker(&vec![Some(watermark_ms); num_partitions]);
            for partition in &mut idle.partitions {
                partition.idle = true;
            }
            self.state.on_marker(side, offset, &idle, &mut self.out);
        }

        fn outcomes(&mut self) -> Vec<(String, Outcome)> {
            self.out
                .drain(..)
                .map(|outcome| (outcome.click.click_id, outcome.outcome))
                .collect()
        }
    }

    fn decided(id: &str, outcome: Outcome) -> Vec<(String, Outcome)> {
        vec![(id.to_owned(), outcome)]
    }

    #[test]
    fn window_bounds_are_inclusive() {
        let mut shard = Harness::new();
        shard.impression("i", T0);
        shard.click("at-minus-skew", "i", T0 - 5_000, false);
        shard.click("before-skew", "i", T0 - 5_001, false);
        shard.click("at-window-end", "i", T0 + 15 * MINUTE, false);
        shard.click("after-window", "i", T0 + 15 * MINUTE + 1, false);
        assert_eq!(
            shard.outcomes(),
            vec![
                ("at-minus-skew".to_owned(), Outcome::Matched),
                ("before-skew".to_owned(), Outcome::NoImpression),
                ("at-window-end".to_owned(), Outcome::Matched),
                ("after-window".to_owned(), Outcome::NoImpression),
            ]
        );
    }

    #[test]
    fn a_match_carries_the_impression_attributes() {
        let mut shard = Harness::new();
        shard.impression("i", T0);
        shard.click("c", "i", T0 + 1_000, false);
        let outcome = shard.out.pop().unwrap();
        let matched = outcome.impression.unwrap();
        assert_eq!(matched.ad_id, "ad-i");
        assert_eq!(matched.event_time.as_millis(), T0);
        assert_eq!(
            (matched.device.as_str(), matched.location.as_str()),
            ("mobile", "DE")
        );
    }

    #[test]
    fn a_click_before_its_impression_waits_and_matches() {
        let mut shard = Harness::new();
        shard.watermarks(T0 - MINUTE, T0 - MINUTE);
        shard.click("c", "i", T0 + 2_000, false);
        assert!(shard.outcomes().is_empty());
        assert_eq!(shard.state.num_waiting_clicks(), 1);
        shard.impression("i", T0);
        assert_eq!(shard.outcomes(), decided("c", Outcome::Matched));
        assert_eq!(shard.state.num_waiting_clicks(), 0);
    }

    #[test]
    fn a_waiting_click_expires_once_the_impressions_watermark_passes_time_plus_skew() {
        let mut shard = Harness::new();
        shard.watermarks(T0 - MINUTE, T0 - MINUTE);
        shard.click("c", "missing", T0, false);
        shard.watermarks(T0 + 5_000, T0 + 10 * MINUTE);
        assert!(
            shard.outcomes().is_empty(),
            "an impression at click time + skew may still come"
        );
        shard.watermarks(T0 + 5_001, T0 + 10 * MINUTE);
        assert_eq!(shard.outcomes(), decided("c", Outcome::NoImpression));
        assert_eq!(shard.state.counters().expired_waiting_clicks, 1);
    }

    #[test]
    fn the_clicks_watermark_does_not_expire_waiting_clicks() {
        let mut shard = Harness::new();
        shard.watermarks(T0 - MINUTE, T0 - MINUTE);
        shard.click("c", "i", T0, false);
        shard.watermarks(T0 - MINUTE, T0 + 60 * MINUTE);
        assert!(shard.outcomes().is_empty());
        shard.impression("i", T0 - 1_000);
        assert_eq!(shard.outcomes(), decided("c", Outcome::Matched));
    }

    #[test]
    fn a_click_whose_impression_can_no_longer_come_is_decided_on_arrival() {
        let mut shard = Harness::new();
        shard.watermarks(T0 + MINUTE, T0 + MINUTE);
        shard.click("c", "missing", T0, false);
        assert_eq!(shard.outcomes(), decided("c", Outcome::NoImpression));
        shard.click("late", "missing", T0, true);
        assert_eq!(shard.outcomes(), decided("late", Outcome::Late));
    }

    #[test]
    fn late_clicks_match_while_their_impression_is_in_state() {
        let mut shard = Harness::new();
        shard.impression("i", T0);
        shard.watermarks(T0 + 10 * MINUTE, T0 + 10 * MINUTE);
        shard.click("late-matched", "i", T0 + 1_000, true);
        assert_eq!(shard.outcomes(), decided("late-matched", Outcome::Matched));
        assert_eq!(shard.state.counters().late_clicks, 1);
    }

    #[test]
    fn a_late_click_without_impression_waits_then_is_late() {
        let mut shard = Harness::new();
        shard.watermarks(T0 - MINUTE, T0 + 10 * MINUTE);
        shard.click("late", "i", T0, true);
        assert!(
            shard.outcomes().is_empty(),
            "its impression may still come on the impressions side"
        );
        shard.impression("other", T0);
        shard.watermarks(T0 + 6_000, T0 + 10 * MINUTE);
        assert_eq!(shard.outcomes(), decided("late", Outcome::Late));
        assert_eq!(shard.state.counters().late, 1);
    }

    #[test]
    fn impressions_leave_once_the_shard_watermark_passes_time_plus_window() {
        let mut shard = Harness::new();
        // The last millisecond of an eviction bucket, so the bucket's end is its time.
        let time = T0 + 999;
        shard.impression("i", time);
        shard.watermarks(time + 15 * MINUTE, time + 15 * MINUTE);
        assert_eq!(
            shard.state.num_live_impressions(),
            1,
            "at time + window it may still match"
        );
        shard.watermarks(T0 + 16 * MINUTE, time + 15 * MINUTE);
        assert_eq!(
            shard.state.num_live_impressions(),
            1,
            "the clicks side still holds the shard watermark back"
        );
        shard.watermarks(T0 + 16 * MINUTE, time + 15 * MINUTE + 1);
        assert_eq!(shard.state.num_live_impressions(), 0);
        assert_eq!(shard.state.counters().evicted_impressions, 1);
        shard.click("late", "i", T0 + MINUTE, true);
        assert_eq!(shard.outcomes(), decided("late", Outcome::Late));
    }

    #[test]
    fn an_impression_leaves_with_its_whole_bucket_never_earlier() {
        let mut shard = Harness::new();
        shard.impression("early", T0);
        shard.impression("late-in-bucket", T0 + 999);
        shard.watermarks(T0 + 15 * MINUTE + 1, T0 + 15 * MINUTE + 1);
        assert_eq!(
            shard.state.num_live_impressions(),
            2,
            "the rule would let the first go; it stays until its bucket's end"
        );
        shard.watermarks(T0 + 15 * MINUTE + 1_000, T0 + 15 * MINUTE + 1_000);
        assert_eq!(shard.state.num_live_impressions(), 0);
    }

    #[test]
    fn eviction_follows_event_time_not_arrival() {
        let mut shard = Harness::new();
        shard.impression("newer", T0 + 5 * MINUTE);
        shard.impression("older", T0);
        shard.watermarks(T0 + 16 * MINUTE, T0 + 16 * MINUTE);
        assert_eq!(shard.state.num_live_impressions(), 1);
        shard.click("c", "newer", T0 + 6 * MINUTE, true);
        assert_eq!(shard.outcomes(), decided("c", Outcome::Matched));
        assert_eq!(
            shard.state.replay_offsets()[0],
            Some(0),
            "the surviving impression is the first one read"
        );
    }

    #[test]
    fn the_watermark_is_the_minimum_over_raw_partitions_and_idle_ones_do_not_count() {
        let mut shard = Harness::new();
        shard.side_marker(Side::Clicks, &[Some(T0 + 60 * MINUTE)]);
        shard.click("c", "missing", T0, false);
        shard.side_marker(Side::Impressions, &[Some(T0 + MINUTE), Some(T0 - MINUTE)]);
        assert!(shard.outcomes().is_empty(), "partition 1 holds it back");
        shard.side_marker(Side::Impressions, &[Some(T0 + MINUTE), None]);
        assert_eq!(
            shard.outcomes(),
            decided("c", Outcome::NoImpression),
            "partition 1 went idle"
        );
    }

    #[test]
    fn idle_partitions_moving_on_drain_the_state() {
        let mut shard = Harness::new();
        shard.impression("i", T0);
        shard.click("c", "missing", T0, false);
        shard.idle_marker(Side::Impressions, 2, T0);
        shard.idle_marker(Side::Clicks, 1, T0);
        assert!(
            shard.outcomes().is_empty(),
            "idle, but time has not moved on yet"
        );
        shard.idle_marker(Side::Impressions, 2, T0 + 20 * MINUTE);
        shard.idle_marker(Side::Clicks, 1, T0 + 20 * MINUTE);
        assert_eq!(shard.outcomes(), decided("c", Outcome::NoImpression));
        assert_eq!(shard.state.num_live_impressions(), 0);
        assert_eq!(shard.state.num_retained_clicks(), 0);
        assert_eq!(
            shard.state.replay_offsets(),
            [Some(3), Some(3)],
            "nothing is needed any more"
        );
    }

    /// Regression (issue 5, seen on Tansu): markers saying "every raw partition idle,
    /// none ever had a record" on both sides, then traffic starts. A clicks-side
    /// marker read after the first impressions but before the next impressions-side
    /// marker must not evict them.
    #[test]
    fn empty_sides_never_evict_impressions_read_after_their_marker() {
        let mut shard = Harness::new();
        shard.side_marker(Side::Impressions, &[None, None]);
        shard.side_marker(Side::Clicks, &[None]);
        shard.impression("i", T0);
        shard.side_marker(Side::Clicks, &[None]);
        assert_eq!(shard.state.num_live_impressions(), 1);
        shard.click("c", "i", T0 + 1_000, false);
        assert_eq!(shard.outcomes(), decided("c", Outcome::Matched));
        shard.click("w", "later", T0 + 2_000, false);
        assert!(
            shard.outcomes().is_empty(),
            "an empty impressions side decides no waiting click"
        );
    }

    #[test]
    fn nothing_expires_before_every_partition_has_reported() {
        let mut shard = Harness::new();
        shard.impression("i", T0);
        shard.click("c", "missing", T0, false);
        shard.side_marker(Side::Impressions, &[Some(T0 + 60 * MINUTE)]);
        assert_eq!(
            shard.outcomes(),
            decided("c", Outcome::NoImpression),
            "the impressions side alone expires waiting clicks"
        );
        assert_eq!(
            shard.state.num_live_impressions(),
            1,
            "the clicks side has not reported: no eviction"
        );
        let mut shard = Harness::new();
        shard.click("c", "missing", T0, false);
        let mut partial = marker(&[Some(T0 + 60 * MINUTE), Some(T0 + 60 * MINUTE)]);
        partial.partitions.pop();
        shard
            .state
            .on_marker(Side::Impressions, 0, &partial, &mut shard.out);
        assert!(
            shard.outcomes().is_empty(),
            "raw partition 1 has not reported"
        );
    }

    #[test]
    fn duplicate_clicks_get_no_second_outcome() {
        let mut shard = Harness::new();
        shard.watermarks(T0 - MINUTE, T0 - MINUTE);
        shard.impression("i", T0);
        shard.click("c", "i", T0, false);
        shard.click("c", "i", T0, false);
        shard.click("w", "missing", T0, false);
        shard.click("w", "missing", T0, false);
        assert_eq!(shard.outcomes(), decided("c", Outcome::Matched));
        assert_eq!(shard.state.counters().duplicate_clicks, 2);
        assert_eq!(shard.state.counters().clicks, 2);
        shard.watermarks(T0 + MINUTE, T0 + MINUTE);
        assert_eq!(shard.outcomes(), decided("w", Outcome::NoImpression));
        shard.click("w", "missing", T0, true);
        assert!(
            shard.outcomes().is_empty(),
            "still remembered after its outcome"
        );
    }

    #[test]
    fn the_first_impression_wins() {
        let mut shard = Harness::new();
        shard.impression("i", T0);
        shard.impression("i", T0 + 10 * MINUTE);
        assert_eq!(shard.state.counters().duplicate_impressions, 1);
        shard.click("c", "i", T0 + 1_000, false);
        let outcome = shard.out.pop().unwrap();
        assert_eq!(outcome.impression.unwrap().event_time.as_millis(), T0);
    }

    #[test]
    fn replay_offsets_hold_what_is_still_needed() {
        let mut shard = Harness::new();
        assert_eq!(shard.state.replay_offsets(), [None, None]);
        shard.watermarks(T0 - MINUTE, T0 - MINUTE); // offsets 0 on both sides
        shard.impression("i", T0); // impressions offset 1
        shard.click("c", "i", T0 + 1_000, false); // clicks offset 1, matched
        shard.click("w", "missing", T0 + 30 * MINUTE, false); // clicks offset 2, waits
        assert_eq!(shard.state.replay_offsets(), [Some(1), Some(1)]);
        // The impression leaves state, but the click it matched still pins it.
        shard.watermarks(T0 + 15 * MINUTE + 1_000, T0 + 15 * MINUTE + 1_000); // offsets 2, 3
        assert_eq!(shard.state.num_live_impressions(), 0);
        assert_eq!(shard.state.replay_offsets(), [Some(1), Some(1)]);
        // Past click time + skew + window, the matched click is forgotten.
        shard.watermarks(T0 + 16 * MINUTE + 6_000, T0 + 16 * MINUTE + 6_000); // offsets 3, 4
        assert_eq!(shard.state.num_retained_clicks(), 0);
        assert_eq!(
            shard.state.replay_offsets(),
            [Some(4), Some(2)],
            "the waiting click remains"
        );
        assert!(shard.outcomes().iter().any(|(id, _)| id == "c"));
    }

    #[test]
    fn state_bytes_grow_with_impressions() {
        let mut shard = Harness::new();
        let empty = shard.state.state_bytes();
        for index in 0..1_000 {
            shard.impression(
                &format!("{index:08x}-0000-4000-8000-000000000000"),
                T0 + index,
            );
        }
        assert!(shard.state.state_bytes() > empty + 1_000 * 64);
    }
}
