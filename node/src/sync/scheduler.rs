//! When catch-up sessions run, as a plain state machine: events in (a peer now shares a
//! network, the anti-entropy timer, `staffroom sync`, a session finished), actions out (start
//! a session, answer a waiting request). It keeps two rules whatever asks for a session: at
//! most [`SESSIONS_MAX`] run at once, and at most one per (peer, network) pair. A request for
//! a pair already running waits for it to end and then for one more session, which starts
//! after the request did: "sync now" never answers with a reconciliation that began earlier.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use staffroom_protocol::NetworkId;

use super::session::SyncReport;

/// Sessions running at once.
pub const SESSIONS_MAX: usize = 8;
/// Sessions waiting for a free slot at most; beyond, triggers are dropped (anti-entropy
/// catches up) and requests are answered at once with an error.
pub const QUEUE_MAX: usize = 256;
/// Requests (`staffroom sync`) waiting at once at most.
pub const WAITERS_MAX: usize = 64;

/// A peer and a network it shares with this node: what one session reconciles.
pub type Pair = (PeerId, NetworkId);
/// Names one waiting request.
pub type WaiterId = u64;

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
    /// `peer` shares `network` with this node and may hold entries it lacks: it has just
    /// come to share it, or gossip from it was dropped here unverified (a full queue).
    Shared { peer: PeerId, network: NetworkId },
}

/// What the scheduler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start(Pair),
    /// Every session a request waited for has finished: here are their reports.
    Reply(WaiterId, Vec<SyncReport>),
}

#[derive(Debug, Default)]
struct Waiter {
    remaining: usize,
    reports: Vec<SyncReport>,
}

#[derive(Debug, Default)]
pub struct Scheduler {
    running: HashSet<Pair>,
    queue: VecDeque<Pair>,
    /// Requests waiting for the session of a pair that is running.
    running_watchers: HashMap<Pair, Vec<WaiterId>>,
    /// Requests waiting for the next session of a pair (queued, or to be queued once the one
    /// running ends).
    next_watchers: HashMap<Pair, Vec<WaiterId>>,
    waiters: HashMap<WaiterId, Waiter>,
    turn: usize,
}

impl Scheduler {
    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// A peer now shares a network with this node.
    pub fn trigger(&mut self, pair: Pair) -> Vec<Action> {
        self.enqueue(pair);
        self.fill()
    }

    /// The anti-entropy timer: one peer per network, rotating through those that share it.
    pub fn tick(&mut self, sharing: &BTreeMap<NetworkId, Vec<PeerId>>) -> Vec<Action> {
        self.turn = self.turn.wrapping_add(1);
        for (network, peers) in sharing {
            if !peers.is_empty() {
                self.enqueue((peers[self.turn % peers.len()], *network));
            }
        }
        self.fill()
    }

    /// `staffroom sync`: sessions with every pair in `pairs`, each starting after this request;
    /// one `Reply` once all are done.
    pub fn request(&mut self, waiter: WaiterId, pairs: &[Pair]) -> Vec<Action> {
        let mut waiting = Waiter::default();
        let refused = |(peer, network): &Pair| SyncReport {
            error: Some("too many sync sessions queued on this node; try again".into()),
            ..SyncReport::new(*peer, *network)
        };
        if self.waiters.len() >= WAITERS_MAX {
            return vec![Action::Reply(waiter, pairs.iter().map(refused).collect())];
        }
        for pair in pairs.iter().collect::<HashSet<_>>() {
            // A running pair is queued again when it ends (see `finished`).
            if self.running.contains(pair) || self.enqueue(*pair) {
                self.next_watchers.entry(*pair).or_default().push(waiter);
                waiting.remaining += 1;
            } else {
                waiting.reports.push(refused(pair));
            }
        }
        if waiting.remaining == 0 {
            return vec![Action::Reply(waiter, waiting.reports)];
        }
        self.waiters.insert(waiter, waiting);
        self.fill()
    }

    /// A session ended (its report says how, a panic included).
    pub fn finished(&mut self, pair: Pair, report: SyncReport) -> Vec<Action> {
        self.running.remove(&pair);
        let mut actions = Vec::new();
        for waiter in self.running_watchers.remove(&pair).unwrap_or_default() {
            actions.extend(self.deliver(waiter, report.clone()));
        }
        // Requests that came while it ran want a session of their own: queue it now.
        let waiting_next = self.next_watchers.contains_key(&pair) && !self.queue.contains(&pair);
        if waiting_next && !self.enqueue(pair) {
            let full = SyncReport {
                error: Some("too many sync sessions queued on this node; try again".into()),
                ..SyncReport::new(pair.0, pair.1)
            };
            for waiter in self.next_watchers.remove(&pair).unwrap_or_default() {
                actions.extend(self.deliver(waiter, full.clone()));
            }
        }
        actions.extend(self.fill());
        actions
    }

    fn deliver(&mut self, waiter_id: WaiterId, report: SyncReport) -> Option<Action> {
        let waiter = self.waiters.get_mut(&waiter_id)?;
        waiter.reports.push(report);
        waiter.remaining = waiter.remaining.saturating_sub(1);
        if waiter.remaining > 0 {
            return None;
        }
        let reports = self.waiters.remove(&waiter_id).unwrap_or_default().reports;
        Some(Action::Reply(waiter_id, reports))
    }

    /// Queues `pair` unless it is already running or queued. False if the queue is full.
    fn enqueue(&mut self, pair: Pair) -> bool {
        if self.running.contains(&pair) || self.queue.contains(&pair) {
            return true;
        }
        if self.queue.len() >= QUEUE_MAX {
            return false;
        }
        self.queue.push_back(pair);
        true
    }

    fn fill(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        while self.running.len() < SESSIONS_MAX {
            let Some(pair) = self.queue.pop_front() else {
                break;
            };
            self.running.insert(pair);
            if let Some(watchers) = self.next_watchers.remove(&pair) {
                self.running_watchers.insert(pair, watchers);
            }
            actions.push(Action::Start(pair));
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: u8) -> Pair {
        (PeerId::random(), NetworkId([n; 32]))
    }

    fn started(actions: &[Action]) -> Vec<Pair> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Start(p) => Some(*p),
                Action::Reply(..) => None,
            })
            .collect()
    }

    fn report(p: Pair) -> SyncReport {
        SyncReport::new(p.0, p.1)
    }

    #[test]
    fn one_session_per_pair_and_a_bounded_number_at_once() {
        let mut s = Scheduler::default();
        let pairs: Vec<Pair> = (0..SESSIONS_MAX as u8 + 3).map(pair).collect();
        let mut starts = Vec::new();
        for p in &pairs {
            starts.extend(started(&s.trigger(*p)));
            assert!(started(&s.trigger(*p)).is_empty(), "never twice at once");
        }
        assert_eq!(starts, pairs[..SESSIONS_MAX]);
        assert_eq!((s.running(), s.queued()), (SESSIONS_MAX, 3));
        // A slot frees: the next queued pair starts.
        let next = started(&s.finished(pairs[0], report(pairs[0])));
        assert_eq!(next, [pairs[SESSIONS_MAX]]);
        // The finished pair may run again later.
        assert!(
            started(&s.trigger(pairs[0])).is_empty(),
            "queued behind the others"
        );
        assert_eq!(s.queued(), 3);
    }

    #[test]
    fn a_request_for_a_running_pair_gets_a_session_that_starts_after_it() {
        let mut s = Scheduler::default();
        let (a, b) = (pair(1), pair(2));
        assert_eq!(started(&s.trigger(a)), [a]);
        let actions = s.request(7, &[a, b]);
        assert_eq!(
            started(&actions),
            [b],
            "never two sessions of a pair at once"
        );
        assert!(s.finished(b, report(b)).is_empty(), "still waiting for a");
        let mut early = report(a);
        early.rounds = 99;
        let again = s.finished(a, early);
        assert_eq!(
            again,
            [Action::Start(a)],
            "the session begun earlier does not count"
        );
        assert!(started(&s.trigger(a)).is_empty(), "one at a time, still");
        let done = s.finished(a, report(a));
        assert_eq!(done, [Action::Reply(7, vec![report(b), report(a)])]);
        assert_eq!(s.running(), 0);
    }

    #[test]
    fn requests_with_nothing_to_do_are_answered_at_once() {
        let mut s = Scheduler::default();
        assert_eq!(s.request(1, &[]), [Action::Reply(1, vec![])]);
    }

    #[test]
    fn a_full_queue_answers_requests_honestly_and_drops_triggers() {
        let mut s = Scheduler::default();
        for n in 0..(SESSIONS_MAX + QUEUE_MAX) {
            let mut net = [0u8; 32];
            net[..8].copy_from_slice(&(n as u64).to_le_bytes());
            s.trigger((PeerId::random(), NetworkId(net)));
        }
        assert_eq!((s.running(), s.queued()), (SESSIONS_MAX, QUEUE_MAX));
        let p = pair(9);
        let actions = s.request(3, &[p]);
        let [Action::Reply(3, reports)] = actions.as_slice() else {
            panic!("answered at once: {actions:?}");
        };
        assert!(reports[0].error.as_deref().unwrap_or("").contains("queued"));
    }

    #[test]
    fn anti_entropy_rotates_through_the_peers_of_each_network() {
        let mut s = Scheduler::default();
        let (p1, p2) = (PeerId::random(), PeerId::random());
        let net = NetworkId([4; 32]);
        let sharing = BTreeMap::from([(net, vec![p1, p2])]);
        let first = started(&s.tick(&sharing));
        s.finished(first[0], report(first[0]));
        let second = started(&s.tick(&sharing));
        assert_eq!(first.len(), 1);
        assert_ne!(first[0].0, second[0].0, "another peer next time");
    }
}
