//! Entries that arrived before their time: dated further ahead than the protocol's clock-skew
//! bound allows *by this node's clock*. Another node, whose clock is a little ahead, may rightly
//! have accepted and relayed such an entry, so it is nobody's fault: it is held here, bounded,
//! and offered to ingest again once this node's clock has caught up. What does not fit, or is
//! dated too far ahead to be worth holding, is dropped; catch-up sync brings it again later.
//!
//! A plain state machine: time comes in as an argument, entries due come out.

use std::collections::{BTreeMap, HashSet};

use staffroom_protocol::limits::CLOCK_SKEW_MS_MAX;
use staffroom_protocol::{EntryId, NetworkId};

/// Entries held at once.
pub const HELD_COUNT_MAX: usize = 1024;
/// Bytes of entries held at once.
pub const HELD_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Entries due later than this are not held (sync will offer them again).
pub const HOLD_HORIZON_MS: u64 = 10 * 60 * 1000;

/// An entry waiting for this node's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub bytes: Vec<u8>,
    /// The network whose topic or sync session it came through, if any.
    pub channel: Option<NetworkId>,
}

/// What [`HoldPen::hold`] did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Held; it is due at this time (this node's clock, ms).
    Held { due_ms: u64 },
    /// Already held.
    AlreadyHeld,
    /// Not held: the pen is full, or the entry is dated too far ahead.
    Dropped,
}

#[derive(Debug, Default)]
pub struct HoldPen {
    by_due: BTreeMap<(u64, EntryId), Held>,
    ids: HashSet<EntryId>,
    bytes: usize,
}

impl HoldPen {
    /// Holds an entry created at `created_at_ms` until this node's clock allows it.
    pub fn hold(
        &mut self,
        id: EntryId,
        created_at_ms: u64,
        held: Held,
        now_ms: u64,
    ) -> HoldOutcome {
        if self.ids.contains(&id) {
            return HoldOutcome::AlreadyHeld;
        }
        let due_ms = created_at_ms.saturating_sub(CLOCK_SKEW_MS_MAX);
        let too_far = due_ms > now_ms.saturating_add(HOLD_HORIZON_MS);
        let full = self.ids.len() >= HELD_COUNT_MAX
            || self.bytes.saturating_add(held.bytes.len()) > HELD_BYTES_MAX;
        if too_far || full {
            return HoldOutcome::Dropped;
        }
        self.bytes += held.bytes.len();
        self.ids.insert(id);
        self.by_due.insert((due_ms, id), held);
        HoldOutcome::Held { due_ms }
    }

    /// Takes every entry due at `now_ms`, earliest first.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Held> {
        let later = self
            .by_due
            .split_off(&(now_ms.saturating_add(1), EntryId([0; 32])));
        let due = std::mem::replace(&mut self.by_due, later);
        due.into_iter()
            .map(|((_, id), held)| {
                self.ids.remove(&id);
                self.bytes -= held.bytes.len();
                held
            })
            .collect()
    }

    /// When the next entry is due, if any is held.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.by_due.keys().next().map(|(due, _)| *due)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(n: u8) -> Held {
        Held {
            bytes: vec![n; 100],
            channel: None,
        }
    }

    #[test]
    fn entries_come_out_when_the_clock_allows_them() {
        let mut pen = HoldPen::default();
        let now = 1_000_000_000;
        let ahead = now + CLOCK_SKEW_MS_MAX;
        assert_eq!(
            pen.hold(EntryId([1; 32]), ahead + 3_000, held(1), now),
            HoldOutcome::Held {
                due_ms: now + 3_000
            }
        );
        assert_eq!(
            pen.hold(EntryId([2; 32]), ahead + 1_000, held(2), now),
            HoldOutcome::Held {
                due_ms: now + 1_000
            }
        );
        assert_eq!(
            pen.hold(EntryId([2; 32]), ahead + 1_000, held(2), now),
            HoldOutcome::AlreadyHeld
        );
        assert_eq!(pen.next_due_ms(), Some(now + 1_000));
        assert!(pen.take_due(now + 999).is_empty());
        assert_eq!(pen.take_due(now + 1_000), vec![held(2)]);
        assert_eq!(pen.take_due(now + 10_000), vec![held(1)]);
        assert!(pen.is_empty() && pen.bytes == 0 && pen.next_due_ms().is_none());
    }

    #[test]
    fn the_pen_is_bounded_and_ignores_the_far_future() {
        let mut pen = HoldPen::default();
        let now = 5_000_000_000;
        let far = now + CLOCK_SKEW_MS_MAX + HOLD_HORIZON_MS + 1;
        assert_eq!(
            pen.hold(EntryId([9; 32]), far, held(9), now),
            HoldOutcome::Dropped
        );
        for n in 0..HELD_COUNT_MAX {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let outcome = pen.hold(EntryId(id), now + CLOCK_SKEW_MS_MAX + 1, held(0), now);
            assert!(matches!(outcome, HoldOutcome::Held { .. }));
        }
        assert_eq!(
            pen.hold(EntryId([7; 32]), now + CLOCK_SKEW_MS_MAX + 1, held(7), now),
            HoldOutcome::Dropped
        );
        assert_eq!(pen.take_due(u64::MAX).len(), HELD_COUNT_MAX);
    }
}
