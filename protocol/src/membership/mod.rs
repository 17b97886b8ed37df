//! Membership of a network as a pure, deterministic function of its signed membership
//! operations: the same set, in any order, gives the same members and roles on every node.
//! Sans-IO and clock-free: the causal references between operations are the only order.
//!
//! - `op`: the operations (found, invite, join, add, leave, remove, grant, demote, revoke an
//!   invite, profile).
//! - `graph`: the causal graph — what can be evaluated, a deterministic order, concurrency.
//! - `resolve`: the rules (authority from the causal past, strong removal, seniority, invite
//!   limits) and the resulting [`Membership`].

mod graph;
mod op;
mod resolve;

pub use graph::OPS_MAX;
pub use op::{Action, InviteBy, Op, Policy, Profile};
pub use resolve::{resolve, InviteState, Membership, Role};

#[cfg(test)]
mod tests;
