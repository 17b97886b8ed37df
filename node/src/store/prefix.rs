//! Ids from the start of their hex, as people type them (`staffroom show 5fe6`): the entries,
//! authors and networks whose ids start with a prefix, a bounded number of each.

use staffroom_protocol::{AuthorId, EntryId, IdPrefix, NetworkId};

use super::{keys, Store, StoreError};

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
        // The index's keys start with a short author id: scan by that, read the whole id
        // from an entry, then skip past every key with the same short id.
        let scanned = &prefix.whole_bytes()[..prefix.whole_bytes().len().min(keys::SHORT_BYTES)];
        let mut from = scanned.to_vec();
        let mut orphans = 0;
        while found.len() < limit {
            let Some(item) = self.trees.by_author.range(from.as_slice()..).next() else {
                break;
            };
            let (key, _) = item?;
            let Some(short) = key.get(..keys::SHORT_BYTES) else {
                break;
            };
            if !short.starts_with(scanned) {
                break;
            }
            let author = self
                .trees
                .entries
                .get(keys::id_suffix(&key).as_bytes())?
                .and_then(|record| super::record::header(&record))
                .map(|h| h.author);
            let Some(author) = author else {
                // A key a crash left without its record: the next key may have one.
                orphans += 1;
                if orphans > ORPHAN_KEYS_MAX {
                    break;
                }
                from = key.to_vec();
                from.push(0);
                continue;
            };
            if prefix.matches(author.as_bytes()) && !found.contains(&author) {
                found.push(author);
            }
            match after(short) {
                Some(next) => from = next,
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

/// Index keys without a record (left by crashes) one author lookup steps over at most.
const ORPHAN_KEYS_MAX: usize = 1024;

/// The smallest key after every key starting with `start`, as long as `start` (`None` after
/// the last).
fn after(start: &[u8]) -> Option<Vec<u8>> {
    let mut next = start.to_vec();
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
        assert_eq!(after(&id), Some(want.to_vec()));
        assert_eq!(after(&[0xff; 32]), None);
        assert_eq!(after(&[0x01, 0xff]), Some(vec![0x02, 0x00]));
    }
}
