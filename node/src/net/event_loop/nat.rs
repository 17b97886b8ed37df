//! The event loop's routes for reaching across NAT: AutoNAT results and external addresses
//! into [`Reach`](super::super::reach::Reach), its actions onto the swarm (relay serving,
//! reservations), hole-punching outcomes, and peers' clocks. Decisions live in `reach`;
//! this file only routes.

use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::{autonat, dcutr, relay, request_response, Multiaddr, PeerId};

use super::super::reach::{self, Action};
use super::super::time_probe::{self, PeerTime};
use super::EventLoop;

/// How often relays are re-examined and peers' clocks asked.
pub const REACH_INTERVAL: Duration = Duration::from_secs(2);
/// Clock probes in flight at most.
const CLOCK_PROBES_MAX: usize = 64;

impl EventLoop {
    /// Candidates for relays from what the peer book knows; reservations due; clocks due.
    pub(super) fn reach_tick(&mut self) {
        let relays = self.peers.relays(relay::HOP_PROTOCOL_NAME.as_ref());
        for (peer, addr) in &relays {
            self.reach.relay_found(*peer, addr.clone());
        }
        let still: Vec<PeerId> = relays.iter().map(|(peer, _)| *peer).collect();
        let actions = self.reach.retain_candidates(&still);
        self.apply(actions);
        let actions = self.reach.tick(Instant::now());
        self.apply(actions);
        self.ask_clocks();
    }

    pub(super) fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::ServeRelay(on) => {
                    let status = match on {
                        true => relay::Status::Enable,
                        false => relay::Status::Disable,
                    };
                    self.swarm.behaviour_mut().relay.set_status(Some(status));
                    tracing::info!(serving = on, "relay service for member nodes");
                }
                Action::Reserve { relay, circuit } => match self.swarm.listen_on(circuit) {
                    Ok(listener) => {
                        tracing::debug!(%relay, "asking a relay for a reservation");
                        self.reach.requested(&relay, listener);
                    }
                    Err(e) => {
                        tracing::warn!(%relay, error = %e, "cannot ask the relay for a reservation");
                        self.reach.request_failed(&relay, Instant::now());
                    }
                },
                Action::Release(listener) => {
                    self.swarm.remove_listener(listener);
                }
            }
        }
    }

    pub(super) fn external_confirmed(&mut self, address: Multiaddr) {
        // AutoNAT on one machine can "confirm" loopback, and peers on one LAN its private
        // addresses: neither makes this node reachable from other schools.
        if !reach::is_relayed(&address) && !self.reach.counts_as_public(&address) {
            self.swarm.remove_external_address(&address);
            return;
        }
        if !reach::is_relayed(&address) {
            tracing::info!(%address, "reachable from outside at this address");
        }
        let actions = self.reach.confirmed(&address);
        self.apply(actions);
    }

    pub(super) fn listener_closed(
        &mut self,
        listener: ListenerId,
        reason: Result<(), std::io::Error>,
    ) {
        if let Err(e) = &reason {
            tracing::info!(error = %e, "a listener closed (a relay reservation ends this way)");
        }
        self.reach.listener_closed(listener, Instant::now());
    }

    pub(super) fn handle_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    tracing::info!(relay = %relay_peer_id, "reachable through a relay");
                }
                self.reach.accepted(&relay_peer_id);
            }
            other => tracing::debug!(event = ?other, "relay client"),
        }
    }

    pub(super) fn handle_relay(&mut self, event: relay::Event) {
        match event {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "relaying for a member node");
            }
            relay::Event::CircuitReqDenied { src_peer_id, .. }
            | relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "relay request denied");
            }
            other => tracing::trace!(event = ?other, "relay server"),
        }
    }

    pub(super) fn handle_dcutr(&mut self, event: dcutr::Event) {
        let peer = event.remote_peer_id;
        match event.result {
            Ok(direct) => {
                // Data moves on the direct connection; the relayed one only holds a circuit.
                let relayed = self.peers.punched(&peer, direct);
                tracing::info!(%peer, "hole punched: connected directly");
                for connection in relayed {
                    self.swarm.close_connection(connection);
                }
            }
            Err(e) => tracing::info!(%peer, error = %e, "hole punching failed; staying relayed"),
        }
    }

    pub(super) fn handle_autonat(&mut self, event: autonat::v2::client::Event) {
        let reachable = event.result.is_ok();
        tracing::debug!(addr = %event.tested_addr, server = %event.server, reachable, "AutoNAT");
        self.reach
            .tested(event.tested_addr, event.server, reachable);
    }

    pub(super) fn handle_autonat_v1(&mut self, event: autonat::v1::Event) {
        use autonat::v1::{Event, OutboundProbeEvent};
        match event {
            Event::OutboundProbe(OutboundProbeEvent::Response { peer, address, .. }) => {
                self.reach.tested(address, peer, true);
            }
            Event::StatusChanged { new, .. } => {
                tracing::debug!(status = ?new, "AutoNAT v1");
                // Re-tested and no longer reachable (a port forward gone, a new WAN
                // address): the addresses confirmed before no longer hold. Nothing else
                // expires them.
                if let autonat::v1::NatStatus::Private = new {
                    for addr in self.reach.public_addrs().to_vec() {
                        self.swarm.remove_external_address(&addr);
                    }
                }
            }
            _ => {}
        }
    }

    fn ask_clocks(&mut self) {
        let room = CLOCK_PROBES_MAX.saturating_sub(self.clocks_asked.len());
        let due = self.peers.clocks_to_ask(
            time_probe::TIME_PROTOCOL.as_ref(),
            (time_probe::ASK_INTERVAL, room),
            Instant::now(),
        );
        for peer in due {
            let id = self.swarm.behaviour_mut().time.send_request(&peer, ());
            self.clocks_asked.insert(id, self.clock.now_ms());
        }
    }

    pub(super) fn handle_time(&mut self, event: request_response::Event<(), PeerTime>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                message: Message::Request { channel, .. },
                ..
            } => {
                let now = PeerTime(self.clock.now_ms());
                let _ = self.swarm.behaviour_mut().time.send_response(channel, now);
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response: PeerTime(peer_ms),
                    },
                ..
            } => {
                if let Some(sent_ms) = self.clocks_asked.remove(&request_id) {
                    let offset = time_probe::offset_ms(sent_ms, self.clock.now_ms(), peer_ms);
                    self.peers.clock_offset(&peer, offset);
                }
            }
            Event::OutboundFailure { request_id, .. } => {
                self.clocks_asked.remove(&request_id);
            }
            _ => {}
        }
    }
}
