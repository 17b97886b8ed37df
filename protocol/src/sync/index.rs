//! The sorted set a node reconciles, per network: (created_at_ms, entry id) items in blocks,
//! each block with the accumulator of its ids, so any range's fingerprint costs a few block
//! sums plus at most two partial blocks, and an insert updates one block.
//!
//! Each item may carry a 32-bit [`Tag`] of its owner's (a node keeps what its listings need
//! there: 4 bytes an item where separate indexes took ~24). Tags take no part in
//! reconciliation: two indexes with the same items agree whatever their tags.

use super::fingerprint::{Accumulator, Fingerprint};

/// An item in reconciliation order: creation time, then id.
pub type Item = (u64, [u8; 32]);
/// What the index's owner keeps beside an item; 0 unless given.
pub type Tag = u32;

/// A block splits in two past this many items.
const BLOCK_ITEMS_MAX: usize = 512;

#[derive(Debug, Clone, Default)]
struct Block {
    items: Vec<Item>,
    /// `tags[i]` goes with `items[i]`.
    tags: Vec<Tag>,
    acc: Accumulator,
}

impl Block {
    fn with_capacity(items: usize) -> Block {
        Block {
            items: Vec::with_capacity(items),
            tags: Vec::with_capacity(items),
            acc: Accumulator::default(),
        }
    }
}

/// Items sorted by (time, id), with incrementally maintained range fingerprints.
#[derive(Debug, Clone, Default)]
pub struct SyncIndex {
    blocks: Vec<Block>,
    /// `starts[b]`: the number of items before block `b`, so positions are found by binary
    /// search. Inserting shifts the starts of the blocks after it; items arrive mostly in
    /// time order (at the end), where that costs nothing.
    starts: Vec<usize>,
    len: usize,
}

impl SyncIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An index of `items`, given in order (time, then id) with their tags, built in one pass:
    /// full blocks of exactly their items' size. An item out of order or repeated is skipped.
    pub fn from_sorted(items: impl IntoIterator<Item = (Item, Tag)>) -> SyncIndex {
        let mut index = SyncIndex::new();
        let mut block = Block::with_capacity(BLOCK_ITEMS_MAX);
        for (item, tag) in items {
            let last = block
                .items
                .last()
                .or(index.blocks.last().and_then(|b| b.items.last()));
            if last.is_some_and(|last| *last >= item) {
                continue;
            }
            block.items.push(item);
            block.tags.push(tag);
            block.acc.add_id(&item.1);
            if block.items.len() == BLOCK_ITEMS_MAX {
                index.push_block(std::mem::replace(
                    &mut block,
                    Block::with_capacity(BLOCK_ITEMS_MAX),
                ));
            }
        }
        if !block.items.is_empty() {
            block.items.shrink_to_fit();
            block.tags.shrink_to_fit();
            index.push_block(block);
        }
        index
    }

    fn push_block(&mut self, block: Block) {
        self.starts.push(self.len);
        self.len += block.items.len();
        self.blocks.push(block);
    }

    /// Adds an item (tagged 0); false if it was already present.
    pub fn insert(&mut self, item: Item) -> bool {
        self.insert_tagged(item, 0)
    }

    /// Adds an item with its tag; false if it was already present (its tag is left).
    pub fn insert_tagged(&mut self, item: Item, tag: Tag) -> bool {
        if self.blocks.is_empty() {
            self.blocks.push(Block::default());
            self.starts.push(0);
        }
        // The first block whose last item is >= item (or the last block).
        let b = self
            .blocks
            .partition_point(|blk| blk.items.last().is_some_and(|last| *last < item))
            .min(self.blocks.len() - 1);
        let last_block = b + 1 == self.blocks.len();
        let block = &mut self.blocks[b];
        let Err(at) = block.items.binary_search(&item) else {
            return false;
        };
        block.items.insert(at, item);
        block.tags.insert(at, tag);
        block.acc.add_id(&item.1);
        self.len += 1;
        self.starts[b + 1..].iter_mut().for_each(|s| *s += 1);
        if block.items.len() > BLOCK_ITEMS_MAX {
            // Appended at the very end (a network's usual growth, and every build from a
            // sorted scan): this block stays full and the next starts with the new item.
            // Elsewhere it splits in half. Either way the lower half gives back its spare
            // capacity: blocks left half full with a doubled buffer held ~4x their items'
            // bytes (issue 14, a million entries).
            let appended = last_block && at + 1 == block.items.len();
            let keep = match appended {
                true => BLOCK_ITEMS_MAX,
                false => block.items.len() / 2,
            };
            let upper = block.items.split_off(keep);
            let upper_tags = block.tags.split_off(keep);
            block.items.shrink_to_fit();
            block.tags.shrink_to_fit();
            block.acc = accumulate(&block.items);
            let start = self.starts[b] + block.items.len();
            let acc = accumulate(&upper);
            self.blocks.insert(
                b + 1,
                Block {
                    items: upper,
                    tags: upper_tags,
                    acc,
                },
            );
            self.starts.insert(b + 1, start);
        }
        true
    }

    /// Removes an item; false if it was not present. (Rare — a removed member's entries made
    /// after their removal — so the block's accumulator is simply recomputed.)
    pub fn remove(&mut self, item: &Item) -> bool {
        let Some(b) = self
            .blocks
            .iter()
            .position(|blk| blk.items.last().is_some_and(|last| last >= item))
        else {
            return false;
        };
        let block = &mut self.blocks[b];
        let Ok(at) = block.items.binary_search(item) else {
            return false;
        };
        block.items.remove(at);
        block.tags.remove(at);
        block.acc = accumulate(&block.items);
        self.len -= 1;
        self.starts[b + 1..].iter_mut().for_each(|s| *s -= 1);
        if block.items.is_empty() && self.blocks.len() > 1 {
            self.blocks.remove(b);
            self.starts.remove(b);
        }
        true
    }

    /// The position of the first item >= `item` (the number of items before it).
    pub fn lower_bound(&self, item: &Item) -> usize {
        let (b, before) = self.locate_item(item);
        match self.blocks.get(b) {
            Some(blk) => before + blk.items.partition_point(|x| x < item),
            None => self.len,
        }
    }

    /// Block index holding the first item >= `item`, and the count of items before that block.
    fn locate_item(&self, item: &Item) -> (usize, usize) {
        let b = self
            .blocks
            .partition_point(|blk| blk.items.last().is_some_and(|last| last < item));
        (b, self.starts.get(b).copied().unwrap_or(self.len))
    }

    /// Block index and offset of position `pos`.
    fn locate_pos(&self, pos: usize) -> (usize, usize) {
        if pos >= self.len {
            return (self.blocks.len(), 0);
        }
        // The last block starting at or before `pos` (blocks are never empty once made).
        let b = self.starts.partition_point(|&start| start <= pos) - 1;
        (b, pos - self.starts[b])
    }

    /// The fingerprint of the items at positions `from..to`.
    pub fn fingerprint(&self, from: usize, to: usize) -> Fingerprint {
        self.accumulate(from, to).fingerprint()
    }

    /// The accumulator (sum and count) of the items at positions `from..to`.
    pub fn accumulate(&self, from: usize, to: usize) -> Accumulator {
        let mut acc = Accumulator::default();
        if from >= to {
            return acc;
        }
        let (mut b, mut offset) = self.locate_pos(from);
        let mut remaining = to - from;
        while remaining > 0 && b < self.blocks.len() {
            let blk = &self.blocks[b];
            let available = blk.items.len() - offset;
            if offset == 0 && remaining >= available {
                acc.add(&blk.acc);
                remaining -= available;
            } else {
                let take = remaining.min(available);
                blk.items[offset..offset + take]
                    .iter()
                    .for_each(|it| acc.add_id(&it.1));
                remaining -= take;
            }
            b += 1;
            offset = 0;
        }
        acc
    }

    /// The items at positions `from..to`, in order.
    pub fn items(&self, from: usize, to: usize) -> impl Iterator<Item = &Item> + '_ {
        let (b, offset) = self.locate_pos(from);
        self.blocks[b.min(self.blocks.len())..]
            .iter()
            .flat_map(|blk| blk.items.iter())
            .skip(offset)
            .take(to.saturating_sub(from))
    }

    /// The items at positions `from..to` with their tags, in order.
    pub fn tagged(&self, from: usize, to: usize) -> impl Iterator<Item = (&Item, Tag)> + '_ {
        let (b, offset) = self.locate_pos(from);
        self.blocks[b.min(self.blocks.len())..]
            .iter()
            .flat_map(|blk| blk.items.iter().zip(blk.tags.iter().copied()))
            .skip(offset)
            .take(to.saturating_sub(from))
    }

    pub fn item_at(&self, pos: usize) -> Option<&Item> {
        let (b, offset) = self.locate_pos(pos);
        self.blocks.get(b).and_then(|blk| blk.items.get(offset))
    }
}

fn accumulate(items: &[Item]) -> Accumulator {
    let mut acc = Accumulator::default();
    items.iter().for_each(|it| acc.add_id(&it.1));
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(t: u64, n: u32) -> Item {
        (t, *blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    /// Items appended in order leave every block but the last full, without spare capacity;
    /// items inserted out of order leave none with more than it holds either.
    #[test]
    fn blocks_hold_no_spare_capacity() {
        let mut index = SyncIndex::new();
        for n in 0..10_000u32 {
            index.insert(item(u64::from(n), n));
        }
        let (last, full) = index.blocks.split_last().unwrap();
        assert!(full
            .iter()
            .all(|b| b.items.len() == BLOCK_ITEMS_MAX && b.items.capacity() == BLOCK_ITEMS_MAX));
        assert_eq!(last.items.len(), 10_000 % BLOCK_ITEMS_MAX);
        let mut shuffled = SyncIndex::new();
        for n in 0..10_000u32 {
            shuffled.insert(item(u64::from(n.wrapping_mul(2_654_435_761) % 10_007), n));
        }
        let spare: usize = shuffled
            .blocks
            .iter()
            .map(|b| b.items.capacity() - b.items.len())
            .sum();
        assert!(spare <= 10_000, "{spare} spare item slots for 10,000 items");
        assert_eq!(shuffled.items(0, shuffled.len()).count(), 10_000);
        assert!(shuffled.items(0, shuffled.len()).is_sorted());
    }

    /// An index built in one pass from sorted items equals one built an insert at a time, and
    /// takes more after it as usual.
    #[test]
    fn built_from_sorted_items_is_the_same_index() {
        let mut items: Vec<(Item, Tag)> = (0..3000u32)
            .map(|n| (item(u64::from(n % 701), n), n))
            .collect();
        items.sort_unstable();
        let mut grown = SyncIndex::new();
        for (it, tag) in &items {
            grown.insert_tagged(*it, *tag);
        }
        let repeated = items.iter().copied().chain(items[..5].iter().copied());
        let mut built = SyncIndex::from_sorted(repeated);
        assert_eq!(built.len(), grown.len());
        let tagged = |ix: &SyncIndex| {
            ix.tagged(0, ix.len())
                .map(|(i, t)| (*i, t))
                .collect::<Vec<_>>()
        };
        assert_eq!(tagged(&built), tagged(&grown));
        for (from, to) in [(0, 3000), (17, 2900), (512, 1024), (1000, 1001)] {
            assert_eq!(built.fingerprint(from, to), grown.fingerprint(from, to));
        }
        let extra = item(5, 99_999);
        assert!(built.insert_tagged(extra, 7));
        assert!(grown.insert_tagged(extra, 7));
        assert_eq!(tagged(&built), tagged(&grown));
        assert_eq!(SyncIndex::from_sorted([]).len(), 0);
    }

    /// Tags stay with their items through splits, inserts between others and removals.
    #[test]
    fn tags_follow_their_items() {
        let tag_of = |it: &Item| u32::from_le_bytes([it.1[0], it.1[1], it.1[2], it.1[3]]);
        let mut index = SyncIndex::new();
        let items: Vec<Item> = (0..5000u32).map(|n| item(u64::from(n % 997), n)).collect();
        for it in &items {
            assert!(index.insert_tagged(*it, tag_of(it)));
        }
        for it in items.iter().step_by(7) {
            assert!(index.remove(it));
        }
        assert!(index
            .tagged(0, index.len())
            .all(|(it, tag)| tag == tag_of(it)));
        assert_eq!(index.tagged(0, index.len()).count(), index.len());
        let middle: Vec<_> = index.tagged(1000, 1010).map(|(it, _)| *it).collect();
        let plain: Vec<_> = index.items(1000, 1010).copied().collect();
        assert_eq!(middle, plain);
    }

    #[test]
    fn removing_items_leaves_the_index_of_the_rest() {
        let mut index = SyncIndex::new();
        let items: Vec<Item> = (0..3000u32).map(|n| item(u64::from(n % 700), n)).collect();
        for it in &items {
            index.insert(*it);
        }
        let mut rest = SyncIndex::new();
        for (n, it) in items.iter().enumerate() {
            if n % 3 == 0 {
                assert!(index.remove(it));
                assert!(!index.remove(it), "only once");
            } else {
                rest.insert(*it);
            }
        }
        assert_eq!(index.len(), rest.len());
        assert_eq!(
            index.fingerprint(0, index.len()),
            rest.fingerprint(0, rest.len())
        );
        for pos in [0, 1, 999, rest.len() - 1] {
            assert_eq!(index.item_at(pos), rest.item_at(pos));
            let probe = rest.item_at(pos).copied().unwrap();
            assert_eq!(index.lower_bound(&probe), rest.lower_bound(&probe));
        }
        assert!(!index.remove(&(5_000, [0; 32])));
    }

    #[test]
    fn matches_a_sorted_vec_through_splits() {
        let mut index = SyncIndex::new();
        let mut reference = Vec::new();
        for n in 0..3000u32 {
            let it = item(u64::from(n * 7919 % 1000), n);
            assert!(index.insert(it));
            reference.push(it);
        }
        assert!(!index.insert(reference[5]), "duplicates are refused");
        reference.sort();
        assert_eq!(index.len(), reference.len());
        assert!(index.blocks.len() > 4, "blocks split");
        let all: Vec<Item> = index.items(0, index.len()).copied().collect();
        assert_eq!(all, reference);
        for (from, to) in [
            (0, 3000),
            (0, 1),
            (17, 1800),
            (511, 513),
            (2999, 3000),
            (40, 40),
        ] {
            let expected = accumulate(&reference[from..to]).fingerprint();
            assert_eq!(index.fingerprint(from, to), expected, "{from}..{to}");
            let listed: Vec<Item> = index.items(from, to).copied().collect();
            assert_eq!(listed, reference[from..to]);
        }
        assert_eq!(index.lower_bound(&reference[1234]), 1234);
        assert_eq!(index.lower_bound(&(u64::MAX, [0; 32])), 3000);
        assert_eq!(index.item_at(77), Some(&reference[77]));
        assert_eq!(
            index.item_at(index.lower_bound(&reference[2000])),
            Some(&reference[2000])
        );
        assert_eq!(
            index.lower_bound(&item(5000, 1)),
            3000,
            "absent items sort past the end"
        );
        let mut before = 0;
        for (blk, start) in index.blocks.iter().zip(&index.starts) {
            assert_eq!(*start, before, "block starts stay exact through splits");
            before += blk.items.len();
        }
    }
}
