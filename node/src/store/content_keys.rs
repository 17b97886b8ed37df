//! Private networks' content keys that this node has opened from grants sealed to it, kept
//! under `network ‖ key id`. They are secrets, like `node.key` beside the store: whoever
//! reads the data directory can read the private networks this node is a member's node of.

use std::collections::BTreeMap;

use staffroom_protocol::private::{crypto, KeyId};
use staffroom_protocol::NetworkId;

use super::{Store, StoreError, Trees};

/// Content keys of one network read at most (a key per rotation: removals are rare).
pub const CONTENT_KEYS_MAX: usize = 4096;

/// Keeps `key` for `network`; false if it was here already.
pub(super) fn put(trees: &Trees, network: &NetworkId, key: &[u8; 32]) -> Result<bool, StoreError> {
    let mut k = network.as_bytes().to_vec();
    k.extend_from_slice(&crypto::key_id(key).0);
    Ok(trees.content_keys.insert(k, key.as_slice())?.is_none())
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

/// Key grant entries of one network read at most.
pub const KEY_GRANTS_MAX: usize = 4096;

impl Store {
    /// `network`'s key grant entries, oldest first (at most [`KEY_GRANTS_MAX`]).
    pub fn key_grants(&self, network: &NetworkId) -> Result<Vec<super::StoredEntry>, StoreError> {
        let prefix = super::keys::kind_prefix(network, staffroom_protocol::EntryKind::KeyGrants);
        let mut out = Vec::new();
        for item in self.trees.by_kind.scan_prefix(prefix).take(KEY_GRANTS_MAX) {
            let (key, _) = item?;
            if let Some(stored) = self.get(&super::keys::id_suffix(&key))? {
                out.push(stored);
            }
        }
        Ok(out)
    }
}
