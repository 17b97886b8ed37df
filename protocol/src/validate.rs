//! The single gate for untrusted entries: decode, check the rules, verify the signature.

use crate::entry::Entry;
use crate::error::EntryError;
use crate::ids::EntryId;
use crate::limits::CLOCK_SKEW_MS_MAX;

/// An entry whose bytes decoded canonically, whose fields obey the rules and whose signature
/// verified. Only [`verify_entry`] makes one, so holding one is proof of those checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    entry: Entry,
    id: EntryId,
    bytes: Vec<u8>,
}

impl VerifiedEntry {
    pub fn entry(&self) -> &Entry {
        &self.entry
    }
    pub fn id(&self) -> EntryId {
        self.id
    }
    /// The canonical encoding, exactly as received (decoding is canonical, so this equals
    /// `entry().encode()`).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn into_parts(self) -> (EntryId, Entry, Vec<u8>) {
        (self.id, self.entry, self.bytes)
    }
}

/// Checks an entry received from anywhere — gossip, sync or the API — in order of cost:
/// size and structure, field rules, references, clock, then the signature.
///
/// `now_ms` is the verifying node's clock in milliseconds since the Unix epoch.
pub fn verify_entry(bytes: &[u8], now_ms: u64) -> Result<VerifiedEntry, EntryError> {
    let entry = Entry::decode(bytes)?;
    entry.body.check()?;
    entry.check_references()?;
    if entry.created_at_ms > now_ms.saturating_add(CLOCK_SKEW_MS_MAX) {
        return Err(EntryError::FromTheFuture {
            created_at_ms: entry.created_at_ms,
            now_ms,
            skew_ms_max: CLOCK_SKEW_MS_MAX,
        });
    }
    entry.verify_signature()?;
    let id = EntryId(*blake3::hash(bytes).as_bytes());
    Ok(VerifiedEntry {
        entry,
        id,
        bytes: bytes.to_vec(),
    })
}
