//! The author and kind listing indexes, held in memory: rebuilt from the records' headers in
//! the open's one scan and kept up to date by the writer, as a network's time order is. As
//! sled trees they cost ~0.3x the entries' bytes on disk each, whatever their keys' length
//! (issue 14: the store's ≤ 2x target); here they cost ~20 bytes an entry each in memory.
//!
//! A listing holds [`Slot`]s: an entry's time and the first [`ID_PREFIX_BYTES`] of its id,
//! which sort in time order. The whole id is read back from the `entries` tree by that
//! prefix, keeping the records whose header matches the listing and the time. Two entries
//! of one listing sharing a slot (same millisecond, same first 8 id bytes: ~2^64 tries to make
//! on purpose) share it: removing one unlists the other until the next open.
//!
//! Only understood entries are listed, as before: opaque ones are marked in sled instead.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;

use staffroom_protocol::{AuthorId, Entry, EntryId, Header, IdPrefix, NetworkId};

use super::{StoreError, Trees};

/// How many bytes of an entry's id a slot keeps.
pub(crate) const ID_PREFIX_BYTES: usize = 8;
/// An entry in a listing: its `created_at_ms` (big-endian) ‖ its id's first bytes.
pub(crate) type Slot = [u8; 16];
/// Slots read under one hold of the indexes' lock.
const CHUNK_SLOTS: usize = 256;

/// Which way a listing is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    NewestFirst,
    OldestFirst,
}

/// One listing: an author's entries (in every network), or a network's entries of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ListingKey {
    Author(AuthorId),
    Kind(NetworkId, u8),
}

/// What places an entry in listings: the fields of its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listed {
    pub author: AuthorId,
    pub network: NetworkId,
    pub kind: u8,
    pub at_ms: u64,
}

impl Listed {
    pub(crate) fn of_header(h: &Header) -> Listed {
        Listed {
            author: h.author,
            network: h.network,
            kind: h.kind,
            at_ms: h.created_at_ms,
        }
    }

    pub(crate) fn of_entry(e: &Entry) -> Listed {
        Listed {
            author: e.author,
            network: e.network,
            kind: e.kind().tag(),
            at_ms: e.created_at_ms,
        }
    }

    fn keys(&self) -> [ListingKey; 2] {
        [
            ListingKey::Author(self.author),
            ListingKey::Kind(self.network, self.kind),
        ]
    }

    /// Whether an entry with this header belongs to `key`'s listing at `slot`.
    fn fits(&self, key: &ListingKey, slot: &Slot) -> bool {
        self.keys().contains(key) && self.at_ms.to_be_bytes() == slot[..8]
    }
}

pub(crate) fn slot(at_ms: u64, id: &EntryId) -> Slot {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&at_ms.to_be_bytes());
    s[8..].copy_from_slice(&id.as_bytes()[..ID_PREFIX_BYTES]);
    s
}

/// Gathers slots during the open's scan (16 bytes each, where whole headers would take ~100),
/// then builds the sets in bulk.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    gathered: HashMap<ListingKey, Vec<Slot>>,
}

impl Builder {
    pub(crate) fn add(&mut self, listed: &Listed, id: &EntryId) {
        for key in listed.keys() {
            self.gathered
                .entry(key)
                .or_default()
                .push(slot(listed.at_ms, id));
        }
    }

    pub(crate) fn finish(self) -> Listings {
        let sets = self
            .gathered
            .into_iter()
            .map(|(key, slots)| (key, slots.into_iter().collect()))
            .collect();
        Listings { sets }
    }
}

/// Every listing's slots.
#[derive(Debug, Default)]
pub(crate) struct Listings {
    sets: BTreeMap<ListingKey, BTreeSet<Slot>>,
}

impl Listings {
    /// Built at once from `(entry, id)` pairs in any order (sorted sets built in bulk are
    /// packed full, unlike ones grown an insert at a time).
    #[cfg(test)]
    pub(crate) fn build(items: impl IntoIterator<Item = (Listed, EntryId)>) -> Listings {
        let mut builder = Builder::default();
        for (listed, id) in items {
            builder.add(&listed, &id);
        }
        builder.finish()
    }

    pub(crate) fn insert(&mut self, listed: &Listed, id: &EntryId) {
        for key in listed.keys() {
            self.sets
                .entry(key)
                .or_default()
                .insert(slot(listed.at_ms, id));
        }
    }

    pub(crate) fn remove(&mut self, listed: &Listed, id: &EntryId) {
        for key in listed.keys() {
            if let Some(set) = self.sets.get_mut(&key) {
                set.remove(&slot(listed.at_ms, id));
                if set.is_empty() {
                    self.sets.remove(&key);
                }
            }
        }
    }

    /// Up to `max` slots of `key`'s listing past `last` (from the start without it), in
    /// `order`.
    fn page(&self, key: &ListingKey, last: Option<Slot>, max: usize, order: Order) -> Vec<Slot> {
        let Some(set) = self.sets.get(key) else {
            return Vec::new();
        };
        let past = match last {
            Some(l) => (Bound::Excluded(l), Bound::Excluded(l)),
            None => (Bound::Unbounded, Bound::Unbounded),
        };
        match order {
            Order::NewestFirst => set
                .range((Bound::Unbounded, past.1))
                .rev()
                .take(max)
                .copied()
                .collect(),
            Order::OldestFirst => set
                .range((past.0, Bound::Unbounded))
                .take(max)
                .copied()
                .collect(),
        }
    }

    /// Up to `max` authors with listed entries whose keys `prefix` matches, in key order.
    pub(crate) fn authors_matching(&self, prefix: &IdPrefix, max: usize) -> Vec<AuthorId> {
        let whole = prefix.whole_bytes();
        let mut from = [0u8; 32];
        let n = whole.len().min(32);
        from[..n].copy_from_slice(&whole[..n]);
        self.sets
            .range(ListingKey::Author(AuthorId(from))..)
            .map_while(|(key, _)| match key {
                ListingKey::Author(a) if a.as_bytes().starts_with(&whole[..n]) => Some(*a),
                _ => None,
            })
            .filter(|a| prefix.matches(a.as_bytes()))
            .take(max)
            .collect()
    }

    /// Slots listed in all (each entry once per listing it is in).
    #[cfg(test)]
    pub(crate) fn slot_count(&self) -> usize {
        self.sets.values().map(BTreeSet::len).sum()
    }
}

/// The ids of one listing in time order, read a chunk at a time so the indexes' lock is never
/// held across a read of sled; each slot is resolved to its records by id prefix. Entries
/// stored or removed during the walk may or may not be seen, as with a sled range.
pub(crate) struct Walk<'a> {
    trees: &'a Trees,
    key: ListingKey,
    order: Order,
    last: Option<Slot>,
    slots: VecDeque<Slot>,
    ids: VecDeque<EntryId>,
    done: bool,
}

impl<'a> Walk<'a> {
    pub(crate) fn new(trees: &'a Trees, key: ListingKey, order: Order) -> Self {
        Walk {
            trees,
            key,
            order,
            last: None,
            slots: VecDeque::new(),
            ids: VecDeque::new(),
            done: false,
        }
    }

    fn refill(&mut self) {
        let listings = self
            .trees
            .listings
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let chunk = listings.page(&self.key, self.last, CHUNK_SLOTS, self.order);
        drop(listings);
        self.done = chunk.is_empty();
        self.last = chunk.last().copied().or(self.last);
        self.slots.extend(chunk);
    }

    /// The ids of the records `slot` stands for in this listing: one, but for a record a
    /// crash left unwritten (none) or ids sharing their first bytes (more).
    fn resolve(&self, slot: &Slot) -> Result<Vec<EntryId>, StoreError> {
        let mut ids = Vec::new();
        for item in self.trees.entries.scan_prefix(&slot[8..]) {
            let (key, record) = item?;
            let Ok(id) = <[u8; 32]>::try_from(&key[..]) else {
                continue;
            };
            let fits = super::record::header(&record)
                .is_some_and(|h| Listed::of_header(&h).fits(&self.key, slot));
            if fits {
                ids.push(EntryId(id));
            }
        }
        Ok(ids)
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<EntryId, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(id) = self.ids.pop_front() {
                return Some(Ok(id));
            }
            if self.slots.is_empty() && !self.done {
                self.refill();
            }
            let slot = self.slots.pop_front()?;
            match self.resolve(&slot) {
                Ok(ids) => self.ids.extend(ids),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl Trees {
    /// `author`'s listed entries in every network, newest first.
    pub(crate) fn by_author(&self, author: &AuthorId) -> Walk<'_> {
        Walk::new(self, ListingKey::Author(*author), Order::NewestFirst)
    }

    /// `network`'s listed entries of the kind tagged `kind`, in `order`.
    pub(crate) fn by_kind(&self, network: &NetworkId, kind: u8, order: Order) -> Walk<'_> {
        Walk::new(self, ListingKey::Kind(*network, kind), order)
    }

    /// Lists an understood entry.
    pub(crate) fn list_entry(&self, listed: &Listed, id: &EntryId) {
        let mut listings = self.listings.write().unwrap_or_else(|e| e.into_inner());
        listings.insert(listed, id);
    }

    /// Takes an entry out of the listings.
    pub(crate) fn unlist_entry(&self, listed: &Listed, id: &EntryId) {
        let mut listings = self.listings.write().unwrap_or_else(|e| e.into_inner());
        listings.remove(listed, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(author: u8, network: u8, kind: u8, at_ms: u64) -> Listed {
        Listed {
            author: AuthorId([author; 32]),
            network: NetworkId([network; 32]),
            kind,
            at_ms,
        }
    }

    fn id(n: u8) -> EntryId {
        EntryId([n; 32])
    }

    /// Built in bulk or an insert at a time, the sets hold the same slots; a removal takes
    /// an entry out of both of its listings, and an emptied listing goes.
    #[test]
    fn built_and_inserted_agree_and_removal_empties() {
        let items: Vec<_> = (0..50u8)
            .map(|n| (listed(n % 3, n % 2, 7 + n % 4, 1_000 - u64::from(n)), id(n)))
            .collect();
        let built = Listings::build(items.iter().copied());
        let mut grown = Listings::default();
        for (l, i) in &items {
            grown.insert(l, i);
        }
        assert_eq!(built.sets, grown.sets);
        assert_eq!(built.slot_count(), 100);
        for (l, i) in &items {
            grown.remove(l, i);
        }
        assert!(grown.sets.is_empty());
    }

    /// Pages both ways, across pages, without a repeat or a gap.
    #[test]
    fn pages_both_ways_without_gaps() {
        let items: Vec<_> = (0..=255u8)
            .map(|n| (listed(1, 1, 7, u64::from(n) * 3 % 256), id(n)))
            .collect();
        let listings = Listings::build(items);
        let key = ListingKey::Author(AuthorId([1; 32]));
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let mut seen = Vec::new();
            let mut last = None;
            loop {
                let page = listings.page(&key, last, 10, order);
                let Some(end) = page.last() else { break };
                last = Some(*end);
                seen.extend(page);
            }
            let mut expected = seen.clone();
            expected.sort_unstable();
            expected.dedup();
            if order == Order::NewestFirst {
                expected.reverse();
            }
            assert_eq!(seen, expected, "{order:?}");
            assert_eq!(seen.len(), 256, "{order:?}");
        }
    }

    /// Authors are found by the first hex digits of their keys (whole bytes and a half), each
    /// once however many entries they wrote.
    #[test]
    fn authors_by_prefix() {
        let with = |second: u8, third: u8| {
            let mut k = [0xAB; 32];
            k[1] = second;
            k[2] = third;
            AuthorId(k)
        };
        let (a, b, c) = (with(0x01, 0xAB), with(0x01, 0x00), with(0x02, 0xAB));
        let mut listings = Listings::build([(listed(0xAC, 1, 7, 3), id(3))]);
        for (n, author) in [a, a, b, c].into_iter().enumerate() {
            let l = Listed {
                author,
                ..listed(0, 1, 7, n as u64)
            };
            listings.insert(&l, &id(n as u8 + 10));
        }
        let found = |hex: &str, max| listings.authors_matching(&hex.parse().unwrap(), max);
        assert_eq!(found("ab01", 10), vec![b, a]);
        assert_eq!(found("ab01a", 10), vec![a]);
        assert_eq!(found("ab01b", 10), vec![]);
        assert_eq!(found("ab02a", 10), vec![c]);
        assert_eq!(found("ab01", 1), vec![b]);
        assert_eq!(found("acac", 10), vec![AuthorId([0xAC; 32])]);
        assert_eq!(found("ad00", 10), vec![]);
    }
}
