//! What the sink writes in one transaction: the rows decoded from its two input
//! topics and, per input partition, the offset after the last record the batch
//! covers. Pure: no database, no Kafka.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adjoin_shared::schema::{ClickOutcome, Impression};

/// The sink's two inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Input {
    /// `impressions.keyed` (watermark markers are skipped).
    Impressions,
    /// `click-outcomes`.
    Outcomes,
}

/// Where a record was read: enough to dead-letter it and to move its offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub input: Input,
    pub partition: i32,
    pub offset: i64,
}

/// A row and the record it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    pub row: T,
    pub source: Source,
    /// The Kafka timestamp of the raw record the row goes back to, epoch
    /// milliseconds, when the pipeline carried it: end-to-end latency is measured
    /// from it to the commit.
    pub origin_ms_opt: Option<i64>,
}

/// When a batch is written: the first limit reached wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    pub rows: usize,
    pub bytes: usize,
    pub wait: Duration,
}

/// A row the database refused on its own: `index` into the batch's rows of `input`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub input: Input,
    pub index: usize,
    pub reason: String,
}

/// A rejected row taken out of its batch, ready for the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub source: Source,
    pub json: Vec<u8>,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub impressions: Vec<Located<Impression>>,
    pub outcomes: Vec<Located<ClickOutcome>>,
    /// Records of the batch sent to the dead-letter topic: where they were read
    /// and the time they are counted at (epoch milliseconds) in `sink_health_minute`.
    pub dead_letters: Vec<(Source, i64)>,
    next_offsets: BTreeMap<(Input, i32), i64>,
    bytes: usize,
    started_opt: Option<Instant>,
}

impl Batch {
    pub fn add_impression(
        &mut self,
        source: Source,
        impression: Impression,
        origin_ms_opt: Option<i64>,
        bytes: usize,
    ) {
        self.pass(source, bytes);
        self.impressions.push(Located {
            row: impression,
            source,
            origin_ms_opt,
        });
    }

    pub fn add_outcome(
        &mut self,
        source: Source,
        outcome: ClickOutcome,
        origin_ms_opt: Option<i64>,
        bytes: usize,
    ) {
        self.pass(source, bytes);
        self.outcomes.push(Located {
            row: outcome,
            source,
            origin_ms_opt,
        });
    }

    /// Covers a record sent to the dead-letter topic, counted at `time_ms`.
    pub fn add_dead_letter(&mut self, source: Source, time_ms: i64, bytes: usize) {
        self.pass(source, bytes);
        self.dead_letters.push((source, time_ms));
    }

    /// Covers a record that makes no row (a watermark marker, a dead-lettered
    /// record): its offset still moves with the batch.
    pub fn pass(&mut self, source: Source, bytes: usize) {
        self.started_opt.get_or_insert_with(Instant::now);
        self.bytes += bytes;
        let next = self
            .next_offsets
            .entry((source.input, source.partition))
            .or_insert(source.offset + 1);
        *next = (*next).max(source.offset + 1);
    }

    pub fn num_rows(&self) -> usize {
        self.impressions.len() + self.outcomes.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing was read since the last write.
    pub fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    /// Returns whether the batch should be written now.
    pub fn is_due(&self, limits: BatchLimits, now: Instant) -> bool {
        let Some(started) = self.started_opt else {
            return false;
        };
        self.num_rows() >= limits.rows
            || self.bytes >= limits.bytes
            || now.saturating_duration_since(started) >= limits.wait
    }

    /// Returns, per input partition the batch read from, the offset to resume at.
    pub fn next_offsets(&self) -> impl Iterator<Item = (Input, i32, i64)> + '_ {
        self.next_offsets
            .iter()
            .map(|(&(input, partition), &next)| (input, partition, next))
    }

    /// Returns the origin timestamps of the batch's rows, for the latency metric.
    pub fn origins_ms(&self) -> impl Iterator<Item = i64> + '_ {
        let impressions = self.impressions.iter().map(|located| located.origin_ms_opt);
        let outcomes = self.outcomes.iter().map(|located| located.origin_ms_opt);
        impressions.chain(outcomes).flatten()
    }

    /// Takes the rejected rows out (their offsets stay covered: they go to the
    /// dead-letter topic instead) and returns them in their canonical JSON.
    pub fn remove_rows(&mut self, rejected: &[Rejected]) -> Vec<Removed> {
        let mut removed = Vec::new();
        for input in [Input::Impressions, Input::Outcomes] {
            let mut indexes: Vec<(usize, &str)> = rejected
                .iter()
                .filter(|row| row.input == input)
                .map(|row| (row.index, row.reason.as_str()))
                .collect();
            // From the back, so earlier indexes stay valid.
            indexes.sort_unstable_by_key(|(index, _)| std::cmp::Reverse(*index));
            indexes.dedup_by_key(|(index, _)| *index);
            for (index, reason) in indexes {
                let (source, json, time_ms) = match input {
                    Input::Impressions if index < self.impressions.len() => {
                        let located = self.impressions.remove(index);
                        let time_ms = located.row.event_time.as_millis();
                        (located.source, serde_json::to_vec(&located.row), time_ms)
                    }
                    Input::Outcomes if index < self.outcomes.len() => {
                        let located = self.outcomes.remove(index);
                        let time_ms = located.row.accounting_time().as_millis();
                        (located.source, serde_json::to_vec(&located.row), time_ms)
                    }
                    _ => continue,
                };
                self.dead_letters.push((source, time_ms));
                removed.push(Removed {
                    source,
                    json: json.unwrap_or_default(),
                    reason: reason.to_owned(),
                });
            }
        }
        removed
    }

    /// Splits the batch into independent batches, one per input and `partition %
    /// ways`: each carries the offsets of its own partitions only, so each can be
    /// its own transaction, written at the same time as the others. On PostgreSQL
    /// that puts both cores to work, and a transaction with only one kind of row
    /// takes its rollup row locks in one ordered pass, so concurrent ones cannot
    /// deadlock. Empty parts are left out.
    pub fn split(self, ways: i32) -> Vec<Batch> {
        let ways = ways.max(1);
        let slot = |source: &Source| {
            let input = match source.input {
                Input::Impressions => 0,
                Input::Outcomes => 1,
            };
            (input * ways + source.partition.rem_euclid(ways)) as usize
        };
        let mut parts: Vec<Batch> = (0..2 * ways).map(|_| Batch::default()).collect();
        for located in self.impressions {
            parts[slot(&located.source)].impressions.push(located);
        }
        for located in self.outcomes {
            parts[slot(&located.source)].outcomes.push(located);
        }
        for (source, time_ms) in self.dead_letters {
            parts[slot(&source)].dead_letters.push((source, time_ms));
        }
        for ((input, partition), next) in self.next_offsets {
            let source = Source {
                input,
                partition,
                offset: next - 1,
            };
            parts[slot(&source)]
                .next_offsets
                .insert((input, partition), next);
        }
        let share = self.bytes / parts.len().max(1);
        parts
            .into_iter()
            .filter(|part| !part.is_empty())
            .map(|mut part| {
                part.bytes = share;
                part.started_opt = self.started_opt;
                part
            })
            .collect()
    }

    /// Forgets what was read from a partition (revoked before the batch was
    /// written): its next owner resumes from the offsets in the database.
    pub fn drop_partition(&mut self, input: Input, partition: i32) {
        let here = |source: &Source| source.input == input && source.partition == partition;
        self.impressions.retain(|located| !here(&located.source));
        self.outcomes.retain(|located| !here(&located.source));
        self.next_offsets.remove(&(input, partition));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adjoin_shared::schema::{Click, EventTime, Outcome};

    fn source(input: Input, partition: i32, offset: i64) -> Source {
        Source {
            input,
            partition,
            offset,
        }
    }

    fn outcome(id: &str) -> ClickOutcome {
        ClickOutcome::unmatched(
            Click {
                click_id: id.to_owned(),
                impression_id: "imp".to_owned(),
                click_position: 1,
                click_cost: 0.1,
                event_time: EventTime::from_millis(1_795_000_000_000),
            },
            Outcome::NoImpression,
        )
    }

    const LIMITS: BatchLimits = BatchLimits {
        rows: 2,
        bytes: 1_000,
        wait: Duration::from_secs(60),
    };

    #[test]
    fn offsets_cover_rows_and_skipped_records() {
        let mut batch = Batch::default();
        assert!(batch.is_empty());
        batch.add_outcome(source(Input::Outcomes, 1, 7), outcome("a"), None, 10);
        batch.pass(source(Input::Impressions, 0, 3), 10);
        batch.pass(source(Input::Impressions, 0, 4), 10);
        assert_eq!(
            batch.next_offsets().collect::<Vec<_>>(),
            vec![(Input::Impressions, 0, 5), (Input::Outcomes, 1, 8)]
        );
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.bytes(), 30);
    }

    #[test]
    fn the_first_limit_reached_makes_it_due() {
        let now = Instant::now();
        let mut batch = Batch::default();
        assert!(!batch.is_due(LIMITS, now), "an empty batch is never due");
        batch.add_outcome(source(Input::Outcomes, 0, 0), outcome("a"), None, 10);
        assert!(!batch.is_due(LIMITS, now));
        batch.add_outcome(source(Input::Outcomes, 0, 1), outcome("b"), None, 10);
        assert!(batch.is_due(LIMITS, now), "rows");

        let mut batch = Batch::default();
        batch.pass(source(Input::Impressions, 0, 0), 1_000);
        assert!(batch.is_due(LIMITS, now), "bytes");

        let mut batch = Batch::default();
        batch.pass(source(Input::Impressions, 0, 0), 1);
        assert!(!batch.is_due(LIMITS, Instant::now()));
        assert!(
            batch.is_due(LIMITS, Instant::now() + Duration::from_secs(61)),
            "time"
        );
    }

    #[test]
    fn rejected_rows_leave_but_their_offsets_stay() {
        let mut batch = Batch::default();
        for (offset, id) in ["a", "b", "c"].into_iter().enumerate() {
            batch.add_outcome(
                source(Input::Outcomes, 0, offset as i64),
                outcome(id),
                Some(5),
                10,
            );
        }
        let removed = batch.remove_rows(&[
            Rejected {
                input: Input::Outcomes,
                index: 2,
                reason: "too big".to_owned(),
            },
            Rejected {
                input: Input::Outcomes,
                index: 0,
                reason: "bad".to_owned(),
            },
        ]);
        let ids: Vec<&str> = batch
            .outcomes
            .iter()
            .map(|located| located.row.click.click_id.as_str())
            .collect();
        assert_eq!(ids, vec!["b"]);
        assert_eq!(removed.len(), 2);
        assert_eq!(removed[0].source.offset, 2);
        assert_eq!(removed[0].reason, "too big");
        let json: serde_json::Value = serde_json::from_slice(&removed[1].json).unwrap();
        assert_eq!(json["click_id"], "a");
        assert_eq!(
            batch.next_offsets().collect::<Vec<_>>(),
            vec![(Input::Outcomes, 0, 3)]
        );
        assert_eq!(batch.origins_ms().collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn a_split_keeps_each_partitions_rows_offsets_and_dead_letters_together() {
        let mut batch = Batch::default();
        for partition in 0..4 {
            batch.add_impression(
                source(Input::Impressions, partition, 10),
                adjoin_shared::schema::Impression {
                    impression_id: format!("i{partition}"),
                    user_id: String::new(),
                    session_id: String::new(),
                    ad_id: String::new(),
                    ad_category: String::new(),
                    device: String::new(),
                    os: String::new(),
                    browser: String::new(),
                    location: String::new(),
                    page_id: String::new(),
                    referrer: String::new(),
                    impression_cost: 0.0,
                    event_time: EventTime::from_millis(0),
                },
                None,
                10,
            );
            batch.add_outcome(
                source(Input::Outcomes, partition, 20),
                outcome("c"),
                None,
                10,
            );
        }
        batch.add_dead_letter(source(Input::Outcomes, 3, 21), 5, 10);
        let parts = batch.split(2);
        assert_eq!(parts.len(), 4, "two inputs, two slots each");
        for part in &parts {
            assert!(
                part.impressions.is_empty() || part.outcomes.is_empty(),
                "one kind of row per part"
            );
            let partitions: Vec<i32> = part
                .next_offsets()
                .map(|(_, partition, _)| partition)
                .collect();
            let rows = part
                .impressions
                .iter()
                .map(|located| located.source)
                .chain(part.outcomes.iter().map(|located| located.source));
            for row in rows {
                assert!(
                    partitions.contains(&row.partition),
                    "a row goes with its offset"
                );
                assert_eq!(row.partition % 2, partitions[0] % 2);
            }
        }
        let with_dead_letter: Vec<&Batch> = parts
            .iter()
            .filter(|part| !part.dead_letters.is_empty())
            .collect();
        assert_eq!(with_dead_letter.len(), 1);
        assert!(with_dead_letter[0]
            .next_offsets()
            .any(|(input, partition, next)| (input, partition, next) == (Input::Outcomes, 3, 22)));
        let total: usize = parts.iter().map(Batch::num_rows).sum();
        assert_eq!(total, 8);
        assert!(Batch::default().split(2).is_empty());
    }

    #[test]
    fn a_revoked_partition_leaves_the_batch() {
        let mut batch = Batch::default();
        batch.add_outcome(source(Input::Outcomes, 0, 0), outcome("a"), None, 10);
        batch.add_outcome(source(Input::Outcomes, 1, 0), outcome("b"), None, 10);
        batch.drop_partition(Input::Outcomes, 0);
        assert_eq!(batch.outcomes.len(), 1);
        assert_eq!(batch.outcomes[0].row.click.click_id, "b");
        assert_eq!(
            batch.next_offsets().collect::<Vec<_>>(),
            vec![(Input::Outcomes, 1, 1)]
        );
    }
}
