//! The oracle: a plain batch computation of what a correct pipeline must produce
//! from a run's records in delivery order, under the join settings. It follows
//! DESIGN.md's rules directly, with no streaming state, so that it can be trusted
//! as the reference `adjoin verify` compares against (`docs/truth.md`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use adjoin_shared::schema::{Click, EventTime, Outcome};

use crate::record::{Content, RawRecord, Topic};
use crate::traffic::duration_ms;
use crate::truth::{ClickTruth, ImpressionTruth, MinuteTotals, Totals, Truth, TruthSettings};

/// The join settings outcomes depend on.
#[derive(Clone, Copy, Debug)]
pub struct JoinRules {
    pub window: Duration,
    pub skew: Duration,
    pub allowed_lateness: Duration,
}

/// What a click's outcome is, or that it depends on more than partition order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Outcome(Outcome),
    /// Decided by consumption timing; a run should have none (the generator
    /// bounds disorder to avoid them), and `adjoin verify` accepts either.
    Ambiguous,
}

/// What the rules need of an impression; a full copy would cost over a gigabyte
/// per million impressions.
struct ImpressionFacts {
    event_time: EventTime,
    impression_cost: f64,
    late: bool,
}

/// A click's first delivery, with what ingest will know when it arrives.
struct FirstDelivery {
    click: Click,
    late: bool,
    /// The newest event time on the click's raw partition before it arrived.
    partition_max_before_ms: i64,
}

/// Accumulates records in delivery order; [`Oracle::finish`] computes the truth.
pub struct Oracle {
    rules: JoinRules,
    newest_ms: HashMap<(Topic, i32), i64>,
    impressions: HashMap<String, ImpressionFacts>,
    num_impressions_delivered: u64,
    num_impression_duplicates: u64,
    clicks: Vec<FirstDelivery>,
    click_ids: HashSet<String>,
    num_clicks_delivered: u64,
    num_click_duplicates: u64,
    malformed: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Oracle {
    pub fn new(rules: JoinRules) -> Self {
        Self {
            rules,
            newest_ms: HashMap::new(),
            impressions: HashMap::new(),
            num_impressions_delivered: 0,
            num_impression_duplicates: 0,
            clicks: Vec::new(),
            click_ids: HashSet::new(),
            num_clicks_delivered: 0,
            num_click_duplicates: 0,
            malformed: BTreeMap::new(),
        }
    }

    /// Takes the next record in delivery order.
    pub fn observe(&mut self, record: &RawRecord) {
        let time = match &record.content {
            Content::Impression(impression) => impression.event_time,
            Content::Click(click) | Content::DuplicateClick(click) => click.event_time,
            Content::Malformed(reason) => {
                *self
                    .malformed
                    .entry(record.topic.as_str().to_owned())
                    .or_default()
                    .entry(reason.as_str().to_owned())
                    .or_default() += 1;
                return;
            }
        };
        // Ingest's rule: late when below the partition's watermark, which is the
        // newest event time seen there before minus the allowed lateness.
        let newest = self
            .newest_ms
            .entry((record.topic, record.partition))
            .or_insert(i64::MIN);
        let partition_max_before_ms = *newest;
        let late = time.as_millis()
            < partition_max_before_ms.saturating_sub(duration_ms(self.rules.allowed_lateness));
        *newest = (*newest).max(time.as_millis());
        match &record.content {
            Content::Impression(impression) => {
                self.num_impressions_delivered += 1;
                if self.impressions.contains_key(&impression.impression_id) {
                    self.num_impression_duplicates += 1;
                } else {
                    self.impressions.insert(
                        impression.impression_id.clone(),
                        ImpressionFacts {
                            event_time: impression.event_time,
                            impression_cost: impression.impression_cost,
                            late,
                        },
                    );
                }
            }
            Content::Click(click) | Content::DuplicateClick(click) => {
                self.num_clicks_delivered += 1;
                if !self.click_ids.insert(click.click_id.clone()) {
                    self.num_click_duplicates += 1;
                    return;
                }
                self.clicks.push(FirstDelivery {
                    click: click.clone(),
                    late,
                    partition_max_before_ms,
                });
            }
            Content::Malformed(_) => {}
        }
    }

    /// Returns the expected outcome of one click's first delivery.
    fn expected(&self, delivery: &FirstDelivery) -> Expected {
        let window_ms = duration_ms(self.rules.window);
        let skew_ms = duration_ms(self.rules.skew);
        let lateness_ms = duration_ms(self.rules.allowed_lateness);
        let click_ms = delivery.click.event_time.as_millis();
        let found = self.impressions.get(&delivery.click.impression_id);
        let in_window = found.filter(|impression| {
            let impression_ms = impression.event_time.as_millis();
            impression_ms - skew_ms <= click_ms && click_ms <= impression_ms + window_ms
        });
        match (in_window, delivery.late) {
            // A late impression may reach the join after its clicks were decided.
            (Some(impression), _) if impression.late => Expected::Ambiguous,
            (Some(_), false) => Expected::Outcome(Outcome::Matched),
            (None, false) => Expected::Outcome(Outcome::NoImpression),
            (None, true) => Expected::Outcome(Outcome::Late),
            (Some(impression), true) => {
                // The join's watermark when the click arrives is at most its own
                // partition's; while that has not passed the impression's expiry
                // the impression is certainly in state.
                let watermark_bound_ms =
                    delivery.partition_max_before_ms.saturating_sub(lateness_ms);
                if watermark_bound_ms <= impression.event_time.as_millis() + window_ms {
                    Expected::Outcome(Outcome::Matched)
                } else {
                    Expected::Ambiguous
                }
            }
        }
    }

    /// Computes the truth for everything observed.
    pub fn finish(self, settings: TruthSettings) -> Truth {
        let mut outcomes: BTreeMap<String, u64> = Outcome::ALL
            .iter()
            .map(|o| (o.as_str().to_owned(), 0))
            .collect();
        let mut click_outcomes = BTreeMap::new();
        let mut minutes: BTreeMap<i64, MinuteTotals> = BTreeMap::new();
        let mut totals = Totals::default();
        let mut num_ambiguous = 0;
        let mut num_late = 0;
        // Costs add up as whole millionths: a float sum would depend on the order
        // of a hash map, which changes from run to run.
        let mut minute_micros: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        let (mut impression_micros, mut matched_micros, mut unmatched_micros) = (0i64, 0i64, 0i64);
        for impression in self.impressions.values() {
            let minute = minute_of(impression.event_time);
            let bucket = minutes
                .entry(minute)
                .or_insert_with(|| MinuteTotals::new(minute));
            bucket.impressions += 1;
            minute_micros.entry(minute).or_default().0 += micros(impression.impression_cost);
            totals.impressions += 1;
            impression_micros += micros(impression.impression_cost);
        }
        for delivery in &self.clicks {
            num_late += u64::from(delivery.late);
            let expected = self.expected(delivery);
            let code = match expected {
                Expected::Outcome(outcome) => outcome.as_str(),
                Expected::Ambiguous => "ambiguous",
            };
            click_outcomes.insert(delivery.click.click_id.clone(), code.to_owned());
            match expected {
                Expected::Outcome(Outcome::Matched) => {
                    *outcomes.entry(code.to_owned()).or_default() += 1;
                    let Some(impression) = self.impressions.get(&delivery.click.impression_id)
                    else {
                        continue;
                    };
                    let minute = minute_of(impression.event_time);
                    let bucket = minutes
                        .entry(minute)
                        .or_insert_with(|| MinuteTotals::new(minute));
                    bucket.clicks += 1;
                    minute_micros.entry(minute).or_default().1 += micros(delivery.click.click_cost);
                    totals.matched_clicks += 1;
                    matched_micros += micros(delivery.click.click_cost);
                }
                Expected::Outcome(_) => {
                    *outcomes.entry(code.to_owned()).or_default() += 1;
                    unmatched_micros += micros(delivery.click.click_cost);
                }
                Expected::Ambiguous => num_ambiguous += 1,
            }
        }
        for (minute, bucket) in &mut minutes {
            let (impression_cost, click_cost) =
                minute_micros.get(minute).copied().unwrap_or_default();
            bucket.impression_cost = from_micros(impression_cost);
            bucket.click_cost = from_micros(click_cost);
        }
        totals.impression_cost = from_micros(impression_micros);
        totals.matched_click_cost = from_micros(matched_micros);
        totals.unmatched_click_cost = from_micros(unmatched_micros);
        let mut id_digest: u64 = 0;
        for id in self.impressions.keys() {
            id_digest = id_digest.wrapping_add(fnv1a64(id.as_bytes()));
        }
        Truth::new(
            settings,
            ImpressionTruth {
                distinct: self.impressions.len() as u64,
                delivered: self.num_impressions_delivered,
                duplicates: self.num_impression_duplicates,
                id_digest: format!("{id_digest:016x}"),
            },
            ClickTruth {
                distinct: self.clicks.len() as u64,
                delivered: self.num_clicks_delivered,
                duplicates: self.num_click_duplicates,
                late: num_late,
                ambiguous: num_ambiguous,
                outcomes,
            },
            self.malformed,
            totals,
            minutes.into_values().collect(),
            click_outcomes,
        )
    }
}

fn micros(value: f64) -> i64 {
    (value * 1e6).round() as i64
}

fn from_micros(value: i64) -> f64 {
    value as f64 / 1e6
}

/// The start of the UTC minute a time falls in.
pub fn minute_of(time: EventTime) -> i64 {
    time.as_millis().div_euclid(60_000) * 60_000
}

/// FNV-1a, 64-bit: the per-id hash of the impression id digest. Summing hashes
/// makes the digest independent of order, so a database can compute it too.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
