//! Per raw partition watermarks, as DESIGN.md defines them: the newest event time
//! seen on the partition minus the allowed lateness. A record below its partition's
//! watermark on arrival is late. A partition silent for the idle timeout stops
//! holding shard watermarks back, and while it stays silent its newest time moves
//! on with the wall clock: when every partition is quiet, time still passes for
//! the join (waiting clicks are decided, state drains), and a partition that
//! speaks again resumes from there, so what it says late is late downstream too.
//! Pure: times are passed in.

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

    /// Returns the newest event time seen on a partition so far (moved on by the
    /// wall clock while the partition was idle).
    pub fn newest_ms(&self, partition: i32) -> Option<i64> {
        self.partitions.get(&partition)?.newest_ms_opt
    }

    /// Returns a partition's newest time as of `now`: while idle, it advances by
    /// the wall-clock time since the partition's last record.
    fn effective_newest_ms(clock: &PartitionClock, now: Instant) -> Option<i64> {
        let newest = clock.newest_ms_opt?;
        if !clock.idle {
            return Some(newest);
        }
        let silent_ms = i64::try_from(
            now.saturating_duration_since(clock.last_record_at)
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        Some(newest.saturating_add(silent_ms))
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
        clock.newest_ms_opt = Self::effective_newest_ms(clock, now);
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

    /// Returns every owned partition's watermark as of `now`, for a marker.
    pub fn snapshot(&self, now: Instant) -> Vec<PartitionWatermark> {
        self.partitions
            .iter()
            .map(|(partition, clock)| PartitionWatermark {
                partition: *partition,
                watermark_ms: Self::effective_newest_ms(clock, now)
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
        let snapshot = marks.snapshot(now);
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
        let at_31 = start + Duration::from_secs(31);
        assert!(marks.snapshot(at_31)[0].idle && !marks.snapshot(at_31)[1].idle);
        assert_eq!(marks.tick(start + Duration::from_secs(51)), vec![1]);
        assert!(
            marks.tick(start + Duration::from_secs(90)).is_empty(),
            "reported once"
        );
        marks.observe(0, 5_000, start + Duration::from_secs(91));
        assert!(!marks.snapshot(start + Duration::from_secs(91))[0].idle);
    }

    #[test]
    fn an_idle_partition_keeps_time_moving_with_the_wall_clock() {
        let start = Instant::now();
        let mut marks = watermarks();
        marks.observe(0, 1_000_000, start);
        let at = |seconds| start + Duration::from_secs(seconds);
        assert_eq!(
            marks.snapshot(at(20))[0].watermark_ms,
            Some(940_000),
            "not idle yet: no advance"
        );
        marks.tick(at(30));
        assert_eq!(
            marks.snapshot(at(100))[0].watermark_ms,
            Some(1_040_000),
            "100 s silent: the newest time moved on by 100 s"
        );
        assert!(
            marks.observe(0, 1_030_000, at(100)),
            "a record it now calls late is behind the moved-on time"
        );
        assert!(!marks.observe(0, 1_100_000, at(101)));
        assert!(!marks.snapshot(at(101))[0].idle);
        assert_eq!(
            marks.snapshot(at(200))[0].watermark_ms,
            Some(1_040_000),
            "no advance once active"
        );
    }
}
