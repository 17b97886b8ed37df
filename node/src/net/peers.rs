//! What the node knows of its peers: connected peers (addresses, agent, protocols, networks,
//! invalid entries counted) and the explicit peers it keeps dialling. A plain data structure,
//! every part bounded; the event loop feeds it swarm events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use staffroom_protocol::NetworkId;

use super::client::{ExplicitPeerInfo, PeerInfo};
use super::gossip::{INVALID_MESSAGES_MAX, PEER_TOPICS_MAX};

/// Addresses remembered per connected peer.
const PEER_ADDRESSES_MAX: usize = 8;
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
        }
    }
}

/// The wait before redialling a peer after its first failure; it doubles with each one after.
pub const REDIAL_BACKOFF_FIRST: Duration = Duration::from_secs(5);
/// The longest wait between redials of a peer that stays unreachable.
pub const REDIAL_BACKOFF_MAX: Duration = Duration::from_secs(300);

fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    REDIAL_BACKOFF_FIRST
        .saturating_mul(1u32 << doublings)
        .min(REDIAL_BACKOFF_MAX)
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

    /// Records a failed dial at `now`; true when it is news (the first failure since the peer
    /// was reached, or a different reason), so that it is worth a warning.
    pub fn dial_failed(&mut self, id: ConnectionId, error: &str, now: Instant) -> bool {
        let error: String = error.chars().take(200).collect();
        let mut news = true;
        for p in self.explicit.iter_mut().filter(|p| p.dialing == Some(id)) {
            p.dialing = None;
            p.failures = p.failures.saturating_add(1);
            p.next_dial = now.checked_add(backoff(p.failures));
            news = p.last_error.as_deref() != Some(error.as_str());
            p.last_error = Some(error.clone());
        }
        news
    }

    pub fn connected(&mut self, peer: PeerId, addr: Multiaddr, id: ConnectionId) {
        for p in self.explicit.iter_mut().filter(|p| p.dialing == Some(id)) {
            p.dialing = None;
            p.peer = Some(peer);
            p.last_error = None;
            p.failures = 0;
            p.next_dial = None;
        }
        let state = self.peers.entry(peer).or_default();
        if state.addresses.len() < PEER_ADDRESSES_MAX && !state.addresses.contains(&addr) {
            state.addresses.push(addr);
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
        book.connected(peer, addr(1), c1);
        assert!(book.dial_failed(c2, "connection refused", now), "news");
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
        assert!(book.add_explicit(addr(3)));
        assert!(book.add_explicit(addr(3)), "known addresses are fine");
        assert!(!book.add_explicit(addr(4)), "full");
    }

    #[test]
    fn peers_are_described_and_penalised() {
        let mut book = PeerBook::new(vec![], 0);
        let peer = PeerId::random();
        book.connected(peer, addr(9), ConnectionId::new_unchecked(9));
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
}
