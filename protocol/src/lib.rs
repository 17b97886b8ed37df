//! Staffroom's protocol: the data model, its canonical encoding, signatures and validation.
//!
//! This crate does no I/O and knows nothing of networks, disks or clocks: callers pass the
//! current time in. Everything a node accepts from the network or from its API passes through
//! [`verify_entry`], so every node reaches the same verdict on the same bytes.
//!
//! The wire and storage form of an entry is its canonical encoding ([`Entry::encode`]),
//! specified in `docs/protocol.md`. JSON (via serde) is only a view for humans and tools.

pub mod body;
mod codec;
pub mod entry;
pub mod envelope;
pub mod erasure;
pub mod error;
pub mod files;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ids;
pub mod limits;
pub mod membership;
pub mod private;
pub mod publication;
pub mod sources;
pub mod sync;
pub mod text;
pub mod validate;

pub use body::{BlogPost, Body, Comment, Enquiry, EnquiryNote, EntryKind, Resource, Stage};
pub use entry::{Draft, Entry, Ref, Relation, SIGNING_CONTEXT};
pub use envelope::Header;
pub use erasure::{Erasure, ErasureAction, ErasureReason};
pub use error::EntryError;
pub use files::{FileRef, FileRoot};
pub use ids::{
    AuthorId, EntryId, IdPrefix, NetworkId, NodeKey, ParseIdError, ParseIdPrefixError,
    ID_PREFIX_CHARS_MIN,
};
pub use publication::Publication;
pub use sources::Sources;
pub use validate::{verify_entry, verify_entry_cached, KeyCache, VerifiedEntry};

/// Re-exported so that callers sign and verify with the same ed25519 implementation.
pub use ed25519_dalek::SigningKey;
