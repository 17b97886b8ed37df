//! The envelope every entry shares, whatever its format version or kind: a fixed header at
//! the front and the author's signature at the back. It is what lets a node verify, store and
//! relay entries of kinds and versions it does not understand (see "Versioning" in
//! `docs/protocol.md`).
//!
//! ```text
//! entry  = header rest signature
//! header = version:u8 network:[32] author:[32] created_at_ms:u64 kind:u8     (74 bytes)
//! signature = ed25519 over SIGNING_CONTEXT ‖ header ‖ rest                   (64 bytes)
//! ```

use serde::{Deserialize, Serialize};

use crate::body::EntryKind;
use crate::entry::FORMAT_VERSION;
use crate::error::EntryError;
use crate::ids::{AuthorId, NetworkId};
use crate::limits::ENTRY_BYTES_MAX;

/// Bytes of the shared header.
pub const HEADER_BYTES: usize = 1 + 32 + 32 + 8 + 1;
/// Bytes of the signature that closes every entry.
pub const SIGNATURE_BYTES: usize = 64;

/// The fields every entry of every version carries in the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    pub version: u8,
    pub network: NetworkId,
    pub author: AuthorId,
    pub created_at_ms: u64,
    /// The kind's tag; for versions other than 1, whatever that version puts here.
    pub kind: u8,
}

impl Header {
    /// Reads the header of an entry's encoding, checking the size bounds every entry obeys.
    pub fn parse(bytes: &[u8]) -> Result<Header, EntryError> {
        if bytes.len() > ENTRY_BYTES_MAX {
            return Err(EntryError::TooLarge {
                len: bytes.len(),
                max: ENTRY_BYTES_MAX,
            });
        }
        if bytes.len() < HEADER_BYTES + SIGNATURE_BYTES {
            let field = if bytes.len() < HEADER_BYTES {
                "header"
            } else {
                "signature"
            };
            return Err(EntryError::Truncated { field });
        }
        let array = |from: usize| -> [u8; 32] {
            let mut out = [0u8; 32];
            out.copy_from_slice(&bytes[from..from + 32]);
            out
        };
        let mut time = [0u8; 8];
        time.copy_from_slice(&bytes[65..73]);
        Ok(Header {
            version: bytes[0],
            network: NetworkId(array(1)),
            author: AuthorId(array(33)),
            created_at_ms: u64::from_be_bytes(time),
            kind: bytes[73],
        })
    }

    /// True when this implementation knows the entry's version and kind, and so applies every
    /// rule of that kind; otherwise the entry is opaque here and only the envelope is checked.
    pub fn is_understood(&self) -> bool {
        self.version == FORMAT_VERSION && EntryKind::from_tag(self.kind).is_ok()
    }

    /// The kind, when this implementation understands it.
    pub fn known_kind(&self) -> Option<EntryKind> {
        self.is_understood()
            .then(|| EntryKind::from_tag(self.kind).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sits_at_fixed_offsets() {
        let mut bytes = vec![0u8; HEADER_BYTES + SIGNATURE_BYTES];
        bytes[0] = 7;
        bytes[1..33].fill(1);
        bytes[33..65].fill(2);
        bytes[65..73].copy_from_slice(&42u64.to_be_bytes());
        bytes[73] = 200;
        let h = Header::parse(&bytes).unwrap();
        assert_eq!(
            (h.version, h.network, h.author, h.created_at_ms, h.kind),
            (7, NetworkId([1; 32]), AuthorId([2; 32]), 42, 200)
        );
        assert!(!h.is_understood());
        assert_eq!(
            Header::parse(&bytes[..100]),
            Err(EntryError::Truncated { field: "signature" })
        );
        assert_eq!(
            Header::parse(&bytes[..10]),
            Err(EntryError::Truncated { field: "header" })
        );
        assert!(matches!(
            Header::parse(&vec![0; ENTRY_BYTES_MAX + 1]),
            Err(EntryError::TooLarge { .. })
        ));
    }
}
