//! What the store knows of files: which files each network's resources list (with the size
//! each listing signs), and how each network's files are fetched here. The bytes themselves
//! live in `crate::files`, beside the store.

use serde::{Deserialize, Serialize};
use staffroom_protocol::{FileRoot, NetworkId};

use super::{keys, Store, StoreError};

/// How one network's files are fetched on this node; what is not set follows the node's
/// `[files]` config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePolicy {
    /// Fetch files as their resources arrive (true), or only when a teacher asks (false).
    pub eager: Option<bool>,
    /// Eager fetching stops once this network's files here reach this many bytes.
    pub quota_bytes: Option<u64>,
}

/// Listings of one root in one network looked at, at most.
const FILE_LISTINGS_MAX: usize = 1024;

fn file_size(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

impl Store {
    /// Sets how `network`'s files are fetched here, durably.
    pub async fn set_file_policy(
        &self,
        network: NetworkId,
        policy: FilePolicy,
    ) -> Result<(), StoreError> {
        self.writer
            .put_file_policy(network, policy)
            .await
            .map(|_| ())
    }

    /// How `network`'s files are fetched here (all unset unless a facilitator chose).
    pub fn file_policy(&self, network: &NetworkId) -> Result<FilePolicy, StoreError> {
        Ok(self
            .trees
            .file_policies
            .get(network.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default())
    }

    /// Whether a stored resource of `network` lists `root` with exactly `size_bytes`. (Any
    /// member may sign a resource that gives a root a false size; the bytes decide which
    /// listing is true, so a size is never taken from the first listing found.)
    pub fn network_lists_file(
        &self,
        network: &NetworkId,
        root: &FileRoot,
        size_bytes: u64,
    ) -> Result<bool, StoreError> {
        for item in self.root_listings(network, root) {
            if file_size(&item?.1) == Some(size_bytes) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether a stored entry of `network` lists `root` (with any size).
    pub fn network_lists_root(
        &self,
        network: &NetworkId,
        root: &FileRoot,
    ) -> Result<bool, StoreError> {
        match self.root_listings(network, root).next() {
            Some(item) => item.map(|_| true).map_err(StoreError::from),
            None => Ok(false),
        }
    }

    /// The `files_by_network` keys of `root` in `network` (at most [`FILE_LISTINGS_MAX`]),
    /// with the sizes they give.
    fn root_listings(
        &self,
        network: &NetworkId,
        root: &FileRoot,
    ) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> {
        let mut prefix = network.as_bytes().to_vec();
        prefix.extend_from_slice(&root.0);
        let listings = self.trees.files_by_network.scan_prefix(prefix);
        listings.take(FILE_LISTINGS_MAX)
    }

    /// How a stored resource of `network` describes the file `root` of `size_bytes` (its
    /// name and media type).
    pub fn file_ref(
        &self,
        network: &NetworkId,
        root: &FileRoot,
        size_bytes: u64,
    ) -> Result<Option<staffroom_protocol::FileRef>, StoreError> {
        for item in self.root_listings(network, root) {
            let (key, value) = item?;
            if file_size(&value) != Some(size_bytes) {
                continue;
            }
            let Some(stored) = self.get(&keys::id_suffix(&key))? else {
                continue;
            };
            match stored.entry.body {
                staffroom_protocol::Body::Resource(r) => {
                    let listed = |f: &staffroom_protocol::FileRef| {
                        f.root == *root && f.size_bytes == size_bytes
                    };
                    if let Some(file) = r.files.into_iter().find(listed) {
                        return Ok(Some(file));
                    }
                }
                // Its name and type are sealed: it travels under its root.
                staffroom_protocol::Body::Sealed(_) => {
                    return Ok(Some(staffroom_protocol::FileRef {
                        name: root.to_hex(),
                        media_type: "application/octet-stream".into(),
                        size_bytes,
                        root: *root,
                    }));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The distinct (root, signed size) pairs that `network`'s stored resources list (at most
    /// `limit`). A root normally comes with one size; more mean some author gave a false one.
    pub fn network_files(
        &self,
        network: &NetworkId,
        limit: usize,
    ) -> Result<Vec<(FileRoot, u64)>, StoreError> {
        let mut out: Vec<(FileRoot, u64)> = Vec::new();
        for item in self.trees.files_by_network.scan_prefix(network.as_bytes()) {
            let (key, value) = item?;
            let (Some(root), Some(size)) = (key.get(32..64), file_size(&value)) else {
                continue;
            };
            let root = FileRoot(root.try_into().expect("32 bytes"));
            // Keys are ordered by root: a root's other listings are just before.
            let mut seen = out.iter().rev().take_while(|(r, _)| *r == root);
            if seen.any(|(_, s)| *s == size) {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            out.push((root, size));
        }
        Ok(out)
    }

    /// Roots of files that purged resources listed, not yet deleted here (at most `limit`).
    pub fn erased_files(&self, limit: usize) -> Result<Vec<FileRoot>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.files_erased.iter().take(limit) {
            let (key, _) = item?;
            if let Ok(root) = <[u8; 32]>::try_from(key.as_ref()) {
                out.push(FileRoot(root));
            }
        }
        Ok(out)
    }

    /// Whether `root` is still waiting to be deleted as an erased file.
    pub fn is_erased_file(&self, root: &FileRoot) -> Result<bool, StoreError> {
        Ok(self.trees.files_erased.contains_key(root.0)?)
    }

    /// Whether a stored resource of any followed network still lists `root`.
    pub fn file_listed_anywhere(&self, root: &FileRoot) -> Result<bool, StoreError> {
        for network in self.networks()? {
            if let Some(item) = self.root_listings(&network.id, root).next() {
                item?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Records that an erased file's bytes are gone from this node, durably.
    pub async fn forget_erased_file(&self, root: FileRoot) -> Result<(), StoreError> {
        self.writer.forget_erased_file(root).await
    }
}
