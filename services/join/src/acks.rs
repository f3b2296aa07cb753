//! Which of a shard's outputs (outcomes, dead letters) the broker has acknowledged:
//! a snapshot of the shard's replay offsets may be committed only once every
//! output sent before it is acknowledged, so a crash never skips an outcome.
//! Shared between the shard actor and the producer's delivery callback.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    epoch: u64,
    next_seq: u64,
    unacked: BTreeSet<u64>,
    failed: bool,
}

/// The outputs of one shard in flight.
#[derive(Debug, Default)]
pub struct OutputAcks {
    inner: Mutex<Inner>,
}

impl OutputAcks {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a new epoch (a restart): what is in flight from before no longer counts.
    pub fn reset(&self, epoch: u64) {
        let mut inner = self.lock();
        inner.epoch = epoch;
        inner.unacked.clear();
        inner.failed = false;
    }

    /// Registers an output about to be sent; returns its (epoch, sequence number).
    pub fn sending(&self) -> (u64, u64) {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.unacked.insert(seq);
        (inner.epoch, seq)
    }

    /// Returns the sequence number the next output will get: a snapshot taken now
    /// covers the outputs before it.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    pub fn acknowledged(&self, epoch: u64, seq: u64) {
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner.unacked.remove(&seq);
        }
    }

    pub fn failed(&self, epoch: u64) {
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner.failed = true;
        }
    }

    /// Returns whether every output with a sequence number below `seq` is acknowledged.
    pub fn acknowledged_before(&self, seq: u64) -> bool {
        self.lock()
            .unacked
            .first()
            .is_none_or(|oldest| *oldest >= seq)
    }

    pub fn has_failed(&self) -> bool {
        self.lock().failed
    }

    pub fn num_in_flight(&self) -> usize {
        self.lock().unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_waits_for_every_earlier_output() {
        let acks = OutputAcks::default();
        let (epoch, first) = acks.sending();
        let (_, second) = acks.sending();
        let snapshot = acks.next_seq();
        let (_, after) = acks.sending();
        assert!(!acks.acknowledged_before(snapshot));
        acks.acknowledged(epoch, second);
        acks.acknowledged(epoch, after);
        assert!(
            !acks.acknowledged_before(snapshot),
            "the first is still out"
        );
        acks.acknowledged(epoch, first);
        assert!(acks.acknowledged_before(snapshot));
        assert_eq!(acks.num_in_flight(), 0);
    }

    #[test]
    fn a_new_epoch_ignores_the_old_one() {
        let acks = OutputAcks::default();
        acks.reset(1);
        let (old_epoch, _) = acks.sending();
        acks.reset(2);
        acks.failed(old_epoch);
        assert!(!acks.has_failed());
        let (epoch, seq) = acks.sending();
        acks.acknowledged(old_epoch, seq);
        assert!(!acks.acknowledged_before(seq + 1));
        acks.acknowledged(epoch, seq);
        assert!(acks.acknowledged_before(seq + 1));
        acks.failed(epoch);
        assert!(acks.has_failed());
    }
}
