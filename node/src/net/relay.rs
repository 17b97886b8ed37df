//! Relays without a hub: every node that AutoNAT confirms reachable relays for the member
//! nodes of its networks, within limits the admin sets (`[relay]` in `config.toml`). The
//! library's default circuit (2 minutes, 128 KiB) is far too small for a catch-up or a file,
//! so Staffroom's defaults allow an hour and a GiB per circuit, and fewer circuits at once.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use libp2p::{relay, Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use staffroom_protocol::NetworkId;

/// Whether this node may share `network` with `peer` (`Rosters::may_share`: in an
/// invite-only network only nodes bound by members).
pub type MayShare = Arc<dyn Fn(&NetworkId, &PeerId) -> bool + Send + Sync>;

/// The connected peers subscribed to networks this node follows, with those networks: kept
/// by the event loop from gossip subscriptions, read by the relay when a peer asks for a
/// reservation or a circuit. At most one entry per connected peer.
#[derive(Clone, Default)]
pub struct SharingPeers(Arc<RwLock<HashMap<PeerId, Vec<NetworkId>>>>);

impl SharingPeers {
    /// `peer` now shares `networks` with this node (none: it is forgotten).
    pub fn set(&self, peer: PeerId, networks: Vec<NetworkId>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match networks.is_empty() {
            true => map.remove(&peer),
            false => map.insert(peer, networks),
        };
    }

    fn networks(&self, peer: &PeerId) -> Vec<NetworkId> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(peer).cloned().unwrap_or_default()
    }
}

/// Who the relay admits: a peer subscribed to a network this node follows that this node may
/// share with it. Anyone else is refused, whatever the networks' policies.
#[derive(Clone)]
pub struct Admission {
    pub sharing: SharingPeers,
    pub may_share: MayShare,
}

impl Admission {
    pub fn admits(&self, peer: &PeerId) -> bool {
        self.sharing
            .networks(peer)
            .iter()
            .any(|n| (self.may_share)(n, peer))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Serve as a relay for the member nodes of this node's networks, once AutoNAT confirms
    /// it reachable from outside.
    pub serve: bool,
    /// Keep a reservation on a relay of this node's networks while it is not reachable.
    pub reserve: bool,
    /// One relayed connection's lifetime, and its bytes (both directions together), at most.
    pub circuit_secs: u64,
    pub circuit_mib: u64,
    /// Relayed connections at once, in all and per peer.
    pub circuits_max: usize,
    pub circuits_per_peer_max: usize,
    /// Nodes holding a reservation at once.
    pub reservations_max: usize,
    /// Count private addresses (RFC 1918, carrier-grade NAT, IPv6 unique-local) that peers
    /// dial back as reachable: for schools joined by a private WAN, or a lab. Off, only
    /// global addresses make a node public, so two nodes on one LAN do not take each other
    /// for relays.
    pub private_wan: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            serve: true,
            reserve: true,
            circuit_secs: 3600,
            circuit_mib: 1024,
            circuits_max: 16,
            circuits_per_peer_max: 4,
            reservations_max: 128,
            private_wan: false,
        }
    }
}

/// What is wrong with a relay setting: its name, value and allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relay.{name} = {value} is out of range: it must be from {min} to {max}")]
pub struct RelayConfigError {
    pub name: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl RelayConfig {
    pub fn check(&self) -> Result<(), RelayConfigError> {
        let checks: [(&'static str, u64, u64, u64); 5] = [
            ("circuit_secs", self.circuit_secs, 60, 86_400),
            ("circuit_mib", self.circuit_mib, 1, 1 << 20),
            ("circuits_max", self.circuits_max as u64, 1, 1024),
            (
                "circuits_per_peer_max",
                self.circuits_per_peer_max as u64,
                1,
                64,
            ),
            ("reservations_max", self.reservations_max as u64, 1, 4096),
        ];
        for (name, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(RelayConfigError {
                    name,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    /// The relay server's settings: these limits, the library's rate limits on reservations
    /// and circuits, and only member nodes admitted to either.
    pub fn server(&self, admission: &Admission) -> relay::Config {
        let mut config = relay::Config {
            max_reservations: self.reservations_max,
            max_reservations_per_peer: 4,
            reservation_duration: Duration::from_secs(3600),
            max_circuits: self.circuits_max,
            max_circuits_per_peer: self.circuits_per_peer_max,
            max_circuit_duration: Duration::from_secs(self.circuit_secs),
            max_circuit_bytes: self.circuit_mib.saturating_mul(1 << 20),
            ..relay::Config::default()
        };
        config
            .reservation_rate_limiters
            .push(Box::new(MembersOnly(admission.clone())));
        config
            .circuit_src_rate_limiters
            .push(Box::new(MembersOnly(admission.clone())));
        // A circuit every few seconds per peer is plenty for reconnects; more is a flood.
        let per_peer = NonZeroU32::new(30).expect("30 > 0");
        config.circuit_src_per_peer(per_peer, Duration::from_secs(60))
    }
}

/// A "rate limiter" that admits member nodes only: the relay's hook for refusing a peer.
struct MembersOnly(Admission);

impl relay::RateLimiter for MembersOnly {
    fn try_next(&mut self, peer: PeerId, _addr: &Multiaddr, _now: Instant) -> bool {
        let admitted = self.0.admits(&peer);
        if !admitted {
            tracing::debug!(%peer, "relay refused: not a member node of this node's networks");
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_and_members_only_are_admitted() {
        assert_eq!(RelayConfig::default().check(), Ok(()));
        let bad = RelayConfig {
            circuit_secs: 5,
            ..RelayConfig::default()
        };
        let error = bad.check().unwrap_err();
        assert_eq!(error.name, "circuit_secs");
        assert!(error.to_string().contains("from 60 to 86400"), "{error}");
        // The network is open (anyone may share it), but only peers in it are admitted.
        let (network, other) = (NetworkId([1; 32]), NetworkId([2; 32]));
        let (member, bystander, refused) = (PeerId::random(), PeerId::random(), PeerId::random());
        let admission = Admission {
            sharing: SharingPeers::default(),
            may_share: Arc::new(move |n, p| *n == network && *p != refused),
        };
        admission.sharing.set(member, vec![network]);
        admission.sharing.set(bystander, vec![other]);
        admission.sharing.set(refused, vec![network]);
        let config = RelayConfig::default().server(&admission);
        assert_eq!(config.max_circuit_bytes, 1 << 30);
        assert_eq!(config.max_circuit_duration, Duration::from_secs(3600));
        let mut limiter = MembersOnly(admission.clone());
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
        let now = Instant::now();
        use libp2p::relay::RateLimiter;
        assert!(limiter.try_next(member, &addr, now));
        assert!(
            !limiter.try_next(bystander, &addr, now),
            "not in our network"
        );
        assert!(!limiter.try_next(refused, &addr, now), "not bound in it");
        assert!(!limiter.try_next(PeerId::random(), &addr, now), "unknown");
        admission.sharing.set(member, vec![]);
        assert!(!limiter.try_next(member, &addr, now), "left the network");
    }
}
