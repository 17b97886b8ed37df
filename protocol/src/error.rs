//! The one error type for an entry that cannot be accepted, with a message a teacher can act
//! on, a stable code for programs, and who is at fault.

/// Why an entry was refused. Every node gives the same verdict on the same bytes, except where
/// [`EntryError::blames_sender`] says the refusal depends on the refusing node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("entry is truncated: {field} is cut short")]
    Truncated { field: &'static str },
    #[error("entry has {count} trailing bytes after its signature")]
    TrailingBytes { count: usize },
    /// Returned by [`crate::Entry::decode`] only: [`crate::verify_entry`] accepts entries of
    /// other versions as opaque.
    #[error("unknown entry format version {0} (this node understands version 1)")]
    UnknownVersion(u8),
    /// Returned by [`crate::Entry::decode`] only: [`crate::verify_entry`] accepts entries of
    /// unknown kinds as opaque.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    #[error("{field} is {len} bytes, more than the {max}-byte limit")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} has {count} items, more than the limit of {max}")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{field} is invalid: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("malformed references: {0}")]
    BadReferences(&'static str),
    #[error(
        "created_at {created_at_ms} ms is more than {skew_ms_max} ms ahead of this node's clock ({now_ms} ms)"
    )]
    FromTheFuture {
        created_at_ms: u64,
        now_ms: u64,
        skew_ms_max: u64,
    },
    #[error("author key is not a valid ed25519 public key (non-canonical, or of small order)")]
    BadAuthorKey,
    #[error("bad signature: the entry was not signed by its author's key")]
    BadSignature,
    /// A rule of a kind added after the first release is broken. Nodes of the first release
    /// pass such entries on unchecked (they are opaque there), so whoever relayed it may not
    /// have known: the entry is refused, its sender not blamed. The code is the inner rule's.
    #[error("{error} (in a {kind_name} entry: a kind older nodes pass on unchecked, so its sender is not blamed)")]
    LaterKind {
        kind: u8,
        kind_name: &'static str,
        error: Box<EntryError>,
    },
}

impl EntryError {
    /// Every code, in the order `docs/protocol.md` lists them.
    pub const CODES: [&'static str; 12] = [
        "entry_too_large",
        "truncated",
        "trailing_bytes",
        "unknown_version",
        "unknown_kind",
        "field_too_long",
        "too_many_items",
        "invalid_field",
        "bad_references",
        "from_the_future",
        "bad_author_key",
        "bad_signature",
    ];

    /// A stable, machine-readable name for the rule broken: the API's error code, and the
    /// `error` of negative test vectors.
    pub fn code(&self) -> &'static str {
        let index = match self {
            EntryError::TooLarge { .. } => 0,
            EntryError::Truncated { .. } => 1,
            EntryError::TrailingBytes { .. } => 2,
            EntryError::UnknownVersion(_) => 3,
            EntryError::UnknownKind(_) => 4,
            EntryError::FieldTooLong { .. } => 5,
            EntryError::TooMany { .. } => 6,
            EntryError::InvalidField { .. } => 7,
            EntryError::BadReferences(_) => 8,
            EntryError::FromTheFuture { .. } => 9,
            EntryError::BadAuthorKey => 10,
            EntryError::BadSignature => 11,
            EntryError::LaterKind { error, .. } => return error.code(),
        };
        Self::CODES[index]
    }

    /// True when the bytes break a rule every node shares, so whoever sent them is at fault.
    ///
    /// False when the verdict depends on the node that reached it: its clock (an entry from
    /// the future becomes valid as time passes) or the kinds and versions it knows. A peer is
    /// never penalised for those.
    pub fn blames_sender(&self) -> bool {
        !matches!(
            self,
            EntryError::FromTheFuture { .. }
                | EntryError::UnknownVersion(_)
                | EntryError::UnknownKind(_)
                | EntryError::LaterKind { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case() {
        let mut codes = EntryError::CODES.to_vec();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), EntryError::CODES.len());
        assert!(codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        assert_eq!(EntryError::BadSignature.code(), "bad_signature");
        assert!(!EntryError::UnknownKind(9).blames_sender());
        assert!(EntryError::BadReferences("x").blames_sender());
    }
}
