//! How the writer applies each command to the trees: an entry inserted with its index keys
//! (record last, so its presence marks it stored), removed or unindexed, a purge, a join.
//! Nothing here flushes: the group commit in `commit.rs` does, then acknowledges.

use std::sync::atomic::Ordering;

use staffroom_protocol::membership::Action;
use staffroom_protocol::{
    AuthorId, Body, Entry, EntryId, EntryKind, Header, NetworkId, VerifiedEntry,
};

use crate::store::changes::Change;
use crate::store::{keys, listing_index, InsertOutcome, NetworkRecord, StoreError, Trees};

pub(in crate::store) fn insert_one(
    trees: &Trees,
    verified: &VerifiedEntry,
) -> Result<InsertOutcome, StoreError> {
    let id = verified.id();
    if trees.entries.contains_key(id.as_bytes())? {
        return Ok(InsertOutcome::AlreadyStored);
    }
    let header = verified.header();
    if crate::store::erased::covered(trees, &id, header)? {
        return Ok(InsertOutcome::Erased);
    }
    // Every entry is in its network's sync index (in memory, rebuilt from the records at
    // open); only understood entries get the listing indexes. Opaque ones are marked, to be
    // looked at again.
    let author = match verified.entry() {
        Some(entry) => {
            index_understood(trees, entry, &id)?;
            let known = trees
                .authors
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .known(&header.author);
            Some(known.unwrap_or_else(|| {
                let mut authors = trees.authors.write().unwrap_or_else(|e| e.into_inner());
                authors.number(&header.author)
            }))
        }
        None => {
            trees.opaque.insert(id.as_bytes(), &[])?;
            None
        }
    };
    trees
        .entries
        .insert(id.as_bytes(), crate::store::record::pack(verified.bytes()))?;
    trees.ledger().added(&id.0);
    trees.entry_count.fetch_add(1, Ordering::Relaxed);
    let mut sync = trees.sync.write().unwrap_or_else(|e| e.into_inner());
    // Its listing tag: kind, author, understood.
    let tag = listing_index::tag(header, author.unwrap_or(0), author.is_some());
    sync.entry(header.network)
        .or_default()
        .insert_tagged((header.created_at_ms, id.0), tag);
    drop(sync);
    crate::store::erased::apply(trees, verified)?;
    // Followers hear of it once a reader sees it, and what it erased or hid (see
    // `changes.rs`).
    if let Some(change) = change_for(header, &id) {
        trees.changes.push(change);
    }
    Ok(InsertOutcome::Inserted)
}

/// What storing an entry with `header` changes for readers: content is a change of its own;
/// an erasure (which may remove or hide others) or a key grant (which may open sealed
/// entries) changes its network; membership changes nothing a listing shows.
fn change_for(header: &Header, id: &EntryId) -> Option<Change> {
    let kind = EntryKind::from_tag(header.kind).ok()?;
    if header.version != 1 {
        return None;
    }
    match kind {
        EntryKind::Erasure | EntryKind::KeyGrants => Some(Change::Network(header.network)),
        k if k.is_content() => Some(Change::Stored {
            id: *id,
            network: header.network,
        }),
        _ => None,
    }
}

/// The sled indexes of an entry this node understands: its references, its files, the
/// content keys it grants. (Its listings are its sync item's tag.)
pub(in crate::store) fn index_understood(
    trees: &Trees,
    entry: &Entry,
    id: &EntryId,
) -> Result<(), StoreError> {
    for key in keys::by_ref(entry, id) {
        trees.by_ref.insert(key, &[])?;
    }
    for (key, size) in keys::by_file(entry, id) {
        trees.files_by_network.insert(key, &size)?;
    }
    crate::store::content_keys::index_grants(trees, entry, id)
}

/// Entries one purge deletes at most (a removed member's entries made after their removal:
/// few in practice); what is left waits for the next.
const PURGE_MAX: usize = 10_000;

/// Deletes `author`'s entries in `network` made at or after `from_ms` — except joins, with
/// which a former member may come back. Returns how many.
pub(super) fn purge(
    trees: &Trees,
    network: &NetworkId,
    author: &AuthorId,
    from_ms: u64,
) -> Result<usize, StoreError> {
    let mut doomed = Vec::new();
    for id in trees.ids_from(network, from_ms) {
        if doomed.len() >= PURGE_MAX {
            break;
        }
        let id = EntryId(id);
        // A damaged record is left to the admin (it is never served): not this purge's to judge.
        let Some(bytes) = trees.record(&id).ok().flatten() else {
            continue;
        };
        let by_author = Header::parse(&bytes).is_ok_and(|h| h.author == *author);
        // Kept: joins (a former member may rejoin) and deletions of their own entries (which
        // outlive membership).
        let kept = matches!(
            Entry::decode(&bytes).map(|e| e.body),
            Ok(Body::Membership(Action::Join { .. }))
                | Ok(Body::Erasure(staffroom_protocol::Erasure {
                    action: staffroom_protocol::ErasureAction::Delete,
                    ..
                }))
        );
        if by_author && !kept {
            doomed.push((id, bytes));
        }
    }
    for (id, bytes) in &doomed {
        remove_entry(trees, id, bytes)?;
    }
    Ok(doomed.len())
}

/// Deletes one stored entry: its record first (a record present means stored, so a crash
/// midway leaves only index keys that readers skip), then its index keys and sync item.
pub(in crate::store) fn remove_entry(
    trees: &Trees,
    id: &EntryId,
    bytes: &[u8],
) -> Result<(), StoreError> {
    if !trees.entries.contains_key(id.as_bytes())? {
        return Ok(());
    }
    trees.note_removal(id);
    trees.entries.remove(id.as_bytes())?;
    trees.entry_count.fetch_sub(1, Ordering::Relaxed);
    // Its files' bytes go too, once nothing else lists them (the fetcher checks).
    if let Ok(entry) = Entry::decode(bytes) {
        for (key, _) in keys::by_file(&entry, id) {
            trees.files_erased.insert(&key[32..64], &[])?;
        }
    }
    unindex(trees, id, bytes)?;
    if let Ok(header) = Header::parse(bytes) {
        forget(trees, &header, id);
    }
    Ok(())
}

/// Takes a removed entry out of its network's sync index, and tells followers.
fn forget(trees: &Trees, header: &Header, id: &EntryId) {
    let mut sync = trees.sync.write().unwrap_or_else(|e| e.into_inner());
    if let Some(index) = sync.get_mut(&header.network) {
        index.remove(&(header.created_at_ms, id.0));
    }
    drop(sync);
    trees.changes.push(Change::Network(header.network));
}

/// Deletes a record that no longer unpacks (damage), with what its header — kept as it is in
/// every record — names: its sync item (which carries its listings). Its reference keys stay;
/// readers skip index keys without a record.
pub(in crate::store) fn remove_unreadable(trees: &Trees, id: &EntryId) -> Result<(), StoreError> {
    let Some(record) = trees.entries.get(id.as_bytes())? else {
        return Ok(());
    };
    tracing::warn!(entry = %id.short(), "removing a damaged record");
    trees.note_removal(id);
    trees.entries.remove(id.as_bytes())?;
    trees.entry_count.fetch_sub(1, Ordering::Relaxed);
    trees.opaque.remove(id.as_bytes())?;
    if let Some(header) = crate::store::record::header(&record) {
        forget(trees, &header, id);
    }
    Ok(())
}

/// Removes an entry's keys from every index (not its record).
pub(in crate::store) fn unindex(
    trees: &Trees,
    id: &EntryId,
    bytes: &[u8],
) -> Result<(), StoreError> {
    if let Ok(entry) = Entry::decode(bytes) {
        for key in keys::by_ref(&entry, id) {
            trees.by_ref.remove(key)?;
        }
        for (key, _) in keys::by_file(&entry, id) {
            trees.files_by_network.remove(key)?;
        }
    }
    trees.opaque.remove(id.as_bytes())?;
    Ok(())
}

pub(super) fn join(
    trees: &Trees,
    record: &NetworkRecord,
    replace: bool,
) -> Result<bool, StoreError> {
    let exists = trees.networks.contains_key(record.id.as_bytes())?;
    if exists && !replace {
        return Ok(false);
    }
    let value = serde_json::to_vec(record).expect("a network record always serializes");
    trees.networks.insert(record.id.as_bytes(), value)?;
    trees.changes.push(Change::Network(record.id));
    Ok(!exists)
}
