//! When catch-up sessions run: when a peer turns out to share a network with this node (it
//! connects, or either side joins), periodically as anti-entropy with one peer per network,
//! and on demand. Sessions run in a bounded set owned by the scheduler, one per (peer,
//! network) at a time.

use std::collections::HashSet;
use std::time::Duration;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use staffroom_protocol::NetworkId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::session::{self, SyncReport};
use crate::ingest::Ingest;
use crate::net::NetClient;

/// Sessions running at once from triggers and timers.
const SESSIONS_MAX: usize = 8;
/// Triggers queued at most; beyond, they are dropped (anti-entropy catches up).
pub const TRIGGER_QUEUE_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Sync with a peer as soon as it shares a network with this node.
    pub on_connect: bool,
    /// Seconds between anti-entropy rounds (0: never).
    pub interval_secs: u64,
    /// Seconds one sync request may take before the session with that peer fails.
    pub request_timeout_secs: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            on_connect: true,
            interval_secs: 60,
            request_timeout_secs: 30,
        }
    }
}

/// Something that should start a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTrigger {
    /// `peer` and this node are now both in `network`.
    Shared { peer: PeerId, network: NetworkId },
}

/// Runs until `shutdown`; sessions still running then are cancelled (they are restartable:
/// whatever they stored is durable, and the next session fetches only what is missing).
pub async fn run(
    config: SyncConfig,
    net: NetClient,
    ingest: Ingest,
    mut triggers: mpsc::Receiver<SyncTrigger>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions: JoinSet<(PeerId, NetworkId)> = JoinSet::new();
    let mut running: HashSet<(PeerId, NetworkId)> = HashSet::new();
    let period = Duration::from_secs(config.interval_secs.max(1));
    let mut anti_entropy = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut turn = 0usize;
    enum Wake {
        Stop,
        Trigger(PeerId, NetworkId),
        Tick,
        Finished((PeerId, NetworkId)),
    }
    loop {
        let wake = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => Wake::Stop,
            Some(SyncTrigger::Shared { peer, network }) = triggers.recv() => Wake::Trigger(peer, network),
            _ = anti_entropy.tick(), if config.interval_secs > 0 => Wake::Tick,
            Some(Ok(pair)) = sessions.join_next(), if !sessions.is_empty() => Wake::Finished(pair),
        };
        let start = match wake {
            Wake::Stop => break,
            Wake::Trigger(peer, network) if config.on_connect => vec![(peer, network)],
            Wake::Trigger(..) => continue,
            Wake::Tick => {
                turn = turn.wrapping_add(1);
                anti_entropy_pairs(&net, &ingest, turn).await
            }
            Wake::Finished(pair) => {
                running.remove(&pair);
                continue;
            }
        };
        for (peer, network) in start {
            if sessions.len() >= SESSIONS_MAX || !running.insert((peer, network)) {
                continue;
            }
            let (net, ingest) = (net.clone(), ingest.clone());
            sessions.spawn(async move {
                session::run(peer, network, &net, &ingest).await;
                (peer, network)
            });
        }
    }
    sessions.shutdown().await;
}

/// One peer per network this turn, rotating through the peers that share it.
async fn anti_entropy_pairs(
    net: &NetClient,
    ingest: &Ingest,
    turn: usize,
) -> Vec<(PeerId, NetworkId)> {
    let Ok(peers) = net.peers().await else {
        return Vec::new();
    };
    let Ok(networks) = ingest.store().networks() else {
        return Vec::new();
    };
    let networks: Vec<NetworkId> = networks.into_iter().map(|r| r.id).collect();
    let mut pairs = Vec::new();
    for network in networks {
        let sharing: Vec<PeerId> = peers
            .iter()
            .filter(|p| p.networks.contains(&network) && !p.blocked)
            .filter_map(|p| p.peer_id.parse().ok())
            .collect();
        if !sharing.is_empty() {
            pairs.push((sharing[turn % sharing.len()], network));
        }
    }
    pairs
}

/// Syncs now with every connected peer that shares a network (or only `network`), and
/// returns what each session did. Used by `staffroom sync`.
pub async fn sync_now(
    net: &NetClient,
    ingest: &Ingest,
    network: Option<NetworkId>,
) -> Vec<SyncReport> {
    let Ok(peers) = net.peers().await else {
        return Vec::new();
    };
    let joined: HashSet<NetworkId> = match ingest.store().networks() {
        Ok(records) => records.into_iter().map(|r| r.id).collect(),
        Err(_) => return Vec::new(),
    };
    let mut runs = Vec::new();
    for peer in peers.iter().filter(|p| !p.blocked) {
        let Ok(peer_id) = peer.peer_id.parse::<PeerId>() else {
            continue;
        };
        for shared in peer.networks.iter().filter(|n| joined.contains(n)) {
            if network.is_none_or(|n| n == *shared) {
                runs.push(session::run(peer_id, *shared, net, ingest));
            }
        }
    }
    futures::future::join_all(runs).await
}
