//! Request and response bodies of the client API, shared by server and client.

use serde::{Deserialize, Serialize};
use staffroom_protocol::{EntryId, NetworkId};

use crate::net::PublishReport;
use crate::store::{InsertOutcome, StoredEntry};

/// Network names are local labels; this bounds them.
pub const NETWORK_NAME_BYTES_MAX: usize = 100;

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
    pub peer_id: String,
    pub listen_addrs: Vec<String>,
    pub connected_peers: usize,
    pub networks: usize,
    pub entries: u64,
}

/// One entry as `GET /v1/entries/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    #[serde(flatten)]
    pub stored: StoredEntry,
    /// The newest edit of this entry by its author, if there is one.
    pub edited_by: Option<EntryId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequestBody {
    /// Only this network; all shared networks when omitted.
    pub network: Option<NetworkId>,
}
