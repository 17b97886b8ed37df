//! Index key layouts. Integers are big-endian so that sled's byte order is time order, and
//! every key ends in the 32-byte entry id so keys are unique and the id is recoverable.
//!
//! | tree                   | key                                          |
//! |------------------------|----------------------------------------------|
//! | `entries`              | id → record (`record.rs`: tag ‖ header ‖ rest, |
//! |                        | the rest zstd-compressed where that pays)     |
//! | `by_reference`         | target id ‖ relation ‖ created_at_ms ‖ id    |
//! | `files_by_network`     | network ‖ file root ‖ id → file size (u64)   |
//! | `opaque`               | id → () for entries not understood here      |
//! | `quarantine`           | id → bytes the present rules refuse (kept)   |
//! | `meta`                 | `rules_version` → u32, rules last checked;   |
//! |                        | `understood_kinds` → version and kind tags;  |
//! |                        | `record_layout` → u32 (`index_layout`: older) |
//!
//! A network's time order and the author and kind listings are not trees: they are the
//! network's sync index in memory, its items tagged for the listings (`listing_index.rs`),
//! rebuilt from the records' headers at open (see [`scan_records`]). sled rewrites a leaf and
//! its parent for keys appended in order, so a time-ordered tree took about the entries' own
//! bytes again on disk, and even short keys cost ~0.3x each (issue 14). Only understood
//! entries are listed.

use std::collections::{HashMap, HashSet};

use staffroom_protocol::sync::{Item, SyncIndex, Tag};
use staffroom_protocol::{Body, Entry, EntryId, NetworkId, Relation};

use super::listing_index::{tag, Authors};

fn key(parts: &[&[u8]], at_ms: u64, id: &EntryId) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + 1 + 8 + 32 + 1);
    for p in parts {
        k.extend_from_slice(p);
    }
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
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

/// What one pass over the stored records gives: every id, sorted, every network's sync
/// index with its listing tags, and the authors those number.
pub struct Scanned {
    pub ids: Vec<[u8; 32]>,
    pub sync: HashMap<NetworkId, SyncIndex>,
    pub authors: Authors,
    /// Records whose header does not parse (none is written): counted, not synced.
    pub unreadable: usize,
}

/// One pass over the records, in sled's (byte) order: the ids, and each record's header
/// (at a fixed offset, never compressed) for the sync indexes and their listing tags; entries
/// marked in `opaque` are not understood here. A key that is not an id (none is written) is
/// skipped.
pub fn scan_records(entries: &sled::Tree, opaque: &sled::Tree) -> sled::Result<Scanned> {
    let not_understood = opaque
        .iter()
        .keys()
        .collect::<sled::Result<HashSet<sled::IVec>>>()?;
    let mut ids = Vec::new();
    let mut unreadable = 0;
    let mut authors = Authors::default();
    // Gathered first and sorted: records come in id order, and a sync index is built in one
    // pass from items in time order, its blocks full and of exactly their size.
    let mut items: HashMap<NetworkId, Vec<(Item, Tag)>> = HashMap::new();
    for item in entries.iter() {
        let (key, record) = item?;
        let Ok(id) = <[u8; 32]>::try_from(&key[..]) else {
            continue;
        };
        ids.push(id);
        let Some(h) = super::record::header(&record) else {
            unreadable += 1;
            continue;
        };
        let understood = !not_understood.contains(&key);
        let author = match understood {
            true => authors.number(&h.author),
            false => 0,
        };
        items
            .entry(h.network)
            .or_default()
            .push(((h.created_at_ms, id), tag(&h, author, understood)));
    }
    let sync = items
        .into_iter()
        .map(|(network, mut items)| {
            items.sort_unstable();
            (network, SyncIndex::from_sorted(items))
        })
        .collect();
    Ok(Scanned {
        ids,
        sync,
        authors,
        unreadable,
    })
}
