//! Reachability from outside, as a state machine with no I/O. It decides whether this node is
//! publicly reachable (an external address that AutoNAT v2 confirmed and that is not a relay
//! circuit), so whether it serves as a relay; and, when it is not reachable, which relays of
//! its networks it keeps a reservation on. The event loop feeds it swarm events and the time,
//! and carries out the [`Action`]s it returns.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// Relays a node that is not reachable keeps a reservation on: two, so that one relay going
/// away does not cut the node off.
pub const RELAYS_WANTED: usize = 2;
/// How long after start a node waits for AutoNAT to confirm it reachable before it reserves
/// relay slots: a public node should not need them.
pub const RESERVE_GRACE: Duration = Duration::from_secs(10);
/// The wait before asking a relay again after a refused or lost reservation; it doubles with
/// each failure in a row, up to [`RESERVE_RETRY_MAX`].
pub const RESERVE_RETRY_FIRST: Duration = Duration::from_secs(10);
pub const RESERVE_RETRY_MAX: Duration = Duration::from_secs(300);
/// Relay candidates remembered, confirmed addresses kept, and AutoNAT results kept for the
/// doctor, at most.
const CANDIDATES_MAX: usize = 64;
const ADDRESSES_MAX: usize = 16;
const TESTS_KEPT_MAX: usize = 8;

/// What the event loop is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Serve as a relay, or stop serving.
    ServeRelay(bool),
    /// Listen on `circuit` (`<relay address>/p2p/<relay>/p2p-circuit`), which asks the relay
    /// for a reservation; report the listener with [`Reach::requested`].
    Reserve { relay: PeerId, circuit: Multiaddr },
    /// Close the listener that holds a reservation.
    Release(ListenerId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    Requested(ListenerId),
    Held(ListenerId),
}

#[derive(Debug)]
struct Relay {
    addr: Multiaddr,
    slot: Slot,
    failures: u32,
    retry_at: Option<Instant>,
}

/// Whether this node can be reached from outside, as far as it knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nat {
    /// A direct external address is confirmed: peers can dial this node.
    Public,
    /// Every address peers tested failed: this node is behind NAT or a firewall.
    Private,
    /// Not tested yet (no peer able to test has been asked, or the tests are under way).
    #[default]
    Unknown,
}

/// One AutoNAT test of one of this node's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressTest {
    pub addr: Multiaddr,
    pub tested_by: PeerId,
    pub reachable: bool,
}

/// A relay this node holds, or asks for, a reservation on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayInfo {
    pub peer_id: PeerId,
    pub addr: Multiaddr,
    /// `reserved`, `requested`, or `waiting` (to ask again after a failure).
    pub state: String,
}

/// What [`Reach`] knows, for status and the doctor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachStatus {
    pub nat: Nat,
    /// Direct external addresses confirmed reachable.
    pub public_addrs: Vec<Multiaddr>,
    pub serving_relay: bool,
    pub relays: Vec<RelayInfo>,
    /// The latest AutoNAT tests of this node's addresses, newest last.
    pub tests: Vec<AddressTest>,
}

/// Whether `addr` goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// Whether `addr` is only reachable from this machine (loopback or unspecified): never worth
/// confirming as an external address, whatever a local AutoNAT test said.
pub fn is_local_only(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback() || ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_loopback() || ip.is_unspecified(),
        _ => false,
    })
}

/// Whether `addr` is in a private range (RFC 1918, carrier-grade NAT 100.64/10, link-local,
/// IPv6 unique-local or link-local): reachable on a LAN or a private WAN, not the internet.
pub fn is_private(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_private() || ip.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        Protocol::Ip6(ip) => {
            let first = ip.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        _ => false,
    })
}

fn retry_wait(failures: u32) -> Duration {
    super::peers::doubling_wait(RESERVE_RETRY_FIRST, RESERVE_RETRY_MAX, failures)
}

/// The reachability state machine.
#[derive(Debug)]
pub struct Reach {
    /// The admin allows serving as a relay.
    serve_allowed: bool,
    /// The admin allows reserving slots on relays.
    reserve_allowed: bool,
    /// Private addresses count as public (a private WAN, a lab).
    private_wan: bool,
    reserve_from: Instant,
    public_addrs: Vec<Multiaddr>,
    serving: bool,
    relays: BTreeMap<PeerId, Relay>,
    tests: VecDeque<AddressTest>,
}

impl Reach {
    pub fn new(config: &super::relay::RelayConfig, now: Instant) -> Reach {
        Reach {
            serve_allowed: config.serve,
            reserve_allowed: config.reserve,
            private_wan: config.private_wan,
            reserve_from: now.checked_add(RESERVE_GRACE).unwrap_or(now),
            public_addrs: Vec::new(),
            serving: false,
            relays: BTreeMap::new(),
            tests: VecDeque::new(),
        }
    }

    /// Whether a confirmed, direct `addr` makes this node public: not loopback, and not
    /// private unless the admin says the node is on a private WAN.
    pub fn counts_as_public(&self, addr: &Multiaddr) -> bool {
        !is_relayed(addr) && !is_local_only(addr) && (self.private_wan || !is_private(addr))
    }

    /// An external address was confirmed. Relay circuits, and addresses that do not count as
    /// public, do not make this node public (the caller drops the latter from the swarm).
    pub fn confirmed(&mut self, addr: &Multiaddr) -> Vec<Action> {
        if !self.counts_as_public(addr) || self.public_addrs.contains(addr) {
            return Vec::new();
        }
        if self.public_addrs.len() < ADDRESSES_MAX {
            self.public_addrs.push(addr.clone());
        }
        self.settle()
    }

    /// An external address is no longer confirmed.
    pub fn expired(&mut self, addr: &Multiaddr) -> Vec<Action> {
        self.public_addrs.retain(|a| a != addr);
        self.settle()
    }

    /// An AutoNAT v2 test of one of this node's addresses ended.
    pub fn tested(&mut self, addr: Multiaddr, tested_by: PeerId, reachable: bool) {
        if self.tests.len() >= TESTS_KEPT_MAX {
            self.tests.pop_front();
        }
        self.tests.push_back(AddressTest {
            addr,
            tested_by,
            reachable,
        });
    }

    /// A connected peer that serves as a relay and shares a network with this node, reachable
    /// at `addr` (a direct address).
    pub fn relay_found(&mut self, peer: PeerId, addr: Multiaddr) {
        if is_relayed(&addr) {
            return;
        }
        // The circuit address names the relay once, after this address.
        let mut addr = addr;
        if let Some(Protocol::P2p(_)) = addr.iter().last() {
            addr.pop();
        }
        if let Some(relay) = self.relays.get_mut(&peer) {
            relay.addr = addr;
            return;
        }
        if self.relays.len() < CANDIDATES_MAX {
            let relay = Relay {
                addr,
                slot: Slot::Free,
                failures: 0,
                retry_at: None,
            };
            self.relays.insert(peer, relay);
        }
    }

    /// Forgets relay candidates no longer among `relays` (gone, or no longer relaying),
    /// releasing their reservations; a slot being requested is spared (its relay may be
    /// reconnecting for it).
    pub fn retain_candidates(&mut self, relays: &[PeerId]) -> Vec<Action> {
        let gone: Vec<PeerId> = self
            .relays
            .iter()
            .filter(|(peer, r)| !relays.contains(peer) && !matches!(r.slot, Slot::Requested(_)))
            .map(|(peer, _)| *peer)
            .collect();
        gone.iter().flat_map(|p| self.relay_gone(p)).collect()
    }

    /// The direct addresses that make this node public.
    pub fn public_addrs(&self) -> &[Multiaddr] {
        &self.public_addrs
    }

    /// The peer went, or stopped serving as a relay: its reservation, if any, is let go.
    pub fn relay_gone(&mut self, peer: &PeerId) -> Vec<Action> {
        match self.relays.remove(peer).map(|r| r.slot) {
            Some(Slot::Requested(l) | Slot::Held(l)) => vec![Action::Release(l)],
            _ => Vec::new(),
        }
    }

    /// The listener asking `relay` for a reservation is `listener`.
    pub fn requested(&mut self, relay: &PeerId, listener: ListenerId) {
        if let Some(r) = self.relays.get_mut(relay) {
            r.slot = Slot::Requested(listener);
        }
    }

    /// Asking `relay` could not even start (the listener was refused), at `now`.
    pub fn request_failed(&mut self, relay: &PeerId, now: Instant) {
        if let Some(r) = self.relays.get_mut(relay) {
            r.slot = Slot::Free;
            r.failures = r.failures.saturating_add(1);
            r.retry_at = now.checked_add(retry_wait(r.failures));
        }
    }

    /// `relay` accepted (or renewed) this node's reservation.
    pub fn accepted(&mut self, relay: &PeerId) {
        if let Some(r) = self.relays.get_mut(relay) {
            if let Slot::Requested(l) | Slot::Held(l) = r.slot {
                r.slot = Slot::Held(l);
                r.failures = 0;
            }
        }
    }

    /// A listener closed at `now`: if it held or asked for a reservation, that relay is asked
    /// again after a wait (the relay client never re-reserves by itself).
    pub fn listener_closed(&mut self, listener: ListenerId, now: Instant) {
        let relay = self
            .relays
            .values_mut()
            .find(|r| matches!(r.slot, Slot::Requested(l) | Slot::Held(l) if l == listener));
        if let Some(r) = relay {
            r.slot = Slot::Free;
            r.failures = r.failures.saturating_add(1);
            r.retry_at = now.checked_add(retry_wait(r.failures));
        }
    }

    /// Reservations to ask for at `now`: while this node is not public, up to
    /// [`RELAYS_WANTED`] relays, those that failed least first.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        if !self.reserve_allowed || self.is_public() || now < self.reserve_from {
            return Vec::new();
        }
        let busy = self
            .relays
            .values()
            .filter(|r| r.slot != Slot::Free)
            .count();
        let mut free: Vec<(&PeerId, &Relay)> = self
            .relays
            .iter()
            .filter(|(_, r)| r.slot == Slot::Free && r.retry_at.is_none_or(|at| at <= now))
            .collect();
        free.sort_by_key(|(_, r)| r.failures);
        free.into_iter()
            .take(RELAYS_WANTED.saturating_sub(busy))
            .map(|(peer, r)| Action::Reserve {
                relay: *peer,
                circuit: r
                    .addr
                    .clone()
                    .with(Protocol::P2p(*peer))
                    .with(Protocol::P2pCircuit),
            })
            .collect()
    }

    pub fn is_public(&self) -> bool {
        !self.public_addrs.is_empty()
    }

    /// Serving follows being public; reservations are let go once public.
    fn settle(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        let serve = self.serve_allowed && self.is_public();
        if serve != self.serving {
            self.serving = serve;
            actions.push(Action::ServeRelay(serve));
        }
        if self.is_public() {
            for r in self.relays.values_mut() {
                if let Slot::Requested(l) | Slot::Held(l) = r.slot {
                    actions.push(Action::Release(l));
                    r.slot = Slot::Free;
                }
            }
        }
        actions
    }

    pub fn status(&self) -> ReachStatus {
        let nat = if self.is_public() {
            Nat::Public
        } else if !self.tests.is_empty() && self.tests.iter().all(|t| !t.reachable) {
            Nat::Private
        } else {
            Nat::Unknown
        };
        let relays = self
            .relays
            .iter()
            .filter_map(|(peer, r)| {
                let state = match r.slot {
                    Slot::Held(_) => "reserved",
                    Slot::Requested(_) => "requested",
                    Slot::Free if r.failures > 0 => "waiting",
                    Slot::Free => return None,
                };
                Some(RelayInfo {
                    peer_id: *peer,
                    addr: r.addr.clone(),
                    state: state.into(),
                })
            })
            .collect();
        ReachStatus {
            nat,
            public_addrs: self.public_addrs.clone(),
            serving_relay: self.serving,
            relays,
            tests: self.tests.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    fn listener() -> ListenerId {
        ListenerId::next()
    }

    fn config(serve: bool, reserve: bool) -> super::super::relay::RelayConfig {
        super::super::relay::RelayConfig {
            serve,
            reserve,
            private_wan: true,
            ..Default::default()
        }
    }

    #[test]
    fn private_addresses_count_only_on_a_private_wan() {
        let mut lan = Reach::new(&Default::default(), Instant::now());
        for private in [
            "/ip4/192.168.1.5/tcp/4040",
            "/ip4/10.0.0.1/tcp/1",
            "/ip4/100.64.0.1/tcp/1",
            "/ip6/fd00::1/tcp/1",
        ] {
            assert!(lan.confirmed(&addr(private)).is_empty(), "{private}");
        }
        assert_eq!(lan.status().nat, Nat::Unknown);
        assert_eq!(
            lan.confirmed(&addr("/ip4/198.51.100.7/tcp/4040")),
            [Action::ServeRelay(true)]
        );
        let wan = Reach::new(&config(true, true), Instant::now());
        assert!(wan.counts_as_public(&addr("/ip4/10.0.0.1/tcp/1")));
        assert!(!wan.counts_as_public(&addr("/ip4/127.0.0.1/tcp/1")));
    }

    #[test]
    fn candidates_that_went_are_forgotten_but_a_slot_being_asked_for_is_spared() {
        let now = Instant::now();
        let mut reach = Reach::new(&config(true, true), now);
        let (asked, idle) = (PeerId::random(), PeerId::random());
        reach.relay_found(asked, addr("/ip4/10.0.0.1/tcp/1"));
        reach.relay_found(idle, addr("/ip4/10.0.0.2/tcp/1"));
        let l = listener();
        reach.requested(&asked, l);
        assert!(reach.retain_candidates(&[]).is_empty());
        reach.accepted(&asked);
        assert_eq!(reach.retain_candidates(&[]), [Action::Release(l)]);
        assert!(reach.tick(now + RESERVE_GRACE).is_empty(), "none left");
    }

    #[test]
    fn a_confirmed_direct_address_makes_a_relay_and_releases_reservations() {
        let now = Instant::now();
        let mut reach = Reach::new(&config(true, true), now);
        let relay = PeerId::random();
        reach.relay_found(relay, addr("/ip4/10.99.0.10/tcp/4040"));
        let later = now + RESERVE_GRACE;
        let l = listener();
        assert_eq!(reach.tick(later).len(), 1);
        reach.requested(&relay, l);
        reach.accepted(&relay);
        assert_eq!(reach.status().relays[0].state, "reserved");
        // Its own circuit address, confirmed by the relay client, is not a public address.
        let circuit = addr("/ip4/10.99.0.10/tcp/4040/p2p-circuit");
        assert!(reach.confirmed(&circuit).is_empty());
        assert!(reach.confirmed(&addr("/ip4/127.0.0.1/tcp/1")).is_empty());
        assert_eq!(reach.status().nat, Nat::Unknown);
        let public = addr("/ip4/10.99.0.2/tcp/4040");
        assert_eq!(
            reach.confirmed(&public),
            [Action::ServeRelay(true), Action::Release(l)]
        );
        assert_eq!(reach.status().nat, Nat::Public);
        assert!(
            reach.tick(later).is_empty(),
            "a public node reserves nothing"
        );
        assert_eq!(reach.expired(&public), [Action::ServeRelay(false)]);
        assert_eq!(reach.tick(later).len(), 1, "reserves again once not public");
    }

    #[test]
    fn an_admin_can_keep_a_public_node_from_relaying() {
        let mut reach = Reach::new(&config(false, true), Instant::now());
        assert!(reach.confirmed(&addr("/ip4/10.99.0.2/tcp/4040")).is_empty());
        assert!(!reach.status().serving_relay);
    }

    #[test]
    fn a_node_behind_nat_keeps_two_reservations_and_asks_again_with_backoff() {
        let now = Instant::now();
        let mut reach = Reach::new(&config(true, true), now);
        let relays = [PeerId::random(), PeerId::random(), PeerId::random()];
        for (i, r) in relays.iter().enumerate() {
            reach.relay_found(*r, addr(&format!("/ip4/10.99.0.{}/tcp/4040", 10 + i)));
        }
        assert!(reach.tick(now).is_empty(), "AutoNAT gets its chance first");
        reach.tested(addr("/ip4/10.99.0.2/tcp/4040"), relays[0], false);
        assert_eq!(reach.status().nat, Nat::Private);
        let later = now + RESERVE_GRACE;
        let asked = reach.tick(later);
        assert_eq!(asked.len(), RELAYS_WANTED);
        let mut listeners = Vec::new();
        for action in &asked {
            let Action::Reserve { relay, circuit } = action else {
                panic!("{action:?}")
            };
            assert!(is_relayed(circuit) && circuit.to_string().contains(&relay.to_string()));
            let l = listener();
            reach.requested(relay, l);
            listeners.push((*relay, l));
        }
        assert!(reach.tick(later).is_empty(), "two are enough");
        // One relay refuses: the third is asked, and the first only after the wait.
        reach.listener_closed(listeners[0].1, later);
        let next = reach.tick(later);
        assert_eq!(next.len(), 1);
        let Action::Reserve { relay: third, .. } = &next[0] else {
            panic!()
        };
        assert_ne!(*third, listeners[0].0);
        reach.requested(third, listener());
        assert_eq!(reach.status().relays.len(), 3, "the refusing one waits");
        reach.relay_gone(third);
        assert!(reach.tick(later).is_empty(), "still waiting on the first");
        let again = reach.tick(later + RESERVE_RETRY_FIRST);
        assert!(matches!(&again[..], [Action::Reserve { relay, .. }] if *relay == listeners[0].0));
        assert_eq!(retry_wait(40), RESERVE_RETRY_MAX);
    }

    #[test]
    fn a_relay_that_goes_releases_its_slot_and_relayed_addresses_are_not_relays() {
        let now = Instant::now();
        let mut reach = Reach::new(&config(true, true), now);
        let relay = PeerId::random();
        reach.relay_found(relay, addr("/ip4/10.0.0.1/tcp/1/p2p-circuit"));
        assert!(reach.tick(now + RESERVE_GRACE).is_empty());
        reach.relay_found(relay, addr("/ip4/10.0.0.1/tcp/1"));
        let l = listener();
        reach.requested(&relay, l);
        assert_eq!(reach.relay_gone(&relay), [Action::Release(l)]);
        assert!(reach.status().relays.is_empty());
    }

    #[test]
    fn reserving_can_be_turned_off() {
        let now = Instant::now();
        let mut reach = Reach::new(&config(true, false), now);
        reach.relay_found(PeerId::random(), addr("/ip4/10.0.0.1/tcp/1"));
        assert!(reach.tick(now + RESERVE_GRACE).is_empty());
    }
}
