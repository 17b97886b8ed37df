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

use super::answer::{Builder, Lists, Role};
use super::index::SyncIndex;
use super::message::{prefix, Bound, IdPrefix, Message, Mode, MESSAGE_BYTES_MAX};

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
    pub(super) fn bounded(self) -> Params {
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
