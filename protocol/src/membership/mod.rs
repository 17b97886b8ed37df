//! Membership of a network as a pure, deterministic function of its signed membership
//! operations: the same set, in any order, gives the same members and roles on every node.
//! Sans-IO and clock-free: the causal references between operations are the only order.
//!
//! - `op`: the operations (found, invite, join, add, leave, remove, grant, demote, revoke an
//!   invite, profile).
//! - `graph`: the causal graph — what can be evaluated, a deterministic order, concurrency.
//! - `resolve`: the rules (authority from the causal past, strong removal, seniority, invite
//!   limits) and the resulting [`Membership`].

//! - `token`: the invite token a teacher pastes to join.
//! - `wire`: how operations travel as entries of kinds 6 (founding) and 7 (the others).

mod graph;
mod op;
mod resolve;
mod token;
pub(crate) mod wire;

pub use graph::OPS_MAX;
pub use op::{Action, InviteBy, Op, Policy, Profile};
pub use resolve::{resolve, resolve_network, InviteState, Membership, Role};
pub use token::{InviteToken, TokenError, TOKEN_ADDRS_MAX, TOKEN_PREFIX};
pub use wire::{
    derived_network_id, Genesis, INVITE_USES_MAX, NETWORK_DESCRIPTION_BYTES_MAX,
    NETWORK_ID_CONTEXT, NETWORK_NAME_BYTES_MAX, PROFILE_FIELD_BYTES_MAX,
};

#[cfg(test)]
mod tests;
