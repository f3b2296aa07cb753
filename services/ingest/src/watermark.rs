//! Per raw partition watermarks, as DESIGN.md defines them: the newest event time
//! seen on the partition minus the allowed lateness. A record below its partition's
//! watermark on arrival is late. A partition silent for the idle timeout stops
//! holding shard watermarks back. Pure: times are passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adjoin_shared::keyed::PartitionWatermark;

#[derive(Clone, Debug)]
struct PartitionClock {
    newest_ms_opt: Option<i64>,
    last_record_at: Instant,
    idle: bool,
}

/// The watermarks of the raw partitions one ingest actor owns.
#[derive(Clone, Debug)]
pub struct Watermarks {
    allowed_lateness_ms: i64,
    idle_timeout: Duration,
    partitions: BTreeMap<i32, PartitionClock>,
}

impl Watermarks {
    pub fn new(allowed_lateness: Duration, idle_timeout: Duration) -> Self {
        Self {
            allowed_lateness_ms: i64::try_from(allowed_lateness.as_millis()).unwrap_or(i64::MAX),
            idle_timeout,
            partitions: BTreeMap::new(),
        }
    }

    /// Takes a partition on, resuming from the newest event time before its
    /// committed offset when that is known.
    pub fn assign(&mut self, partition: i32, newest_ms_opt: Option<i64>, now: Instant) {
        self.partitions.insert(
            partition,
            PartitionClock {
                newest_ms_opt,
                last_record_at: now,
                idle: false,
            },
        );
    }

    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    pub fn is_assigned(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// Returns the newest event time seen on a partition so far.
    pub fn newest_ms(&self, partition: i32) -> Option<i64> {
        self.partitions.get(&partition)?.newest_ms_opt
    }

    /// Takes a valid record's event time and returns whether it is late: below the
    /// partition's watermark as it stood before this record.
    pub fn observe(&mut self, partition: i32, event_ms: i64, now: Instant) -> bool {
        let lateness_ms = self.allowed_lateness_ms;
        let clock = self.partitions.entry(partition).or_insert(PartitionClock {
            newest_ms_opt: None,
            last_record_at: now,
            idle: false,
        });
        let late = clock
            .newest_ms_opt
            .is_some_and(|newest| event_ms < newest.saturating_sub(lateness_ms));
        clock.newest_ms_opt = Some(
            clock
                .newest_ms_opt
                .map_or(event_ms, |newest| newest.max(event_ms)),
        );
        clock.last_record_at = now;
        clock.idle = false;
        late
    }

    /// Marks partitions silent for the idle timeout as idle; returns those that just
    /// became idle. Idleness is decided on a timer, not on arrival, so a partition
    /// that never receives anything still goes idle.
    pub fn tick(&mut self, now: Instant) -> Vec<i32> {
        let mut newly_idle = Vec::new();
        for (partition, clock) in &mut self.partitions {
            if !clock.idle
                && now.saturating_duration_since(clock.last_record_at) >= self.idle_timeout
            {
                clock.idle = true;
                newly_idle.push(*partition);
            }
        }
        newly_idle
    }

    /// Returns every owned partition's watermark, for a marker.
    pub fn snapshot(&self) -> Vec<PartitionWatermark> {
        self.partitions
            .iter()
            .map(|(partition, clock)| PartitionWatermark {
                partition: *partition,
                watermark_ms: clock
                    .newest_ms_opt
                    .map(|newest| newest.saturating_sub(self.allowed_lateness_ms)),
                idle: clock.idle,
            })
            .collect()
    }

    pub fn partitions(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watermarks() -> Watermarks {
        Watermarks::new(Duration::from_secs(60), Duration::from_secs(30))
    }

    #[test]
    fn late_means_below_newest_minus_allowed_lateness() {
        let now = Instant::now();
        let mut marks = watermarks();
        assert!(
            !marks.observe(0, 1_000_000, now),
            "the first record is never late"
        );
        assert!(
            !marks.observe(0, 1_000_000 - 60_000, now),
            "exactly at the watermark is on time"
        );
        assert!(
            marks.observe(0, 1_000_000 - 60_001, now),
            "below it is late"
        );
        assert!(
            !marks.observe(1, 900_000, now),
            "partitions are independent"
        );
        assert_eq!(
            marks.newest_ms(0),
            Some(1_000_000),
            "a late record does not move the newest time"
        );
        assert!(!marks.observe(0, 2_000_000, now));
        assert!(marks.observe(0, 1_900_000, now));
    }

    #[test]
    fn snapshot_carries_watermarks_and_unknowns() {
        let now = Instant::now();
        let mut marks = watermarks();
        marks.assign(0, None, now);
        marks.assign(1, Some(5_000_000), now);
        marks.observe(2, 3_000_000, now);
        let snapshot = marks.snapshot();
        assert_eq!(snapshot[0].watermark_ms, None);
        assert_eq!(snapshot[1].watermark_ms, Some(4_940_000));
        assert_eq!(snapshot[2].watermark_ms, Some(2_940_000));
        assert!(
            marks.observe(1, 4_000_000, now),
            "resumed state decides lateness"
        );
    }

    #[test]
    fn silent_partitions_go_idle_on_the_timer_and_wake_on_a_record() {
        let start = Instant::now();
        let mut marks = watermarks();
        marks.assign(0, None, start);
        marks.observe(1, 1_000, start);
        assert!(marks.tick(start + Duration::from_secs(29)).is_empty());
        marks.observe(1, 2_000, start + Duration::from_secs(20));
        assert_eq!(marks.tick(start + Duration::from_secs(31)), vec![0]);
        assert!(marks.snapshot()[0].idle && !marks.snapshot()[1].idle);
        assert_eq!(marks.tick(start + Duration::from_secs(51)), vec![1]);
        assert!(
            marks.tick(start + Duration::from_secs(90)).is_empty(),
            "reported once"
        );
        marks.observe(0, 5_000, start + Duration::from_secs(91));
        assert!(!marks.snapshot()[0].idle);
    }
}
