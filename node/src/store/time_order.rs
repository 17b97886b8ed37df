//! A network's entries in time order, read from its sync index (in memory) a chunk at a time,
//! so the index's lock is never held across a read of the store. This replaced the
//! `by_network_time` tree (issue 14): the sync index already held the same order.

use std::collections::VecDeque;

use staffroom_protocol::sync::Item;
use staffroom_protocol::NetworkId;

use super::Trees;

/// Items read under one hold of the index's lock.
const CHUNK_ITEMS: usize = 256;

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
    /// The last item handed out (exclusive bound of the next chunk), once there is one.
    last: Option<Item>,
    buffer: VecDeque<Item>,
    done: bool,
}

impl<'a> TimeOrder<'a> {
    pub(crate) fn new(trees: &'a Trees, network: NetworkId, direction: Direction) -> Self {
        TimeOrder {
            trees,
            network,
            direction,
            last: None,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// Reads the next chunk past `last`; an empty one ends the walk.
    fn refill(&mut self) {
        let indexes = self.trees.sync.read().unwrap_or_else(|e| e.into_inner());
        let Some(index) = indexes.get(&self.network) else {
            self.done = true;
            return;
        };
        let chunk: Vec<Item> = match (self.direction, self.last) {
            (Direction::OldestFirst { from }, last) => {
                // Past the last one handed out: from its position, skipping it.
                let start = index.lower_bound(&last.unwrap_or(from));
                let skip = usize::from(last.is_some_and(|l| index.item_at(start) == Some(&l)));
                index
                    .items(start + skip, start + skip + CHUNK_ITEMS)
                    .copied()
                    .collect()
            }
            (Direction::NewestFirst, last) => {
                let end = last.map_or(index.len(), |l| index.lower_bound(&l));
                let start = end.saturating_sub(CHUNK_ITEMS);
                let mut items: Vec<Item> = index.items(start, end).copied().collect();
                items.reverse();
                items
            }
        };
        self.done = chunk.is_empty();
        self.buffer.extend(chunk);
    }
}

impl Iterator for TimeOrder<'_> {
    type Item = [u8; 32];

    fn next(&mut self) -> Option<[u8; 32]> {
        if self.buffer.is_empty() && !self.done {
            self.refill();
        }
        let item = self.buffer.pop_front()?;
        self.last = Some(item);
        Some(item.1)
    }
}

impl Trees {
    /// `network`'s entry ids from time `from_ms` on, oldest first.
    pub(crate) fn ids_from(&self, network: &NetworkId, from_ms: u64) -> TimeOrder<'_> {
        let from = (from_ms, [0u8; 32]);
        TimeOrder::new(self, *network, Direction::OldestFirst { from })
    }

    /// `network`'s entry ids, newest first.
    pub(crate) fn ids_newest_first(&self, network: &NetworkId) -> TimeOrder<'_> {
        TimeOrder::new(self, *network, Direction::NewestFirst)
    }
}

#[cfg(test)]
mod tests {
    use staffroom_protocol::fixtures::{key, network, numbered_post};

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
        let newest: Vec<_> = store.trees.ids_newest_first(&network(1)).collect();
        assert_eq!(newest, expected.iter().map(|i| i.1).collect::<Vec<_>>());
        assert_eq!(store.trees.ids_newest_first(&network(9)).count(), 0);
    }
}
