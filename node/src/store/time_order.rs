//! A network's entries in time order, read from its sync index (in memory) a chunk at a time,
//! so the index's lock is never held across a read of the store; with a [`Want`], only the
//! items whose tags it keeps (the author and kind listings, `listing_index.rs`). This replaced
//! the `by_network_time` tree (issue 14): the sync index already held the same order.

use std::collections::VecDeque;

use staffroom_protocol::sync::Item;
use staffroom_protocol::NetworkId;

use super::listing_index::Want;
use super::Trees;

/// Items read under one hold of the index's lock.
const CHUNK_ITEMS: usize = 256;
/// Items a filtered walk looks at under one hold at most, however few it keeps: a listing of
/// something rare reads a million tags in ~250 short holds.
const SCAN_ITEMS: usize = 4096;

/// Which way a walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From `from` (inclusive) to the newest.
    OldestFirst { from: Item },
    /// From the newest to the oldest.
    NewestFirst,
}

/// The entry ids of one network in (time, id) order; entries stored or removed during the walk
/// may or may not be seen, as with a sled range. Ends when the network has no more.
pub(crate) struct TimeOrder<'a> {
    trees: &'a Trees,
    network: NetworkId,
    direction: Direction,
    /// Only the items whose tags this keeps, when given.
    want: Option<Want>,
    /// The last item looked at (exclusive bound of the next chunk), once there is one.
    last: Option<Item>,
    buffer: VecDeque<Item>,
    done: bool,
}

impl<'a> TimeOrder<'a> {
    pub(crate) fn new(
        trees: &'a Trees,
        network: NetworkId,
        direction: Direction,
        want: Option<Want>,
    ) -> Self {
        TimeOrder {
            trees,
            network,
            direction,
            want,
            last: None,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// Reads the next chunk past `last`, keeping what `want` keeps; looking at nothing more
    /// ends the walk.
    fn refill(&mut self) {
        let indexes = self.trees.sync.read().unwrap_or_else(|e| e.into_inner());
        let Some(index) = indexes.get(&self.network) else {
            self.done = true;
            return;
        };
        // A listing of an author or a kind may keep few of what it looks at; one of all a
        // network's understood entries keeps nearly all.
        let selective = self
            .want
            .is_some_and(|w| w.kind.is_some() || w.author.is_some());
        let looked = if selective { SCAN_ITEMS } else { CHUNK_ITEMS };
        let (start, end) = match self.direction {
            Direction::OldestFirst { from } => {
                // Past the last one looked at: from its position, skipping it.
                let start = index.lower_bound(&self.last.unwrap_or(from));
                let skip = self.last.is_some_and(|l| index.item_at(start) == Some(&l));
                let start = start + usize::from(skip);
                (start, start + looked)
            }
            Direction::NewestFirst => {
                let end = self.last.map_or(index.len(), |l| index.lower_bound(&l));
                (end.saturating_sub(looked), end)
            }
        };
        let end = end.min(index.len());
        // The item that bounds the next chunk: the last one looked at, in walking order.
        let boundary = match self.direction {
            _ if start >= end => None,
            Direction::OldestFirst { .. } => index.item_at(end - 1),
            Direction::NewestFirst => index.item_at(start),
        };
        let Some(boundary) = boundary.copied() else {
            self.done = true;
            return;
        };
        self.last = Some(boundary);
        // Filtered under the lock: a rare listing copies what it keeps, not every item.
        let want = self.want;
        let mut kept: Vec<Item> = index
            .tagged(start, end)
            .filter(|(_, tag)| want.is_none_or(|w| w.keeps(*tag)))
            .map(|(item, _)| *item)
            .collect();
        if self.direction == Direction::NewestFirst {
            kept.reverse();
        }
        self.buffer.extend(kept);
    }
}

impl Iterator for TimeOrder<'_> {
    type Item = [u8; 32];

    fn next(&mut self) -> Option<[u8; 32]> {
        while self.buffer.is_empty() && !self.done {
            self.refill();
        }
        self.buffer.pop_front().map(|item| item.1)
    }
}

impl Trees {
    /// `network`'s entry ids from time `from_ms` on, oldest first.
    pub(crate) fn ids_from(&self, network: &NetworkId, from_ms: u64) -> TimeOrder<'_> {
        let from = (from_ms, [0u8; 32]);
        TimeOrder::new(self, *network, Direction::OldestFirst { from }, None)
    }

    /// The ids of `network`'s listed entries that `want` keeps, in `direction`.
    pub(crate) fn listed(
        &self,
        network: &NetworkId,
        direction: Direction,
        want: Want,
    ) -> TimeOrder<'_> {
        TimeOrder::new(self, *network, direction, Some(want))
    }

    /// As `listed` newest first, but only items before `before` (time, then id): the walk
    /// starts there rather than at the newest, so a later page costs no more than the first.
    pub(crate) fn listed_before(
        &self,
        network: &NetworkId,
        before: Item,
        want: Want,
    ) -> TimeOrder<'_> {
        let mut walk = TimeOrder::new(self, *network, Direction::NewestFirst, Some(want));
        walk.last = Some(before);
        walk
    }
}

#[cfg(test)]
mod tests {
    use staffroom_protocol::fixtures::{key, network, numbered_post};

    use super::{Direction, TimeOrder};
    use crate::store::tests::{joined, verified};

    /// Walks cross chunk boundaries without losing or repeating an item, both ways, and one
    /// that starts mid-way starts at the first item at or after its time.
    #[tokio::test]
    async fn walks_both_ways_across_chunks() {
        let (_dir, store) = joined(&[network(1)]).await;
        let posts: Vec<_> = (0..(super::CHUNK_ITEMS as u64 * 2 + 7))
            .map(|n| numbered_post(&key(1), network(1), n))
            .collect();
        store
            .insert(posts.iter().map(verified).collect())
            .await
            .unwrap();
        let mut expected: Vec<(u64, [u8; 32])> =
            store.with_sync_index(&network(1), |ix| ix.items(0, ix.len()).copied().collect());
        assert_eq!(expected.len(), posts.len());
        let oldest: Vec<_> = store.trees.ids_from(&network(1), 0).collect();
        assert_eq!(oldest, expected.iter().map(|i| i.1).collect::<Vec<_>>());
        let middle = expected[300].0;
        let later: Vec<_> = store.trees.ids_from(&network(1), middle).collect();
        let first_at = expected.iter().position(|i| i.0 >= middle).unwrap();
        assert_eq!(later.len(), expected.len() - first_at);
        expected.reverse();
        let newest_first = |n| TimeOrder::new(&store.trees, n, Direction::NewestFirst, None);
        let newest: Vec<_> = newest_first(network(1)).collect();
        assert_eq!(newest, expected.iter().map(|i| i.1).collect::<Vec<_>>());
        assert_eq!(newest_first(network(9)).count(), 0);
    }
}

#[cfg(test)]
mod listing_tests {
    use staffroom_protocol::fixtures::{key, network, numbered_post};
    use staffroom_protocol::EntryKind;

    use super::{Direction, Want, SCAN_ITEMS};
    use crate::store::tests::{joined, verified};

    /// A listing of a rare author finds each of their entries, newest first, across more
    /// than one scan of the tags; one of a common kind finds every entry both ways.
    #[tokio::test]
    async fn filtered_walks_find_rare_entries_across_scans() {
        let (_dir, store) = joined(&[network(1)]).await;
        let total = SCAN_ITEMS as u64 + 500;
        let rare = [3, SCAN_ITEMS as u64 - 1, SCAN_ITEMS as u64 + 2, total - 1];
        let posts: Vec<_> = (0..total)
            .map(|n| {
                let author = if rare.contains(&n) { key(2) } else { key(1) };
                numbered_post(&author, network(1), n)
            })
            .collect();
        for chunk in posts.chunks(1024) {
            store
                .insert(chunk.iter().map(verified).collect())
                .await
                .unwrap();
        }
        let number = |k: u8| {
            let authors = store.trees.authors.read().unwrap();
            authors.filter(&staffroom_protocol::AuthorId(
                key(k).verifying_key().to_bytes(),
            ))
        };
        let want = Want {
            kind: None,
            author: number(2),
        };
        let found: Vec<_> = store
            .trees
            .listed(&network(1), Direction::NewestFirst, want)
            .collect();
        let expected: Vec<_> = rare
            .iter()
            .rev()
            .map(|&n| posts[n as usize].id().0)
            .collect();
        assert_eq!(found, expected);
        let blogs = Want {
            kind: Some(EntryKind::BlogPost.tag()),
            author: None,
        };
        let oldest = Direction::OldestFirst { from: (0, [0; 32]) };
        for direction in [oldest, Direction::NewestFirst] {
            let all = store.trees.listed(&network(1), direction, blogs).count();
            assert_eq!(all as u64, total, "{direction:?}");
        }
        let resources = Want {
            kind: Some(EntryKind::Resource.tag()),
            author: None,
        };
        let none = store
            .trees
            .listed(&network(1), Direction::NewestFirst, resources);
        assert_eq!(none.count(), 0);
    }
}
