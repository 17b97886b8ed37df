//! Relays without a hub: every node that AutoNAT confirms reachable relays for the member
//! nodes of its networks, within limits the admin sets (`[relay]` in `config.toml`). The
//! library's default circuit (2 minutes, 128 KiB) is far too small for a catch-up or a file,
//! so Staffroom's defaults allow an hour and a GiB per circuit, and fewer circuits at once.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::{relay, Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// Whether a peer may use this node's relay: true for member nodes of a network this node
/// follows (see `Rosters::may_share`).
pub type Admits = Arc<dyn Fn(&PeerId) -> bool + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Serve as a relay for the member nodes of this node's networks, once AutoNAT confirms
    /// it reachable from outside.
    pub serve: bool,
    /// Keep a reservation on a relay of this node's networks while it is not reachable.
    pub reserve: bool,
    /// One relayed connection's lifetime and bytes (each way), at most.
    pub circuit_secs: u64,
    pub circuit_mib: u64,
    /// Relayed connections at once, in all and per peer.
    pub circuits_max: usize,
    pub circuits_per_peer_max: usize,
    /// Nodes holding a reservation at once.
    pub reservations_max: usize,
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
    pub fn server(&self, admits: &Admits) -> relay::Config {
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
            .push(Box::new(MembersOnly(admits.clone())));
        config
            .circuit_src_rate_limiters
            .push(Box::new(MembersOnly(admits.clone())));
        // A circuit every few seconds per peer is plenty for reconnects; more is a flood.
        let per_peer = NonZeroU32::new(30).expect("30 > 0");
        config.circuit_src_per_peer(per_peer, Duration::from_secs(60))
    }
}

/// A "rate limiter" that admits member nodes only: the relay's hook for refusing a peer.
struct MembersOnly(Admits);

impl relay::RateLimiter for MembersOnly {
    fn try_next(&mut self, peer: PeerId, _addr: &Multiaddr, _now: Instant) -> bool {
        let admitted = (self.0)(&peer);
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
        let member = PeerId::random();
        let admits: Admits = Arc::new(move |p| *p == member);
        let config = RelayConfig::default().server(&admits);
        assert_eq!(config.max_circuit_bytes, 1 << 30);
        assert_eq!(config.max_circuit_duration, Duration::from_secs(3600));
        let mut limiter = MembersOnly(admits);
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
        let now = Instant::now();
        use libp2p::relay::RateLimiter;
        assert!(limiter.try_next(member, &addr, now));
        assert!(!limiter.try_next(PeerId::random(), &addr, now));
    }
}
