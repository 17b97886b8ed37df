//! The single gate for untrusted entries: decode, check the rules, verify the signature.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use crate::entry::{parse_author_key, verify_strict, Entry, SIGNING_CONTEXT};
use crate::error::EntryError;
use crate::ids::{AuthorId, EntryId};
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
}

/// Authors' public keys already decompressed. Decompressing a key costs about a sixth of a
/// signature check, and a network's entries come from a few hundred teachers at most, so
/// verifiers keep one of these per thread.
#[derive(Default)]
pub struct KeyCache {
    keys: HashMap<AuthorId, VerifyingKey>,
}

impl KeyCache {
    /// Keys kept at most; past this the cache starts afresh (a cache, not a registry).
    pub const KEYS_MAX: usize = 4096;

    fn get(&mut self, author: &AuthorId) -> Result<VerifyingKey, EntryError> {
        if let Some(key) = self.keys.get(author) {
            return Ok(*key);
        }
        let key = parse_author_key(author)?;
        if self.keys.len() >= Self::KEYS_MAX {
            self.keys.clear();
        }
        self.keys.insert(*author, key);
        Ok(key)
    }
}

/// Checks an entry received from anywhere — gossip, sync or the API — in order of cost:
/// size and structure, field rules, references, clock, then the signature.
///
/// `now_ms` is the verifying node's clock in milliseconds since the Unix epoch.
pub fn verify_entry(bytes: &[u8], now_ms: u64) -> Result<VerifiedEntry, EntryError> {
    verify_entry_cached(bytes, now_ms, &mut KeyCache::default())
}

/// [`verify_entry`], reusing decompressed author keys from `keys`. Same verdicts.
pub fn verify_entry_cached(
    bytes: &[u8],
    now_ms: u64,
    keys: &mut KeyCache,
) -> Result<VerifiedEntry, EntryError> {
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
    // Decoding is canonical, so the content is exactly the received bytes before the
    // signature: sign-check those rather than encoding the entry again.
    let content = &bytes[..bytes.len() - 64];
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + content.len());
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(content);
    verify_strict(&keys.get(&entry.author)?, &message, &entry.signature)?;
    let id = EntryId(*blake3::hash(bytes).as_bytes());
    Ok(VerifiedEntry {
        entry,
        id,
        bytes: bytes.to_vec(),
    })
}
