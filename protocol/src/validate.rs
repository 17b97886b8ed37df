//! The single gate for untrusted entries: decode, check the rules, verify the signature.
//!
//! Entries of a version and kind this implementation understands get every rule of their
//! kind. Others are *opaque*: only the envelope's rules apply (size, header, clock, author key,
//! signature), so that new kinds and versions travel through older nodes unpunished.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use crate::entry::{verify_strict, Entry, SIGNING_CONTEXT};
use crate::envelope::{Header, SIGNATURE_BYTES};
use crate::error::EntryError;
use crate::ids::{AuthorId, EntryId};
use crate::limits::CLOCK_SKEW_MS_MAX;

/// An entry whose envelope is valid and whose signature verified; if this implementation
/// understands its kind, also decoded canonically with every field rule checked. Only
/// [`verify_entry`] makes one, so holding one is proof of those checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    header: Header,
    entry: Option<Entry>,
    id: EntryId,
    bytes: Vec<u8>,
}

impl VerifiedEntry {
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The decoded entry, or `None` for an opaque entry (unknown kind or version).
    pub fn entry(&self) -> Option<&Entry> {
        self.entry.as_ref()
    }
    pub fn id(&self) -> EntryId {
        self.id
    }
    /// The encoding exactly as received (for understood entries decoding is canonical, so
    /// this equals `entry().encode()`).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Authors' public keys already decompressed and checked. Decompressing a key costs about a
/// sixth of a signature check, and a network's entries come from a few hundred teachers at
/// most, so verifiers keep one of these per thread.
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

/// An author key is a canonical encoding (it re-encodes to the same 32 bytes) of a curve
/// point that is not of small order.
pub(crate) fn parse_author_key(author: &AuthorId) -> Result<VerifyingKey, EntryError> {
    let key = VerifyingKey::from_bytes(author.as_bytes()).map_err(|_| EntryError::BadAuthorKey)?;
    let canonical = key.to_edwards().compress().to_bytes() == *author.as_bytes();
    if !canonical || key.is_weak() {
        return Err(EntryError::BadAuthorKey);
    }
    Ok(key)
}

/// Checks an entry received from anywhere — gossip, sync or the API: size and structure,
/// field rules, references, author key, signature, and last the clock.
///
/// `now_ms` is the verifying node's clock in milliseconds since the Unix epoch.
pub fn verify_entry(bytes: &[u8], now_ms: u64) -> Result<VerifiedEntry, EntryError> {
    verify_entry_cached(bytes, now_ms, &mut KeyCache::default())
}

/// Decoding and every field and reference rule of an understood kind.
fn decode_and_check(bytes: &[u8]) -> Result<Entry, EntryError> {
    let entry = Entry::decode(bytes)?;
    entry.body.check()?;
    entry.check_references()?;
    Ok(entry)
}

/// [`verify_entry`], reusing decompressed author keys from `keys`. Same verdicts.
pub fn verify_entry_cached(
    bytes: &[u8],
    now_ms: u64,
    keys: &mut KeyCache,
) -> Result<VerifiedEntry, EntryError> {
    let header = Header::parse(bytes)?;
    let entry = match header.known_kind() {
        Some(kind) => Some(decode_and_check(bytes).map_err(|error| {
            if kind.in_first_release() {
                error
            } else {
                EntryError::LaterKind {
                    kind: kind.tag(),
                    kind_name: kind.name(),
                    error: Box::new(error),
                }
            }
        })?),
        None => None,
    };
    let key = keys.get(&header.author)?;
    // The signed content is exactly the received bytes before the signature (for understood
    // entries decoding is canonical, so this is also their re-encoding).
    let (content, signature) = bytes.split_at(bytes.len() - SIGNATURE_BYTES);
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + content.len());
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(content);
    let signature: &[u8; SIGNATURE_BYTES] = signature
        .try_into()
        .map_err(|_| EntryError::Truncated { field: "signature" })?;
    verify_strict(&key, &message, signature)?;
    // Last: the only check whose verdict depends on the verifier. Every entry refused here is
    // otherwise valid, so only genuine entries are ever held for later, never forgeries.
    if header.created_at_ms > now_ms.saturating_add(CLOCK_SKEW_MS_MAX) {
        return Err(EntryError::FromTheFuture {
            created_at_ms: header.created_at_ms,
            now_ms,
            skew_ms_max: CLOCK_SKEW_MS_MAX,
        });
    }
    Ok(VerifiedEntry {
        header,
        entry,
        id: EntryId(*blake3::hash(bytes).as_bytes()),
        bytes: bytes.to_vec(),
    })
}
