//! Why an entry did not enter the store, and whose fault that is: only bytes that break a
//! rule every node shares blame the sender.

use staffroom_protocol::{AuthorId, EntryError, NetworkId};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] EntryError),
    #[error("entry is dated {created_at_ms} ms, ahead of this node's clock by more than the protocol allows; {}",
        if *held { "held until it is due" } else { "not held (too far ahead, or too many held)" })]
    TooEarly { created_at_ms: u64, held: bool },
    #[error("this node is not a member of network {0}: join it with `staffroom network join`")]
    NotMember(NetworkId),
    #[error("{} is not a member of network {}: join it first (`staffroom network join TOKEN`)", author.short(), network.short())]
    AuthorNotMember {
        author: AuthorId,
        network: NetworkId,
    },
    #[error("{} is not a member of network {} as far as this node knows yet; {}", author.short(), network.short(),
        if *held { "held until their membership arrives" } else { "not held (too many waiting)" })]
    AwaitingMembership {
        author: AuthorId,
        network: NetworkId,
        held: bool,
    },
    #[error("join refused: {reason}")]
    InviteClosed { reason: &'static str },
    #[error("{}'s membership of network {} ended at {ended_at_ms} ms, before this entry was made", author.short(), network.short())]
    FormerMember {
        author: AuthorId,
        network: NetworkId,
        ended_at_ms: u64,
    },
    #[error("{} may not remove or hide entries in, or publish, network {}: only its facilitators may", author.short(), network.short())]
    NotFacilitator {
        author: staffroom_protocol::AuthorId,
        network: staffroom_protocol::NetworkId,
    },
    #[error("{reason} (network {})", network.short())]
    WrongPrivacy {
        reason: &'static str,
        network: staffroom_protocol::NetworkId,
    },
    #[error("entry {0} was erased (deleted or removed) in its network: it is not stored again")]
    Erased(staffroom_protocol::EntryId),
    #[error("entry belongs to network {entry} but arrived on network {channel}'s topic")]
    WrongNetwork {
        entry: NetworkId,
        channel: NetworkId,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("verification worker failed: {0}")]
    Worker(String),
}

impl IngestError {
    /// True when the entry breaks a rule every node shares, so its sender is at fault. False
    /// for whatever depends on this node: its clock, the kinds it knows, the networks it has
    /// joined, its own storage or workers.
    pub fn blames_sender(&self) -> bool {
        match self {
            IngestError::Invalid(e) => e.blames_sender(),
            IngestError::WrongNetwork { .. } => true,
            IngestError::TooEarly { .. }
            | IngestError::NotMember(_)
            | IngestError::AuthorNotMember { .. }
            | IngestError::AwaitingMembership { .. }
            | IngestError::FormerMember { .. }
            | IngestError::InviteClosed { .. }
            | IngestError::Erased(_)
            | IngestError::NotFacilitator { .. }
            | IngestError::WrongPrivacy { .. }
            | IngestError::Store(_)
            | IngestError::Worker(_) => false,
        }
    }

    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Invalid(e) => e.code(),
            IngestError::TooEarly { .. } => "from_the_future",
            IngestError::NotMember(_) => "not_member",
            IngestError::AuthorNotMember { .. } => "author_not_member",
            IngestError::AwaitingMembership { .. } => "awaiting_membership",
            IngestError::FormerMember { .. } => "former_member",
            IngestError::InviteClosed { .. } => "invite_refused",
            IngestError::WrongNetwork { .. } => "wrong_network",
            IngestError::Erased(_) => "erased",
            IngestError::NotFacilitator { .. } => "not_facilitator",
            IngestError::WrongPrivacy { .. } => "wrong_privacy",
            IngestError::Store(crate::store::StoreError::DiskFull { .. }) => "disk_full",
            IngestError::Store(_) => "storage",
            IngestError::Worker(_) => "worker",
        }
    }
}
