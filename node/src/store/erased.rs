//! Erasures in the store: what a purging erasure (delete, remove) covers is taken out and never
//! stored again. Runs on the writer thread, inside the group that stores the entries, so an
//! erasure and the entry it covers can arrive in either order, or together, with one result.
//!
//! The `erased` tree keeps only what recognises a target again — never content — under
//! `network ‖ target id ‖ target author ‖ target time ‖ action`, with the first erasure's id
//! as value. It is never pruned. Checking an entry is a few exact lookups with its own
//! header's author and time, so erasures that misstate their target (and so cover nothing)
//! can never stand in the way of one that states it truly, however many there are. With the
//! network in the key, an erasure in one network neither reaches nor hides another's. Hides
//! are recorded the same way, but only keep their target out of listings.
//!
//! Only content (kinds 1–5, 8 and 10) and sources (13) are covered: membership operations,
//! erasures, key grants and publications are the network's own record, which no erasure
//! takes out. An erasure of a kind this node does not know yet covers nothing until it does
//! (`migrate.rs` then removes what it covers).
//!
//! The files a purged resource listed go into `files_erased` (by `writer::remove_entry`): the
//! fetcher deletes their bytes, partial transfers included, once no stored entry lists them.

use staffroom_protocol::{
    AuthorId, Body, EntryId, EntryKind, ErasureAction, Header, NetworkId, VerifiedEntry,
};

use super::{StoreError, Trees};

/// The action recorded for an admin's purge of an entry from this node alone (no erasure
/// entry: the value is all zeros).
const LOCAL_PURGE: u8 = 0;
/// Actions that keep an entry out of the store.
const PURGING: [u8; 3] = [
    ErasureAction::Delete as u8,
    ErasureAction::Remove as u8,
    LOCAL_PURGE,
];

fn record_key(
    network: &NetworkId,
    id: &EntryId,
    (author, created_at_ms): (&AuthorId, u64),
    action: u8,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(32 + 32 + 32 + 8 + 1);
    key.extend_from_slice(network.as_bytes());
    key.extend_from_slice(id.as_bytes());
    key.extend_from_slice(author.as_bytes());
    key.extend_from_slice(&created_at_ms.to_be_bytes());
    key.push(action);
    key
}

fn erasable(kind: u8) -> bool {
    EntryKind::from_tag(kind).is_ok_and(EntryKind::is_erasable)
}

/// Whether a purging erasure (delete, remove, or an admin's local purge) this store holds
/// covers the entry `id` with `header`: such an entry is not stored.
pub(super) fn covered(trees: &Trees, id: &EntryId, header: &Header) -> Result<bool, StoreError> {
    if header.version != 1 || !erasable(header.kind) {
        return Ok(false);
    }
    let target = (&header.author, header.created_at_ms);
    for action in PURGING {
        if trees
            .erased
            .contains_key(record_key(&header.network, id, target, action))?
        {
            return Ok(true);
        }
    }
    Ok(false)
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
    let key = record_key(
        network,
        id,
        (author, created_at_ms),
        ErasureAction::Hide as u8,
    );
    Ok(trees.erased.contains_key(key)?)
}

/// If `verified` is an erasure, records it; if it purges, takes out the entry it covers, if
/// held (and content), and so marks that entry's files for deletion.
pub(super) fn apply(trees: &Trees, verified: &VerifiedEntry) -> Result<(), StoreError> {
    let Some(Body::Erasure(erasure)) = verified.entry().map(|e| &e.body) else {
        return Ok(());
    };
    let network = verified.header().network;
    let target = (&erasure.target_author, erasure.target_created_at_ms);
    let key = record_key(&network, &erasure.target, target, erasure.action as u8);
    if !trees.erased.contains_key(&key)? {
        trees
            .erased
            .insert(key, verified.id().as_bytes().as_slice())?;
    }
    if !erasure.action.purges() {
        return Ok(());
    }
    let bytes = match trees.record(&erasure.target) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(()),
        // Damaged past reading: what the erasure asks for anyway.
        Err(StoreError::Corrupt(_)) => {
            return super::writer::remove_unreadable(trees, &erasure.target);
        }
        Err(e) => return Err(e),
    };
    let held = Header::parse(&bytes).is_ok_and(|h| {
        h.network == network
            && h.author == erasure.target_author
            && h.created_at_ms == erasure.target_created_at_ms
            && h.version == 1
            && erasable(h.kind)
    });
    if held {
        super::writer::remove_entry(trees, &erasure.target, &bytes)?;
        tracing::info!(entry = %erasure.target.short(), action = erasure.action.name(), "erased");
    }
    Ok(())
}

/// An admin's purge of `id` from this node alone (for legal reasons): the entry and its files
/// go, and a record keeps it from being stored here again; other nodes are not told. Returns
/// whether the entry was here (and is content: the network's own record is never purged).
pub(super) fn purge_local(trees: &Trees, id: &EntryId) -> Result<bool, StoreError> {
    // A record damaged past unpacking still has its header as it was written.
    let (bytes, header) = match trees.record(id) {
        Ok(Some(bytes)) => {
            let header = Header::parse(&bytes).ok();
            (Some(bytes), header)
        }
        Ok(None) => return Ok(false),
        Err(StoreError::Corrupt(_)) => {
            let record = trees.entries.get(id.as_bytes())?;
            (None, record.and_then(|r| super::record::header(&r)))
        }
        Err(e) => return Err(e),
    };
    let Some(header) = header else {
        return Ok(false);
    };
    if header.version != 1 || !erasable(header.kind) {
        return Ok(false);
    }
    let target = (&header.author, header.created_at_ms);
    let key = record_key(&header.network, id, target, LOCAL_PURGE);
    trees.erased.insert(key, &[0u8; 32])?;
    match bytes {
        Some(bytes) => super::writer::remove_entry(trees, id, &bytes)?,
        None => super::writer::remove_unreadable(trees, id)?,
    }
    tracing::info!(entry = %id.short(), "purged from this node by its admin");
    Ok(true)
}

/// Entries one network purge deletes at most; the caller repeats until none are left.
pub(super) const NETWORK_PURGE_MAX: usize = 4096;

/// Deletes up to [`NETWORK_PURGE_MAX`] of `network`'s entries here (its files follow, through
/// the fetcher), and its file policy; at the last step, its keys. Returns how many went;
/// erasure records stay, so what was erased is refused again if the node follows the network
/// anew.
pub(super) fn purge_network(trees: &Trees, network: &NetworkId) -> Result<usize, StoreError> {
    let mut doomed = Vec::new();
    for id in trees.ids_from(network, 0) {
        if doomed.len() >= NETWORK_PURGE_MAX {
            break;
        }
        let id = EntryId(id);
        // The sync index holds only stored records (rebuilt from them at open).
        match trees.record(&id) {
            Ok(Some(bytes)) => doomed.push((id, Some(bytes))),
            Ok(None) => {}
            Err(StoreError::Corrupt(_)) => doomed.push((id, None)),
            Err(e) => return Err(e),
        }
    }
    for (id, bytes) in &doomed {
        match bytes {
            Some(bytes) => super::writer::remove_entry(trees, id, bytes)?,
            None => super::writer::remove_unreadable(trees, id)?,
        }
    }
    trees.file_policies.remove(network.as_bytes())?;
    if doomed.is_empty() {
        // Last step: the keys go too, so nothing of the network can be opened here.
        super::content_keys::unindex_network(trees, network)?;
    }
    Ok(doomed.len())
}
