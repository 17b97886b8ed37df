//! When a pending rebuild of the search index may start: once the store is quiet, not while
//! a large catch-up is still writing. A rebuild started mid-catch-up reads a store that is
//! still growing, falls behind the change log again before it finishes and starts over:
//! a fresh node catching up a million entries spent ~130 s of CPU on such rebuilds and
//! caught up at half the rate. Sans-IO: the indexer feeds it the store's change sequence
//! and the time, and does what it says.

use std::time::{Duration, Instant};

/// How long a window of the store's changes is watched before judging it quiet.
pub const QUIET_WINDOW: Duration = Duration::from_millis(500);
/// At most this many changes in a window count as quiet: live posting, not a catch-up
/// (a catch-up stores thousands a second; a busy network a few).
pub const QUIET_CHANGES_MAX: u64 = 64;
/// A rebuild waits at most this long for quiet, so a node that never stops catching up
/// still gets its index back.
pub const DEFER_MAX: Duration = Duration::from_secs(300);

/// What the indexer should do about its pending rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Rebuild now.
    Rebuild,
    /// Look again after [`QUIET_WINDOW`] or less.
    Wait,
}

/// A pending rebuild: since when, and the window of changes being watched.
#[derive(Debug, Clone, Copy)]
pub struct RebuildGate {
    pending_since: Instant,
    window_start: Instant,
    window_start_seq: u64,
}

impl RebuildGate {
    /// A rebuild became due at `now`, with the store's change sequence at `seq`.
    pub fn new(now: Instant, seq: u64) -> RebuildGate {
        RebuildGate {
            pending_since: now,
            window_start: now,
            window_start_seq: seq,
        }
    }

    /// The store's change sequence is `seq` at `now`: rebuild, or wait.
    pub fn observe(&mut self, now: Instant, seq: u64) -> Decision {
        if now.saturating_duration_since(self.pending_since) >= DEFER_MAX {
            return Decision::Rebuild;
        }
        if now.saturating_duration_since(self.window_start) < QUIET_WINDOW {
            return Decision::Wait;
        }
        if seq.saturating_sub(self.window_start_seq) <= QUIET_CHANGES_MAX {
            return Decision::Rebuild;
        }
        self.window_start = now;
        self.window_start_seq = seq;
        Decision::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Duration = Duration::from_millis(100);

    #[test]
    fn a_quiet_store_is_rebuilt_after_one_window() {
        let t0 = Instant::now();
        let mut gate = RebuildGate::new(t0, 10);
        assert_eq!(gate.observe(t0 + STEP, 10), Decision::Wait);
        assert_eq!(gate.observe(t0 + QUIET_WINDOW, 10), Decision::Rebuild);
    }

    #[test]
    fn live_posting_does_not_hold_a_rebuild() {
        let t0 = Instant::now();
        let mut gate = RebuildGate::new(t0, 0);
        assert_eq!(
            gate.observe(t0 + QUIET_WINDOW, QUIET_CHANGES_MAX),
            Decision::Rebuild
        );
    }

    #[test]
    fn a_catch_up_holds_the_rebuild_until_it_ends() {
        let t0 = Instant::now();
        let mut gate = RebuildGate::new(t0, 0);
        // 2,000 changes a second for ten seconds: never quiet.
        let mut seq = 0;
        for tick in 1..=100u32 {
            seq += 200;
            assert_eq!(
                gate.observe(t0 + STEP * tick, seq),
                Decision::Wait,
                "tick {tick}"
            );
        }
        // Then nothing more: quiet within two windows.
        let end = t0 + STEP * 100;
        let rebuilt_at = (1..=10u32)
            .find(|tick| gate.observe(end + STEP * *tick, seq) == Decision::Rebuild)
            .map(|tick| STEP * tick);
        assert!(
            rebuilt_at.is_some_and(|after| after <= QUIET_WINDOW * 2),
            "{rebuilt_at:?}"
        );
    }

    #[test]
    fn one_change_over_the_limit_is_not_quiet() {
        let t0 = Instant::now();
        let mut gate = RebuildGate::new(t0, 0);
        let seq = QUIET_CHANGES_MAX + 1;
        assert_eq!(gate.observe(t0 + QUIET_WINDOW, seq), Decision::Wait);
    }

    #[test]
    fn a_store_that_never_goes_quiet_is_rebuilt_after_the_longest_wait() {
        let t0 = Instant::now();
        let mut gate = RebuildGate::new(t0, 0);
        let before = t0 + DEFER_MAX - STEP;
        assert_eq!(gate.observe(before, 1_000_000), Decision::Wait);
        assert_eq!(gate.observe(t0 + DEFER_MAX, 2_000_000), Decision::Rebuild);
    }
}
