//! Request and response bodies of the client API, shared by server and client.

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use staffroom_protocol::membership::{InviteBy, Policy, Profile};
use staffroom_protocol::{AuthorId, EntryId, NetworkId, NodeKey};

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

/// `GET /v1/hello`: who the node is (the only call that needs no signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloResponse {
    /// The node's peer id: what requests are signed for.
    pub node_id: String,
    /// The id of this run of the node (hex): requests are signed for it too.
    pub boot: String,
    /// The node's clock, ms since the Unix epoch: clients date requests by it.
    pub clock_ms: u64,
    pub version: String,
    /// The request-signing scheme, `Staffroom-v1`.
    pub auth: String,
}

/// `POST /v1/teachers`: register a teacher (admin only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTeacherRequest {
    pub key: AuthorId,
    pub name: String,
    #[serde(default)]
    pub admin: bool,
}

/// `POST /v1/networks`: follow the network the first entry founds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptNetworkRequest {
    /// Hex encodings: the network's founding entry, then any of its membership entries.
    pub entries: Vec<String>,
    /// The name this node knows the network by, when its founding entry has none (a
    /// private network's).
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /v1/networks/join`: join with an invite token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    /// Hex encodings of the teacher's signed join, then their node binding (and profile).
    pub entries: Vec<String>,
}

/// `GET /v1/networks/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersView {
    pub network: NetworkId,
    pub name: String,
    pub founder: Option<AuthorId>,
    pub policy: Option<Policy>,
    pub invite_by: Option<InviteBy>,
    pub members: Vec<MemberView>,
    /// Former members, with the time (their remover's clock) their membership ended.
    pub former: BTreeMap<AuthorId, u64>,
    /// Profiles of members and former members, to show authors by name.
    #[serde(default)]
    pub profiles: BTreeMap<AuthorId, Profile>,
    pub invites: Vec<InviteView>,
    /// What a new membership operation should follow (its `after` references).
    pub heads: Vec<EntryId>,
    pub operations: OperationCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub author: AuthorId,
    pub facilitator: bool,
    /// A facilitator's seniority: 0 for the founder, larger for less senior.
    pub rank: Option<u32>,
    pub profile: Option<Profile>,
    /// School nodes this member has bound to their membership.
    pub nodes: Vec<NodeKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    pub id: EntryId,
    pub author: AuthorId,
    pub expires_at_ms: u64,
    pub uses_max: u16,
    /// Joins that count with it.
    pub uses: u16,
    pub revoked: bool,
}

/// Membership operations that count, that do not, and that wait for what they follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationCounts {
    pub valid: usize,
    pub void: usize,
    pub waiting: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialRequest {
    pub addr: String,
}

/// `POST /v1/peers`: the dial's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialReply {
    pub addr: String,
    /// The peer connected to.
    pub peer_id: PeerId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub version: String,
    pub peer_id: PeerId,
    /// The node's ed25519 key: what a teacher binds to their membership of a network.
    pub node_key: Option<NodeKey>,
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
    /// The largest file this node takes (uploads) or fetches.
    #[serde(default)]
    pub file_bytes_max: u64,
    /// Addresses other nodes can reach this one at: confirmed by AutoNAT, or relay circuits.
    #[serde(default)]
    pub external_addrs: Vec<Multiaddr>,
    /// Whether this node is reachable from outside, and the relays it serves or uses.
    #[serde(default)]
    pub reach: crate::net::reach::ReachStatus,
    /// What is wrong with the node right now (a full disk, failing writes, a store repaired
    /// at start); empty when it is healthy.
    #[serde(default)]
    pub problems: Vec<crate::store::Problem>,
    /// Tasks alive in the node's async runtime: flat while the node idles, so a leak shows.
    #[serde(default)]
    pub runtime_tasks: u64,
    /// Copies of gossip messages received since the node started, duplicates included:
    /// beside the entries stored, how much of the gossip traffic was redundant.
    #[serde(default)]
    pub gossip_copies_received: u64,
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

/// A file the node now holds, after an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUploaded {
    pub root: staffroom_protocol::FileRoot,
    pub size_bytes: u64,
}

/// A resource's files and how each stands on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceFiles {
    pub entry: EntryId,
    pub network: NetworkId,
    /// The files are sealed (a private network's): their plaintext is read with
    /// `GET /v1/files/{root}?open=true`.
    #[serde(default)]
    pub sealed: bool,
    pub files: Vec<ResourceFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceFile {
    pub file: staffroom_protocol::FileRef,
    pub progress: crate::files::FileProgress,
    /// Connected member nodes that hold it complete, when asked for (`?holders=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holders: Option<Vec<String>>,
}

/// How a network's files are fetched on this node: what was set, and what applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFilesView {
    pub network: NetworkId,
    /// What the school's admin set for this network (unset follows the node's config).
    pub policy: crate::store::FilePolicy,
    /// Whether files are fetched as their resources arrive.
    pub eager: bool,
    /// Eager fetching stops once the network's files here reach this many bytes.
    pub quota_bytes: u64,
    /// Bytes of the network's files on this node now.
    pub bytes_here: u64,
    /// Files the network's resources list.
    pub files: usize,
}

/// `DELETE /v1/networks/{id}` query.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LeaveQuery {
    /// Also delete the network's entries and files held here.
    #[serde(default)]
    pub purge: bool,
}

/// What leaving a network did here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveView {
    pub network: NetworkId,
    /// Entries deleted from this node (0 without `purge`).
    pub purged_entries: u64,
}

/// `POST /v1/networks/{id}/seal`: a content body to seal for the calling teacher, who then
/// signs the sealed entry with this time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealRequest {
    pub created_at_ms: u64,
    pub body: staffroom_protocol::Body,
}

/// `GET /v1/resolve/{prefix}`: ids on this node that start with `prefix`. Each list holds at
/// most [`crate::api::resolve::RESOLVE_CANDIDATES_MAX`] + 1: one more than that says there
/// are more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveView {
    /// The prefix, lowercase.
    pub prefix: String,
    pub entries: Vec<staffroom_protocol::EntryId>,
    pub authors: Vec<staffroom_protocol::AuthorId>,
    pub networks: Vec<staffroom_protocol::NetworkId>,
}

/// `POST /v1/web/sign-in`: a one-time link that signs the asking teacher in to the web pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSignInResponse {
    pub url: String,
    /// By the node's clock.
    pub expires_at_ms: u64,
    /// How long it works from now, in seconds.
    pub valid_secs: u64,
}
