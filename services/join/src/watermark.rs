//! A shard's watermarks, combined from the in-band markers ingest writes into each
//! keyed partition (see `docs/keyed-topics.md`). Per raw partition the newest value
//! heard wins, so a stale marker (an earlier owner's, or one read again on replay)
//! never moves a watermark back. A side's watermark is the minimum over its raw
//! partitions, undefined until every partition has reported, with idle partitions
//! left out. When every partition of a side is idle, the side follows the highest of
//! them: ingest moves an idle partition's watermark on with the wall clock, so time
//! keeps passing while traffic pauses, and jumps nowhere. A side that never had a
//! record is unknown, like one not heard from: nothing is evicted or decided until
//! both sides have had data. Pure, like Arroyo's
//! `WatermarkHolder`.

use std::collections::BTreeMap;

use adjoin_shared::keyed::WatermarkMarker;

/// Which keyed topic a record or marker came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Impressions,
    Clicks,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Impressions, Side::Clicks];

    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Impressions => "impressions",
            Side::Clicks => "clicks",
        }
    }
}

/// A watermark: what event times can still arrive, as far as the markers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Watermark {
    /// Not every raw partition has reported a value yet: anything may still come.
    Unknown,
    /// Records below this time (epoch ms) are late on every raw partition.
    At(i64),
}

impl Watermark {
    /// Returns true when the watermark is past `time_ms`: no record that is not late
    /// can carry a time at or below it any more.
    pub fn passes(self, time_ms: i64) -> bool {
        match self {
            Watermark::Unknown => false,
            Watermark::At(watermark_ms) => watermark_ms > time_ms,
        }
    }

    /// Returns the value to report in metrics, if there is one.
    pub fn millis_opt(self) -> Option<i64> {
        match self {
            Watermark::At(watermark_ms) => Some(watermark_ms),
            Watermark::Unknown => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct RawPartition {
    watermark_ms_opt: Option<i64>,
    idle: bool,
}

#[derive(Clone, Debug, Default)]
struct SideWatermarks {
    /// Partitions of the raw topic, from the newest marker; 0 until one arrives.
    num_partitions: i32,
    partitions: BTreeMap<i32, RawPartition>,
}

impl SideWatermarks {
    fn observe(&mut self, marker: &WatermarkMarker) {
        self.num_partitions = marker.source_partitions;
        for reported in &marker.partitions {
            let partition = self.partitions.entry(reported.partition).or_default();
            partition.watermark_ms_opt = match (partition.watermark_ms_opt, reported.watermark_ms) {
                (Some(known), Some(new)) => Some(known.max(new)),
                (known_opt, new_opt) => known_opt.or(new_opt),
            };
            partition.idle = reported.idle;
        }
    }

    fn watermark(&self) -> Watermark {
        if self.num_partitions <= 0 {
            return Watermark::Unknown;
        }
        let mut minimum_opt: Option<i64> = None;
        let mut idle_maximum_opt: Option<i64> = None;
        for raw_partition in 0..self.num_partitions {
            let Some(partition) = self.partitions.get(&raw_partition) else {
                return Watermark::Unknown;
            };
            if partition.idle {
                idle_maximum_opt = idle_maximum_opt.max(partition.watermark_ms_opt);
                continue;
            }
            let Some(watermark_ms) = partition.watermark_ms_opt else {
                return Watermark::Unknown;
            };
            minimum_opt =
                Some(minimum_opt.map_or(watermark_ms, |minimum| minimum.min(watermark_ms)));
        }
        match (minimum_opt, idle_maximum_opt) {
            (Some(minimum), _) => Watermark::At(minimum),
            (None, Some(idle_maximum)) => Watermark::At(idle_maximum),
            // Every partition idle and none ever had a record. Not a time: records may
            // already follow the marker that said so, on this side or (read later)
            // on the other; taking it for "nothing holds back" evicted impressions
            // read after such markers (issue 5, seen on Tansu).
            (None, None) => Watermark::Unknown,
        }
    }
}

/// The watermarks of one shard: one per side, and their minimum.
#[derive(Clone, Debug, Default)]
pub struct ShardWatermark {
    impressions: SideWatermarks,
    clicks: SideWatermarks,
}

impl ShardWatermark {
    /// Takes a marker read from the keyed topic of `side`.
    pub fn observe(&mut self, side: Side, marker: &WatermarkMarker) {
        match side {
            Side::Impressions => self.impressions.observe(marker),
            Side::Clicks => self.clicks.observe(marker),
        }
    }

    /// Returns the watermark of one side's raw partitions.
    pub fn side(&self, side: Side) -> Watermark {
        match side {
            Side::Impressions => self.impressions.watermark(),
            Side::Clicks => self.clicks.watermark(),
        }
    }

    /// Returns the shard watermark: the minimum over both sides.
    pub fn shard(&self) -> Watermark {
        self.side(Side::Impressions).min(self.side(Side::Clicks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adjoin_shared::keyed::PartitionWatermark;

    fn marker(num_partitions: i32, partitions: &[(i32, Option<i64>, bool)]) -> WatermarkMarker {
        WatermarkMarker {
            source_topic: "raw".to_owned(),
            source_partitions: num_partitions,
            instance: "test".to_owned(),
            emitted_at_ms: 0,
            partitions: partitions
                .iter()
                .map(|&(partition, watermark_ms, idle)| PartitionWatermark {
                    partition,
                    watermark_ms,
                    idle,
                })
                .collect(),
        }
    }

    #[test]
    fn unknown_until_every_raw_partition_reports() {
        let mut watermarks = ShardWatermark::default();
        assert_eq!(watermarks.shard(), Watermark::Unknown);
        watermarks.observe(Side::Impressions, &marker(2, &[(0, Some(100), false)]));
        assert_eq!(watermarks.side(Side::Impressions), Watermark::Unknown);
        watermarks.observe(Side::Impressions, &marker(2, &[(1, None, false)]));
        assert_eq!(
            watermarks.side(Side::Impressions),
            Watermark::Unknown,
            "a partition without a record yet holds it back"
        );
        watermarks.observe(Side::Impressions, &marker(2, &[(1, Some(300), false)]));
        assert_eq!(watermarks.side(Side::Impressions), Watermark::At(100));
        assert_eq!(
            watermarks.shard(),
            Watermark::Unknown,
            "the clicks side has not reported"
        );
    }

    #[test]
    fn the_shard_takes_the_minimum_over_both_sides() {
        let mut watermarks = ShardWatermark::default();
        watermarks.observe(
            Side::Impressions,
            &marker(2, &[(0, Some(500), false), (1, Some(400), false)]),
        );
        watermarks.observe(Side::Clicks, &marker(1, &[(0, Some(450), false)]));
        assert_eq!(watermarks.side(Side::Impressions), Watermark::At(400));
        assert_eq!(watermarks.shard(), Watermark::At(400));
        watermarks.observe(Side::Impressions, &marker(2, &[(1, Some(900), false)]));
        assert_eq!(watermarks.shard(), Watermark::At(450));
    }

    #[test]
    fn stale_markers_never_move_a_watermark_back() {
        let mut watermarks = ShardWatermark::default();
        watermarks.observe(Side::Clicks, &marker(1, &[(0, Some(700), false)]));
        watermarks.observe(Side::Clicks, &marker(1, &[(0, Some(650), false)]));
        assert_eq!(watermarks.side(Side::Clicks), Watermark::At(700));
        watermarks.observe(Side::Clicks, &marker(1, &[(0, None, false)]));
        assert_eq!(watermarks.side(Side::Clicks), Watermark::At(700));
    }

    #[test]
    fn idle_partitions_stop_holding_back_and_all_idle_follows_the_highest() {
        let mut watermarks = ShardWatermark::default();
        watermarks.observe(
            Side::Impressions,
            &marker(2, &[(0, Some(100), false), (1, Some(900), false)]),
        );
        watermarks.observe(Side::Impressions, &marker(2, &[(0, Some(100), true)]));
        assert_eq!(watermarks.side(Side::Impressions), Watermark::At(900));
        watermarks.observe(Side::Impressions, &marker(2, &[(1, Some(950), true)]));
        assert_eq!(
            watermarks.side(Side::Impressions),
            Watermark::At(950),
            "all idle: the highest"
        );
        watermarks.observe(Side::Impressions, &marker(2, &[(1, Some(5_000), true)]));
        assert_eq!(
            watermarks.side(Side::Impressions),
            Watermark::At(5_000),
            "ingest moves idle watermarks on with the wall clock"
        );
        watermarks.observe(Side::Impressions, &marker(2, &[(0, Some(150), false)]));
        assert_eq!(
            watermarks.side(Side::Impressions),
            Watermark::At(150),
            "a partition that speaks again holds it back again"
        );
        let mut empty = ShardWatermark::default();
        empty.observe(
            Side::Clicks,
            &marker(2, &[(0, None, true), (1, None, true)]),
        );
        assert_eq!(
            empty.side(Side::Clicks),
            Watermark::Unknown,
            "nothing ever came: not a time"
        );
        empty.observe(Side::Impressions, &marker(1, &[(0, Some(700), false)]));
        assert_eq!(
            empty.shard(),
            Watermark::Unknown,
            "a side without data holds the shard back"
        );
    }

    #[test]
    fn passes_is_strict() {
        assert!(!Watermark::At(100).passes(100));
        assert!(Watermark::At(101).passes(100));
        assert!(!Watermark::Unknown.passes(i64::MIN));
        assert!(Watermark::Unknown < Watermark::At(i64::MIN));
    }
}
