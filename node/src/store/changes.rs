//! What changed in the store, in order, for views derived from it (the search index) to
//! follow without re-reading everything. In memory only and bounded: a follower that falls
//! more than [`CHANGES_MAX`] behind is told it lagged and rebuilds from the store.
//!
//! A change is pushed once the store shows it (see `writer.rs`): a follower that reads the
//! store on hearing of a change always finds it there.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use staffroom_protocol::{EntryId, NetworkId};

/// Changes kept for followers at most (about 80 bytes each).
pub const CHANGES_MAX: usize = 16_384;

/// One change to what a reader of the store would see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A content entry was stored (a new entry, or a new version of one).
    Stored { id: EntryId, network: NetworkId },
    /// Something that may change many of a network's entries at once: a removal, an
    /// erasure or hide, or the network joined, left or renamed.
    Network(NetworkId),
}

/// What a follower gets: the changes after the sequence it asked from, or word that it lagged.
#[derive(Debug, PartialEq, Eq)]
pub enum Since {
    Changes {
        changes: Vec<Change>,
        latest: u64,
    },
    /// Changes were dropped before the follower read them: rebuild from the store, then
    /// follow from `latest`.
    Lagged {
        latest: u64,
    },
}

#[derive(Default)]
struct Log {
    /// The sequence of the newest change (0 when none yet).
    latest: u64,
    recent: VecDeque<Change>,
    /// Bumped to wake followers without a change (someone wants them to act now).
    pokes: u64,
    /// Sync sessions bringing entries in now (see [`Changes::catch_up`]).
    catch_ups: usize,
    /// Until when a peer's pushes count as a catch-up under way (see
    /// [`Changes::pushed_to`]).
    pushed_until: Option<std::time::Instant>,
}

impl Log {
    fn append(&mut self, change: Change) {
        self.latest = self.latest.saturating_add(1);
        if self.recent.len() == CHANGES_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(change);
    }
}

#[derive(Default)]
pub struct Changes {
    log: Mutex<Log>,
    changed: Condvar,
}

impl Changes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, change: Change) {
        // Never merged with the last one: a follower may have read it already (it batches
        // repeats itself).
        let mut log = self.lock();
        log.append(change);
        drop(log);
        self.changed.notify_all();
    }

    /// Pushes `changes` at once, before any follower can read one (to test a lag).
    #[cfg(test)]
    pub(crate) fn push_all(&self, changes: impl IntoIterator<Item = Change>) {
        let mut log = self.lock();
        changes.into_iter().for_each(|c| log.append(c));
        drop(log);
        self.changed.notify_all();
    }

    /// The sequence of the newest change.
    pub fn latest(&self) -> u64 {
        self.lock().latest
    }

    /// Wakes followers waiting in [`Changes::since`] even with nothing new.
    pub fn poke(&self) {
        let mut log = self.lock();
        log.pokes = log.pokes.wrapping_add(1);
        drop(log);
        self.changed.notify_all();
    }

    /// The changes after sequence `after`, at once (none is a `Changes` with none).
    pub fn since(&self, after: u64) -> Since {
        Since::read(&self.lock(), after)
    }

    /// Waits up to `wait` for a poke not yet seen (a stop, a search wanting a commit),
    /// ignoring changes.
    pub fn wait_poke(&self, pokes_seen: &mut u64, wait: Duration) {
        let log = self.lock();
        let seen = *pokes_seen;
        let log = self
            .changed
            .wait_timeout_while(log, wait, |l| l.pokes == seen)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        *pokes_seen = log.pokes;
    }

    /// Like [`Changes::since`], waiting up to `wait` for a change or a poke when there is
    /// none. `pokes_seen` is the follower's own count of pokes: a poke made while it was busy
    /// elsewhere wakes its next wait at once instead of being lost (a stop asked during a
    /// rebuild once waited out a whole commit interval).
    pub fn wait_since(&self, after: u64, pokes_seen: &mut u64, wait: Duration) -> Since {
        let mut log = self.lock();
        let seen = *pokes_seen;
        if log.latest == after && log.pokes == seen && !wait.is_zero() {
            log = self
                .changed
                .wait_timeout_while(log, wait, |l| l.latest == after && l.pokes == seen)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *pokes_seen = log.pokes;
        Since::read(&log, after)
    }
}

/// A sync session bringing entries in: while one lives, followers know more is coming even
/// when the store pauses between requests (a peer reading a thousand entries from a store
/// larger than its cache took 0.75 s, and the search index took that for the end).
#[must_use = "the catch-up is marked only while the guard lives"]
pub struct CatchUp<'a>(&'a Changes);

/// How long after a peer's push its session counts as still bringing entries: the pushing
/// peer reads its next batch meanwhile (0.75 s for a thousand at a million entries).
pub const PUSHED_CATCH_UP: Duration = Duration::from_secs(2);

impl Changes {
    /// Marks a catch-up under way until the guard is dropped.
    pub fn catch_up(&self) -> CatchUp<'_> {
        let mut log = self.lock();
        log.catch_ups = log.catch_ups.saturating_add(1);
        CatchUp(self)
    }

    /// A peer pushed entries in its own sync session (this node answering): a catch-up is
    /// under way for [`PUSHED_CATCH_UP`] more.
    pub fn pushed_to(&self) {
        let until = std::time::Instant::now() + PUSHED_CATCH_UP;
        let mut log = self.lock();
        log.pushed_until = Some(log.pushed_until.map_or(until, |u| u.max(until)));
    }

    /// Whether a sync session is bringing entries in now, this node's or a peer's.
    pub fn catching_up(&self) -> bool {
        let log = self.lock();
        log.catch_ups > 0
            || log
                .pushed_until
                .is_some_and(|until| std::time::Instant::now() < until)
    }
}

impl Drop for CatchUp<'_> {
    fn drop(&mut self) {
        let mut log = self.0.lock();
        log.catch_ups = log.catch_ups.saturating_sub(1);
    }
}

impl Since {
    fn read(log: &Log, after: u64) -> Since {
        let missing = log.latest.saturating_sub(after);
        if missing > log.recent.len() as u64 || after > log.latest {
            return Since::Lagged { latest: log.latest };
        }
        let skip = log.recent.len() - missing as usize;
        Since::Changes {
            changes: log.recent.iter().skip(skip).copied().collect(),
            latest: log.latest,
        }
    }
}

impl super::Store {
    /// What changed lately, to follow.
    pub fn changes(&self) -> &Changes {
        &self.trees.changes
    }

    /// A digest of what the store holds for readers: the networks joined and, for each, the
    /// set of its entries. Equal digests mean equal listings, so a view derived from the store
    /// can tell whether it is still current (the search index keeps one with each commit).
    pub fn contents_digest(&self) -> Result<[u8; 32], super::StoreError> {
        let mut hasher = blake3::Hasher::new();
        for record in self.networks()? {
            hasher.update(record.id.as_bytes());
            self.with_sync_index(&record.id, |index| {
                hasher.update(&(index.len() as u64).to_le_bytes());
                hasher.update(&index.fingerprint(0, index.len()));
            });
            // Keys decide which sealed entries the index could open.
            // (A BTreeMap: its ids come sorted.)
            for key in self.content_keys(&record.id)?.into_keys() {
                hasher.update(&key.0);
            }
        }
        Ok(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(n: u8) -> NetworkId {
        NetworkId([n; 32])
    }

    #[test]
    fn a_catch_up_is_marked_while_a_session_lives_and_for_a_while_after_a_push() {
        let changes = Changes::default();
        assert!(!changes.catching_up());
        let first = changes.catch_up();
        let second = changes.catch_up();
        drop(first);
        assert!(changes.catching_up(), "one session still brings entries");
        drop(second);
        assert!(!changes.catching_up());
        changes.pushed_to();
        assert!(
            changes.catching_up(),
            "a peer's session pushes to this node"
        );
        let until = changes.lock().pushed_until;
        assert!(until.is_some_and(|u| u <= std::time::Instant::now() + PUSHED_CATCH_UP));
        changes.lock().pushed_until = Some(std::time::Instant::now());
        assert!(!changes.catching_up(), "the mark runs out");
    }

    #[test]
    fn followers_get_what_came_after_them() {
        let changes = Changes::default();
        changes.push(Change::Network(net(1)));
        changes.push(Change::Network(net(2)));
        let Since::Changes {
            changes: got,
            latest,
        } = changes.since(1)
        else {
            panic!("not lagged");
        };
        assert_eq!((got, latest), (vec![Change::Network(net(2))], 2));
        assert_eq!(
            changes.since(2),
            Since::Changes {
                changes: vec![],
                latest: 2
            }
        );
    }

    /// Regression: a repeat was once merged into the change before it, which a follower had
    /// already read (leave, then rejoin, lost the rejoin).
    #[test]
    fn a_repeated_change_reaches_a_follower_that_read_the_first() {
        let changes = Changes::default();
        changes.push(Change::Network(net(1)));
        let Since::Changes { latest, .. } = changes.since(0) else {
            panic!("not lagged");
        };
        changes.push(Change::Network(net(1)));
        assert_eq!(
            changes.since(latest),
            Since::Changes {
                changes: vec![Change::Network(net(1))],
                latest: 2
            }
        );
    }

    #[test]
    fn a_follower_too_far_behind_is_told_to_rebuild() {
        let changes = Changes::default();
        for i in 0..=CHANGES_MAX {
            changes.push(Change::Network(net((i % 2) as u8)));
        }
        let latest = CHANGES_MAX as u64 + 1;
        assert_eq!(changes.since(0), Since::Lagged { latest });
        // One behind the oldest kept is still fine.
        assert!(matches!(changes.since(1), Since::Changes { .. }));
        // A sequence from the future (a follower of an older store) is a lag too.
        assert_eq!(changes.since(latest + 5), Since::Lagged { latest });
    }

    #[test]
    fn a_poke_wakes_a_waiting_follower() {
        let changes = std::sync::Arc::new(Changes::default());
        let poker = changes.clone();
        let started = std::time::Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            poker.poke();
        });
        let got = changes.wait_since(0, &mut 0, Duration::from_secs(10));
        t.join().expect("poker thread");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            got,
            Since::Changes {
                changes: vec![],
                latest: 0
            }
        );
    }

    /// Regression: a poke made while the follower was not waiting (the search indexer in a
    /// rebuild, asked to stop) was lost, and its next wait ran its whole length.
    #[test]
    fn a_poke_made_before_the_wait_is_not_lost() {
        let changes = Changes::default();
        let mut seen = 0;
        changes.poke();
        let started = std::time::Instant::now();
        changes.wait_since(0, &mut seen, Duration::from_secs(10));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the poke was lost"
        );
        // Seen now: the next wait waits.
        let started = std::time::Instant::now();
        changes.wait_since(0, &mut seen, Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
