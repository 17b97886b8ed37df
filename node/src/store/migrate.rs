//! One-time work when a newer node opens a store, before anything else reads or writes it
//! (the writer thread has not started yet, so this is the only writer).
//!
//! - The rules of version 1 were tightened once (issue 7: fixed character sets, blank labels,
//!   bidirectional controls). Entries stored under the earlier rules that break the present
//!   ones would get this node blamed by every upgraded peer it served them to, so they are
//!   moved to a `quarantine` tree: kept, but no longer listed, synced or relayed.
//! - Entries stored opaquely (a kind this node did not know) that it now understands, and that
//!   pass every rule of their kind, lose their opaque mark: the open's scan then lists them.
//! - Stores that kept entries' canonical bytes as they are get them again as records
//!   (`record.rs`, compressed where that pays), once, first.
//!
//! Index trees now held in memory are dropped by the open, after its scan (`open.rs`).
//!
//! The first two check signatures again, spread over every core.

use staffroom_protocol::entry::FORMAT_VERSION;
use staffroom_protocol::{verify_entry, EntryId, EntryKind, VerifiedEntry};

use super::keys;
use super::writer::index_understood;
use super::{StoreError, Trees};

/// The rules stored entries were last checked against. 1: before issue 7's tightening.
pub const RULES_VERSION: u32 = 2;
const RULES_VERSION_KEY: &[u8] = b"rules_version";
const UNDERSTOOD_KEY: &[u8] = b"understood_kinds";
/// The layout of the `entries` tree's values. 1: the canonical bytes; 2: records
/// (`record.rs`: a tag, the header, the rest compressed or not).
pub const RECORD_LAYOUT: u32 = 2;
const RECORD_LAYOUT_KEY: &[u8] = b"record_layout";
/// Records written per sled batch while their layout changes.
const REWRITE_BATCH_ENTRIES: usize = 4096;
/// ... and at most this many bytes of records.
const REWRITE_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Entries checked per batch of parallel verification.
const BATCH_ENTRIES: usize = 4096;

/// What opening the store changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    pub quarantined: usize,
    pub newly_understood: usize,
    /// Entries stored again as records (`record.rs`).
    pub packed: usize,
}

pub(super) fn run(trees: &Trees) -> Result<Migrated, StoreError> {
    let mut done = Migrated::default();
    // First: everything after reads records.
    if layout(trees, RECORD_LAYOUT_KEY)? < RECORD_LAYOUT {
        done.packed = pack_records(trees)?;
        trees
            .meta
            .insert(RECORD_LAYOUT_KEY, &RECORD_LAYOUT.to_be_bytes())?;
    }
    let checked = trees
        .meta
        .get(RULES_VERSION_KEY)?
        .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
        .map_or(1, u32::from_be_bytes);
    if checked < RULES_VERSION {
        done.quarantined = quarantine_invalid(trees)?;
        let version = RULES_VERSION.to_be_bytes();
        trees.meta.insert(RULES_VERSION_KEY, &version)?;
    }
    // Opaque entries are looked at again only when this node understands other kinds than the
    // node that last opened the store: not at every start.
    let understood = understood_kinds();
    if trees.meta.get(UNDERSTOOD_KEY)?.as_deref() != Some(&understood[..]) {
        done.newly_understood = index_newly_understood(trees)?;
        trees.meta.insert(UNDERSTOOD_KEY, understood)?;
    }
    trees.db.flush()?;
    Ok(done)
}

/// A layout version the store records under `key` in `meta`; 1 where it records none.
fn layout(trees: &Trees, key: &[u8]) -> Result<u32, StoreError> {
    Ok(trees
        .meta
        .get(key)?
        .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
        .map_or(1, u32::from_be_bytes))
}

/// Stores each entry's bytes again as a record (`record.rs`). A value that already is one (a
/// crash cut an earlier pass short) or that is neither (damage) is left as it is.
fn pack_records(trees: &Trees) -> Result<usize, StoreError> {
    let mut packed = 0;
    let mut batch = sled::Batch::default();
    let mut batch_bytes = 0;
    for item in trees.entries.iter() {
        let (key, value) = item?;
        let Ok(id) = <[u8; 32]>::try_from(&key[..]) else {
            continue;
        };
        if blake3::hash(&value).as_bytes() != &id {
            continue;
        }
        batch_bytes += value.len();
        batch.insert(key, super::record::pack(&value));
        packed += 1;
        // Bounded by bytes too: entries go up to 64 KiB.
        if packed % REWRITE_BATCH_ENTRIES == 0 || batch_bytes >= REWRITE_BATCH_BYTES {
            trees.entries.apply_batch(std::mem::take(&mut batch))?;
            batch_bytes = 0;
        }
    }
    trees.entries.apply_batch(batch)?;
    Ok(packed)
}

/// The format version and kinds this node understands, as the store records them.
fn understood_kinds() -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    out.extend(EntryKind::ALL.iter().map(|k| k.tag()));
    out
}

/// Verifies `(id, bytes)` pairs on every core. The clock is not checked again: it played its
/// part when each entry arrived.
pub(super) fn verify_all(batch: &[(EntryId, Vec<u8>)]) -> Vec<Option<VerifiedEntry>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = batch.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(_, bytes)| verify_entry(bytes, u64::MAX).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn quarantine_invalid(trees: &Trees) -> Result<usize, StoreError> {
    let mut quarantined = 0;
    let mut batch = Vec::with_capacity(BATCH_ENTRIES);
    let mut entries = trees.entries.iter();
    loop {
        batch.clear();
        let mut read = 0;
        for item in entries.by_ref().take(BATCH_ENTRIES) {
            read += 1;
            let (key, record) = item?;
            let id = keys::id_suffix(&key);
            // A record that does not unpack is damage, reported when read; not judged here.
            if let Ok(bytes) = super::record::unpack(&record) {
                batch.push((id, bytes));
            }
        }
        // Ends when the records do, not at a run of damaged ones.
        if read == 0 {
            return Ok(quarantined);
        }
        let verdicts = verify_all(&batch);
        for ((id, bytes), verdict) in batch.iter().zip(verdicts) {
            if verdict.is_none() {
                quarantine(trees, id, bytes)?;
                quarantined += 1;
            }
        }
    }
}

/// Moves an entry out of every index and into the quarantine tree.
fn quarantine(trees: &Trees, id: &EntryId, bytes: &[u8]) -> Result<(), StoreError> {
    tracing::warn!(entry = %id.short(), "quarantining an entry the present rules refuse");
    super::writer::unindex(trees, id, bytes)?;
    trees.quarantine.insert(id.as_bytes(), bytes)?;
    trees.note_removal(id);
    trees.entries.remove(id.as_bytes())?;
    Ok(())
}

/// Entries stored opaquely that this version of the node understands, checked with every rule
/// of their kind, get their reference and file indexes and lose their opaque mark (the open's
/// scan, after this, tags them as listed).
fn index_newly_understood(trees: &Trees) -> Result<usize, StoreError> {
    let mut batch = Vec::new();
    for item in trees.opaque.iter() {
        let (key, _) = item?;
        let id = keys::id_suffix(&key);
        match trees.entries.get(&key)? {
            Some(record) => {
                if let Ok(bytes) = super::record::unpack(&record) {
                    batch.push((id, bytes));
                }
            }
            None => {
                trees.opaque.remove(&key)?;
            }
        }
    }
    let mut indexed = 0;
    for ((id, bytes), verdict) in batch.iter().zip(verify_all(&batch)) {
        let Some(verified) = verdict else { continue };
        if let Some(entry) = verified.entry() {
            // An erasure this node stored while the kind was opaque here covered nothing
            // then (what it covers depends on the kind); now it does, as on a node that knew
            // the kind when both arrived.
            if super::erased::covered(trees, id, verified.header())? {
                super::writer::remove_entry(trees, id, bytes)?;
                trees.opaque.remove(id.as_bytes())?;
                tracing::info!(entry = %id.short(), "an entry now understood was erased: removed");
                continue;
            }
            index_understood(trees, entry, id)?;
            trees.opaque.remove(id.as_bytes())?;
            indexed += 1;
        }
    }
    Ok(indexed)
}
