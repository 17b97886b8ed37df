//! Gossip waiting to be verified, queued per sending peer and started in turn, so that a peer
//! flooding this node (with valid entries or not) delays the others by at most its turn and
//! cannot fill the node's queue or its verification slots on its own.
//!
//! A plain state machine: messages and finished validations come in, the next message to
//! start comes out. Generic over the peer and the item so it is tested without a network.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Messages of one peer being verified and stored at once.
pub const IN_FLIGHT_PER_PEER_MAX: usize = 32;
/// Bytes of one peer's messages waiting their turn.
pub const QUEUED_BYTES_PER_PEER_MAX: usize = 4 * 1024 * 1024;
/// Bytes of all peers' messages waiting their turn.
pub const QUEUED_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Why a message was not queued. Both are this node's limits: nobody is blamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The sending peer already has its share waiting.
    PeerFull,
    /// The queue as a whole is full.
    Full,
}

#[derive(Debug)]
struct PeerQueue<T> {
    waiting: VecDeque<(T, usize)>,
    bytes: usize,
    in_flight: usize,
}

impl<T> PeerQueue<T> {
    fn may_start(&self) -> bool {
        !self.waiting.is_empty() && self.in_flight < IN_FLIGHT_PER_PEER_MAX
    }
}

/// Per-peer queues served round-robin.
#[derive(Debug)]
pub struct FairQueue<P, T> {
    peers: HashMap<P, PeerQueue<T>>,
    /// Peers with a message that may start now, in turn order; each at most once.
    turns: VecDeque<P>,
    bytes: usize,
}

impl<P, T> Default for FairQueue<P, T> {
    fn default() -> Self {
        FairQueue {
            peers: HashMap::new(),
            turns: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl<P: Hash + Eq + Copy, T> FairQueue<P, T> {
    /// Queues `item` (of `bytes` bytes) from `peer`, or gives it back with the reason.
    pub fn push(&mut self, peer: P, item: T, bytes: usize) -> Result<(), (T, Refused)> {
        if self.bytes.saturating_add(bytes) > QUEUED_BYTES_MAX {
            return Err((item, Refused::Full));
        }
        let queue = self.peers.entry(peer).or_insert_with(|| PeerQueue {
            waiting: VecDeque::new(),
            bytes: 0,
            in_flight: 0,
        });
        if queue.bytes.saturating_add(bytes) > QUEUED_BYTES_PER_PEER_MAX {
            return Err((item, Refused::PeerFull));
        }
        let could_start = queue.may_start();
        queue.waiting.push_back((item, bytes));
        queue.bytes += bytes;
        self.bytes += bytes;
        if !could_start && queue.may_start() {
            self.turns.push_back(peer);
        }
        Ok(())
    }

    /// The next message to start, from the peer whose turn it is; counted in flight until
    /// [`FairQueue::finished`] is called for its peer.
    pub fn start_next(&mut self) -> Option<(P, T)> {
        let peer = self.turns.pop_front()?;
        let queue = self.peers.get_mut(&peer)?;
        let (item, bytes) = queue.waiting.pop_front()?;
        queue.bytes -= bytes;
        self.bytes -= bytes;
        queue.in_flight += 1;
        if queue.may_start() {
            self.turns.push_back(peer);
        }
        Some((peer, item))
    }

    /// A message of `peer` finished verifying.
    pub fn finished(&mut self, peer: P) {
        let Some(queue) = self.peers.get_mut(&peer) else {
            return;
        };
        let could_start = queue.may_start();
        queue.in_flight = queue.in_flight.saturating_sub(1);
        if !could_start && queue.may_start() {
            self.turns.push_back(peer);
        }
        if queue.in_flight == 0 && queue.waiting.is_empty() {
            self.peers.remove(&peer);
        }
    }

    /// Takes every message of `peer` still waiting (it was blocked, say). Its messages in
    /// flight are still counted until they finish.
    pub fn take_waiting(&mut self, peer: P) -> Vec<T> {
        let Some(queue) = self.peers.get_mut(&peer) else {
            return Vec::new();
        };
        self.bytes -= queue.bytes;
        queue.bytes = 0;
        let taken = queue.waiting.drain(..).map(|(item, _)| item).collect();
        self.turns.retain(|p| *p != peer);
        if queue.in_flight == 0 {
            self.peers.remove(&peer);
        }
        taken
    }

    /// Messages waiting (not yet started).
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.peers.values().map(|q| q.waiting.len()).sum()
    }

    /// Bytes waiting.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_peer_waits_its_turn_behind_every_other() {
        let mut queue = FairQueue::<u8, u32>::default();
        for n in 0..1000 {
            queue.push(0, n, 100).expect("room");
        }
        queue.push(1, 5000, 100).expect("room");
        queue.push(2, 6000, 100).expect("room");
        let first: Vec<_> = (0..3).filter_map(|_| queue.start_next()).collect();
        assert_eq!(first, vec![(0, 0), (1, 5000), (2, 6000)]);
        // Only the flooder is left: it gets its in-flight share and no more.
        let mut flooder = 1;
        while let Some((peer, _)) = queue.start_next() {
            assert_eq!(peer, 0);
            flooder += 1;
        }
        assert_eq!(flooder, IN_FLIGHT_PER_PEER_MAX);
        queue.finished(0);
        assert_eq!(queue.start_next(), Some((0, IN_FLIGHT_PER_PEER_MAX as u32)));
        assert_eq!(queue.start_next(), None, "back at its share");
    }

    #[test]
    fn bytes_are_bounded_per_peer_and_in_all() {
        let mut queue = FairQueue::<u16, ()>::default();
        let chunk = QUEUED_BYTES_PER_PEER_MAX / 4;
        for _ in 0..4 {
            queue.push(0, (), chunk).expect("within the peer's share");
        }
        assert_eq!(queue.push(0, (), 1).unwrap_err().1, Refused::PeerFull);
        let peers = (QUEUED_BYTES_MAX / QUEUED_BYTES_PER_PEER_MAX) as u16;
        for peer in 1..peers {
            for _ in 0..4 {
                queue.push(peer, (), chunk).expect("within the total");
            }
        }
        assert_eq!(queue.bytes(), QUEUED_BYTES_MAX);
        assert_eq!(queue.push(peers, (), 1).unwrap_err().1, Refused::Full);
        // Starting a message frees its bytes.
        let (peer, ()) = queue.start_next().expect("one waits");
        assert_eq!(queue.bytes(), QUEUED_BYTES_MAX - chunk);
        queue.push(peer, (), chunk).expect("room again");
    }

    #[test]
    fn a_blocked_peers_waiting_messages_are_taken_and_its_turns_dropped() {
        let mut queue = FairQueue::<u8, u32>::default();
        for n in 0..10 {
            queue.push(0, n, 10).expect("room");
            queue.push(1, 100 + n, 10).expect("room");
        }
        assert_eq!(queue.start_next(), Some((0, 0)));
        assert_eq!(queue.take_waiting(0), (1..10).collect::<Vec<_>>());
        assert_eq!(queue.bytes(), 100);
        let rest: Vec<_> = std::iter::from_fn(|| queue.start_next()).collect();
        assert!(rest.iter().all(|(peer, _)| *peer == 1), "{rest:?}");
        assert_eq!(rest.len(), 10);
        queue.finished(0);
        assert_eq!(queue.waiting(), 0);
        for _ in 0..10 {
            queue.finished(1);
        }
        assert!(queue.peers.is_empty(), "no state left behind");
        assert!(queue.turns.is_empty());
    }

    #[test]
    fn a_peer_at_its_share_regains_its_turn_when_one_finishes() {
        let mut queue = FairQueue::<u8, usize>::default();
        for n in 0..IN_FLIGHT_PER_PEER_MAX + 2 {
            queue.push(7, n, 1).expect("room");
        }
        let started: Vec<_> = std::iter::from_fn(|| queue.start_next()).collect();
        assert_eq!(started.len(), IN_FLIGHT_PER_PEER_MAX);
        queue.finished(7);
        queue.finished(7);
        let more: Vec<_> = std::iter::from_fn(|| queue.start_next()).collect();
        assert_eq!(
            more,
            vec![(7, IN_FLIGHT_PER_PEER_MAX), (7, IN_FLIGHT_PER_PEER_MAX + 1)]
        );
        // Finishing a peer unknown to the queue is harmless.
        queue.finished(9);
        assert_eq!(queue.start_next(), None);
    }
}
