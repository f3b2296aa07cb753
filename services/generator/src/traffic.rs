//! The traffic itself: impressions arriving as a Poisson process, clicks following
//! them after a skewed delay, orphans, duplicates, out-of-order delivery and
//! malformed records, yielded in delivery order.
//!
//! Disorder is bounded so that every click's correct outcome is decided by the
//! order of its raw partition alone (see `docs/truth.md`): an impression is
//! displaced by at most `allowed_lateness`, so it is never late; a late click is
//! displaced no further than keeps its impression certainly in the join's state.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use adjoin_shared::schema::{Click, DecodeLimits, DecodeReason, EventTime, Impression};

use crate::catalog::{round_micros, Catalog};
use crate::malformed;
use crate::record::{place_from_payload, place_known, Content, KeyBy, RawRecord, Topic};
use crate::sampling::{chance, exponential, log_normal, uuid, Weighted};

/// The shape of a run's traffic; every knob has a command-line flag.
#[derive(Clone, Debug)]
pub struct TrafficSettings {
    pub seed: u64,
    pub start: EventTime,
    /// Impressions per second of event time.
    pub rate: f64,
    /// Stop after this many impressions.
    pub num_impressions_opt: Option<u64>,
    /// Stop when event time reaches this.
    pub end_opt: Option<EventTime>,
    pub num_ads: usize,
    pub num_users: u32,
    pub num_pages: usize,
    pub zipf_exponent: f64,
    pub late_fraction: f64,
    pub max_lateness: Duration,
    pub duplicate_fraction: f64,
    pub orphan_fraction: f64,
    pub malformed_fraction: f64,
    pub key_by: KeyBy,
    /// After the last impression, still write the clicks scheduled for later
    /// (backlogs: complete data at no cost). Live runs stop with their impressions
    /// instead of waiting minutes of wall time for the tail of click delays.
    pub drain_clicks: bool,
    pub impression_partitions: i32,
    pub click_partitions: i32,
    pub window: Duration,
    pub skew: Duration,
    pub allowed_lateness: Duration,
    pub limits: DecodeLimits,
}

/// A click waiting for its event time to come.
struct ScheduledClick {
    click: Click,
    user_id: String,
    /// The impression's time; `None` for an orphan.
    impression_time_opt: Option<EventTime>,
}

/// Yields a run's raw records in delivery order.
pub struct Traffic {
    settings: TrafficSettings,
    rng: ChaCha8Rng,
    catalog: Catalog,
    positions: Weighted<u32>,
    next_impression_ms: f64,
    num_impressions_made: u64,
    clicks: BinaryHeap<Reverse<(EventTime, u64)>>,
    scheduled: std::collections::HashMap<u64, ScheduledClick>,
    deliveries: BinaryHeap<Reverse<(EventTime, u64)>>,
    pending: std::collections::HashMap<u64, RawRecord>,
    next_sequence: u64,
    /// The event time of the latest event generated.
    generated_up_to: EventTime,
    /// Malformed kinds of each topic, cycled separately so that the rarer clicks
    /// still go through all of theirs.
    impression_malformed_kinds: Vec<DecodeReason>,
    click_malformed_kinds: Vec<DecodeReason>,
    num_malformed_impressions: usize,
    num_malformed_clicks: usize,
}

impl Traffic {
    pub fn new(settings: TrafficSettings) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let catalog = Catalog::new(
            &mut rng,
            settings.num_ads,
            settings.num_pages,
            settings.num_users,
            settings.zipf_exponent,
        );
        Self {
            next_impression_ms: settings.start.as_millis() as f64,
            settings,
            rng,
            catalog,
            // Most clicks land on the top slots.
            positions: Weighted::new([(1, 45.0), (2, 25.0), (3, 15.0), (4, 10.0), (5, 5.0)]),
            num_impressions_made: 0,
            clicks: BinaryHeap::new(),
            scheduled: std::collections::HashMap::new(),
            deliveries: BinaryHeap::new(),
            pending: std::collections::HashMap::new(),
            next_sequence: 0,
            generated_up_to: EventTime::from_millis(i64::MIN),
            impression_malformed_kinds: kinds_of(Topic::Impressions),
            click_malformed_kinds: kinds_of(Topic::Clicks),
            num_malformed_impressions: 0,
            num_malformed_clicks: 0,
        }
    }

    pub fn settings(&self) -> &TrafficSettings {
        &self.settings
    }

    /// True while impressions are still to come (live runs wait for their time).
    pub fn impressions_remain(&self) -> bool {
        let under_count = self
            .settings
            .num_impressions_opt
            .is_none_or(|count| self.num_impressions_made < count);
        let before_end = self
            .settings
            .end_opt
            .is_none_or(|end| (self.next_impression_ms as i64) < end.as_millis());
        under_count && before_end
    }

    /// The event time of the next event to generate, if any remains.
    fn horizon(&self) -> Option<EventTime> {
        let impression = self
            .impressions_remain()
            .then(|| EventTime::from_millis(self.next_impression_ms as i64));
        let click = self.clicks.peek().map(|Reverse((time, _))| *time);
        match (impression, click) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn sequence(&mut self) -> u64 {
        self.next_sequence += 1;
        self.next_sequence
    }

    fn deliver(&mut self, record: RawRecord) {
        let sequence = self.sequence();
        self.deliveries.push(Reverse((record.deliver_at, sequence)));
        self.pending.insert(sequence, record);
    }

    /// Generates the earliest pending event: the next impression or a due click.
    fn generate_next(&mut self) {
        let impression_time = self
            .impressions_remain()
            .then(|| EventTime::from_millis(self.next_impression_ms as i64));
        let click_due = self.clicks.peek().map(|Reverse((time, _))| *time);
        let click_first = match (impression_time, click_due) {
            (Some(impression), Some(click)) => click <= impression,
            (None, Some(_)) => true,
            _ => false,
        };
        if click_first {
            if let Some(Reverse((time, sequence))) = self.clicks.pop() {
                self.generated_up_to = self.generated_up_to.max(time);
                if let Some(scheduled) = self.scheduled.remove(&sequence) {
                    self.emit_click(scheduled);
                }
            }
        } else if let Some(time) = impression_time {
            self.generated_up_to = self.generated_up_to.max(time);
            self.emit_impression(time);
            let gap_ms = exponential(&mut self.rng, 1000.0 / self.settings.rate);
            self.next_impression_ms += gap_ms;
        }
    }

    fn emit_impression(&mut self, time: EventTime) {
        self.num_impressions_made += 1;
        let ad = self.catalog.ads.sample(&mut self.rng).clone();
        let device = *self.catalog.devices.sample(&mut self.rng);
        let user_id = self.catalog.user_id(&mut self.rng);
        // A session is a user's half hour.
        let session_id = format!("sess-{}-{}", &user_id[5..], time.as_millis() / 1_800_000);
        let impression = Impression {
            impression_id: uuid(&mut self.rng),
            user_id: user_id.clone(),
            session_id,
            ad_id: ad.ad_id.clone(),
            ad_category: ad.category.name.to_owned(),
            device: device.device.to_owned(),
            os: device.os.to_owned(),
            browser: device.browser.to_owned(),
            location: (*self.catalog.locations.sample(&mut self.rng)).to_owned(),
            page_id: self.catalog.pages.sample(&mut self.rng).clone(),
            referrer: (*self.catalog.referrers.sample(&mut self.rng)).to_owned(),
            impression_cost: round_micros(ad.cpm / 1000.0 * log_normal(&mut self.rng, 1.0, 0.1)),
            event_time: time,
        };
        // Never beyond allowed lateness: a late impression's clicks would match or
        // not depending on how fast partitions are consumed.
        let cap_ms = duration_ms(self.settings.allowed_lateness)
            .min(duration_ms(self.settings.max_lateness));
        let displacement_ms = self.displacement_ms(cap_ms);
        let (key, partition) = place_known(
            self.settings.key_by,
            &impression.impression_id,
            &impression.impression_id,
            &user_id,
            self.settings.impression_partitions,
        );
        let payload = serde_json::to_vec(&impression).unwrap_or_default();
        self.maybe_malformed(&payload, Topic::Impressions, time);
        if chance(&mut self.rng, ad.ctr) {
            self.schedule_click(&impression, &user_id, ad.cpc);
        }
        self.deliver(RawRecord {
            topic: Topic::Impressions,
            partition,
            key,
            payload,
            deliver_at: time.saturating_add_millis(displacement_ms),
            content: Content::Impression(Box::new(impression)),
        });
    }

    fn schedule_click(&mut self, impression: &Impression, user_id: &str, cpc: f64) {
        let window_ms = duration_ms(self.settings.window);
        let skew_ms = duration_ms(self.settings.skew);
        // Median 20 s, a tail to minutes, always inside the window; a few clicks
        // carry a time just before their impression's (tracker clock skew).
        let delay_ms = if chance(&mut self.rng, 0.02) && skew_ms > 0 {
            -self.rng.gen_range(0..skew_ms)
        } else {
            (log_normal(&mut self.rng, 20_000.0, 1.0) as i64)
                .clamp(200, (window_ms - 1000).max(200))
        };
        let click = self.new_click(
            &impression.impression_id,
            impression.event_time.saturating_add_millis(delay_ms),
            cpc,
        );
        self.push_click(ScheduledClick {
            click,
            user_id: user_id.to_owned(),
            impression_time_opt: Some(impression.event_time),
        });
        let orphan_fraction = self.settings.orphan_fraction.clamp(0.0, 0.99);
        if chance(&mut self.rng, orphan_fraction / (1.0 - orphan_fraction)) {
            let orphan_delay_ms =
                (log_normal(&mut self.rng, 20_000.0, 1.0) as i64).clamp(200, window_ms.max(200));
            let orphan_impression_id = uuid(&mut self.rng);
            let orphan_user = self.catalog.user_id(&mut self.rng);
            let orphan = self.new_click(
                &orphan_impression_id,
                impression.event_time.saturating_add_millis(orphan_delay_ms),
                cpc,
            );
            self.push_click(ScheduledClick {
                click: orphan,
                user_id: orphan_user,
                impression_time_opt: None,
            });
        }
    }

    fn new_click(&mut self, impression_id: &str, time: EventTime, cpc: f64) -> Click {
        Click {
            click_id: uuid(&mut self.rng),
            impression_id: impression_id.to_owned(),
            click_position: *self.positions.sample(&mut self.rng),
            click_cost: round_micros(cpc * log_normal(&mut self.rng, 1.0, 0.15)),
            event_time: time,
        }
    }

    fn push_click(&mut self, scheduled: ScheduledClick) {
        let sequence = self.sequence();
        self.clicks
            .push(Reverse((scheduled.click.event_time, sequence)));
        self.scheduled.insert(sequence, scheduled);
    }

    fn emit_click(&mut self, scheduled: ScheduledClick) {
        let click = scheduled.click;
        let time = click.event_time;
        // A late click may be displaced only as far as keeps its impression
        // certainly in state: the watermark its partition can have reached when it
        // arrives (at most its delivery time minus allowed lateness) must not pass
        // the impression's time plus the window.
        let lateness_ms = duration_ms(self.settings.allowed_lateness);
        let cap_ms = match scheduled.impression_time_opt {
            Some(impression_time) => {
                (impression_time.as_millis() + duration_ms(self.settings.window) + lateness_ms
                    - time.as_millis())
                .min(duration_ms(self.settings.max_lateness))
            }
            None => duration_ms(self.settings.max_lateness),
        };
        let displacement_ms = self.displacement_ms(cap_ms);
        let (key, partition) = place_known(
            self.settings.key_by,
            &click.click_id,
            &click.impression_id,
            &scheduled.user_id,
            self.settings.click_partitions,
        );
        let payload = serde_json::to_vec(&click).unwrap_or_default();
        self.maybe_malformed(&payload, Topic::Clicks, time);
        // A click timed before its impression (skew) is generated only when the
        // impression is; it goes out no earlier than what was already generated.
        let deliver_at = time
            .saturating_add_millis(displacement_ms)
            .max(self.generated_up_to);
        let duplicate_opt = chance(&mut self.rng, self.settings.duplicate_fraction).then(|| {
            // A producer retry: same key, same partition, right after the original.
            let again_at = deliver_at.saturating_add_millis(self.rng.gen_range(0..500));
            RawRecord {
                topic: Topic::Clicks,
                partition,
                key: key.clone(),
                payload: payload.clone(),
                deliver_at: again_at,
                content: Content::DuplicateClick(click.clone()),
            }
        });
        self.deliver(RawRecord {
            topic: Topic::Clicks,
            partition,
            key,
            payload,
            deliver_at,
            content: Content::Click(click),
        });
        if let Some(duplicate) = duplicate_opt {
            self.deliver(duplicate);
        }
    }

    /// Returns how far a record is delivered after its event time: 0, or with
    /// `late_fraction` a uniform delay up to `cap_ms`.
    fn displacement_ms(&mut self, cap_ms: i64) -> i64 {
        if cap_ms < 1 || !chance(&mut self.rng, self.settings.late_fraction) {
            return 0;
        }
        self.rng.gen_range(1..=cap_ms)
    }

    fn maybe_malformed(&mut self, template: &[u8], source: Topic, time: EventTime) {
        if !chance(&mut self.rng, self.settings.malformed_fraction) {
            return;
        }
        let Ok(template_value) = serde_json::from_slice::<serde_json::Value>(template) else {
            return;
        };
        let (kinds, num_made) = match source {
            Topic::Impressions => (
                &self.impression_malformed_kinds,
                &mut self.num_malformed_impressions,
            ),
            Topic::Clicks => (&self.click_malformed_kinds, &mut self.num_malformed_clicks),
        };
        let reason = kinds[*num_made % kinds.len()];
        *num_made += 1;
        let topic = source;
        let payload =
            malformed::break_record(&template_value, topic, reason, &self.settings.limits);
        let num_partitions = match topic {
            Topic::Impressions => self.settings.impression_partitions,
            Topic::Clicks => self.settings.click_partitions,
        };
        let (key, partition) = place_from_payload(self.settings.key_by, &payload, num_partitions);
        self.deliver(RawRecord {
            topic,
            partition,
            key,
            payload,
            deliver_at: time,
            content: Content::Malformed(reason),
        });
    }
}

impl Iterator for Traffic {
    type Item = RawRecord;

    fn next(&mut self) -> Option<RawRecord> {
        loop {
            if !self.settings.drain_clicks && !self.impressions_remain() {
                self.clicks.clear();
                self.scheduled.clear();
            }
            let next_delivery = self.deliveries.peek().map(|Reverse((at, _))| *at);
            let horizon = self.horizon();
            // Every record is delivered at or after its event time, so whatever is
            // due before the next event to generate can go out now, in order.
            let deliver_now = match (next_delivery, horizon) {
                (Some(at), Some(horizon)) => at <= horizon,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            if deliver_now {
                let Reverse((_, sequence)) = self.deliveries.pop()?;
                if let Some(record) = self.pending.remove(&sequence) {
                    return Some(record);
                }
            } else {
                self.generate_next();
            }
        }
    }
}

fn kinds_of(topic: Topic) -> Vec<DecodeReason> {
    malformed::kinds()
        .into_iter()
        .filter(|(_, kind_topic)| *kind_topic == topic)
        .map(|(reason, _)| reason)
        .collect()
}

pub fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
