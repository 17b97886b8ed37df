//! Who is a member, as a pure function of the set of membership operations.
//!
//! The rules (written out with worked examples in `docs/protocol.md`, "Membership"):
//!
//! 1. **Authority from the causal past.** An operation counts only if its author had the right
//!    to make it in the state built from the valid operations it causally follows — never from
//!    what happened concurrently, and never from clocks.
//! 2. **Strong removal.** A member's operations concurrent with their removal (or leaving) are
//!    void, and so is any concurrent re-adding: re-adding must causally follow the removal.
//!    Taking the facilitator role voids the target's concurrent facilitator-only operations.
//! 3. **Seniority.** Facilitators have a rank: the founder 0, and one more than the most
//!    senior facilitator who granted them the role. Only a strictly more senior facilitator
//!    may remove or demote a facilitator, so two facilitators can never remove each other.
//! 4. **Invites.** A revoked invite admits no join that did not causally precede the
//!    revocation; of the joins with one invite, the first `uses_max` by (depth, id) count.
//!
//! Voids only accumulate, so evaluation reaches a fixed point; everything is ordered by the
//! causal graph and ids, so the same set gives the same result on every node.

use std::collections::{BTreeMap, BTreeSet};

use super::graph::Graph;
use super::op::{Action, InviteBy, Op, Policy, Profile};
use crate::ids::{AuthorId, EntryId, NodeKey};

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Member,
    /// A facilitator of this seniority rank (0: the founder; larger: less senior).
    Facilitator {
        rank: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteState {
    pub author: AuthorId,
    pub expires_at_ms: u64,
    pub uses_max: u16,
    pub revoked: bool,
    /// Joins with it that count.
    pub uses: u16,
}

impl InviteState {
    /// Why a join made at `joined_at_ms` with this invite cannot count (in this state), if so.
    pub fn closed_to(&self, joined_at_ms: u64) -> Option<&'static str> {
        if self.revoked {
            Some("the invite has been revoked")
        } else if joined_at_ms > self.expires_at_ms {
            Some("the invite has expired")
        } else if self.uses >= self.uses_max {
            Some("the invite is used up")
        } else {
            None
        }
    }
}

/// The membership a set of operations establishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    pub founder: Option<AuthorId>,
    pub policy: Option<Policy>,
    pub invite_by: Option<InviteBy>,
    pub members: BTreeMap<AuthorId, Role>,
    /// Profiles of members and former members.
    pub profiles: BTreeMap<AuthorId, Profile>,
    /// Former members, with the author's clock on the operation that ended their membership.
    pub former: BTreeMap<AuthorId, u64>,
    pub invites: BTreeMap<EntryId, InviteState>,
    /// The school nodes each current member has bound to their membership.
    pub nodes: BTreeMap<AuthorId, BTreeSet<NodeKey>>,
    /// Every node any member ever bound, with who bound it: kept when their membership
    /// ends, so what a node signed before then can still be judged.
    pub bound_by: BTreeMap<NodeKey, BTreeSet<AuthorId>>,
    /// Operations that count.
    pub valid: BTreeSet<EntryId>,
    /// Operations evaluated that do not count (unauthorised, or voided).
    pub void: BTreeSet<EntryId>,
    /// Operations not evaluated: a predecessor is missing (or past the bound on operations).
    pub waiting: BTreeSet<EntryId>,
}

impl Membership {
    pub fn is_member(&self, key: &AuthorId) -> bool {
        self.members.contains_key(key)
    }

    pub fn is_facilitator(&self, key: &AuthorId) -> bool {
        matches!(self.members.get(key), Some(Role::Facilitator { .. }))
    }

    /// True when a current member has bound `node` to their membership.
    /// When the standing of `node` ended: `None` while a current member binds it (or no
    /// member ever did); otherwise the latest end of the memberships of those who bound it.
    pub fn node_ended_at(&self, node: &NodeKey) -> Option<u64> {
        if self.is_bound(node) {
            return None;
        }
        let binders = self.bound_by.get(node)?;
        binders
            .iter()
            .filter_map(|b| self.former.get(b))
            .max()
            .copied()
    }

    pub fn is_bound(&self, node: &NodeKey) -> bool {
        self.nodes.values().any(|nodes| nodes.contains(node))
    }
}

/// The state an operation is judged in, and the state at the end.
#[derive(Debug, Clone, Default)]
struct State {
    founder: Option<AuthorId>,
    policy: Option<Policy>,
    invite_by: Option<InviteBy>,
    members: BTreeMap<AuthorId, Role>,
    profiles: BTreeMap<AuthorId, Profile>,
    former: BTreeMap<AuthorId, u64>,
    invites: BTreeMap<EntryId, InviteState>,
    nodes: BTreeMap<AuthorId, BTreeSet<NodeKey>>,
    bound_by: BTreeMap<NodeKey, BTreeSet<AuthorId>>,
}

impl State {
    fn rank(&self, key: &AuthorId) -> Option<u32> {
        match self.members.get(key) {
            Some(Role::Facilitator { rank }) => Some(*rank),
            _ => None,
        }
    }

    /// Whether `op`'s author may make it here.
    fn allows(&self, op: &Op) -> bool {
        let a = &op.author;
        let member = self.members.contains_key(a);
        let rank = self.rank(a);
        let senior_to = |m: &AuthorId| match (rank, self.rank(m)) {
            (Some(mine), Some(theirs)) => mine < theirs,
            (Some(_), None) => true,
            (None, _) => false,
        };
        match &op.action {
            Action::Found { .. } => self.founder.is_none(),
            Action::Invite { uses_max, .. } => {
                let may = rank.is_some() || self.invite_by == Some(InviteBy::AnyMember);
                member && may && *uses_max > 0
            }
            Action::Join { invite: None } => !member && self.policy == Some(Policy::Open),
            Action::Join {
                invite: Some(invite),
            } => {
                let open = self
                    .invites
                    .get(invite)
                    .is_some_and(|i| !i.revoked && op.created_at_ms <= i.expires_at_ms);
                !member && open
            }
            Action::Add { member: m } => rank.is_some() && !self.members.contains_key(m),
            Action::Leave => member,
            Action::Remove { member: m } => m != a && self.members.contains_key(m) && senior_to(m),
            Action::Grant { member: m } => rank.is_some() && self.members.contains_key(m),
            Action::Demote { member: m } => self.rank(m).is_some() && (m == a || senior_to(m)),
            Action::RevokeInvite { invite } => self
                .invites
                .get(invite)
                .is_some_and(|i| &i.author == a || rank.is_some()),
            Action::SetProfile(_) | Action::BindNode { .. } => member,
        }
    }

    /// Applies an operation already found allowed.
    fn apply(&mut self, op: &Op) {
        let a = op.author;
        match &op.action {
            Action::Found { policy, invite_by } => {
                self.founder = Some(a);
                self.policy = Some(*policy);
                self.invite_by = Some(*invite_by);
                self.members.insert(a, Role::Facilitator { rank: 0 });
            }
            Action::Invite {
                expires_at_ms,
                uses_max,
            } => {
                let invite = InviteState {
                    author: a,
                    expires_at_ms: *expires_at_ms,
                    uses_max: *uses_max,
                    revoked: false,
                    uses: 0,
                };
                self.invites.insert(op.id, invite);
            }
            Action::Join { .. } => self.admit(a),
            Action::Add { member } => self.admit(*member),
            Action::Leave => self.expel(a, op.created_at_ms),
            Action::Remove { member } => self.expel(*member, op.created_at_ms),
            Action::Grant { member } => {
                let rank = self.rank(&a).unwrap_or(0).saturating_add(1);
                let best = self.rank(member).map_or(rank, |r| r.min(rank));
                self.members
                    .insert(*member, Role::Facilitator { rank: best });
            }
            Action::Demote { member } => {
                self.members.insert(*member, Role::Member);
            }
            Action::RevokeInvite { invite } => {
                if let Some(i) = self.invites.get_mut(invite) {
                    i.revoked = true;
                }
            }
            Action::SetProfile(profile) => {
                self.profiles.insert(a, profile.clone());
            }
            Action::BindNode { node } => {
                self.nodes.entry(a).or_default().insert(*node);
                self.bound_by.entry(*node).or_default().insert(a);
            }
        }
    }

    fn admit(&mut self, key: AuthorId) {
        self.members.entry(key).or_insert(Role::Member);
        self.former.remove(&key);
    }

    fn expel(&mut self, key: AuthorId, at_ms: u64) {
        if self.members.remove(&key).is_some() {
            self.former.insert(key, at_ms);
            // Their profile stays, so what they wrote before still shows their name.
            self.nodes.remove(&key);
        }
    }
}

/// Resolves a network's membership from all its operations, its founding operation included.
///
/// A founder could sign the same founding content twice with different signatures (two
/// entries, one network id). The smallest such entry id is the founding operation, and
/// references to the others count as references to it, so every node agrees.
pub fn resolve_network(ops: &[Op]) -> Membership {
    let is_found = |op: &Op| matches!(op.action, Action::Found { .. }) && op.after.is_empty();
    let mut founding: Vec<EntryId> = ops.iter().filter(|o| is_found(o)).map(|o| o.id).collect();
    founding.sort();
    founding.dedup();
    let Some((&genesis, variants)) = founding.split_first() else {
        return Membership {
            waiting: ops.iter().map(|op| op.id).collect(),
            ..Membership::default()
        };
    };
    if variants.is_empty() {
        return resolve(ops, &genesis);
    }
    let aliased: Vec<Op> = ops
        .iter()
        .filter(|op| !variants.contains(&op.id))
        .map(|op| {
            let mut op = op.clone();
            for id in &mut op.after {
                if variants.contains(id) {
                    *id = genesis;
                }
            }
            op.after.sort();
            op.after.dedup();
            op
        })
        .collect();
    resolve(&aliased, &genesis)
}

/// Resolves the membership of the network founded by `genesis` from a set of operations, in
/// any order (duplicates are harmless). Operations of other networks must not be passed in.
pub fn resolve(ops: &[Op], genesis: &EntryId) -> Membership {
    let graph = Graph::build(ops, genesis);
    let mut voided = vec![false; graph.len()];
    let (valid, state) = loop {
        let (valid, state) = evaluate(&graph, &voided);
        let more = voids(&graph, &valid, &state);
        let before = voided.iter().filter(|v| **v).count();
        for i in more {
            voided[i] = true;
        }
        if voided.iter().filter(|v| **v).count() == before {
            break (valid, state);
        }
    };
    let evaluated: BTreeSet<EntryId> = graph.ops.iter().map(|op| op.id).collect();
    let mut out = Membership {
        founder: state.founder,
        policy: state.policy,
        invite_by: state.invite_by,
        members: state.members,
        profiles: state.profiles,
        former: state.former,
        invites: state.invites,
        nodes: state.nodes,
        bound_by: state.bound_by,
        ..Membership::default()
    };
    for (i, op) in graph.ops.iter().enumerate() {
        if valid[i] {
            out.valid.insert(op.id);
            if let Action::Join {
                invite: Some(invite),
            } = &op.action
            {
                if let Some(state) = out.invites.get_mut(invite) {
                    state.uses = state.uses.saturating_add(1);
                }
            }
        } else {
            out.void.insert(op.id);
        }
    }
    out.waiting = ops
        .iter()
        .map(|op| op.id)
        .filter(|id| !evaluated.contains(id))
        .collect();
    out
}

/// Which operations count, given those voided so far: each is judged in the state of the
/// operations that count in its causal past. Returns the verdicts and the final state.
fn evaluate(graph: &Graph<'_>, voided: &[bool]) -> (Vec<bool>, State) {
    let mut valid = vec![false; graph.len()];
    for (i, op) in graph.ops.iter().enumerate() {
        if voided[i] {
            continue;
        }
        let mut past = State::default();
        for a in graph.ancestors(i) {
            if valid[a] {
                past.apply(graph.ops[a]);
            }
        }
        valid[i] = past.allows(op);
    }
    let mut end = State::default();
    for (i, op) in graph.ops.iter().enumerate() {
        if valid[i] {
            end.apply(op);
        }
    }
    (valid, end)
}

/// Operations voided by the valid removals, demotions, revocations and invite limits.
fn voids(graph: &Graph<'_>, valid: &[bool], end: &State) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let n = graph.len();
    for r in (0..n).filter(|&r| valid[r]) {
        let op = graph.ops[r];
        let concurrent = |i: usize| graph.concurrent(i, r);
        match &op.action {
            Action::Remove { member } => out.extend(strong_removal(graph, r, member)),
            Action::Leave => out.extend(strong_removal(graph, r, &op.author)),
            Action::Demote { member } => {
                for i in (0..n).filter(|&i| concurrent(i)) {
                    let other = graph.ops[i];
                    let theirs = other.author == *member && needs_facilitator(other, end);
                    let regrant =
                        matches!(&other.action, Action::Grant { member: m } if m == member);
                    if theirs || regrant {
                        out.insert(i);
                    }
                }
            }
            Action::RevokeInvite { invite } => {
                for i in 0..n {
                    let uses = matches!(&graph.ops[i].action, Action::Join { invite: Some(j) } if j == invite);
                    if uses && !graph.before(i, r) {
                        out.insert(i);
                    }
                }
            }
            _ => {}
        }
    }
    out.extend(over_used_invites(graph, valid));
    out
}

/// A member's operations concurrent with the operation at `r` that removes them, and any
/// concurrent (re-)admission of them.
fn strong_removal(graph: &Graph<'_>, r: usize, member: &AuthorId) -> Vec<usize> {
    (0..graph.len())
        .filter(|&i| graph.concurrent(i, r))
        .filter(|&i| {
            let op = graph.ops[i];
            let admits = match &op.action {
                Action::Add { member: m } | Action::Grant { member: m } => m == member,
                _ => false,
            };
            op.author == *member || admits
        })
        .collect()
}

/// Operations that only a facilitator may make (in the network's settings).
fn needs_facilitator(op: &Op, state: &State) -> bool {
    match &op.action {
        Action::Add { .. }
        | Action::Remove { .. }
        | Action::Grant { .. }
        | Action::Demote { .. } => true,
        Action::Invite { .. } => state.invite_by != Some(InviteBy::AnyMember),
        Action::RevokeInvite { invite } => state
            .invites
            .get(invite)
            .is_none_or(|i| i.author != op.author),
        _ => false,
    }
}

/// Joins past an invite's use limit: of the valid joins with one invite, all but the first
/// `uses_max` by (depth, id).
fn over_used_invites(graph: &Graph<'_>, valid: &[bool]) -> Vec<usize> {
    let mut joins: BTreeMap<EntryId, Vec<(u32, EntryId, usize)>> = BTreeMap::new();
    for (i, op) in graph.ops.iter().enumerate() {
        if let (
            true,
            Action::Join {
                invite: Some(invite),
            },
        ) = (valid[i], &op.action)
        {
            joins
                .entry(*invite)
                .or_default()
                .push((graph.depth[i], op.id, i));
        }
    }
    let mut out = Vec::new();
    for (invite, mut uses) in joins {
        let Some(&at) = graph.position.get(&invite) else {
            continue;
        };
        let Action::Invite { uses_max, .. } = graph.ops[at].action else {
            continue;
        };
        uses.sort();
        out.extend(uses.iter().skip(usize::from(uses_max)).map(|u| u.2));
    }
    out
}
