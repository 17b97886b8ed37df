//! The event loop's routes for peers coming and going: identify answers into the peer book
//! and the DHT, mDNS discoveries dialled, connections opened (direct or relayed, redundant
//! relayed ones closed) and closed, and failed dials reported to whoever waits on them.

use std::time::Instant;

use libp2p::core::ConnectedPoint;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, DialError};
use libp2p::{identify, Multiaddr, PeerId};

use super::super::client::NetError;
use super::{EventLoop, PEER_LISTEN_ADDRS_MAX};

/// `addr`, ending in `/p2p/<peer>` (added if it does not already).
pub(super) fn with_peer_id(addr: Multiaddr, peer: PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(_)) => addr,
        _ => addr.with(libp2p::multiaddr::Protocol::P2p(peer)),
    }
}

/// Why a dial failed, in words an admin can act on.
pub(super) fn dial_error(error: &DialError) -> String {
    match error {
        DialError::WrongPeerId { obtained, .. } => format!(
            "the node at that address is {obtained}, not the peer the address names: \
             check the address (a node's id changes only if its node.key does)"
        ),
        DialError::Transport(tried) => {
            // A transport error's own text can be empty: then its source says why.
            let reason = |e: &libp2p::TransportError<std::io::Error>| {
                use std::error::Error;
                let mut text = e.to_string();
                let mut source = e.source();
                while text.trim().is_empty() {
                    let Some(s) = source else { break };
                    text = s.to_string();
                    source = s.source();
                }
                text
            };
            let reasons: Vec<String> = tried.iter().take(4).map(|(_, e)| reason(e)).collect();
            format!("unreachable: {}", reasons.join("; "))
        }
        other => other.to_string(),
    }
}

impl EventLoop {
    pub(super) fn on_identified(&mut self, peer_id: PeerId, info: identify::Info) {
        let protocols: Vec<String> = info.protocols.iter().map(|p| p.to_string()).collect();
        self.peers
            .identified(&peer_id, &info.agent_version, &protocols);
        // A Staffroom DHT node: its listen addresses join the routing table.
        let kad = self.swarm.behaviour_mut().kad.as_mut();
        if let Some(kad) = kad.filter(|_| {
            info.protocols
                .contains(&super::super::discovery::KAD_PROTOCOL)
        }) {
            for addr in info.listen_addrs.into_iter().take(PEER_LISTEN_ADDRS_MAX) {
                kad.add_address(&peer_id, addr);
            }
        }
    }

    pub(super) fn on_mdns(&mut self, found: Vec<(PeerId, Multiaddr)>) {
        for (peer, addr) in found {
            if !self.swarm.is_connected(&peer) {
                tracing::debug!(%peer, %addr, "dialling peer found by mDNS");
                let _ = self
                    .swarm
                    .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
            }
        }
    }

    pub(super) fn on_connected(
        &mut self,
        peer_id: PeerId,
        endpoint: ConnectedPoint,
        connection_id: ConnectionId,
    ) {
        let kind = match endpoint.is_relayed() {
            true => super::super::ConnKind::Relayed,
            false => super::super::ConnKind::Direct,
        };
        let (addr, dialed) = match endpoint {
            ConnectedPoint::Dialer { address, .. } => (address, true),
            ConnectedPoint::Listener { send_back_addr, .. } => (send_back_addr, false),
        };
        tracing::info!(peer = %peer_id, %addr, ?kind, "connected");
        self.peers
            .connected(peer_id, (addr, dialed), connection_id, kind);
        let me = *self.swarm.local_peer_id();
        for redundant in self.peers.redundant_relayed(&me, &peer_id) {
            self.swarm.close_connection(redundant);
        }
        if let Some(outcome) = self.dial_outcomes.remove(&connection_id) {
            let _ = outcome.send(Ok(peer_id));
        }
    }

    pub(super) fn on_closed(&mut self, peer_id: PeerId, id: ConnectionId, remaining: u32) {
        if remaining > 0 {
            self.peers.connection_closed(&peer_id, id);
            return;
        }
        tracing::info!(peer = %peer_id, "disconnected");
        self.peers.disconnected(&peer_id);
        self.sharing_changed(&peer_id);
    }

    pub(super) fn on_dial_failed(
        &mut self,
        connection_id: ConnectionId,
        error: &DialError,
        peer_id: Option<PeerId>,
    ) {
        let reason = dial_error(error);
        // Said once per change for peers this node keeps dialling (one that stays down is
        // retried with backoff, quietly); a node answering with another id than its address
        // names is always worth saying.
        let news = self
            .peers
            .dial_failed(connection_id, &reason, Instant::now());
        let wrong_id = matches!(error, DialError::WrongPeerId { .. });
        match news || wrong_id {
            true => tracing::warn!(peer = ?peer_id, error = %reason, "cannot reach peer"),
            false => tracing::debug!(peer = ?peer_id, error = %reason, "cannot reach peer"),
        }
        if let Some(outcome) = self.dial_outcomes.remove(&connection_id) {
            let addr = match error {
                DialError::Transport(tried) => tried
                    .first()
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let _ = outcome.send(Err(NetError::Dial { addr, reason }));
        }
    }
}
