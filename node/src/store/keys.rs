//! Index key layouts. Integers are big-endian so that sled's byte order is time order, and
//! every key ends in the 32-byte entry id so keys are unique and the id is recoverable.
//!
//! | tree                   | key                                          |
//! |------------------------|----------------------------------------------|
//! | `entries`              | id → record (`record.rs`: tag ‖ header ‖ rest, |
//! |                        | the rest zstd-compressed where that pays)     |
//! | `by_author_time`       | author[..8] ‖ created_at_ms ‖ id             |
//! | `by_network_kind_time` | network[..8] ‖ kind ‖ created_at_ms ‖ id     |
//! | `by_reference`         | target id ‖ relation ‖ created_at_ms ‖ id    |
//! | `files_by_network`     | network ‖ file root ‖ id → file size (u64)   |
//! | `opaque`               | id → () for entries not understood here      |
//! | `quarantine`           | id → bytes the present rules refuse (kept)   |
//! | `meta`                 | `rules_version` → u32, rules last checked;   |
//! |                        | `understood_kinds` → version and kind tags;  |
//! |                        | `index_layout`, `record_layout` → u32        |
//!
//! A network's time order is not a tree: it is the network's sync index, held in memory and
//! rebuilt from the records' headers at open (see [`scan_records`]). sled rewrites a leaf
//! and its parent for keys appended in order, so each such tree took about the entries' own
//! bytes again on disk (issue 14). Only understood entries are in the author, kind and
//! reference indexes that listings use.
//!
//! The author and kind keys start with the first [`SHORT_BYTES`] of the author or network id,
//! not all 32: sled's cost per key grows with its length (a 72-byte key cost ~0.9x the
//! entries' bytes per tree, a 48-byte one ~0.4x). Two authors or networks sharing a short
//! prefix only make a listing skip the other's entries, which it checks in full: ids are
//! hashes, and finding a key whose id shares 8 bytes with a given one takes ~2^64 tries.

use std::collections::HashMap;

use staffroom_protocol::sync::SyncIndex;
use staffroom_protocol::{AuthorId, Body, Entry, EntryId, EntryKind, Header, NetworkId, Relation};

fn key(parts: &[&[u8]], at_ms: u64, id: &EntryId) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + 1 + 8 + 32 + 1);
    for p in parts {
        k.extend_from_slice(p);
    }
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// How many bytes of an author or network id start its index keys.
pub const SHORT_BYTES: usize = 8;

/// The start of an id that index keys carry.
pub fn short(id: &[u8; 32]) -> &[u8] {
    &id[..SHORT_BYTES]
}

pub fn by_author(e: &Entry, id: &EntryId) -> Vec<u8> {
    key(&[short(e.author.as_bytes())], e.created_at_ms, id)
}

pub fn by_kind(e: &Entry, id: &EntryId) -> Vec<u8> {
    key(
        &[short(e.network.as_bytes()), &[e.kind().tag()]],
        e.created_at_ms,
        id,
    )
}

/// The author and kind keys of the entry `id` with `header`, from the header alone (for a
/// record whose body can no longer be read).
pub fn listing_keys(header: &Header, id: &EntryId) -> (Vec<u8>, Vec<u8>) {
    let author = key(&[short(header.author.as_bytes())], header.created_at_ms, id);
    let kind = key(
        &[short(header.network.as_bytes()), &[header.kind]],
        header.created_at_ms,
        id,
    );
    (author, kind)
}

/// The keys of `author`'s entries start with this.
pub fn author_prefix(author: &AuthorId) -> Vec<u8> {
    short(author.as_bytes()).to_vec()
}

pub fn by_ref<'a>(e: &'a Entry, id: &EntryId) -> impl Iterator<Item = Vec<u8>> + 'a {
    let id = *id;
    e.refs.iter().map(move |r| {
        key(
            &[r.id.as_bytes(), &[r.relation as u8]],
            e.created_at_ms,
            &id,
        )
    })
}

/// One key per file a resource lists (none for other kinds), with the file's signed size.
pub fn by_file(e: &Entry, id: &EntryId) -> Vec<(Vec<u8>, [u8; 8])> {
    // A sealed resource lists its sealed files' roots and sizes in the clear.
    let files: Vec<(staffroom_protocol::FileRoot, u64)> = match &e.body {
        Body::Resource(r) => r.files.iter().map(|f| (f.root, f.size_bytes)).collect(),
        Body::Sealed(s) => s.files.iter().map(|f| (f.root, f.size_bytes)).collect(),
        _ => return Vec::new(),
    };
    files
        .into_iter()
        .map(|(root, size)| {
            let mut k = Vec::with_capacity(96);
            k.extend_from_slice(e.network.as_bytes());
            k.extend_from_slice(&root.0);
            k.extend_from_slice(id.as_bytes());
            (k, size.to_be_bytes())
        })
        .collect()
}

pub fn kind_prefix(network: &NetworkId, kind: EntryKind) -> Vec<u8> {
    let mut k = short(network.as_bytes()).to_vec();
    k.push(kind.tag());
    k
}

pub fn ref_prefix(target: &EntryId, relation: Relation) -> Vec<u8> {
    let mut k = target.as_bytes().to_vec();
    k.push(relation as u8);
    k
}

/// The entry id every index key ends with.
pub fn id_suffix(key: &[u8]) -> EntryId {
    let mut id = [0u8; 32];
    // Index keys are written only by this module and always end in a 32-byte id.
    assert!(key.len() >= 32, "index key shorter than an id");
    id.copy_from_slice(&key[key.len() - 32..]);
    EntryId(id)
}

/// What one pass over the stored records gives: every id, sorted, and every network's sync
/// index.
pub struct Scanned {
    pub ids: Vec<[u8; 32]>,
    pub sync: HashMap<NetworkId, SyncIndex>,
    /// Records whose header does not parse (none is written): counted, not synced.
    pub unreadable: usize,
}

/// One pass over the records, in sled's (byte) order: the ids, and each record's network and
/// time from its fixed-offset header, for the sync indexes. A key that is not an id (none is
/// written) is skipped.
pub fn scan_records(entries: &sled::Tree) -> sled::Result<Scanned> {
    let mut ids = Vec::new();
    let mut unreadable = 0;
    // Gathered first and sorted: records come in id order, and a sync index takes items in
    // time order at almost no cost (appends), out of order at a block's shift each.
    let mut items: HashMap<NetworkId, Vec<(u64, [u8; 32])>> = HashMap::new();
    for item in entries.iter() {
        let (key, record) = item?;
        let Ok(id) = <[u8; 32]>::try_from(&key[..]) else {
            continue;
        };
        ids.push(id);
        match super::record::header(&record) {
            Some(h) => items
                .entry(h.network)
                .or_default()
                .push((h.created_at_ms, id)),
            None => unreadable += 1,
        }
    }
    let sync = items
        .into_iter()
        .map(|(network, mut items)| {
            items.sort_unstable();
            let mut index = SyncIndex::new();
            for item in items {
                index.insert(item);
            }
            (network, index)
        })
        .collect();
    Ok(Scanned {
        ids,
        sync,
        unreadable,
    })
}
