//! What the node knows of its peers: connected peers (addresses, agent, protocols, networks,
//! invalid entries counted) and the explicit peers it keeps dialling. A plain data structure,
//! every part bounded; the event loop feeds it swarm events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use staffroom_protocol::NetworkId;

use super::client::{ConnKind, ExplicitPeerInfo, PeerInfo};
use super::gossip::{INVALID_MESSAGES_MAX, PEER_TOPICS_MAX};

/// Addresses remembered per connected peer, and connections tracked per peer.
const PEER_ADDRESSES_MAX: usize = 8;
const PEER_CONNECTIONS_MAX: usize = 8;
/// Protocols remembered per peer (from identify), and characters of each.
const PEER_PROTOCOLS_MAX: usize = 32;
const NAME_CHARS_MAX: usize = 100;

#[derive(Debug, Default)]
struct PeerState {
    addresses: Vec<Multiaddr>,
    agent: Option<String>,
    protocols: Vec<String>,
    networks: HashSet<NetworkId>,
    invalid_messages: u32,
    /// Open connections, how each was made, and whether this node dialled it.
    connections: Vec<(ConnectionId, ConnKind, bool)>,
    /// The address this node dialled it at, if it did: one known to reach it.
    dialed: Option<Multiaddr>,
    /// Its clock minus this node's, and when that was last asked.
    clock_offset_ms: Option<i64>,
    clock_asked: Option<Instant>,
}

#[derive(Debug)]
struct ExplicitPeer {
    addr: Multiaddr,
    dialing: Option<ConnectionId>,
    peer: Option<PeerId>,
    last_error: Option<String>,
    /// Failed dials since it was last reached: the wait before the next grows with them.
    failures: u32,
    /// Not dialled again before this.
    next_dial: Option<Instant>,
    /// The last dial could not leave from the listen port (a connection from that port to
    /// this peer still waits out TIME_WAIT): the next leaves from a new one.
    new_port: bool,
}

impl ExplicitPeer {
    fn new(addr: Multiaddr) -> ExplicitPeer {
        ExplicitPeer {
            addr,
            dialing: None,
            peer: None,
            last_error: None,
            failures: 0,
            next_dial: None,
            new_port: false,
        }
    }
}

/// Whether a dial error says the local address could not be bound: the listen port is still
/// tied to an earlier connection to the same peer.
fn port_busy(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    error.contains("address already in use") || error.contains("cannot assign requested address")
}

/// The wait before redialling a peer after its first failure; it doubles with each one after.
pub const REDIAL_BACKOFF_FIRST: Duration = Duration::from_secs(5);
/// The longest wait between redials of a peer that stays unreachable.
pub const REDIAL_BACKOFF_MAX: Duration = Duration::from_secs(300);

fn backoff(failures: u32) -> Duration {
    doubling_wait(REDIAL_BACKOFF_FIRST, REDIAL_BACKOFF_MAX, failures)
}

/// The wait after `failures` failures in a row: `first` after one, doubling with each
/// after, never more than `max`.
pub fn doubling_wait(first: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    first.saturating_mul(1u32 << doublings).min(max)
}

/// The peers a node knows.
#[derive(Debug)]
pub struct PeerBook {
    peers: HashMap<PeerId, PeerState>,
    explicit: Vec<ExplicitPeer>,
    explicit_max: usize,
}

impl PeerBook {
    /// `explicit` are the configured peers; at most `explicit_max` are kept in all.
    pub fn new(explicit: Vec<Multiaddr>, explicit_max: usize) -> PeerBook {
        let explicit = explicit
            .into_iter()
            .take(explicit_max)
            .map(ExplicitPeer::new)
            .collect();
        PeerBook {
            peers: HashMap::new(),
            explicit,
            explicit_max,
        }
    }

    /// Remembers an address to keep dialling. False if the book is full.
    pub fn add_explicit(&mut self, addr: Multiaddr) -> bool {
        if self.explicit.iter().any(|p| p.addr == addr) {
            return true;
        }
        if self.explicit.len() >= self.explicit_max {
            return false;
        }
        self.explicit.push(ExplicitPeer::new(addr));
        true
    }

    /// Explicit peers neither connected nor being dialled, whose backoff is over at `now`.
    pub fn to_dial(&self, connected: impl Fn(&PeerId) -> bool, now: Instant) -> Vec<Multiaddr> {
        self.explicit
            .iter()
            .filter(|p| p.dialing.is_none() && !p.peer.is_some_and(|peer| connected(&peer)))
            .filter(|p| p.next_dial.is_none_or(|at| at <= now))
            .map(|p| p.addr.clone())
            .collect()
    }

    /// Whether the next dial of `addr` should leave from a new port, not the listen port.
    pub fn needs_new_port(&self, addr: &Multiaddr) -> bool {
        self.explicit.iter().any(|p| &p.addr == addr && p.new_port)
    }

    /// Addresses of explicit peers that have been reached at least once, with their peer ids:
    /// what is worth remembering across restarts.
    pub fn reached(&self) -> Vec<(Multiaddr, PeerId)> {
        self.explicit
            .iter()
            .filter_map(|p| Some((p.addr.clone(), p.peer?)))
            .collect()
    }

    pub fn dialing(&mut self, addr: &Multiaddr, id: ConnectionId) {
        if let Some(p) = self.explicit.iter_mut().find(|p| &p.addr == addr) {
            p.dialing = Some(id);
        }
    }

    /// Records a failed dial at `now`; true when it is news about an explicit peer (the first
    /// failure since it was reached, or a different reason), so that it is worth a warning.
    /// Dials of other peers (found in the DHT, say) are never news: they come and go.
    pub fn dial_failed(&mut self, id: ConnectionId, error: &str, now: Instant) -> bool {
        let error: String = error.chars().take(200).collect();
        let mut news = false;
        for p in self.explicit.iter_mut().filter(|p| p.dialing == Some(id)) {
            p.dialing = None;
            p.failures = p.failures.saturating_add(1);
            p.next_dial = now.checked_add(backoff(p.failures));
            news = p.last_error.as_deref() != Some(error.as_str());
            p.new_port = port_busy(&error);
            p.last_error = Some(error.clone());
        }
        news
    }

    /// A connection to `peer` is up: `dialed` when this node dialled `addr`.
    pub fn connected(
        &mut self,
        peer: PeerId,
        (addr, dialed): (Multiaddr, bool),
        id: ConnectionId,
        kind: ConnKind,
    ) {
        for p in self.explicit.iter_mut().filter(|p| p.dialing == Some(id)) {
            p.dialing = None;
            p.peer = Some(peer);
            p.last_error = None;
            p.failures = 0;
            p.next_dial = None;
            p.new_port = false;
        }
        let state = self.peers.entry(peer).or_default();
        if dialed && kind == ConnKind::Direct {
            state.dialed = Some(addr.clone());
        }
        if state.addresses.len() < PEER_ADDRESSES_MAX && !state.addresses.contains(&addr) {
            state.addresses.push(addr);
        }
        if state.connections.len() < PEER_CONNECTIONS_MAX {
            state.connections.push((id, kind, dialed));
        }
    }

    /// Relayed connections to `peer` beyond one, when both sides dialled each other through
    /// a relay at once: both nodes keep the one dialled by the smaller peer id, so they agree
    /// without talking, and close the rest.
    pub fn redundant_relayed(&self, me: &PeerId, peer: &PeerId) -> Vec<ConnectionId> {
        let Some(state) = self.peers.get(peer) else {
            return Vec::new();
        };
        let relayed: Vec<(ConnectionId, bool)> = state
            .connections
            .iter()
            .filter(|(_, kind, _)| *kind == ConnKind::Relayed)
            .map(|(c, _, dialed)| (*c, *dialed))
            .collect();
        let keep_dialled_by_me = me < peer;
        let kept = relayed
            .iter()
            .find(|(_, dialed)| *dialed == keep_dialled_by_me)
            .map(|(c, _)| *c);
        match (relayed.len(), kept) {
            (2.., Some(kept)) => relayed
                .into_iter()
                .map(|(c, _)| c)
                .filter(|c| *c != kept)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// One of the peer's connections closed (others remain).
    pub fn connection_closed(&mut self, peer: &PeerId, id: ConnectionId) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.connections.retain(|(c, _, _)| *c != id);
        }
    }

    /// Hole punching made connection `id` to `peer`; returns the peer's relayed connections,
    /// now redundant.
    pub fn punched(&mut self, peer: &PeerId, id: ConnectionId) -> Vec<ConnectionId> {
        let Some(state) = self.peers.get_mut(peer) else {
            return Vec::new();
        };
        for (c, kind, _) in state.connections.iter_mut() {
            if *c == id {
                *kind = ConnKind::Punched;
            }
        }
        state
            .connections
            .iter()
            .filter(|(_, kind, _)| *kind == ConnKind::Relayed)
            .map(|(c, _, _)| *c)
            .collect()
    }

    /// Connected peers that announce `relay_protocol` and share a network with this node,
    /// with the address this node reached them at directly.
    pub fn relays(&self, relay_protocol: &str) -> Vec<(PeerId, Multiaddr)> {
        self.peers
            .iter()
            .filter(|(_, s)| {
                !s.networks.is_empty() && s.protocols.iter().any(|p| p == relay_protocol)
            })
            .filter_map(|(peer, s)| Some((*peer, s.dialed.clone()?)))
            .collect()
    }

    /// Up to `max` peers that answer `time_protocol` and were not asked for their clock
    /// since `interval` before `now`; they are marked as asked.
    pub fn clocks_to_ask(
        &mut self,
        time_protocol: &str,
        (interval, max): (Duration, usize),
        now: Instant,
    ) -> Vec<PeerId> {
        let mut due = Vec::new();
        for (peer, state) in self.peers.iter_mut() {
            if due.len() >= max {
                break;
            }
            let asked_recently = state
                .clock_asked
                .is_some_and(|at| now.saturating_duration_since(at) < interval);
            if !asked_recently && state.protocols.iter().any(|p| p == time_protocol) {
                state.clock_asked = Some(now);
                due.push(*peer);
            }
        }
        due
    }

    pub fn clock_offset(&mut self, peer: &PeerId, offset_ms: i64) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.clock_offset_ms = Some(offset_ms);
        }
    }

    pub fn disconnected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    pub fn identified(&mut self, peer: &PeerId, agent: &str, protocols: &[String]) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.agent = Some(agent.chars().take(NAME_CHARS_MAX).collect());
            state.protocols = protocols
                .iter()
                .take(PEER_PROTOCOLS_MAX)
                .map(|p| p.chars().take(NAME_CHARS_MAX).collect())
                .collect();
        }
    }

    pub fn subscribed(&mut self, peer: &PeerId, network: NetworkId) {
        if let Some(state) = self.peers.get_mut(peer) {
            if state.networks.len() < PEER_TOPICS_MAX {
                state.networks.insert(network);
            }
        }
    }

    /// The followed networks `peer` is subscribed to.
    pub fn networks_of(&self, peer: &PeerId) -> Vec<NetworkId> {
        self.peers
            .get(peer)
            .map(|s| s.networks.iter().copied().collect())
            .unwrap_or_default()
    }

    /// This node stopped following `network`: no peer counts as in it any more. Returns the
    /// peers that were.
    pub fn forget_network(&mut self, network: &NetworkId) -> Vec<PeerId> {
        let mut were_in = Vec::new();
        for (peer, state) in self.peers.iter_mut() {
            if state.networks.remove(network) {
                were_in.push(*peer);
            }
        }
        were_in
    }

    pub fn unsubscribed(&mut self, peer: &PeerId, network: &NetworkId) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.networks.remove(network);
        }
    }

    /// Counts an invalid entry against `peer`; true once it has sent too many. A peer that has
    /// already gone is not counted (its state went with it).
    pub fn penalise(&mut self, peer: PeerId) -> bool {
        let Some(state) = self.peers.get_mut(&peer) else {
            return false;
        };
        state.invalid_messages = state.invalid_messages.saturating_add(1);
        state.invalid_messages >= INVALID_MESSAGES_MAX
    }

    /// Every connected peer, sorted by id, with what the caller knows of blocks and scores.
    pub fn infos(
        &self,
        blocked: impl Fn(&PeerId) -> bool,
        score: impl Fn(&PeerId) -> Option<f64>,
    ) -> Vec<PeerInfo> {
        let mut infos: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(id, state)| {
                let mut networks: Vec<_> = state.networks.iter().copied().collect();
                networks.sort();
                PeerInfo {
                    peer_id: *id,
                    addresses: state.addresses.clone(),
                    agent: state.agent.clone(),
                    protocols: state.protocols.clone(),
                    networks,
                    invalid_messages: state.invalid_messages,
                    blocked: blocked(id),
                    score: score(id),
                    connection: best_connection(&state.connections),
                    clock_offset_ms: state.clock_offset_ms,
                }
            })
            .collect();
        infos.sort_by_key(|p| p.peer_id);
        infos
    }

    /// The explicit peers and how dialling them went.
    pub fn explicit_infos(&self, connected: impl Fn(&PeerId) -> bool) -> Vec<ExplicitPeerInfo> {
        self.explicit
            .iter()
            .map(|p| ExplicitPeerInfo {
                addr: p.addr.clone(),
                peer_id: p.peer,
                connected: p.peer.is_some_and(|peer| connected(&peer)),
                last_error: p.last_error.clone(),
            })
            .collect()
    }
}

/// How a peer is connected, at best: punched, then direct, then relayed.
fn best_connection(connections: &[(ConnectionId, ConnKind, bool)]) -> Option<ConnKind> {
    let rank = |k: &ConnKind| match k {
        ConnKind::Punched => 0,
        ConnKind::Direct => 1,
        ConnKind::Relayed => 2,
    };
    connections.iter().map(|(_, k, _)| *k).min_by_key(rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn explicit_peers_are_dialled_until_connected_and_bounded() {
        let now = Instant::now();
        let mut book = PeerBook::new(vec![addr(1), addr(2)], 3);
        assert_eq!(book.to_dial(|_| false, now), [addr(1), addr(2)]);
        let (c1, c2) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        book.dialing(&addr(1), c1);
        book.dialing(&addr(2), c2);
        assert!(book.to_dial(|_| false, now).is_empty(), "not twice at once");
        let peer = PeerId::random();
        book.connected(peer, (addr(1), true), c1, ConnKind::Direct);
        assert!(book.dial_failed(c2, "connection refused", now), "news");
        assert!(!book.needs_new_port(&addr(2)));
        assert!(book.to_dial(|p| *p == peer, now).is_empty(), "backing off");
        let later = now + REDIAL_BACKOFF_FIRST;
        assert_eq!(book.to_dial(|p| *p == peer, later), [addr(2)]);
        assert_eq!(book.reached(), [(addr(1), peer)], "only what was reached");
        let explicit = book.explicit_infos(|p| *p == peer);
        assert!(explicit[0].connected);
        assert_eq!(
            explicit[1].last_error.as_deref(),
            Some("connection refused")
        );
        // A peer that stays down: the same failure again is no news, and the wait grows.
        let c3 = ConnectionId::new_unchecked(3);
        book.dialing(&addr(2), c3);
        assert!(!book.dial_failed(c3, "connection refused", later));
        assert!(book
            .to_dial(|p| *p == peer, later + REDIAL_BACKOFF_FIRST)
            .is_empty());
        assert_eq!(backoff(30), REDIAL_BACKOFF_MAX);
        // A dial that could not leave from the listen port tries a new one next time.
        let c4 = ConnectionId::new_unchecked(4);
        book.dialing(&addr(2), c4);
        book.dial_failed(
            c4,
            "unreachable: Cannot assign requested address (os error 99)",
            later,
        );
        assert!(book.needs_new_port(&addr(2)));
        assert!(book.add_explicit(addr(3)));
        assert!(book.add_explicit(addr(3)), "known addresses are fine");
        assert!(!book.add_explicit(addr(4)), "full");
    }

    #[test]
    fn peers_are_described_and_penalised() {
        let mut book = PeerBook::new(vec![], 0);
        let peer = PeerId::random();
        book.connected(
            peer,
            (addr(9), false),
            ConnectionId::new_unchecked(9),
            ConnKind::Direct,
        );
        book.identified(&peer, "staffroom/0.1.0", &["/staffroom/sync/2".into()]);
        book.subscribed(&peer, NetworkId([1; 32]));
        for _ in 1..INVALID_MESSAGES_MAX {
            assert!(!book.penalise(peer));
        }
        assert!(book.penalise(peer), "the limit blocks");
        let infos = book.infos(|_| false, |_| Some(-1.0));
        assert_eq!(infos[0].protocols, ["/staffroom/sync/2"]);
        assert_eq!(infos[0].networks, [NetworkId([1; 32])]);
        assert_eq!(infos[0].invalid_messages, INVALID_MESSAGES_MAX);
        book.disconnected(&peer);
        assert!(book.infos(|_| false, |_| None).is_empty());
    }

    #[test]
    fn connections_are_typed_and_relays_are_peers_of_our_networks() {
        let mut book = PeerBook::new(vec![], 0);
        let (relay, other) = (PeerId::random(), PeerId::random());
        let hop = "/libp2p/circuit/relay/0.2.0/hop";
        book.connected(
            relay,
            (addr(1), true),
            ConnectionId::new_unchecked(1),
            ConnKind::Direct,
        );
        book.connected(
            other,
            (addr(2), false),
            ConnectionId::new_unchecked(2),
            ConnKind::Direct,
        );
        for peer in [relay, other] {
            book.identified(
                &peer,
                "staffroom",
                &[hop.into(), "/staffroom/time/1".into()],
            );
        }
        assert!(book.relays(hop).is_empty(), "no shared network yet");
        book.subscribed(&relay, NetworkId([1; 32]));
        book.subscribed(&other, NetworkId([1; 32]));
        assert_eq!(
            book.relays(hop),
            [(relay, addr(1))],
            "only one this node dialled"
        );
        // A peer first reached through a relay, then punched through.
        let target = PeerId::random();
        let (via_relay, direct) = (
            ConnectionId::new_unchecked(3),
            ConnectionId::new_unchecked(4),
        );
        book.connected(target, (addr(3), false), via_relay, ConnKind::Relayed);
        let kind = |book: &PeerBook| {
            book.infos(|_| false, |_| None)
                .into_iter()
                .find(|p| p.peer_id == target)
                .and_then(|p| p.connection)
        };
        assert_eq!(kind(&book), Some(ConnKind::Relayed));
        // Both sides dialled through the relay at once: both keep the same one.
        let crossing = ConnectionId::new_unchecked(5);
        book.connected(target, (addr(5), true), crossing, ConnKind::Relayed);
        let me = PeerId::random();
        let closed = book.redundant_relayed(&me, &target);
        assert_eq!(closed.len(), 1);
        let expected = if me < target { via_relay } else { crossing };
        assert_eq!(closed, [expected], "keeps the one the smaller id dialled");
        book.connection_closed(&target, expected);
        assert!(book.redundant_relayed(&me, &target).is_empty());
        let via_relay = if expected == via_relay {
            crossing
        } else {
            via_relay
        };
        book.connected(target, (addr(4), false), direct, ConnKind::Direct);
        assert_eq!(book.punched(&target, direct), [via_relay]);
        book.connection_closed(&target, via_relay);
        assert_eq!(kind(&book), Some(ConnKind::Punched));
        // Clocks are asked once per interval.
        let now = Instant::now();
        let interval = Duration::from_secs(600);
        let one = book.clocks_to_ask("/staffroom/time/1", (interval, 1), now);
        assert_eq!(one.len(), 1, "no more than there is room for");
        let mut asked = book.clocks_to_ask("/staffroom/time/1", (interval, 8), now);
        asked.extend(one);
        asked.sort();
        let mut both = vec![relay, other];
        both.sort();
        assert_eq!(asked, both);
        assert!(book
            .clocks_to_ask("/staffroom/time/1", (interval, 8), now)
            .is_empty());
        book.clock_offset(&relay, -1500);
        let info = book.infos(|_| false, |_| None);
        assert!(info.iter().any(|p| p.clock_offset_ms == Some(-1500)));
    }
}
