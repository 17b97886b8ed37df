//! Every bound the protocol places on an entry, in one place.
//!
//! Sizes are in bytes of UTF-8 (not characters). They are part of the protocol: a node that
//! accepted larger fields would store entries its peers refuse. `docs/protocol.md` lists them.

/// The whole canonical encoding of an entry, signature included.
pub const ENTRY_BYTES_MAX: usize = 64 * 1024;
/// References (edits, enquiry membership, replies, related entries) on one entry.
pub const REFS_COUNT_MAX: usize = 16;
/// How far in the future an entry's creation time may be, to absorb clock skew between schools.
pub const CLOCK_SKEW_MS_MAX: u64 = 10 * 60 * 1000;

/// Single-line titles of posts, resources.
pub const TITLE_BYTES_MAX: usize = 200;
/// The question an enquiry investigates.
pub const QUESTION_BYTES_MAX: usize = 500;
/// Markdown bodies of blog posts, enquiry notes and comments.
pub const BODY_BYTES_MAX: usize = 48 * 1024;
/// Markdown descriptions of resources and enquiries.
pub const DESCRIPTION_BYTES_MAX: usize = 16 * 1024;
/// Tags on a post, subjects on a resource.
pub const LABELS_COUNT_MAX: usize = 16;
/// One tag or subject.
pub const LABEL_BYTES_MAX: usize = 50;
/// A key stage or phase label such as "KS3".
pub const KEY_STAGE_BYTES_MAX: usize = 32;
/// An SPDX licence identifier such as "CC-BY-4.0".
pub const LICENCE_BYTES_MAX: usize = 64;
/// A BCP 47 language tag such as "en-GB" (RFC 5646 caps practical tags at 35 characters).
pub const LANGUAGE_BYTES_MAX: usize = 35;
/// The oldest learner a resource may name, in years (adult and further education included).
pub const AGE_YEARS_MAX: u8 = 99;
/// Entries a sources statement (kind 13) names.
pub const SOURCE_ENTRIES_COUNT_MAX: usize = 16;
/// Web pages a sources statement names.
pub const SOURCE_LINKS_COUNT_MAX: usize = 8;
/// One web page's address in a sources statement.
pub const SOURCE_LINK_BYTES_MAX: usize = 2048;
