//! The one error type for an entry that cannot be accepted, with a message a teacher can act on.

/// Why an entry was refused. Every node gives the same verdict on the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("entry is truncated: {field} is cut short")]
    Truncated { field: &'static str },
    #[error("entry has {count} trailing bytes after its signature")]
    TrailingBytes { count: usize },
    #[error("unknown entry format version {0} (this node understands version 1)")]
    UnknownVersion(u8),
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
    #[error("author key is not a valid ed25519 public key")]
    BadAuthorKey,
    #[error("bad signature: the entry was not signed by its author's key")]
    BadSignature,
}
