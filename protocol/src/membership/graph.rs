//! The causal graph of a network's membership operations: which operations can be evaluated
//! (every predecessor known, reaching the founding operation), a deterministic topological
//! order, depths, and ancestry as bitsets, so "a happened before b" and "a and b are
//! concurrent" are answered from the references alone — never from clocks.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::op::{Action, Op};
use crate::ids::EntryId;

/// Operations one resolution evaluates at most (ancestry costs n² bits).
pub const OPS_MAX: usize = 4096;

/// The evaluable operations of a set, in topological order (ties broken by id).
pub struct Graph<'a> {
    /// Operations in order; every predecessor of an operation comes before it.
    pub ops: Vec<&'a Op>,
    /// Longest path from the founding operation (0 for it).
    pub depth: Vec<u32>,
    /// For each operation, its strict ancestors, as a bitset over positions in `ops`.
    ancestors: Vec<Vec<u64>>,
    pub position: HashMap<EntryId, usize>,
}

impl<'a> Graph<'a> {
    /// Builds the graph of the operations reachable from `genesis` whose predecessors are all
    /// present (others wait for what they reference). At most [`OPS_MAX`] are taken, in order.
    pub fn build(ops: &'a [Op], genesis: &EntryId) -> Graph<'a> {
        let by_id: BTreeMap<EntryId, &Op> = ops.iter().map(|op| (op.id, op)).collect();
        let mut waiting_on: HashMap<EntryId, Vec<EntryId>> = HashMap::new();
        let mut missing: HashMap<EntryId, usize> = HashMap::new();
        let mut ready: BTreeSet<EntryId> = BTreeSet::new();
        for op in by_id.values() {
            let founding = op.id == *genesis && matches!(op.action, Action::Found { .. });
            let preds: BTreeSet<EntryId> = op.after.iter().copied().collect();
            // Only the founding operation may reference nothing; nothing may reference itself.
            if (preds.is_empty() && !founding)
                || preds.contains(&op.id)
                || (founding && !preds.is_empty())
            {
                continue;
            }
            if preds.is_empty() {
                ready.insert(op.id);
            }
            missing.insert(op.id, preds.len());
            for p in preds {
                waiting_on.entry(p).or_default().push(op.id);
            }
        }
        let mut graph = Graph {
            ops: Vec::new(),
            depth: Vec::new(),
            ancestors: Vec::new(),
            position: HashMap::new(),
        };
        while let Some(id) = ready.pop_first() {
            if graph.ops.len() >= OPS_MAX {
                break;
            }
            let op = by_id[&id];
            graph.push(op);
            for next in waiting_on.remove(&id).unwrap_or_default() {
                if let Some(left) = missing.get_mut(&next) {
                    *left -= 1;
                    if *left == 0 {
                        ready.insert(next);
                    }
                }
            }
        }
        graph
    }

    fn push(&mut self, op: &'a Op) {
        let at = self.ops.len();
        let words = (OPS_MAX).div_ceil(64);
        let mut anc = vec![0u64; words.min(at / 64 + 1)];
        let mut depth = 0;
        for p in &op.after {
            let Some(&pi) = self.position.get(p) else {
                continue;
            };
            depth = depth.max(self.depth[pi] + 1);
            set(&mut anc, pi);
            for (w, bits) in self.ancestors[pi].iter().enumerate() {
                anc[w] |= bits;
            }
        }
        self.ops.push(op);
        self.depth.push(depth);
        self.ancestors.push(anc);
        self.position.insert(op.id, at);
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the operation at `a` happened before the one at `b`.
    pub fn before(&self, a: usize, b: usize) -> bool {
        self.ancestors[b]
            .get(a / 64)
            .is_some_and(|w| w & (1 << (a % 64)) != 0)
    }

    /// Neither happened before the other.
    pub fn concurrent(&self, a: usize, b: usize) -> bool {
        a != b && !self.before(a, b) && !self.before(b, a)
    }

    /// Positions of the strict ancestors of `b`, in order.
    pub fn ancestors(&self, b: usize) -> impl Iterator<Item = usize> + '_ {
        (0..b).filter(move |&a| self.before(a, b))
    }
}

fn set(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}
