//! A resource's sources (`docs/protocol.md`, "Sources"): the newest kind-13 statement, by
//! (time, id), that its author made in its network about any of its versions.

use staffroom_protocol::{Body, EntryKind, Sources};

use super::{ListFilter, Store, StoreError, StoredEntry};

/// Sources statements by the resource's author looked at, newest first (a display bound).
pub const SOURCES_LOOKED_MAX: usize = 256;

impl Store {
    /// What `resource` is based on, as its author last said; `None` if they never did (or
    /// withdrew it: then both lists are empty).
    pub fn sources_of(&self, resource: &StoredEntry) -> Result<Option<Sources>, StoreError> {
        // A private network's resources are sealed, and its sources are never admitted: one
        // stored while kind 13 was opaque here is not shown either.
        if resource.entry.kind() == EntryKind::Sealed {
            return Ok(None);
        }
        let statements = self.list(&ListFilter {
            network: Some(resource.entry.network),
            kind: Some(EntryKind::Sources),
            author: Some(resource.entry.author),
            limit: Some(SOURCES_LOOKED_MAX),
            ..ListFilter::default()
        })?;
        if statements.is_empty() {
            return Ok(None);
        }
        let versions = self.versions(resource)?.all;
        Ok(statements.into_iter().find_map(|s| match s.entry.body {
            Body::Sources(s) if versions.contains(&s.resource) => Some(s),
            _ => None,
        }))
    }
}
