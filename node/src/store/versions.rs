//! Edits: which stored entries are versions of one another, and which version is current.
//!
//! The rule (`docs/protocol.md`, "Edits"): an entry's *original* is found by following its
//! `supersedes` reference while the target is stored and has the same author, kind and
//! network. The
//! original's *versions* are the original and every entry that, followed this way, leads to
//! it. The *current* version is the newest edit by (created_at_ms, id), or the original when
//! it has no edits. Edits claimed by anyone but the author are not versions, so nobody can
//! hide another teacher's words; comments and notes made on any version belong to them all.

use staffroom_protocol::{EntryId, Relation};

use super::{keys, Store, StoreError, StoredEntry};

/// Steps walked from an edit towards its original at most (a longer chain is cut there).
pub const EDIT_CHAIN_MAX: usize = 256;
/// Versions of one original considered at most.
pub const VERSIONS_MAX: usize = 1024;

/// The versions of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    pub original: EntryId,
    /// The version readers see.
    pub current: EntryId,
    /// Every version, the original first, then edits oldest first.
    pub all: Vec<EntryId>,
}

impl Store {
    /// The versions `entry` belongs to.
    pub fn versions(&self, entry: &StoredEntry) -> Result<Versions, StoreError> {
        let original = self.original_of(entry)?;
        let mut edits = self.edits_of(&original)?;
        edits.sort_by_key(|e| (e.entry.created_at_ms, e.id));
        let current = edits.last().map_or(original.id, |e| e.id);
        let mut all = vec![original.id];
        all.extend(edits.iter().map(|e| e.id));
        Ok(Versions {
            original: original.id,
            current,
            all,
        })
    }

    /// The current version of `entry`, if that is another entry.
    pub fn edited_by(&self, entry: &StoredEntry) -> Result<Option<EntryId>, StoreError> {
        let current = self.versions(entry)?.current;
        Ok((current != entry.id).then_some(current))
    }

    /// True when `entry` is the version readers see.
    pub(super) fn is_current(&self, entry: &StoredEntry) -> Result<bool, StoreError> {
        // Cheap first: an entry that edits nothing and that nothing edits is its own version.
        if entry.entry.reference(Relation::Supersedes).is_none()
            && !self.has_edit_claims(&entry.id)?
        {
            return Ok(true);
        }
        Ok(self.versions(entry)?.current == entry.id)
    }

    /// Every stored version id of the entry `id` (just `id` if it is not stored).
    pub(super) fn version_ids(&self, id: &EntryId) -> Result<Vec<EntryId>, StoreError> {
        match self.get(id)? {
            Some(entry) => Ok(self.versions(&entry)?.all),
            None => Ok(vec![*id]),
        }
    }

    fn original_of(&self, entry: &StoredEntry) -> Result<StoredEntry, StoreError> {
        let mut at = entry.clone();
        for _ in 0..EDIT_CHAIN_MAX {
            let Some(target) = at.entry.reference(Relation::Supersedes) else {
                break;
            };
            match self.get(&target)? {
                Some(t) if same_author_and_kind(&t, &at) => at = t,
                _ => break,
            }
        }
        Ok(at)
    }

    /// Edits of `original` by its author, transitively, breadth first, bounded.
    fn edits_of(&self, original: &StoredEntry) -> Result<Vec<StoredEntry>, StoreError> {
        let mut found: Vec<StoredEntry> = Vec::new();
        let mut frontier = vec![original.id];
        while let Some(target) = frontier.pop() {
            let prefix = keys::ref_prefix(&target, Relation::Supersedes);
            for item in self.trees.by_ref.scan_prefix(prefix) {
                if found.len() >= VERSIONS_MAX {
                    return Ok(found);
                }
                let (key, _) = item?;
                let id = keys::id_suffix(&key);
                let Some(edit) = self.get(&id)? else {
                    continue;
                };
                let new = !found.iter().any(|f| f.id == id) && id != original.id;
                if new && same_author_and_kind(&edit, original) {
                    frontier.push(id);
                    found.push(edit);
                }
            }
        }
        Ok(found)
    }

    fn has_edit_claims(&self, id: &EntryId) -> Result<bool, StoreError> {
        let prefix = keys::ref_prefix(id, Relation::Supersedes);
        Ok(self
            .trees
            .by_ref
            .scan_prefix(prefix)
            .next()
            .transpose()?
            .is_some())
    }
}

/// Versions share author, kind and network: an edit in one network never hides an entry of
/// another (nodes in only one of them would show something else).
fn same_author_and_kind(a: &StoredEntry, b: &StoredEntry) -> bool {
    a.entry.author == b.entry.author
        && a.entry.kind().family() == b.entry.kind().family()
        && a.entry.network == b.entry.network
}
