//! Range-based set reconciliation (after negentropy and Meyer's range-based set
//! reconciliation): both sides order their items by (time, id); the initiator sends range
//! fingerprints; whoever finds a range differing splits it into [`Params::branches`] parts.
//! Once a differing range holds at most [`Params::leaf_items_max`] items, the initiator lists
//! its ids there (as 8-byte prefixes; a responder asks for the list), and the responder replies
//! with the ids the initiator lacks and a bitmap of the listed ids it lacks itself.
//!
//! Every answer is budgeted: past [`OUTPUT_BYTES_BUDGET`] bytes the rest of the incoming
//! message is answered by one fingerprint and settled in later rounds, and an id list reply
//! that would not fit is cut short at a bound of its own. So no output of [`respond`] or
//! [`Initiator::handle`] can exceed [`MESSAGE_BYTES_MAX`], however the two sets differ.
//!
//! Sans-IO: [`respond`] is a pure function of an index and a message; [`Initiator`] is a small
//! state machine. Neither sends anything — callers move the bytes.

use std::collections::{BTreeMap, HashSet};

use super::fingerprint::{Fingerprint, LowSum, SUM_BYTES};
use super::index::{Item, SyncIndex};
use super::message::{
    prefix, Bound, IdPrefix, Message, MessageWriter, Mode, BOUND_BYTES_MAX, ID_PREFIX_BYTES,
    MESSAGE_BYTES_MAX,
};

/// Rounds an initiator allows in one reconciliation, whatever it learns.
pub const ROUNDS_MAX: usize = 4096;
/// Consecutive rounds that learn nothing an initiator allows (honest sets need about
/// log_branches(n) such rounds in a row).
pub const IDLE_ROUNDS_MAX: usize = 64;
/// Largest branch count honoured; more would only make answers larger.
const BRANCHES_MAX: usize = 64;
/// Bytes kept free below [`MESSAGE_BYTES_MAX`] for whatever one range's answer adds after the
/// budget check (at most [`BRANCHES_MAX`] fingerprints, or a list of a few dozen ids) and for
/// the closing fingerprint.
const RESERVE_BYTES: usize = 64 * 1024;
/// Past this many output bytes, further ranges are deferred to the next round.
pub const OUTPUT_BYTES_BUDGET: usize = MESSAGE_BYTES_MAX - RESERVE_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Parts a differing range is split into (2 to 64).
    pub branches: usize,
    /// A differing range with at most this many items is settled by an id list.
    pub leaf_items_max: usize,
    /// A differing range with at most this many items (and more than a leaf) is first sent as
    /// its raw sum: if it differs by a single item, the sum difference names it.
    pub sum_items_max: usize,
    /// Output bytes past which the rest of a message is deferred (at most
    /// [`OUTPUT_BYTES_BUDGET`]; smaller only to exercise cuts in tests).
    pub output_bytes_budget: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            branches: 4,
            leaf_items_max: 16,
            sum_items_max: 256,
            output_bytes_budget: OUTPUT_BYTES_BUDGET,
        }
    }
}

impl Params {
    /// The same parameters within the bounds the budget assumes.
    fn bounded(self) -> Params {
        Params {
            branches: self.branches.clamp(2, BRANCHES_MAX),
            leaf_items_max: self.leaf_items_max.clamp(1, 256),
            sum_items_max: self.sum_items_max,
            output_bytes_budget: self.output_bytes_budget.clamp(64, OUTPUT_BYTES_BUDGET),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    #[error("peer sent a range mode its role never sends")]
    UnexpectedMode,
    #[error("peer replied to a list this node never sent")]
    UnknownList,
    /// This node's own limit, not a fault of the peer.
    #[error("reconciliation did not finish within this node's limit of {0} rounds")]
    TooManyRounds(usize),
}

impl ReconcileError {
    /// True when the peer broke the protocol; false when this node's own limit was reached.
    pub fn blames_peer(&self) -> bool {
        !matches!(self, ReconcileError::TooManyRounds(_))
    }
}

/// What one side learns from a message: ids to send to the peer, ids to fetch from it.
///
/// An id is reported once when no answer is deferred. A deferred answer closes with one
/// fingerprint to the end, which also covers ranges the other side had already settled, so
/// the same id may be reported again in a later round: callers deduplicate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Ids this side holds and the peer lacks.
    pub have: Vec<[u8; 32]>,
    /// Ids the peer holds and this side lacks, as 8-byte prefixes (fetch by prefix).
    pub need: Vec<IdPrefix>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.have.is_empty() && self.need.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

/// A range whose ids the initiator listed, kept until the responder's reply.
#[derive(Debug, Clone)]
struct Listed {
    lower: Item,
    items: Vec<Item>,
}

/// Lists this side sent, by the upper bound of their range.
type Lists = BTreeMap<Item, Listed>;

struct Builder<'a> {
    index: &'a SyncIndex,
    params: Params,
    role: Role,
    out: MessageWriter,
    lists: Lists,
    /// Once the output passes its budget, the rest of the incoming message is not looked at:
    /// it is answered by one fingerprint from here to the end, and settled in later rounds.
    deferred_from: Option<Bound>,
}

impl<'a> Builder<'a> {
    fn new(index: &'a SyncIndex, params: Params, role: Role) -> Self {
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
    /// after it are left to the closing fingerprint. The first range is always answered, so
    /// every round makes progress.
    fn deferring(&mut self, lower: &Bound) -> bool {
        if self.deferred_from.is_none() && self.out.len() > self.params.output_bytes_budget {
            self.deferred_from = Some(*lower);
        }
        self.deferred_from.is_some()
    }

    /// The message, closed by the deferred span's fingerprint if there is one.
    fn finish(mut self) -> (Message, Lists) {
        if let Some(from) = self.deferred_from.take() {
            let fp = self.fingerprint_of(&from, &Bound::Infinity);
            self.out.push(Bound::Infinity, Mode::Fingerprint(fp));
        }
        (self.out.finish(), self.lists)
    }

    fn positions(&self, lower: &Bound, upper: &Bound) -> (usize, usize) {
        let from = self.index.lower_bound(&lower.as_item());
        // Decoded messages have ascending bounds; `max` keeps a range empty, never negative.
        (from, self.index.lower_bound(&upper.as_item()).max(from))
    }

    fn fingerprint_of(&self, lower: &Bound, upper: &Bound) -> Fingerprint {
        let (from, to) = self.positions(lower, upper);
        self.index.fingerprint(from, to)
    }

    fn skip(&mut self, upper: Bound) {
        self.out.push(upper, Mode::Skip);
    }

    /// Our fingerprint for a whole range, unsplit.
    fn fingerprint_range(&mut self, lower: &Bound, upper: Bound) {
        let fp = self.fingerprint_of(lower, &upper);
        self.out.push(upper, Mode::Fingerprint(fp));
    }

    /// A range known to differ. Small ranges are settled by the initiator's id list (the
    /// responder asks for it); mid-sized ones are first tried as a raw sum, which settles a
    /// single-item difference at once; larger ones are split and their parts fingerprinted.
    fn mismatch(&mut self, lower: &Bound, upper: Bound, try_sum: bool) {
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

    fn send_sum(&mut self, from: usize, to: usize, upper: Bound) {
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
    fn sum(&mut self, lower: &Bound, upper: Bound, count: u64, sum: &LowSum) -> Option<[u8; 32]> {
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

    fn list(&mut self, lower: &Bound, from: usize, to: usize, upper: Bound) {
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
    fn list_on_request(&mut self, lower: &Bound, upper: Bound) {
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

    /// Ids that still fit the budget after a range's `fixed` bytes. The first range of a
    /// message always gets room for one, so every round makes progress.
    fn room(&self, fixed: usize) -> usize {
        let budget = self.params.output_bytes_budget;
        let room = budget.saturating_sub(self.out.len() + fixed) / ID_PREFIX_BYTES;
        if self.out.is_empty() {
            room.max(1)
        } else {
            room
        }
    }

    fn split(&mut self, from: usize, to: usize, upper: Bound) {
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
    fn fingerprint(&mut self, lower: &Bound, upper: Bound, theirs: &Fingerprint) {
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
    fn answer_list(&mut self, lower: &Bound, upper: Bound, theirs: &[IdPrefix]) {
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

/// The responder's answer to one message. Stateless: it depends only on the index and the
/// message, so a lost or repeated request is harmless.
pub fn respond(
    index: &SyncIndex,
    request: &Message,
    params: Params,
) -> Result<Message, ReconcileError> {
    let mut b = Builder::new(index, params, Role::Responder);
    let mut lower = Bound::ZERO;
    for range in &request.ranges {
        if b.deferring(&lower) {
            break;
        }
        match &range.mode {
            Mode::Skip => b.skip(range.upper),
            Mode::Fingerprint(fp) => b.fingerprint(&lower, range.upper, fp),
            Mode::IdList(theirs) => b.answer_list(&lower, range.upper, theirs),
            Mode::Sum { count, sum } => {
                if let Some(id) = b.sum(&lower, range.upper, *count, sum) {
                    b.out.push(range.upper, Mode::YouLack(vec![prefix(&id)]));
                }
            }
            Mode::IdListReply { .. } | Mode::ListRequest | Mode::YouLack(_) => {
                return Err(ReconcileError::UnexpectedMode)
            }
        }
        lower = range.upper;
    }
    Ok(b.finish().0)
}

/// The side that starts a reconciliation and, at the end, knows the whole difference.
pub struct Initiator {
    params: Params,
    rounds: usize,
    idle_rounds: usize,
    lists: Lists,
}

impl Initiator {
    /// The first message: one fingerprint of everything (or the ids, if there are few).
    pub fn start(index: &SyncIndex, params: Params) -> (Initiator, Message) {
        let mut b = Builder::new(index, params, Role::Initiator);
        if index.len() <= b.params.leaf_items_max {
            b.list(&Bound::ZERO, 0, index.len(), Bound::Infinity);
        } else {
            b.fingerprint_range(&Bound::ZERO, Bound::Infinity);
        }
        let (out, lists) = b.finish();
        let initiator = Initiator {
            params,
            rounds: 1,
            idle_rounds: 0,
            lists,
        };
        (initiator, out)
    }

    /// Rounds sent so far, the first included.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// Handles the responder's answer: returns what was learnt, and the next message to send,
    /// or `None` when reconciliation is complete.
    pub fn handle(
        &mut self,
        index: &SyncIndex,
        response: &Message,
    ) -> Result<(Diff, Option<Message>), ReconcileError> {
        let mut b = Builder::new(index, self.params, Role::Initiator);
        let mut diff = Diff::default();
        let mut lower = Bound::ZERO;
        for range in &response.ranges {
            if b.deferring(&lower) {
                break;
            }
            match &range.mode {
                Mode::Skip => b.skip(range.upper),
                Mode::Fingerprint(fp) => b.fingerprint(&lower, range.upper, fp),
                Mode::ListRequest => b.list_on_request(&lower, range.upper),
                Mode::IdListReply {
                    not_in_list,
                    wanted,
                } => {
                    self.settle_list(&lower, &range.upper, not_in_list, wanted, &mut diff)?;
                    b.skip(range.upper);
                }
                Mode::Sum { count, sum } => {
                    if let Some(id) = b.sum(&lower, range.upper, *count, sum) {
                        diff.have.push(id);
                        b.skip(range.upper);
                    }
                }
                Mode::YouLack(ids) => {
                    diff.need.extend_from_slice(ids);
                    b.skip(range.upper);
                }
                Mode::IdList(_) => return Err(ReconcileError::UnexpectedMode),
            }
            lower = range.upper;
        }
        let (out, lists) = b.finish();
        self.lists = lists;
        if out.is_done() {
            return Ok((diff, None));
        }
        self.count_round(diff.is_empty())?;
        Ok((diff, Some(out)))
    }

    /// The responder's reply to a list we sent, for `[lower, upper)`: a part of the listed range
    /// (a reply cut short) or all of it. The bitmap covers the whole list; only listed ids in
    /// the reply's own range are settled by it, the rest in later rounds.
    fn settle_list(
        &self,
        lower: &Bound,
        upper: &Bound,
        not_in_list: &[IdPrefix],
        wanted: &[u8],
        diff: &mut Diff,
    ) -> Result<(), ReconcileError> {
        let (lower, upper) = (lower.as_item(), upper.as_item());
        let listed = self
            .lists
            .range(upper..)
            .next()
            .map(|(_, listed)| listed)
            .filter(|listed| listed.lower <= lower)
            .ok_or(ReconcileError::UnknownList)?;
        diff.need.extend_from_slice(not_in_list);
        for (i, item) in listed.items.iter().enumerate() {
            let bit = wanted.get(i / 8).is_some_and(|w| w & (1 << (i % 8)) != 0);
            if bit && lower <= *item && *item < upper {
                diff.have.push(item.1);
            }
        }
        Ok(())
    }

    fn count_round(&mut self, learnt_nothing: bool) -> Result<(), ReconcileError> {
        self.rounds += 1;
        self.idle_rounds = if learnt_nothing {
            self.idle_rounds + 1
        } else {
            0
        };
        if self.rounds > ROUNDS_MAX {
            return Err(ReconcileError::TooManyRounds(ROUNDS_MAX));
        }
        if self.idle_rounds > IDLE_ROUNDS_MAX {
            return Err(ReconcileError::TooManyRounds(IDLE_ROUNDS_MAX));
        }
        Ok(())
    }
}
