//! Private networks: what relays carry without reading it.
//!
//! In a private network (policy `private`), content travels as **sealed** entries (kind 10):
//! the header — network, author, time, references — stays in the clear and signed, so every
//! node verifies, stores and forwards it; the body is the content entry's kind and body,
//! encrypted with XChaCha20-Poly1305 under the network's current *content key*. Content keys
//! reach members' nodes in **key grant** entries (kind 11), signed by a member's node: the
//! key sealed to each recipient node's X25519 form of its ed25519 key. See "Private networks"
//! in `docs/protocol.md` for the scheme, its threats and its limits.
//!
//! ```text
//! sealed     (kind 10) = key_id:[16] nonce:[24] len:u32 ciphertext:[len]  (17 ..= 65,536)
//!                        file_count:u8 (root:[32] size_bytes:u64)*          (0 ..= 32 files)
//! plaintext            = kind:u8 body          (the body of that content kind, kinds 1-5, 8)
//! key_grants (kind 11) = key_id:[16] count:u8 (node:[32] ephemeral:[32] sealed_key:[48])*
//!                        1 ..= 64 grants, ascending by node, no references
//! ```

pub mod crypto;
pub mod file;
pub mod keeper;

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::entry::{Entry, Relation};
use crate::error::EntryError;
use crate::ids::NodeKey;
use crate::validate::parse_author_key;

/// Nodes one key grant entry seals a key to, at most.
pub const GRANTS_COUNT_MAX: usize = 64;
/// AEAD tag bytes of XChaCha20-Poly1305.
pub const TAG_BYTES: usize = 16;
/// A sealed body's ciphertext, at most: the entry's own limit (64 KiB) bounds it further, so
/// any content body that fits a clear entry fits sealed.
pub const CIPHERTEXT_BYTES_MAX: usize = crate::limits::ENTRY_BYTES_MAX;
/// A content key, sealed: the 32-byte key and the tag.
pub const SEALED_KEY_BYTES: usize = 32 + TAG_BYTES;

/// Names a content key without revealing it: the first 16 bytes of a BLAKE3 key derivation
/// from the key (see [`crypto::key_id`]). It also commits to the key: a node that opens a
/// grant checks that the key it got has this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(#[serde(with = "hex::serde")] pub [u8; 16]);

impl KeyId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The body of a sealed entry (kind 10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_id: KeyId,
    #[serde(with = "hex::serde")]
    pub nonce: [u8; 24],
    #[serde(with = "hex::serde")]
    pub ciphertext: Vec<u8>,
    /// The sealed files a sealed resource carries, in its order: their roots and sizes are
    /// in the clear so that any node can hold and pass on their (sealed) bytes; names and
    /// media types are inside. Members check that the two lists agree.
    #[serde(default)]
    pub files: Vec<SealedFile>,
}

/// A sealed file as relays see it: the BLAKE3 root and size of its sealed bytes
/// (see [`file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFile {
    pub root: crate::FileRoot,
    pub size_bytes: u64,
}

/// One content key sealed to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The recipient node's ed25519 key (its libp2p identity).
    pub node: NodeKey,
    /// The sealer's one-time X25519 public key.
    #[serde(with = "hex::serde")]
    pub ephemeral: [u8; 32],
    #[serde(with = "hex::serde")]
    pub sealed_key: [u8; SEALED_KEY_BYTES],
}

/// The body of a key grant entry (kind 11): one content key sealed to some nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrants {
    pub key_id: KeyId,
    pub grants: Vec<Grant>,
}

impl Sealed {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.bytes(&self.key_id.0);
        w.bytes(&self.nonce);
        w.blob(&self.ciphertext);
        w.u8(crate::codec::saturating_count(self.files.len()));
        for f in self.files.iter().take(usize::from(u8::MAX)) {
            w.bytes(&f.root.0);
            w.u64(f.size_bytes);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Sealed, EntryError> {
        Ok(Sealed {
            key_id: KeyId(r.array("key_id")?),
            nonce: r.array("nonce")?,
            ciphertext: r.blob("ciphertext", 1 + TAG_BYTES, CIPHERTEXT_BYTES_MAX)?,
            files: decode_files(r)?,
        })
    }

    /// Files within the count and size limits of a resource's.
    pub(crate) fn check(&self) -> Result<(), EntryError> {
        if self
            .files
            .iter()
            .any(|f| f.size_bytes > crate::files::FILE_BYTES_MAX)
        {
            return Err(invalid("size_bytes", "must be at most 2^40 bytes"));
        }
        Ok(())
    }
}

impl KeyGrants {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.bytes(&self.key_id.0);
        w.u8(crate::codec::saturating_count(self.grants.len()));
        for g in self.grants.iter().take(usize::from(u8::MAX)) {
            w.bytes(g.node.as_bytes());
            w.bytes(&g.ephemeral);
            w.bytes(&g.sealed_key);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<KeyGrants, EntryError> {
        let key_id = KeyId(r.array("key_id")?);
        let count = usize::from(r.u8("grants")?);
        if count > GRANTS_COUNT_MAX {
            return Err(EntryError::TooMany {
                field: "grants",
                count,
                max: GRANTS_COUNT_MAX,
            });
        }
        let mut grants = Vec::with_capacity(count);
        for _ in 0..count {
            grants.push(Grant {
                node: NodeKey(r.array("grant node")?),
                ephemeral: r.array("grant ephemeral key")?,
                sealed_key: r.array("sealed key")?,
            });
        }
        Ok(KeyGrants { key_id, grants })
    }

    /// At least one grant, ascending by node (so distinct), each to a valid ed25519 key.
    pub(crate) fn check(&self) -> Result<(), EntryError> {
        if self.grants.is_empty() {
            return Err(invalid("grants", "must seal the key to at least one node"));
        }
        if self.grants.windows(2).any(|w| w[0].node.0 >= w[1].node.0) {
            return Err(invalid("grants", "not ascending by node, or duplicated"));
        }
        for g in &self.grants {
            if parse_author_key(&crate::AuthorId(g.node.0)).is_err() {
                return Err(invalid("grant node", "not a valid ed25519 public key"));
            }
        }
        Ok(())
    }
}

/// Reference rules of the private kinds (part of [`Entry::check_references`]): a key grant
/// references nothing; a sealed entry's references are those its content kind may have (at
/// most one edit, enquiry and reply each), checked in full by members once opened.
pub(crate) fn check_entry(entry: &Entry) -> Result<(), EntryError> {
    match &entry.body {
        crate::Body::KeyGrants(_) if !entry.refs.is_empty() => {
            Err(EntryError::BadReferences("a key grant references nothing"))
        }
        crate::Body::Sealed(_) if entry.refs.iter().any(|r| r.relation == Relation::After) => Err(
            EntryError::BadReferences("only membership operations follow other operations"),
        ),
        _ => Ok(()),
    }
}

fn decode_files(r: &mut Reader<'_>) -> Result<Vec<SealedFile>, EntryError> {
    let count = usize::from(r.u8("files")?);
    if count > crate::files::FILES_COUNT_MAX {
        return Err(EntryError::TooMany {
            field: "files",
            count,
            max: crate::files::FILES_COUNT_MAX,
        });
    }
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        files.push(SealedFile {
            root: crate::FileRoot(r.array("file root")?),
            size_bytes: r.u64("size_bytes")?,
        });
    }
    Ok(files)
}

fn invalid(field: &'static str, reason: &'static str) -> EntryError {
    EntryError::InvalidField { field, reason }
}

#[cfg(test)]
mod tests;
