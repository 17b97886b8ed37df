//! Making each group commit survive a power cut, not only a crash of the process.
//!
//! sled's flush writes its log with `sync_file_range`: the pages reach the device, but
//! neither the file's new size nor the device's volatile write cache is made durable, and the
//! blob files it keeps values too large for the log in are never synced at all. So after each
//! flush the writer calls [`Durable::sync`]: `fsync` on blob files new since the last group
//! and on their directory (first, as the log points at them), then `fdatasync` on the log.
//! An acknowledged write is on stable storage once `sync` returns.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What a store's acknowledgement promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged writes survive a power cut (fsync at every group commit). The default.
    PowerCut,
    /// Acknowledged writes survive the process being killed, not a power cut: sled's flush
    /// alone. For benchmarks that show what `PowerCut` costs.
    ProcessCrash,
}

/// The files a group commit syncs.
pub(crate) struct Durable {
    log: File,
    blobs: PathBuf,
    synced_blobs: HashSet<OsString>,
}

impl Durable {
    /// For the sled database in `dir` (already open, so its files exist).
    pub(crate) fn open(dir: &Path) -> io::Result<Durable> {
        let log = File::open(dir.join("db"))?;
        let blobs = dir.join("blobs");
        // Blobs from an earlier run may not have reached the disk (a crash of this process
        // leaves them in the page cache): synced once now.
        let synced_blobs = blob_names(&blobs)?;
        for name in &synced_blobs {
            sync_file(&blobs.join(name))?;
        }
        if blobs.is_dir() {
            sync_dir(&blobs)?;
        }
        // The log's and the blobs' directory entries themselves.
        sync_dir(dir)?;
        Ok(Durable {
            log,
            blobs,
            synced_blobs,
        })
    }

    /// Syncs what the last flush wrote.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        let present = blob_names(&self.blobs)?;
        let mut new_blobs = false;
        for name in present.difference(&self.synced_blobs) {
            sync_file(&self.blobs.join(name))?;
            new_blobs = true;
        }
        if new_blobs {
            sync_dir(&self.blobs)?;
        }
        self.synced_blobs = present;
        self.log.sync_data()
    }
}

fn blob_names(blobs: &Path) -> io::Result<HashSet<OsString>> {
    match std::fs::read_dir(blobs) {
        Ok(listing) => listing.map(|e| e.map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

/// Syncs the file at `path`; one removed meanwhile (superseded by sled) is no error.
fn sync_file(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes the entries of directory `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_blobs_are_synced_once_and_removed_ones_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"log").unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs/1"), b"old").unwrap();
        let mut durable = Durable::open(dir.path()).unwrap();
        assert_eq!(durable.synced_blobs.len(), 1);
        std::fs::write(dir.path().join("blobs/2"), b"new").unwrap();
        durable.sync().unwrap();
        assert!(durable.synced_blobs.contains(&OsString::from("2")));
        std::fs::remove_file(dir.path().join("blobs/1")).unwrap();
        durable.sync().unwrap();
        assert_eq!(
            durable.synced_blobs.len(),
            1,
            "the removed blob is forgotten"
        );
    }

    #[test]
    fn a_store_without_a_log_is_an_error_not_a_silent_no_op() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Durable::open(dir.path()).is_err());
    }
}
