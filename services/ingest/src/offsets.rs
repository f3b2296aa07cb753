//! Which raw offsets may be committed: only those below the first record whose
//! output is not yet acknowledged, so a restart re-reads everything not safely
//! written (at-least-once). Pure and thread-safe to share behind a mutex between
//! the actor, the producer's delivery callback and the rebalance callback.

use std::collections::{BTreeMap, VecDeque};

/// One consumed record waiting for its output's acknowledgement.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    offset: i64,
    acknowledged: bool,
    /// The partition's newest event time before this record: the watermark state
    /// to resume from if processing restarts here.
    newest_ms_before_opt: Option<i64>,
}

#[derive(Clone, Debug, Default)]
struct PartitionOffsets {
    in_flight: VecDeque<InFlight>,
    /// The offset after the last record consumed, and the newest event time then.
    next_offset_opt: Option<i64>,
    newest_ms_opt: Option<i64>,
    last_committed_opt: Option<i64>,
}

/// A position that may be committed, with the watermark state that goes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committable {
    pub partition: i32,
    pub offset: i64,
    pub newest_ms_opt: Option<i64>,
}

/// Offsets of the partitions one consumer generation owns.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    generation: u64,
    /// Bumped by every assign and revoke: records polled before a rebalance carry
    /// an older value and are refused, since under the eager protocol every
    /// partition was revoked and is read again from its committed offset.
    assignment_version: u64,
    partitions: BTreeMap<i32, PartitionOffsets>,
    failed: bool,
}

impl OffsetTracker {
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Starts a new consumer generation: acknowledgements of the old one are
    /// ignored from now on, and nothing of it is committed any more.
    pub fn reset(&mut self, generation: u64) {
        self.generation = generation;
        self.partitions.clear();
        self.failed = false;
    }

    pub fn assign(&mut self, partition: i32) {
        self.assignment_version += 1;
        self.partitions.entry(partition).or_default();
    }

    pub fn revoke(&mut self, partition: i32) {
        self.assignment_version += 1;
        self.partitions.remove(&partition);
    }

    pub fn assignment_version(&self) -> u64 {
        self.assignment_version
    }

    /// Records a consumed record whose output is about to be produced. Returns
    /// false, recording nothing, for a partition this generation does not own (it
    /// was revoked after the poll): the record must be skipped, its next owner
    /// reads it. Checked here, under the same lock as the revoke, so a revoke
    /// cannot slip in between the check and the tracking.
    #[must_use]
    pub fn consumed(
        &mut self,
        partition: i32,
        offset: i64,
        newest_ms_before_opt: Option<i64>,
        newest_ms_after_opt: Option<i64>,
    ) -> bool {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return false;
        };
        debug_assert!(
            state.next_offset_opt.is_none_or(|next| offset >= next),
            "offsets go forward"
        );
        state.in_flight.push_back(InFlight {
            offset,
            acknowledged: false,
            newest_ms_before_opt,
        });
        state.next_offset_opt = Some(offset + 1);
        state.newest_ms_opt = newest_ms_after_opt;
        true
    }

    /// Records the acknowledgement of a record's output. Stale generations and
    /// revoked partitions are ignored.
    pub fn acknowledged(&mut self, generation: u64, partition: i32, offset: i64) {
        if generation != self.generation {
            return;
        }
        let Some(state) = self.partitions.get_mut(&partition) else {
            return;
        };
        // Outputs of one raw partition land on many keyed partitions, so their
        // acknowledgements come back out of order.
        if let Ok(index) = state
            .in_flight
            .binary_search_by_key(&offset, |entry| entry.offset)
        {
            state.in_flight[index].acknowledged = true;
        }
        while state
            .in_flight
            .front()
            .is_some_and(|entry| entry.acknowledged)
        {
            state.in_flight.pop_front();
        }
    }

    /// Records that an output could not be delivered: nothing at or after it may be
    /// committed, and the consumer must restart from its committed offsets.
    pub fn delivery_failed(&mut self, generation: u64) {
        if generation == self.generation {
            self.failed = true;
        }
    }

    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Returns the positions to commit now (those that moved since the last call).
    pub fn committable(&mut self) -> Vec<Committable> {
        let mut positions = Vec::new();
        for (partition, state) in &mut self.partitions {
            let position = match state.in_flight.front() {
                Some(entry) => Some((entry.offset, entry.newest_ms_before_opt)),
                None => state
                    .next_offset_opt
                    .map(|next| (next, state.newest_ms_opt)),
            };
            let Some((offset, newest_ms_opt)) = position else {
                continue;
            };
            if state.last_committed_opt == Some(offset) {
                continue;
            }
            state.last_committed_opt = Some(offset);
            positions.push(Committable {
                partition: *partition,
                offset,
                newest_ms_opt,
            });
        }
        positions
    }

    /// Records consumed and not yet acknowledged, over every partition.
    pub fn num_in_flight(&self) -> usize {
        self.partitions
            .values()
            .map(|state| state.in_flight.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_stop_at_the_first_unacknowledged_record() {
        let mut tracker = OffsetTracker::default();
        tracker.reset(1);
        tracker.assign(0);
        for offset in 10..15 {
            assert!(tracker.consumed(0, offset, Some(offset * 100), Some(offset * 100 + 100)));
        }
        assert_eq!(
            tracker.committable()[0].offset,
            10,
            "nothing acknowledged yet"
        );
        tracker.acknowledged(1, 0, 11);
        tracker.acknowledged(1, 0, 13);
        assert!(
            tracker.committable().is_empty(),
            "offset 10 still holds everything back"
        );
        tracker.acknowledged(1, 0, 10);
        let position = tracker.committable()[0];
        assert_eq!((position.offset, position.newest_ms_opt), (12, Some(1200)));
        tracker.acknowledged(1, 0, 12);
        tracker.acknowledged(1, 0, 14);
        assert_eq!(tracker.committable()[0].offset, 15);
        assert_eq!(tracker.num_in_flight(), 0);
    }

    #[test]
    fn stale_generations_and_revoked_partitions_are_ignored() {
        let mut tracker = OffsetTracker::default();
        tracker.reset(1);
        tracker.assign(0);
        assert!(tracker.consumed(0, 5, None, Some(1)));
        tracker.reset(2);
        tracker.assign(0);
        assert!(tracker.consumed(0, 5, None, Some(1)));
        tracker.acknowledged(1, 0, 5);
        assert_eq!(
            tracker.committable()[0].offset,
            5,
            "the old generation's ack does not count"
        );
        tracker.revoke(0);
        tracker.acknowledged(2, 0, 5);
        assert!(tracker.committable().is_empty());
        tracker.delivery_failed(1);
        assert!(!tracker.has_failed());
        tracker.delivery_failed(2);
        assert!(tracker.has_failed());
    }

    #[test]
    fn records_of_partitions_not_owned_are_refused() {
        let mut tracker = OffsetTracker::default();
        tracker.reset(1);
        assert!(
            !tracker.consumed(3, 7, None, Some(1)),
            "never assigned: nothing tracked"
        );
        tracker.assign(3);
        assert!(tracker.consumed(3, 7, None, Some(1)));
        tracker.revoke(3);
        assert!(
            !tracker.consumed(3, 8, None, Some(2)),
            "a revoke between poll and processing is not undone"
        );
        assert!(tracker.committable().is_empty());
        assert_eq!(tracker.num_in_flight(), 0);
    }

    #[test]
    fn every_assign_and_revoke_moves_the_assignment_version() {
        let mut tracker = OffsetTracker::default();
        tracker.reset(1);
        let before = tracker.assignment_version();
        tracker.assign(0);
        let assigned = tracker.assignment_version();
        assert!(assigned > before);
        tracker.revoke(0);
        tracker.assign(0);
        assert!(
            tracker.assignment_version() > assigned,
            "revoked and assigned again: batches polled before are stale"
        );
    }
}
