//! Range-based set reconciliation (after negentropy and Meyer's range-based set
//! reconciliation): both sides order their items by (time, id); the initiator sends range
//! fingerprints; whoever finds a range differing splits it into [`Params::branches`] parts.
//! Once a differing range holds at most [`Params::leaf_items_max`] items, the initiator lists
//! its ids there (as 8-byte prefixes; a responder asks for the list), and the responder replies
//! with the full ids the initiator lacks and a bitmap of the listed ids it lacks itself.
//!
//! Sans-IO: [`respond`] is a pure function of an index and a message; [`Initiator`] is a small
//! state machine. Neither sends anything — callers move the bytes.

use std::collections::{HashMap, HashSet};

use super::fingerprint::{Fingerprint, LowSum, SUM_BYTES};
use super::index::{Item, SyncIndex};
use super::message::{prefix, Bound, IdPrefix, Message, Mode, ID_PREFIX_BYTES, MESSAGE_BYTES_MAX};

/// Rounds an initiator allows before giving up on a peer (honest sets finish in ~log_b(n)).
pub const ROUNDS_MAX: usize = 64;
/// Past this many output bytes, further differing ranges are deferred to the next round.
const OUTPUT_BYTES_BUDGET: usize = MESSAGE_BYTES_MAX / 2;
/// Bytes counted for one fingerprint range when budgeting (bound + mode + fingerprint).
const FINGERPRINT_RANGE_BYTES: usize = 14;
/// Asked for its ids in a small range, an initiator lists up to this many times the leaf size
/// (rather than split again); beyond, it splits.
const LIST_ON_REQUEST_FACTOR: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Parts a differing range is split into.
    pub branches: usize,
    /// A differing range with at most this many items is settled by an id list.
    pub leaf_items_max: usize,
    /// A differing range with at most this many items (and more than a leaf) is first sent as
    /// its raw sum: if it differs by a single item, the sum difference names it.
    pub sum_items_max: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            branches: 4,
            leaf_items_max: 16,
            sum_items_max: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    #[error("peer sent a range mode its role never sends")]
    UnexpectedMode,
    #[error("peer replied to a list this node never sent")]
    UnknownList,
    #[error("reconciliation did not finish within {0} rounds")]
    TooManyRounds(usize),
}

/// What one side learns from a message: ids to send to the peer, ids to fetch from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Ids this side holds and the peer lacks.
    pub have: Vec<[u8; 32]>,
    /// Ids the peer holds and this side lacks, as 8-byte prefixes (fetch by prefix).
    pub need: Vec<IdPrefix>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

struct Builder<'a> {
    index: &'a SyncIndex,
    params: Params,
    role: Role,
    out: Message,
    bytes: usize,
    /// Full ids behind the prefix lists this side sent, by their range's upper bound.
    lists: HashMap<Item, Vec<[u8; 32]>>,
    /// Once the output passes its budget, the rest of the incoming message is not looked at:
    /// it is answered by one fingerprint from here to the end, and settled in later rounds.
    deferred_from: Option<Bound>,
}

impl<'a> Builder<'a> {
    fn new(index: &'a SyncIndex, params: Params, role: Role) -> Self {
        let lists = HashMap::new();
        Builder {
            index,
            params,
            role,
            out: Message::default(),
            bytes: 1,
            lists,
            deferred_from: None,
        }
    }

    /// True (from now on) once the output is over budget: the range starting at `lower` and all
    /// after it are left to the closing fingerprint. The first range is always answered, so
    /// every round makes progress.
    fn deferring(&mut self, lower: &Bound) -> bool {
        if self.deferred_from.is_none() && self.bytes > OUTPUT_BYTES_BUDGET {
            self.deferred_from = Some(*lower);
        }
        self.deferred_from.is_some()
    }

    /// The message, closed by the deferred span's fingerprint if there is one.
    fn finish(mut self) -> (Message, HashMap<Item, Vec<[u8; 32]>>) {
        if let Some(from) = self.deferred_from.take() {
            let fp = self.fingerprint_of(&from, &Bound::Infinity);
            self.out.push(Bound::Infinity, Mode::Fingerprint(fp));
        }
        (self.out, self.lists)
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
        self.bytes += 3;
        self.out.push(upper, Mode::Skip);
    }

    /// Our fingerprint for a whole range, unsplit.
    fn fingerprint_range(&mut self, lower: &Bound, upper: Bound) {
        let fp = self.fingerprint_of(lower, &upper);
        self.bytes += FINGERPRINT_RANGE_BYTES;
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
                Role::Initiator => self.list(from, to, upper),
                Role::Responder => {
                    self.bytes += 5;
                    self.out.push(upper, Mode::ListRequest);
                }
            }
        } else {
            self.split(from, to, upper);
        }
    }

    fn send_sum(&mut self, from: usize, to: usize, upper: Bound) {
        let acc = self.index.accumulate(from, to);
        self.bytes += 24;
        self.out.push(
            upper,
            Mode::Sum {
                count: acc.count(),
                sum: acc.low_sum(),
            },
        );
    }

    /// A peer's raw sum for a range. The side holding exactly one more item than the peer can
    /// check whether the sum difference is one of its ids: if so, that id is the whole
    /// difference. The side holding one fewer cannot check, so it answers with its own sum.
    /// Anything else is split. Returns the id this side holds and the peer lacks, if settled.
    fn sum(&mut self, lower: &Bound, upper: Bound, count: u64, sum: &LowSum) -> Option<[u8; 32]> {
        let (from, to) = self.positions(lower, &upper);
        let mine = self.index.accumulate(from, to);
        if mine.count() == count && &mine.low_sum() == sum {
            self.skip(upper);
            return None;
        }
        if mine.count() == count + 1 {
            let low = mine.low_sum_minus(sum);
            if let Some(found) = self
                .index
                .items(from, to)
                .find(|it| it.1[..SUM_BYTES] == low)
            {
                return Some(found.1);
            }
        } else if mine.count() + 1 == count {
            self.send_sum(from, to, upper);
            return None;
        }
        self.mismatch(lower, upper, false);
        None
    }

    fn list(&mut self, from: usize, to: usize, upper: Bound) {
        let ids: Vec<[u8; 32]> = self.index.items(from, to).map(|it| it.1).collect();
        self.bytes += 8 + ID_PREFIX_BYTES * ids.len();
        self.out
            .push(upper, Mode::IdList(ids.iter().map(prefix).collect()));
        self.lists.insert(upper.as_item(), ids);
    }

    fn split(&mut self, from: usize, to: usize, upper: Bound) {
        let (count, branches) = (to - from, self.params.branches.max(2));
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
            self.bytes += FINGERPRINT_RANGE_BYTES;
            self.out
                .push(bound, Mode::Fingerprint(self.index.fingerprint(start, pos)));
            start = pos;
        }
        self.bytes += FINGERPRINT_RANGE_BYTES;
        self.out
            .push(upper, Mode::Fingerprint(self.index.fingerprint(start, to)));
    }

    /// A peer's fingerprint for a range.
    fn fingerprint(&mut self, lower: &Bound, upper: Bound, theirs: &Fingerprint) {
        if &self.fingerprint_of(lower, &upper) == theirs {
            self.skip(upper);
        } else {
            self.mismatch(lower, upper, true);
        }
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
            Mode::IdList(theirs) => {
                let (from, to) = b.positions(&lower, &range.upper);
                let listed: HashSet<&IdPrefix> = theirs.iter().collect();
                let mine: Vec<[u8; 32]> = b.index.items(from, to).map(|it| it.1).collect();
                let not_in_list: Vec<IdPrefix> = mine
                    .iter()
                    .map(prefix)
                    .filter(|p| !listed.contains(p))
                    .collect();
                let mine: HashSet<IdPrefix> = mine.iter().map(prefix).collect();
                let mut wanted = vec![0u8; theirs.len().div_ceil(8)];
                for (i, p) in theirs.iter().enumerate() {
                    if !mine.contains(p) {
                        wanted[i / 8] |= 1 << (i % 8);
                    }
                }
                if not_in_list.is_empty() && wanted.iter().all(|w| *w == 0) {
                    b.skip(range.upper);
                } else {
                    b.bytes += 8 + ID_PREFIX_BYTES * not_in_list.len() + wanted.len();
                    b.out.push(
                        range.upper,
                        Mode::IdListReply {
                            not_in_list,
                            wanted,
                        },
                    );
                }
            }
            Mode::Sum { count, sum } => {
                if let Some(id) = b.sum(&lower, range.upper, *count, sum) {
                    b.bytes += 40;
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
    lists: HashMap<Item, Vec<[u8; 32]>>,
}

impl Initiator {
    /// The first message: one fingerprint of everything (or the ids, if there are few).
    pub fn start(index: &SyncIndex, params: Params) -> (Initiator, Message) {
        let mut b = Builder::new(index, params, Role::Initiator);
        if index.len() <= params.leaf_items_max {
            b.list(0, index.len(), Bound::Infinity);
        } else {
            b.fingerprint_range(&Bound::ZERO, Bound::Infinity);
        }
        let (out, lists) = b.finish();
        let initiator = Initiator {
            params,
            rounds: 1,
            lists,
        };
        (initiator, out)
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
                Mode::ListRequest => {
                    let (from, to) = b.positions(&lower, &range.upper);
                    // The responder holds few items here; we may hold many more.
                    if to - from <= self.params.leaf_items_max * LIST_ON_REQUEST_FACTOR {
                        b.list(from, to, range.upper);
                    } else {
                        b.split(from, to, range.upper);
                    }
                }
                Mode::IdListReply {
                    not_in_list,
                    wanted,
                } => {
                    let sent = self
                        .lists
                        .get(&range.upper.as_item())
                        .ok_or(ReconcileError::UnknownList)?;
                    diff.need.extend_from_slice(not_in_list);
                    for (i, id) in sent.iter().enumerate() {
                        if wanted.get(i / 8).is_some_and(|w| w & (1 << (i % 8)) != 0) {
                            diff.have.push(*id);
                        }
                    }
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
        self.rounds += 1;
        if self.rounds > ROUNDS_MAX {
            return Err(ReconcileError::TooManyRounds(ROUNDS_MAX));
        }
        Ok((diff, Some(out)))
    }
}
