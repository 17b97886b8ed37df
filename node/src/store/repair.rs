//! A damaged store is a cache to rebuild, not a reason to stop. Every entry in it is signed
//! and self-verifying, and peers hold the same entries, so when the store cannot be opened
//! (sled reports corruption, or panics on a damaged file), the node moves it aside whole,
//! opens a fresh one, copies into it whatever can still be read and verified, and goes on:
//! catch-up sync fetches the rest from peers. The admin is told what happened in the log and
//! in `/v1/status`. A failure that is not damage (the directory locked by another node, no
//! permission) is returned as it is.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use staffroom_protocol::EntryId;

use super::{migrate, writer, StoreError, Trees};

/// Why a store could not be opened.
pub(super) enum Failure {
    /// Its files are damaged (sled said so, or panicked).
    Damaged(String),
    Other(StoreError),
}

/// Runs `open`, turning sled's panics and corruption errors into [`Failure::Damaged`].
pub(super) fn guarded<T>(open: impl FnOnce() -> Result<T, StoreError>) -> Result<T, Failure> {
    match catch_unwind(AssertUnwindSafe(open)) {
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e)) if is_damage(&e) => Err(Failure::Damaged(e.to_string())),
        Ok(Err(e)) => Err(Failure::Other(e)),
        Err(panic) => Err(Failure::Damaged(format!(
            "the storage engine failed reading it ({})",
            panic_text(panic.as_ref())
        ))),
    }
}

fn is_damage(e: &StoreError) -> bool {
    use std::io::ErrorKind;
    match e {
        StoreError::Sled(sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)) => true,
        StoreError::Sled(sled::Error::Io(io)) => {
            matches!(io.kind(), ErrorKind::UnexpectedEof | ErrorKind::InvalidData)
        }
        StoreError::Corrupt(_) => true,
        _ => false,
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "a panic".to_owned(),
    }
}

/// Moves the damaged store at `dir` aside, to `<dir>.damaged-<unix seconds>[-n]`.
pub(super) fn move_aside(dir: &Path) -> Result<PathBuf, StoreError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = dir
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    for n in 0..100u32 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let aside = dir.with_file_name(format!("{name}.damaged-{secs}{suffix}"));
        if aside.exists() {
            continue;
        }
        std::fs::rename(dir, &aside).map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        return Ok(aside);
    }
    Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
        "too many damaged stores kept beside this one: remove some",
    ))))
}

/// Copies the ledger and the state copy of the damaged store at `aside` into a new store
/// directory `dir`: what the rebuilt store lacks is then counted as lost, and the node's own
/// state is restored.
pub(super) fn carry_records(aside: &Path, dir: &Path) -> Result<(), StoreError> {
    let io = |e| StoreError::Sled(sled::Error::Io(e));
    std::fs::create_dir_all(dir).map_err(io)?;
    for name in [super::ledger::FILE_NAME, super::state_copy::FILE_NAME] {
        match std::fs::copy(aside.join(name), dir.join(name)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

/// What a repair recovered from the damaged store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Salvaged {
    /// Entries read, verified and stored again.
    pub entries: usize,
    /// Records of this node's own state (networks, teachers, policies, keys) copied.
    pub records: usize,
    /// Parts that could not be read at all.
    pub unreadable: Vec<&'static str>,
}

/// Trees holding this node's own state, copied as they are: nothing else has them.
/// Indexes are not copied: storing the entries again rebuilds them.
const STATE_TREES: [&str; 6] = [
    "networks",
    "teachers",
    "file_policies",
    "content_keys",
    "erased",
    "files_erased",
];
/// Entries verified and stored at a time while salvaging.
const SALVAGE_BATCH: usize = 1024;

/// Copies into `trees` (a fresh store, its writer not started) whatever can still be read
/// from the damaged store at `from`. Nothing in it may panic out: sled may panic reading a
/// damaged file, and even closing one.
pub(super) fn salvage(from: &Path, trees: &Trees) -> Salvaged {
    let mut salvaged = Salvaged::default();
    let read = catch_unwind(AssertUnwindSafe(|| {
        // The failed open's handle may still hold the lock for a moment: open_db waits.
        let db = match super::open_db(from) {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(error = %e, "the damaged store cannot be read at all");
                salvaged.unreadable.push("everything");
                return;
            }
        };
        salvage_from(&db, trees, &mut salvaged);
        drop(db);
    }));
    if read.is_err() && salvaged.unreadable.is_empty() {
        salvaged.unreadable.push("the rest");
    }
    salvaged
}

fn salvage_from(db: &sled::Db, trees: &Trees, salvaged: &mut Salvaged) {
    for name in STATE_TREES {
        match catch_unwind(AssertUnwindSafe(|| copy_tree(db, name, trees))) {
            Ok(Ok(copied)) => salvaged.records += copied,
            _ => salvaged.unreadable.push(name),
        }
    }
    // The state's sequence number, so the state copy is judged against what was recovered.
    let seq = catch_unwind(AssertUnwindSafe(|| super::state_copy::carry_seq(db, trees)));
    if !matches!(seq, Ok(Ok(()))) {
        salvaged.unreadable.push("meta");
    }
    let mut entries = 0;
    let copied = catch_unwind(AssertUnwindSafe(|| copy_entries(db, trees, &mut entries)));
    salvaged.entries = entries;
    if !matches!(copied, Ok(Ok(()))) {
        salvaged.unreadable.push("entries");
    }
}

fn copy_tree(from: &sled::Db, name: &str, trees: &Trees) -> Result<usize, StoreError> {
    let source = from.open_tree(name)?;
    let target = trees.named(name);
    let mut copied = 0;
    for item in source.iter() {
        let (key, value) = item?;
        target.insert(key, value)?;
        copied += 1;
    }
    Ok(copied)
}

/// Stores again every entry of the damaged store that still verifies, counting into `stored`
/// as it goes (so a panic midway keeps the count of what was saved).
fn copy_entries(from: &sled::Db, trees: &Trees, stored: &mut usize) -> Result<(), StoreError> {
    let source = from.open_tree("entries")?;
    let mut batch: Vec<(EntryId, Vec<u8>)> = Vec::with_capacity(SALVAGE_BATCH);
    let mut items = source.iter();
    loop {
        batch.clear();
        let mut read = 0;
        for item in items.by_ref().take(SALVAGE_BATCH) {
            read += 1;
            let (key, value) = item?;
            // A damaged key is skipped (the entry's id is recomputed from its bytes anyway),
            // and so is a value that holds no entry with that id, in either layout.
            if key.len() == 32 {
                let id = super::keys::id_suffix(&key);
                if let Some(bytes) = super::record::canonical(&id, &value) {
                    batch.push((id, bytes));
                }
            }
        }
        // Ends when the source does, not at a run of skipped values (damage comes in runs).
        if read == 0 {
            return Ok(());
        }
        for verified in migrate::verify_all(&batch).into_iter().flatten() {
            if writer::insert_one(trees, &verified)? == super::InsertOutcome::Inserted {
                *stored += 1;
            }
        }
    }
}
