//! The answer both sides of a reconciliation build: range by range, knowing its exact size,
//! deferring what does not fit and cutting lists at a bound of their own, so that no answer
//! exceeds the message limit (see [`super::reconcile`] for the protocol it serves).

use std::collections::{BTreeMap, HashSet};

use super::fingerprint::{Fingerprint, LowSum, SUM_BYTES};
use super::index::{Item, SyncIndex};
use super::message::{prefix, Bound, IdPrefix, Message, Mode, ID_PREFIX_BYTES};
use super::reconcile::Params;
use super::size::{MessageWriter, BOUND_BYTES_MAX};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Initiator,
    Responder,
}

/// A range whose ids the initiator listed, kept until the responder's reply.
#[derive(Debug, Clone)]
pub(super) struct Listed {
    pub(super) lower: Item,
    pub(super) items: Vec<Item>,
}

/// Lists this side sent, by the upper bound of their range.
pub(super) type Lists = BTreeMap<Item, Listed>;

pub(super) struct Builder<'a> {
    pub(super) index: &'a SyncIndex,
    pub(super) params: Params,
    pub(super) role: Role,
    pub(super) out: MessageWriter,
    pub(super) lists: Lists,
    /// Once the output passes its budget, the rest of the incoming message is not looked at:
    /// it is answered by one fingerprint from here to the end, and settled in later rounds.
    pub(super) deferred_from: Option<Bound>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(index: &'a SyncIndex, params: Params, role: Role) -> Self {
        Builder {
            index,
            params: params.bounded(),
            role,
            out: MessageWriter::default(),
            lists: Lists::new(),
            deferred_from: None,
        }
    }

    /// True (from now on) once the output is over budget: the range starting at `lower` and all
    /// after it are left to the closing fingerprint. The first range that needs work is always
    /// answered (skips before it do not count), so every round makes progress.
    pub(super) fn deferring(&mut self, lower: &Bound) -> bool {
        let over = self.out.len() > self.params.output_bytes_budget;
        if self.deferred_from.is_none() && over && !self.out.only_skips() {
            self.deferred_from = Some(*lower);
        }
        self.deferred_from.is_some()
    }

    /// The message, closed by the deferred span's fingerprint if there is one.
    pub(super) fn finish(mut self) -> (Message, Lists) {
        if let Some(from) = self.deferred_from.take() {
            let fp = self.fingerprint_of(&from, &Bound::Infinity);
            self.out.push(Bound::Infinity, Mode::Fingerprint(fp));
        }
        (self.out.finish(), self.lists)
    }

    pub(super) fn positions(&self, lower: &Bound, upper: &Bound) -> (usize, usize) {
        let from = self.index.lower_bound(&lower.as_item());
        // Decoded messages have ascending bounds; `max` keeps a range empty, never negative.
        (from, self.index.lower_bound(&upper.as_item()).max(from))
    }

    pub(super) fn fingerprint_of(&self, lower: &Bound, upper: &Bound) -> Fingerprint {
        let (from, to) = self.positions(lower, upper);
        self.index.fingerprint(from, to)
    }

    pub(super) fn skip(&mut self, upper: Bound) {
        self.out.push(upper, Mode::Skip);
    }

    /// Our fingerprint for a whole range, unsplit.
    pub(super) fn fingerprint_range(&mut self, lower: &Bound, upper: Bound) {
        let fp = self.fingerprint_of(lower, &upper);
        self.out.push(upper, Mode::Fingerprint(fp));
    }

    /// A range known to differ. Small ranges are settled by the initiator's id list (the
    /// responder asks for it); mid-sized ones are first tried as a raw sum, which settles a
    /// single-item difference at once; larger ones are split and their parts fingerprinted.
    pub(super) fn mismatch(&mut self, lower: &Bound, upper: Bound, try_sum: bool) {
        let (from, to) = self.positions(lower, &upper);
        let count = to - from;
        if try_sum && count > self.params.leaf_items_max && count <= self.params.sum_items_max {
            self.send_sum(from, to, upper);
        } else if count <= self.params.leaf_items_max {
            match self.role {
                Role::Initiator => self.list(lower, from, to, upper),
                Role::Responder => self.out.push(upper, Mode::ListRequest),
            }
        } else {
            self.split(from, to, upper);
        }
    }

    pub(super) fn send_sum(&mut self, from: usize, to: usize, upper: Bound) {
        let acc = self.index.accumulate(from, to);
        let mode = Mode::Sum {
            count: acc.count(),
            sum: acc.low_sum(),
        };
        self.out.push(upper, mode);
    }

    /// A peer's raw sum for a range. The side holding exactly one more item than the peer can
    /// check whether the sum difference is one of its ids: if so, that id is the whole
    /// difference. The side holding one fewer cannot check, so it answers with its own sum.
    /// Anything else is split. Returns the id this side holds and the peer lacks, if settled.
    /// `count` is the peer's: every comparison with it is checked arithmetic.
    pub(super) fn sum(
        &mut self,
        lower: &Bound,
        upper: Bound,
        count: u64,
        sum: &LowSum,
    ) -> Option<[u8; 32]> {
        let (from, to) = self.positions(lower, &upper);
        let mine = self.index.accumulate(from, to);
        if mine.count() == count && &mine.low_sum() == sum {
            self.skip(upper);
            return None;
        }
        if mine.count().checked_sub(1) == Some(count) {
            let low = mine.low_sum_minus(sum);
            if let Some(found) = self
                .index
                .items(from, to)
                .find(|it| it.1[..SUM_BYTES] == low)
            {
                return Some(found.1);
            }
        } else if mine.count().checked_add(1) == Some(count) {
            self.send_sum(from, to, upper);
            return None;
        }
        self.mismatch(lower, upper, false);
        None
    }

    pub(super) fn list(&mut self, lower: &Bound, from: usize, to: usize, upper: Bound) {
        let items: Vec<Item> = self.index.items(from, to).copied().collect();
        let prefixes = items.iter().map(|it| prefix(&it.1)).collect();
        self.out.push(upper, Mode::IdList(prefixes));
        let listed = Listed {
            lower: lower.as_item(),
            items,
        };
        self.lists.insert(upper.as_item(), listed);
    }

    /// The responder holds at most a leaf of items in `[lower, upper)` and asked for our ids
    /// there: nearly all of ours are then ones it lacks, so they are listed outright rather
    /// than split further, as many as the budget allows; a list that does not fit closes at a
    /// bound of its own and the rest is deferred.
    pub(super) fn list_on_request(&mut self, lower: &Bound, upper: Bound) {
        let (from, to) = self.positions(lower, &upper);
        let room = self.room(BOUND_BYTES_MAX + 1 + 10);
        if to - from <= room {
            return self.list(lower, from, to, upper);
        }
        let last = (from + room).checked_sub(1).filter(|_| room > 0);
        let cut = match last.map(|l| (self.index.item_at(l), self.index.item_at(l + 1))) {
            Some((Some(below), Some(above))) => Bound::between(below, above),
            _ => {
                self.deferred_from = Some(*lower);
                return;
            }
        };
        self.list(lower, from, from + room, cut);
        self.deferred_from = Some(cut);
    }

    /// Ids that still fit the budget after a range's `fixed` bytes. The first range that needs
    /// work (only skips before it) always gets room for one, so every round makes progress.
    pub(super) fn room(&self, fixed: usize) -> usize {
        let budget = self.params.output_bytes_budget;
        let room = budget.saturating_sub(self.out.len() + fixed) / ID_PREFIX_BYTES;
        if self.out.only_skips() {
            room.max(1)
        } else {
            room
        }
    }

    pub(super) fn split(&mut self, from: usize, to: usize, upper: Bound) {
        let (count, branches) = (to - from, self.params.branches);
        let mut start = from;
        for i in 1..branches {
            let pos = from + count * i / branches;
            if pos <= start {
                continue;
            }
            let (Some(below), Some(above)) = (self.index.item_at(pos - 1), self.index.item_at(pos))
            else {
                continue;
            };
            let bound = Bound::between(below, above);
            let fp = self.index.fingerprint(start, pos);
            self.out.push(bound, Mode::Fingerprint(fp));
            start = pos;
        }
        let fp = self.index.fingerprint(start, to);
        self.out.push(upper, Mode::Fingerprint(fp));
    }

    /// A peer's fingerprint for a range.
    pub(super) fn fingerprint(&mut self, lower: &Bound, upper: Bound, theirs: &Fingerprint) {
        if &self.fingerprint_of(lower, &upper) == theirs {
            self.skip(upper);
        } else {
            self.mismatch(lower, upper, true);
        }
    }

    /// The responder's answer to the initiator's id list for `[lower, upper)`: the ids it holds
    /// that are not listed, and a bitmap of the listed ids it lacks. If its ids do not fit in
    /// what is left of the budget, the reply closes at a bound of its own after as many as fit,
    /// and everything from there is deferred.
    pub(super) fn answer_list(&mut self, lower: &Bound, upper: Bound, theirs: &[IdPrefix]) {
        let (from, to) = self.positions(lower, &upper);
        // Bound, mode, two counts and the bitmap, at their largest.
        let room = self.room(BOUND_BYTES_MAX + 1 + 10 + 10 + theirs.len().div_ceil(8));
        // Scan only as far as the reply can reach: one id past the room means a cut. A listed
        // id not seen in the scanned part is marked missing; if it lies past the cut, the
        // initiator ignores that bit (it settles only what lies below the reply's bound).
        let listed: HashSet<&IdPrefix> = theirs.iter().collect();
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        for (pos, item) in (from..to).zip(self.index.items(from, to)) {
            let p = prefix(&item.1);
            if listed.contains(&p) {
                seen.insert(p);
            } else {
                missing.push((pos, p));
                if missing.len() > room {
                    break;
                }
            }
        }
        let mut wanted = vec![0u8; theirs.len().div_ceil(8)];
        for (i, p) in theirs.iter().enumerate() {
            if !seen.contains(p) {
                wanted[i / 8] |= 1 << (i % 8);
            }
        }
        if missing.is_empty() && wanted.iter().all(|w| *w == 0) {
            self.skip(upper);
            return;
        }
        if missing.len() <= room {
            let not_in_list = missing.into_iter().map(|(_, p)| p).collect();
            self.out.push(
                upper,
                Mode::IdListReply {
                    not_in_list,
                    wanted,
                },
            );
            return;
        }
        if room == 0 {
            self.deferred_from = Some(*lower);
            return;
        }
        let last = missing[room - 1].0;
        let (Some(below), Some(above)) = (self.index.item_at(last), self.index.item_at(last + 1))
        else {
            self.deferred_from = Some(*lower);
            return;
        };
        let cut = Bound::between(below, above);
        let not_in_list = missing[..room].iter().map(|(_, p)| *p).collect();
        self.out.push(
            cut,
            Mode::IdListReply {
                not_in_list,
                wanted,
            },
        );
        self.deferred_from = Some(cut);
    }
}
