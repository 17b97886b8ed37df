//! The cloneable handle through which the API and the node talk to the swarm's event loop.

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use staffroom_protocol::sync::{SyncRequest, SyncResponse};
use staffroom_protocol::NetworkId;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    #[error("the network event loop has stopped")]
    Stopped,
    #[error("cannot dial {addr}: {reason}")]
    Dial { addr: String, reason: String },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("cannot subscribe to network {network}: {reason}")]
    Subscribe { network: NetworkId, reason: String },
    #[error("sync request failed: {0}")]
    Sync(String),
}

/// What became of a publish. Gossip is best-effort: a node with no peers still stores the
/// entry, and catch-up sync delivers it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishReport {
    /// Connected peers subscribed to the network's topic when the entry was published.
    pub peers: usize,
    /// Why gossip did not go out, when it did not.
    pub note: Option<String>,
}

/// A connected peer, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub peer_id: PeerId,
    pub addresses: Vec<Multiaddr>,
    pub agent: Option<String>,
    /// The protocols it announced (sync versions among them).
    #[serde(default)]
    pub protocols: Vec<String>,
    /// Networks it is subscribed to.
    pub networks: Vec<NetworkId>,
    /// Invalid entries this peer has sent us.
    pub invalid_messages: u32,
    pub blocked: bool,
    pub score: Option<f64>,
    /// How it is connected, at best.
    #[serde(default)]
    pub connection: Option<ConnKind>,
    /// Its clock minus this node's, in milliseconds, when it has been asked.
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
}

/// How a connection to a peer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnKind {
    /// One side dialled the other's address.
    Direct,
    /// Through a relay (a circuit): limited in time and bytes.
    Relayed,
    /// Direct, made by hole punching from a relayed connection.
    Punched,
}

/// A peer this node keeps dialling (configured, or dialled through the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplicitPeerInfo {
    pub addr: Multiaddr,
    pub peer_id: Option<PeerId>,
    pub connected: bool,
    /// Why the last dial failed, if it did.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStatus {
    pub peer_id: PeerId,
    pub listen_addrs: Vec<Multiaddr>,
    pub connected_peers: usize,
    pub explicit_peers: Vec<ExplicitPeerInfo>,
    /// Explicit peers reached at least once, as `…/p2p/<peer id>` addresses: the peer book
    /// worth keeping across restarts.
    pub reached_peers: Vec<Multiaddr>,
    /// Addresses peers can reach this node at, as the swarm knows them (AutoNAT-confirmed,
    /// or relay circuits).
    #[serde(default)]
    pub external_addrs: Vec<Multiaddr>,
    /// Reachability, relays served and reserved.
    #[serde(default)]
    pub reach: super::reach::ReachStatus,
    /// Copies of gossip messages received since the node started, duplicates included.
    #[serde(default)]
    pub gossip_copies_received: u64,
}

pub(super) enum Command {
    Publish {
        network: NetworkId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<PublishReport>,
    },
    Subscribe {
        network: NetworkId,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Unsubscribe {
        network: NetworkId,
        reply: oneshot::Sender<()>,
    },
    Dial {
        addr: Multiaddr,
        /// Told how the dial ends (connected to this peer, or why not), when wanted.
        outcome: Option<oneshot::Sender<Result<PeerId, NetError>>>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    Status {
        reply: oneshot::Sender<NetStatus>,
    },
    SyncRequest {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetError>>,
    },
    CutOff {
        peer: PeerId,
        reason: String,
    },
}

#[derive(Clone)]
pub struct NetClient {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) peer_id: PeerId,
}

impl NetClient {
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Gossips an entry (already verified and stored) to the network's peers.
    pub async fn publish(
        &self,
        network: NetworkId,
        bytes: Vec<u8>,
    ) -> Result<PublishReport, NetError> {
        self.call(|reply| Command::Publish {
            network,
            bytes,
            reply,
        })
        .await
    }

    pub async fn subscribe(&self, network: NetworkId) -> Result<(), NetError> {
        self.call(|reply| Command::Subscribe { network, reply })
            .await?
    }

    /// Stops following a network's gossip.
    pub async fn unsubscribe(&self, network: NetworkId) -> Result<(), NetError> {
        self.call(|reply| Command::Unsubscribe { network, reply })
            .await
    }

    /// Starts dialling `addr` (kept in the peer book and redialled); returns once started.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        let outcome = None;
        self.call(|reply| Command::Dial {
            addr,
            outcome,
            reply,
        })
        .await?
    }

    /// Dials `addr` and waits, at most `wait`, for the outcome: the peer connected to, or why
    /// the dial failed (unreachable, refused, a different peer id than the address names).
    pub async fn dial_and_wait(
        &self,
        addr: Multiaddr,
        wait: std::time::Duration,
    ) -> Result<PeerId, NetError> {
        let (tx, rx) = oneshot::channel();
        let shown = addr.to_string();
        self.call(|reply| Command::Dial {
            addr,
            outcome: Some(tx),
            reply,
        })
        .await??;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(NetError::Dial {
                addr: shown,
                reason: "too many dials waiting for their outcome".into(),
            }),
            Err(_) => Err(NetError::Dial {
                addr: shown,
                reason: format!("no answer within {} s", wait.as_secs()),
            }),
        }
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.call(|reply| Command::Peers { reply }).await
    }

    pub async fn status(&self) -> Result<NetStatus, NetError> {
        self.call(|reply| Command::Status { reply }).await
    }

    /// Sends a sync request to `peer` and waits for its response.
    pub async fn sync_request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, NetError> {
        self.call(|reply| Command::SyncRequest {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Blocks and disconnects a peer that broke the protocol.
    pub async fn cut_off(&self, peer: PeerId, reason: String) {
        let _ = self.tx.send(Command::CutOff { peer, reason }).await;
    }
}
