//! When the search index holds off for a catch-up, and when it may go on: a catch-up is
//! indexed once the store is quiet, not entry by entry while it is still writing.
//!
//! - A rebuild started mid-catch-up reads a store that is still growing, falls behind the
//!   change log again before it finishes and starts over: a fresh node catching up a million
//!   entries spent ~130 s of CPU on such rebuilds and caught up at half the rate.
//! - Indexing each entry as it lands kept ~0.5 of the two cores busy during that catch-up,
//!   beside the verification and storage it was waiting for: a store taking changes faster
//!   than live posting is left to finish first ([`CatchUpWatch`]).
//!
//! Sans-IO: the indexer feeds both the store's change sequence and the time, and does what
//! they say.

use std::time::{Duration, Instant};

/// How long a window of the store's changes is watched before judging it quiet.
pub const QUIET_WINDOW: Duration = Duration::from_millis(500);
/// At most this many changes in a window count as quiet: live posting, not a catch-up
/// (a catch-up stores thousands a second; a busy network a few).
pub const QUIET_CHANGES_MAX: u64 = 64;
/// More than this many changes within one window are a catch-up, indexed once it ends.
/// Well above what a teacher's import (a few hundred entries) brings: those are indexed at
/// once, and a search right after finds them. A sync of a large history stores thousands a
/// second.
pub const CATCH_UP_CHANGES_MIN: u64 = 1_024;
/// A rebuild waits at most this long for quiet, so a node that never stops catching up
/// still gets its index back.
pub const DEFER_MAX: Duration = Duration::from_secs(300);

/// What the indexer should do about what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The store is quiet (or the hold has lasted [`DEFER_MAX`]): index what was held, or
    /// rebuild if one is due.
    Go,
    /// Look again after [`QUIET_WINDOW`] or less.
    Wait,
}

/// A hold (a catch-up's changes, or a rebuild after a lag): since when, and the window of
/// changes being watched.
#[derive(Debug, Clone, Copy)]
pub struct QuietGate {
    pending_since: Instant,
    window_start: Instant,
    window_start_seq: u64,
}

impl QuietGate {
    /// A hold began at `now`, with the store's change sequence at `seq`.
    pub fn new(now: Instant, seq: u64) -> QuietGate {
        QuietGate {
            pending_since: now,
            window_start: now,
            window_start_seq: seq,
        }
    }

    /// The store's change sequence is `seq` at `now`, and a sync session is bringing
    /// entries in or not (`catching_up`): go on, or wait.
    pub fn observe(&mut self, now: Instant, seq: u64, catching_up: bool) -> Decision {
        if now.saturating_duration_since(self.pending_since) >= DEFER_MAX {
            return Decision::Go;
        }
        if catching_up {
            // Not quiet, however long it pauses: the window starts again once it ends.
            self.window_start = now;
            self.window_start_seq = seq;
            return Decision::Wait;
        }
        if now.saturating_duration_since(self.window_start) < QUIET_WINDOW {
            return Decision::Wait;
        }
        if seq.saturating_sub(self.window_start_seq) <= QUIET_CHANGES_MAX {
            return Decision::Go;
        }
        self.window_start = now;
        self.window_start_seq = seq;
        Decision::Wait
    }
}

/// Whether the store is taking a catch-up rather than live posts: more than
/// [`CATCH_UP_CHANGES_MIN`] changes within one [`QUIET_WINDOW`].
#[derive(Debug, Clone, Copy)]
pub struct CatchUpWatch {
    window_start: Instant,
    window_start_seq: u64,
}

impl CatchUpWatch {
    /// Watching from `now`, with the store's change sequence at `seq`.
    pub fn new(now: Instant, seq: u64) -> CatchUpWatch {
        CatchUpWatch {
            window_start: now,
            window_start_seq: seq,
        }
    }

    /// The store's change sequence is `seq` at `now`: whether a catch-up is under way.
    /// Changes that came while the indexer was away longer than a window (a rebuild, a
    /// network reindexed) are not counted: they say nothing of the rate.
    pub fn observe(&mut self, now: Instant, seq: u64) -> bool {
        if now.saturating_duration_since(self.window_start) >= QUIET_WINDOW {
            self.window_start = now;
            self.window_start_seq = seq;
        }
        seq.saturating_sub(self.window_start_seq) > CATCH_UP_CHANGES_MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Duration = Duration::from_millis(100);

    #[test]
    fn a_quiet_store_goes_on_after_one_window() {
        let t0 = Instant::now();
        let mut gate = QuietGate::new(t0, 10);
        assert_eq!(gate.observe(t0 + STEP, 10, false), Decision::Wait);
        assert_eq!(gate.observe(t0 + QUIET_WINDOW, 10, false), Decision::Go);
    }

    #[test]
    fn live_posting_does_not_hold_a_rebuild() {
        let t0 = Instant::now();
        let mut gate = QuietGate::new(t0, 0);
        assert_eq!(
            gate.observe(t0 + QUIET_WINDOW, QUIET_CHANGES_MAX, false),
            Decision::Go
        );
    }

    #[test]
    fn a_catch_up_holds_the_rebuild_until_it_ends() {
        let t0 = Instant::now();
        let mut gate = QuietGate::new(t0, 0);
        // 2,000 changes a second for ten seconds: never quiet.
        let mut seq = 0;
        for tick in 1..=100u32 {
            seq += 200;
            assert_eq!(
                gate.observe(t0 + STEP * tick, seq, false),
                Decision::Wait,
                "tick {tick}"
            );
        }
        // Then nothing more: quiet within two windows.
        let end = t0 + STEP * 100;
        let rebuilt_at = (1..=10u32)
            .find(|tick| gate.observe(end + STEP * *tick, seq, false) == Decision::Go)
            .map(|tick| STEP * tick);
        assert!(
            rebuilt_at.is_some_and(|after| after <= QUIET_WINDOW * 2),
            "{rebuilt_at:?}"
        );
    }

    #[test]
    fn a_sync_session_pausing_between_requests_is_not_quiet() {
        let t0 = Instant::now();
        let mut gate = QuietGate::new(t0, 0);
        // Two seconds without a change while the session waits for its peer's reads.
        for tick in 1..=20u32 {
            assert_eq!(gate.observe(t0 + STEP * tick, 0, true), Decision::Wait);
        }
        // Once it ends, quiet after one full window.
        let ended = t0 + STEP * 20;
        assert_eq!(gate.observe(ended + STEP, 0, false), Decision::Wait);
        assert_eq!(gate.observe(ended + QUIET_WINDOW, 0, false), Decision::Go);
    }

    #[test]
    fn one_change_over_the_limit_is_not_quiet() {
        let t0 = Instant::now();
        let mut gate = QuietGate::new(t0, 0);
        let seq = QUIET_CHANGES_MAX + 1;
        assert_eq!(gate.observe(t0 + QUIET_WINDOW, seq, false), Decision::Wait);
    }

    #[test]
    fn a_store_that_never_goes_quiet_is_rebuilt_after_the_longest_wait() {
        let t0 = Instant::now();
        let mut gate = QuietGate::new(t0, 0);
        let before = t0 + DEFER_MAX - STEP;
        assert_eq!(gate.observe(before, 1_000_000, false), Decision::Wait);
        assert_eq!(gate.observe(t0 + DEFER_MAX, 2_000_000, false), Decision::Go);
    }

    #[test]
    fn live_posting_and_an_import_are_not_a_catch_up() {
        let t0 = Instant::now();
        let mut watch = CatchUpWatch::new(t0, 0);
        // 60 changes a second, in tens, for a minute.
        for tick in 1..=400u32 {
            let seq = u64::from(tick) * 10;
            assert!(
                !watch.observe(t0 + STEP * tick + STEP * tick / 2, seq),
                "tick {tick}"
            );
        }
        // Then a teacher's import of 1,000 entries as fast as the store takes them.
        let imported = t0 + Duration::from_secs(61);
        assert!(!watch.observe(imported, 4_000 + 1_000));
    }

    #[test]
    fn changes_that_piled_up_while_away_are_not_a_catch_up_but_a_burst_after_is() {
        let t0 = Instant::now();
        let mut watch = CatchUpWatch::new(t0, 5);
        // A minute away (a rebuild, say) while teachers posted 2,000 entries.
        let back = t0 + Duration::from_secs(60);
        assert!(!watch.observe(back, 2_005));
        assert!(!watch.observe(back + STEP, 2_010));
        // Then a sync brings more than the limit within a window.
        assert!(watch.observe(back + STEP * 2, 2_011 + CATCH_UP_CHANGES_MIN));
    }

    #[test]
    fn a_catch_up_is_seen_within_one_window() {
        let t0 = Instant::now();
        let mut watch = CatchUpWatch::new(t0, 0);
        // 12,000 changes a second, as a sync of a large history stores them.
        let seen =
            (1..=10u32).find(|tick| watch.observe(t0 + STEP * *tick, u64::from(*tick) * 1_200));
        assert_eq!(seen, Some(1));
    }
}
