//! The store's ledger: an append-only file in the store's directory with the id of every
//! entry the store acknowledged, and of every entry it removed since. sled recovers from a
//! damaged log by dropping everything after the damage, silently; comparing the ledger with
//! the entries present at open turns such a loss into a reported one (the entries are then
//! fetched again from peers by catch-up sync).
//!
//! Each record is 37 bytes: an operation byte (1 added, 2 removed), the 32-byte entry id and
//! the first 4 bytes of BLAKE3 over the two. A record that fails its check (a torn write, or
//! damage) is skipped and counted. An addition is appended after its group commit is
//! durable, so the ledger never names an entry that was not acknowledged; a removal is written
//! before the entry is removed from sled (whose flusher may write it out at any moment), so a
//! crash never makes a removed entry look lost. A failed write is cut back to the last whole
//! record, and the ledger is rewritten from the store at the next open whenever it drifted.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The ledger's file name in the store's directory.
pub(super) const FILE_NAME: &str = "staffroom.ledger";
const RECORD_BYTES: usize = 37;
const ADDED: u8 = 1;
const REMOVED: u8 = 2;

/// What the ledger says the store should hold.
#[derive(Debug, Default)]
pub(super) struct Expected {
    pub ids: HashSet<[u8; 32]>,
    /// Records skipped because they failed their check.
    pub damaged_records: usize,
    /// Records read (a compaction is worth it when far more than `ids`).
    pub records: usize,
}

pub(crate) struct Ledger {
    file: File,
    path: PathBuf,
    /// The file's length: whole records only.
    len: u64,
    /// Additions waiting for their group commit.
    pending: Vec<u8>,
}

impl Ledger {
    /// Opens (or creates) the ledger in the store directory `dir`, reading what it expects.
    pub(super) fn open(dir: &Path) -> io::Result<(Ledger, Expected)> {
        let path = dir.join(FILE_NAME);
        let expected = match File::open(&path) {
            Ok(file) => read(file)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Expected::default(),
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        // A record torn at the end is cut off, so what is appended next stays aligned.
        let len = file.metadata()?.len();
        let torn = len % RECORD_BYTES as u64;
        if torn != 0 {
            file.set_len(len - torn)?;
        }
        let ledger = Ledger {
            file,
            path,
            len: len - torn,
            pending: Vec::new(),
        };
        Ok((ledger, expected))
    }

    pub(crate) fn added(&mut self, id: &[u8; 32]) {
        self.pending.extend_from_slice(&record(ADDED, id));
    }

    /// Notes, at once, that `id` is about to be removed from the store.
    pub(crate) fn removed(&mut self, id: &[u8; 32]) -> io::Result<()> {
        self.append(&record(REMOVED, id))
    }

    /// Appends the additions noted since the last call, synced to disk when `sync` (called
    /// once their group commit is durable). On failure they are kept for the next call.
    pub(crate) fn write(&mut self, sync: bool) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let written = self.append(&pending);
        match written {
            Ok(()) if sync => self.file.sync_data(),
            Ok(()) => Ok(()),
            Err(e) => {
                self.pending = pending;
                Err(e)
            }
        }
    }

    /// Appends whole records, or (cutting back a partial write) none.
    fn append(&mut self, records: &[u8]) -> io::Result<()> {
        match self.file.write_all(records) {
            Ok(()) => {
                self.len += records.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Replaces the ledger with one record per id in `ids` (atomically: a new file renamed
    /// over the old one).
    pub(super) fn rewrite<'a>(
        &mut self,
        ids: impl Iterator<Item = &'a [u8; 32]>,
    ) -> io::Result<()> {
        let fresh = self.path.with_extension("ledger.new");
        let mut out = io::BufWriter::new(File::create(&fresh)?);
        for id in ids {
            out.write_all(&record(ADDED, id))?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let len = file.metadata()?.len();
        std::fs::rename(&fresh, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.len = len;
        Ok(())
    }
}

fn record(op: u8, id: &[u8; 32]) -> [u8; RECORD_BYTES] {
    let mut out = [0u8; RECORD_BYTES];
    out[0] = op;
    out[1..33].copy_from_slice(id);
    let check = blake3::hash(&out[..33]);
    out[33..].copy_from_slice(&check.as_bytes()[..4]);
    out
}

pub(super) fn read(source: impl io::Read) -> io::Result<Expected> {
    let mut expected = Expected::default();
    let mut reader = io::BufReader::new(source);
    let mut buf = [0u8; RECORD_BYTES];
    loop {
        match reader.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(expected),
            Err(e) => return Err(e),
        }
        expected.records += 1;
        let mut id = [0u8; 32];
        id.copy_from_slice(&buf[1..33]);
        if record(buf[0], &id) != buf {
            expected.damaged_records += 1;
            continue;
        }
        match buf[0] {
            ADDED => expected.ids.insert(id),
            REMOVED => expected.ids.remove(&id),
            _ => {
                expected.damaged_records += 1;
                false
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_removals_written_are_read_back_and_damage_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ledger, expected) = Ledger::open(dir.path()).unwrap();
        assert!(expected.ids.is_empty());
        ledger.added(&[1; 32]);
        ledger.added(&[2; 32]);
        ledger.write(true).unwrap();
        ledger.removed(&[1; 32]).unwrap();
        ledger.added(&[3; 32]);
        drop(ledger); // the addition of 3 was never committed

        let (_, expected) = Ledger::open(dir.path()).unwrap();
        assert_eq!(expected.ids, HashSet::from([[2; 32]]));
        assert_eq!(expected.records, 3);

        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[80] ^= 1; // the third record: the removal
        bytes.extend_from_slice(&[1, 2, 3]); // a torn record at the end
        std::fs::write(&path, bytes).unwrap();
        let (mut ledger, expected) = Ledger::open(dir.path()).unwrap();
        assert_eq!(expected.damaged_records, 1);
        assert!(
            expected.ids.contains(&[1; 32]),
            "its removal was the damaged record"
        );
        ledger.added(&[4; 32]);
        ledger.write(true).unwrap();
        let (_, expected) = Ledger::open(dir.path()).unwrap();
        assert!(
            expected.ids.contains(&[4; 32]),
            "appended after the torn record was cut"
        );

        ledger.rewrite([[7u8; 32]].iter()).unwrap();
        drop(ledger);
        let (_, expected) = Ledger::open(dir.path()).unwrap();
        assert_eq!(expected.ids, HashSet::from([[7; 32]]));
        assert_eq!(expected.damaged_records, 0);
    }
}
