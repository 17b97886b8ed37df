//! Ids from the start of their hex, as people type them (`staffroom show 5fe6`): the entries,
//! authors and networks whose ids start with a prefix, a bounded number of each.

use staffroom_protocol::{AuthorId, EntryId, IdPrefix, NetworkId};

use super::{Store, StoreError};

impl Store {
    /// Up to `limit` stored entries (understood or not) whose ids start with `prefix`.
    pub fn entries_with_prefix(
        &self,
        prefix: &IdPrefix,
        limit: usize,
    ) -> Result<Vec<EntryId>, StoreError> {
        let mut found = Vec::new();
        for key in self.trees.entries.scan_prefix(prefix.whole_bytes()).keys() {
            if found.len() >= limit {
                break;
            }
            let key = key?;
            if let Ok(id) = <[u8; 32]>::try_from(key.as_ref()) {
                if prefix.matches(&id) {
                    found.push(EntryId(id));
                }
            }
        }
        Ok(found)
    }

    /// Up to `limit` authors whose keys start with `prefix`: teachers registered here and
    /// authors of entries listed here, each once.
    pub fn authors_with_prefix(
        &self,
        prefix: &IdPrefix,
        limit: usize,
    ) -> Result<Vec<AuthorId>, StoreError> {
        let mut found: Vec<AuthorId> = self
            .teachers()?
            .into_iter()
            .map(|t| t.key)
            .filter(|key| prefix.matches(key.as_bytes()))
            .collect();
        let authors = self.trees.authors.read().unwrap_or_else(|e| e.into_inner());
        for author in authors.matching(prefix, limit) {
            if !found.contains(&author) {
                found.push(author);
            }
        }
        drop(authors);
        found.truncate(limit);
        Ok(found)
    }

    /// Up to `limit` networks this node follows whose ids start with `prefix`.
    pub fn networks_with_prefix(
        &self,
        prefix: &IdPrefix,
        limit: usize,
    ) -> Result<Vec<NetworkId>, StoreError> {
        Ok(self
            .networks()?
            .into_iter()
            .map(|n| n.id)
            .filter(|id| prefix.matches(id.as_bytes()))
            .take(limit)
            .collect())
    }
}
