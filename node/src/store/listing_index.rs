//! The author and kind listings, as a [`Tag`] on each item of a network's sync index: the
//! entry's kind, its author (as a number this node gave them) and whether this node
//! understands it. Like the sync index they live in memory, rebuilt from the records' headers
//! in the open's one scan and kept by the writer. A listing walks the network's time order
//! and keeps the items whose tag matches (`time_order.rs`).
//!
//! Why not trees or sets (issue 14): as sled trees the two listings cost ~0.3x the entries'
//! bytes on disk each, whatever their keys' length; as sorted sets in memory, 47 MB at a
//! million entries, a third of the node's budget. A tag costs 4 bytes an entry. A listing of
//! something rare scans the network's tags (a few ms at a million), never the disk.

use std::collections::BTreeMap;

use staffroom_protocol::sync::Tag;
use staffroom_protocol::{AuthorId, Header, IdPrefix};

/// Set on the tags of entries this node understands: only those are listed.
const UNDERSTOOD: Tag = 1 << 31;
/// Where the author's number starts in a tag; below it, the kind's tag.
const AUTHOR_SHIFT: u32 = 8;
/// The author numbers a tag has room for; the last, [`AUTHOR_MANY`], is shared.
const AUTHOR_BITS: u32 = 23;
/// The number of every author past the first 2^23 - 1 a node sees. Their entries match every
/// author's listing, and are then dropped by the listing's check of the record.
const AUTHOR_MANY: u32 = (1 << AUTHOR_BITS) - 1;

/// The tag of an entry with `header` by the author numbered `author`.
pub(crate) fn tag(header: &Header, author: u32, understood: bool) -> Tag {
    let understood = if understood { UNDERSTOOD } else { 0 };
    understood | (author.min(AUTHOR_MANY) << AUTHOR_SHIFT) | Tag::from(header.kind)
}

fn kind_of(tag: Tag) -> u8 {
    (tag & 0xFF) as u8
}

fn author_of(tag: Tag) -> u32 {
    (tag >> AUTHOR_SHIFT) & AUTHOR_MANY
}

/// Which items of a network's time order a listing keeps: always only understood entries,
/// and of the kind and author given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Want {
    pub kind: Option<u8>,
    /// An author's number (see [`Authors::filter`]).
    pub author: Option<u32>,
}

impl Want {
    pub(crate) fn keeps(&self, tag: Tag) -> bool {
        let author = author_of(tag);
        tag & UNDERSTOOD != 0
            && self.kind.is_none_or(|k| k == kind_of(tag))
            && self
                .author
                .is_none_or(|a| a == author || author == AUTHOR_MANY)
    }
}

/// The authors of understood entries stored here, numbered in the order this node first
/// stored one of theirs (numbers differ from node to node and are never sent). A number is
/// not taken back when its author's last entry goes (a purge, an erasure): until the next
/// open, where numbers are given afresh, a prefix lookup still finds that author.
#[derive(Debug, Default)]
pub(crate) struct Authors {
    numbers: BTreeMap<AuthorId, u32>,
}

impl Authors {
    /// `author`'s number, given now if they have none.
    pub(crate) fn number(&mut self, author: &AuthorId) -> u32 {
        if let Some(n) = self.numbers.get(author) {
            return *n;
        }
        let next = u32::try_from(self.numbers.len()).unwrap_or(AUTHOR_MANY);
        if next >= AUTHOR_MANY {
            return AUTHOR_MANY;
        }
        self.numbers.insert(*author, next);
        next
    }

    /// `author`'s number, if they have one.
    pub(crate) fn known(&self, author: &AuthorId) -> Option<u32> {
        self.numbers.get(author).copied()
    }

    /// The number a listing of `author`'s entries looks for; `None` when no entry of theirs
    /// is stored here.
    pub(crate) fn filter(&self, author: &AuthorId) -> Option<u32> {
        let full = self.numbers.len() >= AUTHOR_MANY as usize;
        self.numbers
            .get(author)
            .copied()
            .or(full.then_some(AUTHOR_MANY))
    }

    /// Up to `max` authors `prefix` matches, in key order.
    pub(crate) fn matching(&self, prefix: &IdPrefix, max: usize) -> Vec<AuthorId> {
        let whole = prefix.whole_bytes();
        let n = whole.len().min(32);
        let mut from = [0u8; 32];
        from[..n].copy_from_slice(&whole[..n]);
        self.numbers
            .range(AuthorId(from)..)
            .map(|(author, _)| *author)
            .take_while(|a| a.as_bytes().starts_with(&whole[..n]))
            .filter(|a| prefix.matches(a.as_bytes()))
            .take(max)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use staffroom_protocol::{EntryKind, NetworkId};

    use super::*;

    fn header(kind: EntryKind) -> Header {
        Header {
            version: 1,
            network: NetworkId([1; 32]),
            author: AuthorId([2; 32]),
            created_at_ms: 5,
            kind: kind.tag(),
        }
    }

    /// A tag keeps exactly what a listing asks for: understood entries, of its kind and
    /// author; an author past the numbers' room matches every author's listing.
    #[test]
    fn wants_keep_what_they_ask_for() {
        let blog = tag(&header(EntryKind::BlogPost), 7, true);
        let any = Want::default();
        let blogs = Want {
            kind: Some(EntryKind::BlogPost.tag()),
            ..any
        };
        let sevens = Want {
            author: Some(7),
            ..any
        };
        assert!(any.keeps(blog) && blogs.keeps(blog) && sevens.keeps(blog));
        assert!(!Want {
            author: Some(8),
            ..blogs
        }
        .keeps(blog));
        assert!(!Want {
            kind: Some(EntryKind::Resource.tag()),
            ..sevens
        }
        .keeps(blog));
        assert!(!any.keeps(tag(&header(EntryKind::BlogPost), 7, false)));
        let many = tag(&header(EntryKind::BlogPost), u32::MAX, true);
        assert!(Want {
            author: Some(8),
            ..blogs
        }
        .keeps(many));
        assert!(!Want {
            kind: Some(EntryKind::Resource.tag()),
            author: Some(8)
        }
        .keeps(many));
    }

    /// Authors are numbered once each, found by the first hex digits of their keys (whole
    /// bytes and a half), in key order.
    #[test]
    fn authors_are_numbered_once_and_found_by_prefix() {
        let with = |second: u8, third: u8| {
            let mut k = [0xAB; 32];
            k[1] = second;
            k[2] = third;
            AuthorId(k)
        };
        let (a, b, c) = (with(0x01, 0xAB), with(0x01, 0x00), with(0x02, 0xAB));
        let mut authors = Authors::default();
        let numbers: Vec<u32> = [a, a, b, c, AuthorId([0xAC; 32])]
            .iter()
            .map(|x| authors.number(x))
            .collect();
        assert_eq!(numbers, vec![0, 0, 1, 2, 3]);
        assert_eq!(authors.filter(&c), Some(2));
        assert_eq!(authors.filter(&AuthorId([9; 32])), None);
        let found = |hex: &str, max| authors.matching(&hex.parse().unwrap(), max);
        assert_eq!(found("ab01", 10), vec![b, a]);
        assert_eq!(found("ab01a", 10), vec![a]);
        assert_eq!(found("ab01b", 10), vec![]);
        assert_eq!(found("ab02a", 10), vec![c]);
        assert_eq!(found("ab01", 1), vec![b]);
        assert_eq!(found("acac", 10), vec![AuthorId([0xAC; 32])]);
        assert_eq!(found("ad00", 10), vec![]);
    }
}
