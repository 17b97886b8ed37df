//! Erasures in the store: what a purging erasure (delete, remove) covers is taken out and never
//! stored again. Runs on the writer thread, inside the group that stores the entries, so an
//! erasure and the entry it covers can arrive in either order, or together, with one result.
//!
//! The `erased` tree keeps, per erasure, only what recognises its target again — the target's
//! author and time, and the action — never content, under `network ‖ target id ‖ erasure id`.
//! It is never pruned. With the network in the key, an erasure in one network neither reaches
//! nor hides another's; with the erasure's id in it, an erasure that misstates its target
//! (and so covers nothing) cannot stand in the way of one that states it truly. Hides are
//! recorded the same way, but only keep their target out of listings.
//!
//! The files a purged resource listed go into `files_erased` (root → nothing): the fetcher
//! deletes their bytes, partial transfers included, once no stored entry lists them any more.

use staffroom_protocol::{
    AuthorId, Body, EntryId, ErasureAction, Header, NetworkId, VerifiedEntry,
};

use super::{keys, StoreError, Trees};

/// The action recorded for an admin's purge of an entry from this node alone (no erasure
/// entry: the erasure id in its key is all zeros).
const LOCAL_PURGE: u8 = 0;

/// `author ‖ created_at_ms ‖ action`.
const RECORD_BYTES: usize = 32 + 8 + 1;
/// Erasures of one entry looked at, at most.
const ERASURES_PER_ENTRY_MAX: usize = 64;

fn prefix(network: &NetworkId, id: &EntryId) -> Vec<u8> {
    let mut key = network.as_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// Whether a purging erasure (delete, remove) this store holds covers the entry `id` with
/// `header`: such an entry is not stored.
pub(super) fn covered(trees: &Trees, id: &EntryId, header: &Header) -> Result<bool, StoreError> {
    let (network, author, at) = (&header.network, &header.author, header.created_at_ms);
    matching(trees, id, (network, author, at), |a| {
        a != ErasureAction::Hide as u8
    })
}

/// Whether a facilitator's hide this store holds covers the entry: it is kept and synced, but
/// not listed.
pub(super) fn hidden(
    trees: &Trees,
    id: &EntryId,
    network: &NetworkId,
    author: &AuthorId,
    created_at_ms: u64,
) -> Result<bool, StoreError> {
    let target = (network, author, created_at_ms);
    matching(trees, id, target, |a| a == ErasureAction::Hide as u8)
}

/// Whether an erasure whose action passes `action` names `id` with this network, author and
/// time.
fn matching(
    trees: &Trees,
    id: &EntryId,
    (network, author, created_at_ms): (&NetworkId, &AuthorId, u64),
    action: impl Fn(u8) -> bool,
) -> Result<bool, StoreError> {
    let records = trees.erased.scan_prefix(prefix(network, id));
    for item in records.take(ERASURES_PER_ENTRY_MAX) {
        let (_, record) = item?;
        let matches = record.len() == RECORD_BYTES
            && record[..32] == author.0
            && record[32..40] == created_at_ms.to_be_bytes()
            && action(record[40]);
        if matches {
            return Ok(true);
        }
    }
    Ok(false)
}

/// If `verified` is an erasure, records it; if it purges, takes out the entry it covers, if
/// held, and marks that entry's files for deletion.
pub(super) fn apply(trees: &Trees, verified: &VerifiedEntry) -> Result<(), StoreError> {
    let Some(Body::Erasure(erasure)) = verified.entry().map(|e| &e.body) else {
        return Ok(());
    };
    let network = verified.header().network;
    let mut record = Vec::with_capacity(RECORD_BYTES);
    record.extend_from_slice(erasure.target_author.as_bytes());
    record.extend_from_slice(&erasure.target_created_at_ms.to_be_bytes());
    record.push(erasure.action as u8);
    let mut key = prefix(&network, &erasure.target);
    key.extend_from_slice(verified.id().as_bytes());
    trees.erased.insert(key, record)?;
    if !erasure.action.purges() {
        return Ok(());
    }
    let Some(bytes) = trees.entries.get(erasure.target.as_bytes())? else {
        return Ok(());
    };
    let held = Header::parse(&bytes).is_ok_and(|h| {
        h.network == network
            && h.author == erasure.target_author
            && h.created_at_ms == erasure.target_created_at_ms
    });
    if held {
        super::writer::remove_entry(trees, &erasure.target, &bytes)?;
        tracing::info!(entry = %erasure.target.short(), action = erasure.action.name(), "erased");
    }
    Ok(())
}

/// An admin's purge of `id` from this node alone (for legal reasons): the entry and its files
/// go, and a record keeps it from being stored here again; other nodes are not told. Returns
/// whether the entry was here.
pub(super) fn purge_local(trees: &Trees, id: &EntryId) -> Result<bool, StoreError> {
    let Some(bytes) = trees.entries.get(id.as_bytes())? else {
        return Ok(false);
    };
    let Ok(header) = Header::parse(&bytes) else {
        return Ok(false);
    };
    let mut record = Vec::with_capacity(RECORD_BYTES);
    record.extend_from_slice(header.author.as_bytes());
    record.extend_from_slice(&header.created_at_ms.to_be_bytes());
    record.push(LOCAL_PURGE);
    let mut key = prefix(&header.network, id);
    key.extend_from_slice(&[0u8; 32]);
    trees.erased.insert(key, record)?;
    super::writer::remove_entry(trees, id, &bytes)?;
    tracing::info!(entry = %id.short(), "purged from this node by its admin");
    Ok(true)
}

/// Entries one network purge deletes at most; the caller repeats until none are left.
pub(super) const NETWORK_PURGE_MAX: usize = 4096;

/// Deletes up to [`NETWORK_PURGE_MAX`] of `network`'s entries here (its files follow, through
/// the fetcher), and its file policy. Returns how many went; erasure records stay, so what
/// was erased is refused again if the node follows the network anew.
pub(super) fn purge_network(trees: &Trees, network: &NetworkId) -> Result<usize, StoreError> {
    let mut doomed = Vec::new();
    for item in trees.by_time.scan_prefix(network.as_bytes()) {
        if doomed.len() >= NETWORK_PURGE_MAX {
            break;
        }
        let (key, _) = item?;
        let id = keys::id_suffix(&key);
        match trees.entries.get(id.as_bytes())? {
            Some(bytes) => doomed.push((id, bytes)),
            // An index key a crash left without its record.
            None => {
                trees.by_time.remove(key)?;
            }
        }
    }
    for (id, bytes) in &doomed {
        super::writer::remove_entry(trees, id, bytes)?;
    }
    trees.file_policies.remove(network.as_bytes())?;
    Ok(doomed.len())
}
