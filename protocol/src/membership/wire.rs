//! How membership travels: the two entry kinds that carry it (kind 6 founds a network, kind 7
//! is any other membership operation), their bodies, and the rule that a network's id derives
//! from its founding entry. See "Membership entries" in `docs/protocol.md`.
//!
//! ```text
//! network    (kind 6) = name:str description:str policy:u8 invite_by:u8 nonce:[16]
//!                       policy: 1 open, 2 invite-only, 3 private, 4 private from joining
//!                       no references; header.network = network_id(content)
//! membership (kind 7) = action:u8 fields…   1..=16 references, all of relation `after`
//! network_id(content) = BLAKE3(NETWORK_ID_CONTEXT ‖ content with bytes 1..33 zeroed)
//! ```

use serde::{Deserialize, Serialize};

use super::op::{Action, InviteBy, Op, Policy, Profile};
use crate::body::{Body, EntryKind};
use crate::codec::{Reader, Writer};
use crate::entry::{Draft, Entry, Relation};
use crate::error::EntryError;
use crate::ids::{AuthorId, EntryId, NetworkId, NodeKey};
use crate::text;
use crate::validate::parse_author_key;

/// Hashed before a founding entry's content to give the network's id.
pub const NETWORK_ID_CONTEXT: &[u8] = b"staffroom/network/v1\n";
/// A network's name, shown to every member.
pub const NETWORK_NAME_BYTES_MAX: usize = 100;
/// A network's markdown description.
pub const NETWORK_DESCRIPTION_BYTES_MAX: usize = 2048;
/// Each field of a profile (display name, school, role text).
pub const PROFILE_FIELD_BYTES_MAX: usize = 100;
/// Joins one invite may admit at most.
pub const INVITE_USES_MAX: u16 = 1000;

/// The body of a network's founding entry (kind 6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Genesis {
    pub name: String,
    pub description_md: String,
    pub policy: Policy,
    pub invite_by: InviteBy,
    /// Random bytes, so that two networks founded alike still get different ids.
    #[serde(with = "hex_16")]
    pub nonce: [u8; 16],
}

impl Genesis {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.str(&self.name);
        w.str(&self.description_md);
        w.u8(policy_tag(self.policy));
        w.u8(invite_by_tag(self.invite_by));
        w.bytes(&self.nonce);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Genesis, EntryError> {
        Ok(Genesis {
            name: r.str("name", NETWORK_NAME_BYTES_MAX)?,
            description_md: r.str("description", NETWORK_DESCRIPTION_BYTES_MAX)?,
            policy: match r.u8("policy")? {
                1 => Policy::Open,
                2 => Policy::InviteOnly,
                3 => Policy::Private,
                4 => Policy::PrivateFromJoining,
                _ => return Err(invalid(
                    "policy",
                    "must be open (1), invite-only (2), private (3) or private from joining (4)",
                )),
            },
            invite_by: match r.u8("invite_by")? {
                1 => InviteBy::Facilitators,
                2 => InviteBy::AnyMember,
                _ => {
                    return Err(invalid(
                        "invite_by",
                        "must be facilitators (1) or any member (2)",
                    ))
                }
            },
            nonce: r.array("nonce")?,
        })
    }

    pub(crate) fn check(&self) -> Result<(), EntryError> {
        if self.policy.is_private() {
            // Every node that relays the network holds its founding entry: a private one's
            // name and description travel only in invites, to members.
            if !self.name.is_empty() || !self.description_md.is_empty() {
                return Err(invalid(
                    "name",
                    "a private network's founding entry carries no name or description",
                ));
            }
            return Ok(());
        }
        text::single_line("name", &self.name, NETWORK_NAME_BYTES_MAX)?;
        text::markdown(
            "description",
            &self.description_md,
            NETWORK_DESCRIPTION_BYTES_MAX,
            true,
        )
    }

    /// The signed founding entry of a new network: its id is derived from the content, so the
    /// draft's network field is filled in here.
    pub fn found(self, created_at_ms: u64, key: &crate::SigningKey) -> Entry {
        let mut draft = Draft {
            network: NetworkId([0; 32]),
            created_at_ms,
            refs: Vec::new(),
            body: Body::Network(self),
        };
        let unsigned = draft.clone().sign(key);
        draft.network = derived_network_id(&unsigned);
        draft.sign(key)
    }
}

fn policy_tag(p: Policy) -> u8 {
    match p {
        Policy::Open => 1,
        Policy::InviteOnly => 2,
        Policy::Private => 3,
        Policy::PrivateFromJoining => 4,
    }
}

fn invite_by_tag(i: InviteBy) -> u8 {
    match i {
        InviteBy::Facilitators => 1,
        InviteBy::AnyMember => 2,
    }
}

fn invalid(field: &'static str, reason: &'static str) -> EntryError {
    EntryError::InvalidField { field, reason }
}

/// The id of the network an entry founds: BLAKE3 of [`NETWORK_ID_CONTEXT`] and the entry's
/// content with its network field zeroed. Only meaningful for founding entries.
pub fn derived_network_id(entry: &Entry) -> NetworkId {
    let bytes = entry.encode();
    let content = &bytes[..bytes.len() - crate::envelope::SIGNATURE_BYTES];
    let mut hasher = blake3::Hasher::new();
    hasher.update(NETWORK_ID_CONTEXT);
    hasher.update(&content[..1]);
    hasher.update(&[0u8; 32]);
    hasher.update(&content[33..]);
    NetworkId(*hasher.finalize().as_bytes())
}

// Action tags of kind 7. Founding (0) is never valid there: it has its own kind.
const JOIN_WITHOUT_INVITE: u8 = 0;
const JOIN_WITH_INVITE: u8 = 1;

fn action_tag(a: &Action) -> u8 {
    match a {
        Action::Found { .. } => 0,
        Action::Invite { .. } => 1,
        Action::Join { .. } => 2,
        Action::Add { .. } => 3,
        Action::Leave => 4,
        Action::Remove { .. } => 5,
        Action::Grant { .. } => 6,
        Action::Demote { .. } => 7,
        Action::RevokeInvite { .. } => 8,
        Action::SetProfile(_) => 9,
        Action::BindNode { .. } => 10,
    }
}

pub(crate) fn encode_action(a: &Action, w: &mut Writer) {
    w.u8(action_tag(a));
    match a {
        Action::Found { policy, invite_by } => {
            w.u8(policy_tag(*policy));
            w.u8(invite_by_tag(*invite_by));
        }
        Action::Invite {
            expires_at_ms,
            uses_max,
        } => {
            w.u64(*expires_at_ms);
            w.bytes(&uses_max.to_be_bytes());
        }
        Action::Join { invite: None } => w.u8(JOIN_WITHOUT_INVITE),
        Action::Join {
            invite: Some(invite),
        } => {
            w.u8(JOIN_WITH_INVITE);
            w.bytes(invite.as_bytes());
        }
        Action::Leave => {}
        Action::Add { member }
        | Action::Remove { member }
        | Action::Grant { member }
        | Action::Demote { member } => w.bytes(member.as_bytes()),
        Action::RevokeInvite { invite } => w.bytes(invite.as_bytes()),
        Action::SetProfile(p) => {
            w.str(&p.display_name);
            w.str(&p.school);
            w.str(&p.role);
        }
        Action::BindNode { node } => w.bytes(node.as_bytes()),
    }
}

pub(crate) fn decode_action(r: &mut Reader<'_>) -> Result<Action, EntryError> {
    let member = |r: &mut Reader<'_>| r.array("member").map(AuthorId);
    Ok(match r.u8("action")? {
        1 => Action::Invite {
            expires_at_ms: r.u64("expires_at_ms")?,
            uses_max: u16::from_be_bytes(r.array("uses_max")?),
        },
        2 => match r.u8("invite")? {
            JOIN_WITHOUT_INVITE => Action::Join { invite: None },
            JOIN_WITH_INVITE => Action::Join {
                invite: Some(EntryId(r.array("invite")?)),
            },
            _ => return Err(invalid("invite", "must be absent (0) or present (1)")),
        },
        3 => Action::Add { member: member(r)? },
        4 => Action::Leave,
        5 => Action::Remove { member: member(r)? },
        6 => Action::Grant { member: member(r)? },
        7 => Action::Demote { member: member(r)? },
        8 => Action::RevokeInvite {
            invite: EntryId(r.array("invite")?),
        },
        9 => Action::SetProfile(Profile {
            display_name: r.str("display_name", PROFILE_FIELD_BYTES_MAX)?,
            school: r.str("school", PROFILE_FIELD_BYTES_MAX)?,
            role: r.str("role", PROFILE_FIELD_BYTES_MAX)?,
        }),
        10 => Action::BindNode {
            node: NodeKey(r.array("node")?),
        },
        _ => return Err(invalid("action", "not a membership action (1 to 10)")),
    })
}

pub(crate) fn check_action(a: &Action) -> Result<(), EntryError> {
    let key = |field, k: &[u8; 32]| {
        parse_author_key(&AuthorId(*k))
            .map(|_| ())
            .map_err(|_| invalid(field, "not a valid ed25519 public key"))
    };
    match a {
        Action::Found { .. } => Err(invalid(
            "action",
            "a network is founded by an entry of its own kind",
        )),
        Action::Invite { uses_max, .. } if *uses_max == 0 || *uses_max > INVITE_USES_MAX => {
            Err(invalid("uses_max", "must be from 1 to 1000"))
        }
        Action::Add { member }
        | Action::Remove { member }
        | Action::Grant { member }
        | Action::Demote { member } => key("member", member.as_bytes()),
        Action::BindNode { node } => key("node", node.as_bytes()),
        Action::SetProfile(p) => {
            text::single_line("display_name", &p.display_name, PROFILE_FIELD_BYTES_MAX)?;
            if !p.school.is_empty() {
                text::single_line("school", &p.school, PROFILE_FIELD_BYTES_MAX)?;
            }
            if !p.role.is_empty() {
                text::single_line("role", &p.role, PROFILE_FIELD_BYTES_MAX)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Reference and network rules of the membership kinds (part of [`Entry::check_references`]).
pub(crate) fn check_entry(entry: &Entry) -> Result<(), EntryError> {
    match &entry.body {
        Body::Network(_) => {
            if !entry.refs.is_empty() {
                return Err(EntryError::BadReferences(
                    "a network's founding entry references nothing",
                ));
            }
            if derived_network_id(entry) != entry.network {
                return Err(invalid(
                    "network",
                    "a founding entry must carry the network id derived from its content",
                ));
            }
            Ok(())
        }
        Body::Membership(_) => {
            if entry.refs.is_empty() || entry.refs.iter().any(|r| r.relation != Relation::After) {
                return Err(EntryError::BadReferences(
                    "a membership operation references only, and at least one, earlier operation",
                ));
            }
            Ok(())
        }
        _ if entry.refs.iter().any(|r| r.relation == Relation::After) => Err(
            EntryError::BadReferences("only membership operations follow other operations"),
        ),
        _ => Ok(()),
    }
}

impl Action {
    /// This operation as an entry to sign: in `network`, following the operations `after`
    /// (the author's current heads; at least one, at most 16).
    pub fn draft(self, network: NetworkId, created_at_ms: u64, after: &[EntryId]) -> Draft {
        let refs = after
            .iter()
            .map(|&id| crate::entry::Ref {
                relation: Relation::After,
                id,
            })
            .collect();
        Draft {
            network,
            created_at_ms,
            refs,
            body: Body::Membership(self),
        }
    }
}

impl Op {
    /// The operation an entry carries, if it is a membership entry.
    pub fn from_entry(id: EntryId, entry: &Entry) -> Option<Op> {
        let action = match &entry.body {
            Body::Network(g) => Action::Found {
                policy: g.policy,
                invite_by: g.invite_by,
            },
            Body::Membership(action) => action.clone(),
            _ => return None,
        };
        Some(Op {
            id,
            author: entry.author,
            created_at_ms: entry.created_at_ms,
            after: entry
                .refs
                .iter()
                .filter(|r| r.relation == Relation::After)
                .map(|r| r.id)
                .collect(),
            action,
        })
    }
}

impl EntryKind {
    /// True for the kinds that carry membership rather than content.
    pub fn is_membership(self) -> bool {
        matches!(self, EntryKind::Network | EntryKind::Membership)
    }
}

mod hex_16 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 16];
        hex::decode_to_slice(&text, &mut out)
            .map_err(|_| serde::de::Error::custom("nonce must be 32 hex characters"))?;
        Ok(out)
    }
}
