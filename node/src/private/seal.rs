//! Sealing and opening content for this node's teachers. The node seals with the network's
//! writing key what a member's CLI sends before signing it, and opens sealed entries for
//! readers who are members; it never opens anything for anyone else.

use std::collections::BTreeSet;

use staffroom_protocol::private::keeper::{writing_key as protocol_writing_key, KeeperView};
use staffroom_protocol::private::{crypto, KeyId, Sealed};
use staffroom_protocol::{AuthorId, Body, EntryKind, NetworkId, NodeKey};

use crate::ingest::Ingest;
use crate::store::{ListFilter, StoreError, StoredEntry, LIST_LIMIT_MAX};

#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error("network {} is not private: its content is not sealed", .0.short())]
    NotPrivate(NetworkId),
    #[error("{} is not a member of network {}", .0.short(), .1.short())]
    NotMember(AuthorId, NetworkId),
    #[error(
        "this node holds no content key for network {} yet: a facilitator's node makes one and \
         shares it with members' nodes within seconds of their joining; try again shortly",
        .0.short()
    )]
    NoKey(NetworkId),
    #[error(transparent)]
    Seal(#[from] crypto::SealError),
    #[error("no randomness for a nonce: {0}")]
    Random(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seals `body`, to be signed by `author` at `created_at_ms` in `network`.
pub fn seal(
    ingest: &Ingest,
    node: NodeKey,
    (network, author, created_at_ms): (NetworkId, AuthorId, u64),
    body: &Body,
) -> Result<Sealed, SealingError> {
    let key = writing_key(ingest, node, network, author)?;
    let mut nonce = [0u8; 24];
    let random = crate::secret_file::random_32().map_err(SealingError::Random)?;
    nonce.copy_from_slice(&random[..24]);
    Ok(crypto::seal_body(
        (&network, &author, created_at_ms),
        &key,
        nonce,
        body,
    )?)
}

/// The key `author` (a member) writes with in `network` now, as this node sees it.
pub fn writing_key(
    ingest: &Ingest,
    node: NodeKey,
    network: NetworkId,
    author: AuthorId,
) -> Result<[u8; 32], SealingError> {
    let roster = ingest.rosters().get(&network)?;
    if !roster.policy.is_some_and(|p| p.is_private()) {
        return Err(SealingError::NotPrivate(network));
    }
    if !roster.is_member(&author) {
        return Err(SealingError::NotMember(author, network));
    }
    let store = ingest.store();
    let held = store.content_keys(&network)?;
    let index = store.key_index(&network, &node)?;
    if !index.complete {
        return Err(SealingError::NoKey(network));
    }
    let bound: BTreeSet<NodeKey> = roster.nodes.values().flatten().copied().collect();
    let held_ids: BTreeSet<KeyId> = held.keys().copied().collect();
    let view = KeeperView {
        me: node,
        bound: &bound,
        may_grant: false,
        history: false,
        keys: &index.records,
        held: &held_ids,
    };
    protocol_writing_key(&view)
        .and_then(|id| held.get(&id).copied())
        .ok_or(SealingError::NoKey(network))
}

/// The key that opens a sealed file whose header names `key_id`, for `reader`: from a
/// private network they are a member of that lists `root`.
pub fn file_key(
    ingest: &Ingest,
    reader: &AuthorId,
    root: &staffroom_protocol::FileRoot,
    key_id: &KeyId,
) -> Result<Option<[u8; 32]>, StoreError> {
    let store = ingest.store();
    for record in store.networks()? {
        let roster = ingest.rosters().get(&record.id)?;
        if !roster.policy.is_some_and(|p| p.is_private()) || !roster.is_member(reader) {
            continue;
        }
        let Some(key) = store.content_keys(&record.id)?.get(key_id).copied() else {
            continue;
        };
        if store.network_lists_root(&record.id, root)? {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// Opens the sealed entries in `entries` whose network `reader` is a member of, where this
/// node holds the key; leaves the rest sealed.
pub fn open_for(
    ingest: &Ingest,
    reader: &AuthorId,
    entries: &mut [StoredEntry],
) -> Result<(), StoreError> {
    for stored in entries.iter_mut() {
        let Body::Sealed(sealed) = &stored.entry.body else {
            continue;
        };
        let network = stored.entry.network;
        if !ingest.rosters().get(&network)?.is_member(reader) {
            continue;
        }
        let keys = ingest.store().content_keys(&network)?;
        let Some(key) = keys.get(&sealed.key_id) else {
            continue;
        };
        match crypto::open_body(&stored.entry, key) {
            Ok(body) => stored.opened = Some(body),
            Err(e) => {
                tracing::debug!(entry = %stored.id.short(), error = %e, "sealed entry unreadable")
            }
        }
    }
    Ok(())
}

/// Lists entries for `reader`: sealed ones they may read come opened, and a listing by a
/// content kind includes sealed entries whose content is of that kind.
pub fn list_for(
    ingest: &Ingest,
    reader: &AuthorId,
    filter: &ListFilter,
) -> Result<Vec<StoredEntry>, StoreError> {
    let store = ingest.store();
    let mut listed = store.list(filter)?;
    open_for(ingest, reader, &mut listed)?;
    let Some(kind) = filter.kind.filter(|k| crypto::is_sealable(*k)) else {
        return Ok(listed);
    };
    // Sealed entries of every content kind share kind 10: look at as many as a listing may
    // hold, then keep those of the kind asked for.
    let sealed_kind = ListFilter {
        kind: Some(EntryKind::Sealed),
        limit: Some(LIST_LIMIT_MAX),
        ..filter.clone()
    };
    let mut sealed = store.list(&sealed_kind)?;
    open_for(ingest, reader, &mut sealed)?;
    sealed.retain(|e| {
        e.opened
            .as_ref()
            .is_some_and(|b| b.kind().family() == kind.family())
    });
    listed.extend(sealed);
    listed.sort_by_key(|e| std::cmp::Reverse((e.entry.created_at_ms, e.id)));
    listed.truncate(filter.limit.unwrap_or(100).min(LIST_LIMIT_MAX));
    Ok(listed)
}

/// Checks that every file a sealed resource will list is a sealed file held here complete,
/// under a key of `network`: a plaintext file listed by mistake would be fetched and served by
/// every relay.
pub fn check_sealed_files(
    ingest: &Ingest,
    blobs: &crate::files::Blobs,
    network: &NetworkId,
    body: &Body,
) -> Result<(), String> {
    use std::io::Read;
    let Body::Resource(r) = body else {
        return Ok(());
    };
    let keys = ingest
        .store()
        .content_keys(network)
        .map_err(|e| e.to_string())?;
    for file in &r.files {
        let mut header = [0u8; staffroom_protocol::private::file::FILE_HEADER_BYTES];
        let sealed_here = blobs
            .open_complete(&file.root)
            .ok()
            .and_then(|mut c| c.data.read_exact(&mut header).ok())
            .and_then(|()| staffroom_protocol::private::file::read_header(&header).ok())
            .is_some_and(|(key_id, _)| keys.contains_key(&key_id));
        if !sealed_here {
            return Err(format!(
                "file {} ({}) is not a file sealed here for this network: upload it to the \
                 network (PUT /v1/networks/{{id}}/files/{{root}}) first",
                file.name,
                file.root.short()
            ));
        }
    }
    Ok(())
}
