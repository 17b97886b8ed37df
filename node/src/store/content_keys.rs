//! Private networks' keys in the store: the content keys this node has opened from grants
//! sealed to it (`content_keys`, under `network ‖ key id`; secrets, like `node.key` beside
//! the store: whoever reads the data directory can read the private networks this node is a
//! member's node of), and an index of every key grant (`key_rows`, `key_intro`), kept by the
//! writer, from which the keeper decides.

use std::collections::BTreeMap;

use staffroom_protocol::private::keeper::KeyRecord;
use staffroom_protocol::private::{crypto, KeyId};
use staffroom_protocol::{Body, Entry, EntryId, NetworkId, NodeKey};

use super::{Store, StoreError, Trees};

/// Content keys of one network read at most (a key per rotation: removals are rare).
pub const CONTENT_KEYS_MAX: usize = 4096;

/// Keeps `key` for `network`; false if it was here already.
pub(super) fn put(trees: &Trees, network: &NetworkId, key: &[u8; 32]) -> Result<bool, StoreError> {
    let mut k = network.as_bytes().to_vec();
    k.extend_from_slice(&crypto::key_id(key).0);
    let new = trees.content_keys.insert(k, key.as_slice())?.is_none();
    // Sealed entries this key opens become searchable.
    if new {
        trees
            .changes
            .push(super::changes::Change::Network(*network));
    }
    Ok(new)
}

impl Store {
    /// Keeps a content key of `network`, durably.
    pub async fn put_content_key(
        &self,
        network: NetworkId,
        key: [u8; 32],
    ) -> Result<bool, StoreError> {
        self.writer.put_content_key(network, key).await
    }

    /// The content keys of `network` held here, by id.
    pub fn content_keys(
        &self,
        network: &NetworkId,
    ) -> Result<BTreeMap<KeyId, [u8; 32]>, StoreError> {
        let mut out = BTreeMap::new();
        let items = self.trees.content_keys.scan_prefix(network.as_bytes());
        for item in items.take(CONTENT_KEYS_MAX) {
            let (_, value) = item?;
            // Named by the id computed from it: a damaged key names no entry, and opens none.
            if let Ok(key) = <[u8; 32]>::try_from(value.as_ref()) {
                out.insert(crypto::key_id(&key), key);
            }
        }
        Ok(out)
    }
}

/// Key index rows (a key and one node that knows it) of one network read at most; past it
/// the keeper neither writes nor grants (it could not tell which keys are clean).
pub const KEY_ROWS_MAX: usize = 65_536;

/// How a node knows a key: a grant sealed to it (which it can open), or having signed one.
const SEALED_TO: u8 = 0;
const SIGNED: u8 = 1;

/// Indexes a key grant entry, in the writer's group: `key_rows` gets `network ‖ key id ‖
/// node → grant entry id ‖ how` for every node the grant names and for its signer, and
/// `key_intro` keeps each key's first grant, `network ‖ key id → time ‖ entry id`.
pub(super) fn index_grants(trees: &Trees, entry: &Entry, id: &EntryId) -> Result<(), StoreError> {
    let Body::KeyGrants(g) = &entry.body else {
        return Ok(());
    };
    let mut prefix = entry.network.as_bytes().to_vec();
    prefix.extend_from_slice(&g.key_id.0);
    let row = |node: &[u8; 32], how: u8| -> Result<(), StoreError> {
        let key = [prefix.as_slice(), node].concat();
        let known = trees.key_rows.get(&key)?;
        // A grant one can open matters more than having signed one.
        if known.is_none_or(|v| v.last() == Some(&SIGNED) && how == SEALED_TO) {
            trees
                .key_rows
                .insert(key, [id.as_bytes().as_slice(), &[how]].concat())?;
        }
        Ok(())
    };
    for grant in &g.grants {
        row(&grant.node.0, SEALED_TO)?;
    }
    row(&entry.author.0, SIGNED)?;
    let intro = [&entry.created_at_ms.to_be_bytes()[..], id.as_bytes()].concat();
    let earlier = trees.key_intro.get(&prefix)?;
    if earlier.is_none_or(|e| intro.as_slice() < e.as_ref()) {
        trees.key_intro.insert(prefix, intro)?;
    }
    Ok(())
}

/// Takes out a network's key index (the network's data is being purged).
pub(super) fn unindex_network(trees: &Trees, network: &NetworkId) -> Result<(), StoreError> {
    for tree in [&trees.key_rows, &trees.key_intro, &trees.content_keys] {
        for item in tree.scan_prefix(network.as_bytes()) {
            tree.remove(item?.0)?;
        }
    }
    Ok(())
}

/// What the store knows of a private network's keys, for the keeper.
#[derive(Debug, Default)]
pub struct KeyIndex {
    /// Every key, its first grant and every node that knows it.
    pub records: Vec<KeyRecord>,
    /// Keys sealed to `me`, with the grant entry that holds each.
    pub sealed_to_me: Vec<(KeyId, EntryId)>,
    /// False when the index is over [`KEY_ROWS_MAX`] rows (then nothing is to be trusted).
    pub complete: bool,
}

impl Store {
    /// The key index of `network`, as `me` sees it.
    pub fn key_index(&self, network: &NetworkId, me: &NodeKey) -> Result<KeyIndex, StoreError> {
        let mut records: BTreeMap<KeyId, KeyRecord> = BTreeMap::new();
        let mut out = KeyIndex {
            complete: true,
            ..KeyIndex::default()
        };
        for (n, item) in self
            .trees
            .key_rows
            .scan_prefix(network.as_bytes())
            .enumerate()
        {
            if n >= KEY_ROWS_MAX {
                out.complete = false;
                break;
            }
            let (key, value) = item?;
            let (Some(key_id), Some(node), Some(grant)) =
                (key.get(32..48), key.get(48..80), value.get(..32))
            else {
                continue;
            };
            let key_id = KeyId(key_id.try_into().expect("16 bytes"));
            let node = NodeKey(node.try_into().expect("32 bytes"));
            let grant = EntryId(grant.try_into().expect("32 bytes"));
            if node == *me && value.get(32) == Some(&SEALED_TO) {
                out.sealed_to_me.push((key_id, grant));
            }
            let record = records.entry(key_id).or_insert_with(|| KeyRecord {
                key_id,
                introduced: (u64::MAX, grant),
                recipients: std::collections::BTreeSet::new(),
            });
            record.recipients.insert(node);
        }
        for record in records.values_mut() {
            let mut intro_key = network.as_bytes().to_vec();
            intro_key.extend_from_slice(&record.key_id.0);
            if let Some(v) = self.trees.key_intro.get(intro_key)? {
                if let (Some(t), Some(i)) = (v.get(..8), v.get(8..40)) {
                    let at = u64::from_be_bytes(t.try_into().expect("8 bytes"));
                    record.introduced = (at, EntryId(i.try_into().expect("32 bytes")));
                }
            }
        }
        out.records = records.into_values().collect();
        Ok(out)
    }
}
