//! Membership operations: what a member can do to a network, as the resolver sees it (decoded
//! and signature-checked; how they travel as entries is the wire format's business).

use serde::{Deserialize, Serialize};

use crate::ids::{AuthorId, EntryId, NodeKey};

/// Who may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Anyone who knows the network may join (a `Join` without an invite).
    Open,
    /// Only by redeeming an invite.
    InviteOnly,
    /// Only by redeeming an invite, and content is sealed: readable by members' nodes only
    /// (see [`crate::private`]). New members are given every earlier content key.
    Private,
    /// As [`Policy::Private`], but new members are given only the current content key: they
    /// read what is written from their joining on.
    PrivateFromJoining,
}

impl Policy {
    /// Whether joining takes an invite.
    pub fn needs_invite(self) -> bool {
        self != Policy::Open
    }

    /// Whether content is sealed.
    pub fn is_private(self) -> bool {
        matches!(self, Policy::Private | Policy::PrivateFromJoining)
    }

    /// Whether a private network gives new members the keys of what was written before.
    pub fn gives_history(self) -> bool {
        self == Policy::Private
    }
}

/// Who may issue invites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteBy {
    Facilitators,
    AnyMember,
}

/// A member's profile: how others see them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Profile {
    pub display_name: String,
    pub school: String,
    /// Free text such as "Head of maths".
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// The network's first operation: its author is the founder and first facilitator. The
    /// network's id is derived from it, so there is exactly one.
    Found { policy: Policy, invite_by: InviteBy },
    /// A capability to join, by whoever may invite. It holds no secret: what grants reading is
    /// membership, and the invitee's own join. `uses_max` joins at most; none whose author's
    /// clock says it was made after `expires_at_ms` (an honest joiner's; see the spec on why
    /// this is a hint more than a guarantee).
    Invite { expires_at_ms: u64, uses_max: u16 },
    /// The author joins, redeeming an invite (or with none, in an open network).
    Join { invite: Option<EntryId> },
    /// A facilitator adds a member directly.
    Add { member: AuthorId },
    /// The author leaves.
    Leave,
    /// A facilitator removes a member (a facilitator only if strictly more senior).
    Remove { member: AuthorId },
    /// A facilitator makes a member a facilitator.
    Grant { member: AuthorId },
    /// A facilitator takes the facilitator role from a less senior one (or from themselves).
    Demote { member: AuthorId },
    /// The invite's author, or a facilitator, revokes an invite: joins not already made with
    /// it are void.
    RevokeInvite { invite: EntryId },
    /// The author's profile.
    #[serde(rename = "profile")]
    SetProfile(Profile),
    /// The author binds a school node (its libp2p ed25519 key) to their membership: while
    /// they are a member, that node is served the network's history.
    BindNode { node: NodeKey },
}

/// One operation: an entry of the network's membership history.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Op {
    pub id: EntryId,
    pub author: AuthorId,
    /// The author's clock: shown to people and used for invite expiry, never for ordering.
    pub created_at_ms: u64,
    /// The operations the author had seen last (its causal predecessors); empty only for the
    /// founding operation.
    pub after: Vec<EntryId>,
    pub action: Action,
}

impl Action {
    /// The action's name in the CLI, the API and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Found { .. } => "found",
            Action::Invite { .. } => "invite",
            Action::Join { .. } => "join",
            Action::Add { .. } => "add",
            Action::Leave => "leave",
            Action::Remove { .. } => "remove",
            Action::Grant { .. } => "grant",
            Action::Demote { .. } => "demote",
            Action::RevokeInvite { .. } => "revoke_invite",
            Action::SetProfile(_) => "profile",
            Action::BindNode { .. } => "bind_node",
        }
    }
}
