//! Request and response bodies of the client API, shared by server and client.

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use staffroom_protocol::{EntryId, NetworkId};

use crate::net::{ExplicitPeerInfo, PublishReport};
use crate::store::{InsertOutcome, StoredEntry};

/// Network names are local labels; this bounds them.
pub const NETWORK_NAME_BYTES_MAX: usize = 100;
/// Networks one node joins at most.
pub const NETWORKS_MAX: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// A stable, machine-readable code such as `bad_signature` or `not_member`.
    pub code: String,
    /// One line a person can act on.
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub id: EntryId,
    pub outcome: InsertOutcome,
    /// False for an entry of a kind or version this node does not understand: kept and
    /// passed on, not listed.
    pub understood: bool,
    pub gossip: PublishReport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinNetworkRequest {
    /// Omit to create a new network with a fresh random id.
    pub id: Option<NetworkId>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialRequest {
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub version: String,
    pub peer_id: PeerId,
    pub listen_addrs: Vec<Multiaddr>,
    pub connected_peers: usize,
    /// Peers this node keeps dialling, and how that goes.
    pub explicit_peers: Vec<ExplicitPeerInfo>,
    pub networks: usize,
    pub entries: u64,
    /// Entries dated ahead of this node's clock, held until they are due.
    pub held_entries: usize,
    /// This node's clock, ms since the Unix epoch.
    pub clock_ms: u64,
}

/// One entry as `GET /v1/entries/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    #[serde(flatten)]
    pub stored: StoredEntry,
    /// The current version, when that is another entry (this one has been edited).
    pub edited_by: Option<EntryId>,
    /// Every version of this entry, the original first, then its edits oldest first.
    #[serde(default)]
    pub versions: Vec<EntryId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequestBody {
    /// Only this network; all shared networks when omitted.
    pub network: Option<NetworkId>,
}
