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
    /// authors of entries stored here. Each author is looked at once, however many entries
    /// they wrote (the index is skipped past them).
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
        let mut from = prefix.whole_bytes().to_vec();
        while found.len() < limit {
            let Some(item) = self.trees.by_author.range(from.as_slice()..).next() else {
                break;
            };
            let (key, _) = item?;
            if !key.starts_with(prefix.whole_bytes()) {
                break;
            }
            let Some(author) = key.get(..32).and_then(|a| <[u8; 32]>::try_from(a).ok()) else {
                break;
            };
            if prefix.matches(&author) && !found.contains(&AuthorId(author)) {
                found.push(AuthorId(author));
            }
            match after(&author) {
                Some(next) => from = next.to_vec(),
                None => break,
            }
        }
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

/// The smallest 32 bytes after `id` in byte order (`None` after the last).
fn after(id: &[u8; 32]) -> Option<[u8; 32]> {
    let mut next = *id;
    for byte in next.iter_mut().rev() {
        if *byte == u8::MAX {
            *byte = 0;
        } else {
            *byte += 1;
            return Some(next);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::after;

    #[test]
    fn after_counts_up_with_carries() {
        let mut id = [0u8; 32];
        id[31] = 0xff;
        id[30] = 0x01;
        let mut want = [0u8; 32];
        want[30] = 0x02;
        assert_eq!(after(&id), Some(want));
        assert_eq!(after(&[0xff; 32]), None);
    }
}
