//! The store directory's own lock, held by an open store from before sled opens until the
//! last handle is gone. sled's lock on its `db` file is not enough: the open closes sled and
//! opens it again (see `open.rs`), releasing that lock for a few milliseconds, and a backup or
//! restore that took it then would copy, or write over, a store the node is about to write.
//! `staffroom backup` and `restore` take this lock too (`backup.rs`).
//!
//! An `flock` on the directory itself: nothing to create or leave behind, and a damaged store
//! moved aside takes its lock with it.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::StoreError;

/// How long taking the lock waits for a store of this process that is closing (a node
/// restarting in the same process) before calling the directory in use.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// The held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Takes the lock on `dir`, which must exist, waiting up to [`LOCK_WAIT`]; `Locked` when
    /// another store holds it.
    pub(crate) fn take(dir: &Path) -> Result<DirLock, StoreError> {
        let started = Instant::now();
        loop {
            match DirLock::try_take(dir).map_err(sled::Error::Io)? {
                Some(lock) => return Ok(lock),
                None if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                None => return Err(StoreError::Locked),
            }
        }
    }

    /// The lock on `dir` if no one holds it, at once.
    pub(crate) fn try_take(dir: &Path) -> io::Result<Option<DirLock>> {
        let file = File::open(dir)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(DirLock { _dir: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_cannot_be_taken_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::try_take(dir.path()).unwrap().expect("free");
        assert!(DirLock::try_take(dir.path()).unwrap().is_none());
        drop(held);
        assert!(DirLock::try_take(dir.path()).unwrap().is_some());
    }

    #[test]
    fn an_open_store_holds_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        assert!(DirLock::try_take(dir.path()).unwrap().is_none());
        assert!(matches!(
            crate::store::Store::open(dir.path()),
            Err(StoreError::Locked)
        ));
        drop(store);
        assert!(DirLock::try_take(dir.path()).unwrap().is_some());
    }
}
