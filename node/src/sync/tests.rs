//! Sessions and the scheduler, run against a fake network: the "peer" is another node's
//! store answered by the real `serve`, in the same process, with no libp2p at all. Stalls
//! run on tokio's paused clock.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use staffroom_protocol::fixtures::{self, key};
use staffroom_protocol::membership::Policy;
use staffroom_protocol::sync::{prefix, Bound, Message, Mode, SyncRequest, SyncResponse};
use staffroom_protocol::{Entry, NetworkId};

use super::driver::{run_scheduler, run_session, SyncNet};
use super::scheduler::SyncConfig;
use super::SyncHandle;
use crate::clock::Clock;
use crate::ingest::{now_ms, Ingest};
use crate::net::{NetError, PeerInfo};
use crate::store::{NetworkRecord, Store};

/// An open network in which the teachers `key(1)` to `key(12)` are members, founded by
/// `key(100)`: every node under test holds these entries first.
static MEMBERSHIP: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let members: Vec<_> = (1..=12).map(key).collect();
    let members: Vec<_> = members.iter().collect();
    fixtures::network_with_policy(
        &key(100),
        Policy::Open,
        &members,
        &[],
        now_ms() - 20_000_000,
    )
});
/// Entries every node under test holds before its own: the network's membership.
fn base() -> u64 {
    MEMBERSHIP.len() as u64
}

static NETWORK: LazyLock<NetworkId> = LazyLock::new(|| MEMBERSHIP[0].network);
const TIMEOUT: Duration = Duration::from_secs(300);

/// How the fake peer answers.
#[derive(Clone)]
enum Peer {
    /// The real responder over its own store.
    Honest,
    /// Claims to hold `entry` (whatever this node lists) and serves it when asked.
    Claims(Vec<u8>),
    /// Never answers.
    Stalls,
    /// Panics on the first request, then answers honestly.
    PanicsOnce(Arc<Mutex<bool>>),
    /// Answers every reconcile request with one fingerprint that never matches.
    NeverSettles,
}

#[derive(Clone)]
struct FakeNet {
    responder: Ingest,
    peer: Peer,
    me: PeerId,
    cut_off: Arc<Mutex<Vec<PeerId>>>,
    peers: Vec<PeerInfo>,
}

impl SyncNet for FakeNet {
    async fn request(&self, _: PeerId, request: SyncRequest) -> Result<SyncResponse, NetError> {
        match &self.peer {
            Peer::Honest => {}
            Peer::Stalls => futures::future::pending::<()>().await,
            Peer::Claims(entry) => return Ok(claim(entry, request)),
            Peer::NeverSettles => {
                let mut m = Message::default();
                m.push(Bound::Infinity, Mode::Fingerprint([0; 8]));
                let message = m.encode().unwrap();
                return Ok(SyncResponse::Reconcile { message });
            }
            Peer::PanicsOnce(done) => {
                let first = !std::mem::replace(&mut *done.lock().unwrap(), true);
                assert!(!first, "a bug in this node's session code");
            }
        }
        Ok(super::serve::serve(self.me, request, &self.responder)
            .await
            .0)
    }
    async fn cut_off(&self, peer: PeerId, _: String) {
        self.cut_off.lock().unwrap().push(peer);
    }
    async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        Ok(self.peers.clone())
    }
}

/// A liar's answers: every id list gets "you lack `entry`"; fetches get `entry`.
fn claim(entry: &[u8], request: SyncRequest) -> SyncResponse {
    match request {
        SyncRequest::Reconcile { message, .. } => {
            let message = Message::decode(&message).unwrap();
            let mut reply = Message::default();
            for range in message.ranges {
                let mode = match range.mode {
                    Mode::IdList(listed) => Mode::IdListReply {
                        not_in_list: vec![prefix(blake3::hash(entry).as_bytes())],
                        wanted: vec![0; listed.len().div_ceil(8)],
                    },
                    _ => Mode::Skip,
                };
                reply.push(range.upper, mode);
            }
            if reply.ranges.is_empty() {
                reply.push(Bound::Infinity, Mode::Skip);
            }
            SyncResponse::Reconcile {
                message: reply.encode().unwrap(),
            }
        }
        SyncRequest::Fetch { .. } => SyncResponse::Entries {
            entries: vec![entry.to_vec()],
        },
        SyncRequest::Push { entries, .. } => SyncResponse::Pushed {
            accepted: entries.len() as u64,
            rejected: 0,
        },
    }
}

/// A node's store in a temporary directory, in `NETWORK` (with its membership), holding
/// `entries`.
async fn node(entries: &[Entry], clock: Clock) -> (tempfile::TempDir, Ingest) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = NetworkRecord {
        id: *NETWORK,
        name: "test".into(),
        joined_at_ms: 0,
    };
    store.join_network(record).await.unwrap();
    let ingest = Ingest::new(store, clock);
    let membership = MEMBERSHIP.iter().map(Entry::encode).collect();
    let results = ingest.ingest_many(membership, None).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for chunk in entries.chunks(1000) {
        let bytes = chunk.iter().map(Entry::encode).collect();
        let results = ingest.ingest_many(bytes, None).await.unwrap();
        assert!(results.iter().all(Result::is_ok));
    }
    (dir, ingest)
}

fn posts(seed: u8, count: u64) -> Vec<Entry> {
    let t = now_ms() - 10_000_000;
    (0..count)
        .map(|n| {
            fixtures::signed(
                &key(seed),
                *NETWORK,
                t + n,
                vec![],
                fixtures::blog_body(&format!("{seed}/{n}")),
            )
        })
        .collect()
}

fn net(responder: &Ingest, peer: Peer) -> FakeNet {
    FakeNet {
        responder: responder.clone(),
        peer,
        me: PeerId::random(),
        cut_off: Arc::default(),
        peers: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_catches_up_then_finds_nothing_to_do() {
    let (_a, full) = node(&posts(1, 3000), Clock::system()).await;
    let (_b, fresh) = node(&[], Clock::system()).await;
    let peer = PeerId::random();
    let fake = net(&full, Peer::Honest);
    let report = run_session(peer, *NETWORK, &fake, &fresh, TIMEOUT).await;
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.entries_received, 3000);
    assert_eq!(fresh.store().entry_count(), 3000 + base());
    let again = run_session(peer, *NETWORK, &fake, &fresh, TIMEOUT).await;
    assert_eq!(
        (again.rounds, again.entries_received, again.entries_sent),
        (1, 0, 0)
    );
    assert!(again.bytes_sent + again.bytes_received < 100, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_end_with_the_union() {
    let shared = posts(2, 500);
    let mut a_entries = shared.clone();
    a_entries.extend(posts(3, 300));
    let mut b_entries = shared;
    b_entries.extend(posts(4, 200));
    let (_a, a) = node(&a_entries, Clock::system()).await;
    let (_b, b) = node(&b_entries, Clock::system()).await;
    let report = run_session(
        PeerId::random(),
        *NETWORK,
        &net(&b, Peer::Honest),
        &a,
        TIMEOUT,
    )
    .await;
    assert_eq!(report.error, None);
    assert_eq!((report.entries_received, report.entries_sent), (200, 300));
    assert_eq!(
        (a.store().entry_count(), b.store().entry_count()),
        (1000 + base(), 1000 + base())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_unknown_kinds_travel_by_sync_without_blame() {
    let future = fixtures::opaque(
        &key(5),
        *NETWORK,
        now_ms(),
        1,
        42,
        b"a kind from the future",
    );
    let (_a, old) = node(&posts(5, 10), Clock::system()).await;
    let stored = old.ingest(future.clone(), None).await.unwrap();
    assert!(!stored.understood, "kind 42 is opaque here");
    let (_b, fresh) = node(&[], Clock::system()).await;
    let fake = net(&old, Peer::Honest);
    let report = run_session(PeerId::random(), *NETWORK, &fake, &fresh, TIMEOUT).await;
    assert_eq!(
        (report.error.as_deref(), report.entries_received),
        (None, 11)
    );
    assert!(fake.cut_off.lock().unwrap().is_empty());
    let id = staffroom_protocol::EntryId(*blake3::hash(&future).as_bytes());
    assert_eq!(fresh.store().get_bytes(&id).unwrap(), Some(future));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_ahead_of_this_clock_are_held_not_blamed() {
    // The peer's clock is 2 minutes ahead; it rightly accepted entries this node may not yet.
    let ahead = Clock::offset_by(120_000);
    let t = ahead.now_ms() + 9 * 60_000;
    let early: Vec<Entry> = (0..5)
        .map(|n| {
            fixtures::signed(
                &key(6),
                *NETWORK,
                t + n,
                vec![],
                fixtures::blog_body("early"),
            )
        })
        .collect();
    let (_a, peer_node) = node(&early, ahead).await;
    let (_b, behind) = node(&[], Clock::system()).await;
    let fake = net(&peer_node, Peer::Honest);
    let report = run_session(PeerId::random(), *NETWORK, &fake, &behind, TIMEOUT).await;
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!((report.entries_received, report.entries_held), (0, 5));
    assert_eq!(behind.held_count(), 5);
    assert!(fake.cut_off.lock().unwrap().is_empty(), "nobody is blamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_a_forgery_is_cut_off_and_nothing_is_stored() {
    let mut forged = fixtures::signed(
        &key(7),
        *NETWORK,
        now_ms(),
        vec![],
        fixtures::blog_body("F"),
    );
    forged.author = staffroom_protocol::AuthorId(key(8).verifying_key().to_bytes());
    let (_a, other) = node(&[], Clock::system()).await;
    let (_b, victim) = node(&[], Clock::system()).await;
    let peer = PeerId::random();
    let fake = net(&other, Peer::Claims(forged.encode()));
    let report = run_session(peer, *NETWORK, &fake, &victim, TIMEOUT).await;
    let error = report.error.unwrap_or_default();
    assert!(
        error.contains("misbehaved") && error.contains("bad signature"),
        "{error}"
    );
    assert_eq!(*fake.cut_off.lock().unwrap(), [peer]);
    assert_eq!(victim.store().entry_count(), base());
}

#[tokio::test(start_paused = true)]
async fn a_stalling_peer_ends_in_a_timeout() {
    let (_a, other) = node(&[], Clock::system()).await;
    let (_b, me) = node(&posts(9, 3), Clock::system()).await;
    let fake = net(&other, Peer::Stalls);
    let report = run_session(PeerId::random(), *NETWORK, &fake, &me, TIMEOUT).await;
    assert!(report.error.unwrap_or_default().contains("timed out"));
    assert!(
        fake.cut_off.lock().unwrap().is_empty(),
        "a slow peer is not a bad one"
    );
}

/// A peer that has not joined the network refuses; that is membership, not misbehaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_outside_the_network_refuses_and_is_not_blamed() {
    let dir = tempfile::tempdir().unwrap();
    let outsider = Ingest::new(Store::open(dir.path()).unwrap(), Clock::system());
    let (_b, me) = node(&posts(12, 5), Clock::system()).await;
    let fake = net(&outsider, Peer::Honest);
    let report = run_session(PeerId::random(), *NETWORK, &fake, &me, TIMEOUT).await;
    let error = report.error.unwrap_or_default();
    assert!(error.contains(crate::roster::NOT_SHARED), "{error}");
    assert!(fake.cut_off.lock().unwrap().is_empty());
}

/// A node answers a stranger the same about an invite-only network it follows and one it
/// does not: asking tells a non-member nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_learn_nothing_of_which_networks_a_node_follows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let closed = fixtures::network_with(&key(100), &[&key(1)], &[], now_ms() - 1_000);
    let network = closed[0].network;
    let record = NetworkRecord {
        id: network,
        name: "closed".into(),
        joined_at_ms: 0,
    };
    store.join_network(record).await.unwrap();
    let ingest = Ingest::new(store, Clock::system());
    let encoded = closed.iter().map(Entry::encode).collect();
    assert!(ingest
        .ingest_many(encoded, None)
        .await
        .unwrap()
        .iter()
        .all(Result::is_ok));
    let ask = |network| SyncRequest::Fetch {
        network,
        ids: vec![prefix(&closed[0].id().0)],
    };
    let stranger = PeerId::random();
    let followed = super::serve::serve(stranger, ask(network), &ingest).await;
    let unknown = super::serve::serve(stranger, ask(NetworkId([9; 32])), &ingest).await;
    assert_eq!(followed, unknown);
    assert!(
        matches!(&followed.0, SyncResponse::Refused { reason } if reason == crate::roster::NOT_SHARED),
        "{followed:?}"
    );
}

/// Reaching this node's own round limit ends the session; it is not the peer's fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_nodes_round_limit_blames_nobody() {
    let (_a, other) = node(&[], Clock::system()).await;
    let (_b, me) = node(&posts(11, 40), Clock::system()).await;
    let fake = net(&other, Peer::NeverSettles);
    let report = run_session(PeerId::random(), *NETWORK, &fake, &me, TIMEOUT).await;
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("local error") && error.contains("rounds"),
        "{error}"
    );
    assert!(report.rounds > 64, "{report:?}");
    assert!(
        fake.cut_off.lock().unwrap().is_empty(),
        "a limit of ours is no verdict on them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_panics_frees_its_pair_for_the_next_sync() {
    let (_a, other) = node(&posts(10, 20), Clock::system()).await;
    let (_b, me) = node(&[], Clock::system()).await;
    let peer = PeerId::random();
    let mut fake = net(&other, Peer::PanicsOnce(Arc::default()));
    fake.peers = vec![PeerInfo {
        peer_id: peer,
        addresses: vec![],
        agent: None,
        protocols: vec![],
        networks: vec![*NETWORK],
        invalid_messages: 0,
        blocked: false,
        score: None,
        connection: None,
        clock_offset_ms: None,
    }];
    let (handle, requests) = SyncHandle::channel();
    let (_triggers_tx, triggers) = tokio::sync::mpsc::channel(1);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let config = SyncConfig {
        on_connect: false,
        interval_secs: 0,
        request_timeout_secs: 30,
    };
    let scheduler = tokio::spawn(run_scheduler(
        config,
        fake,
        me.clone(),
        triggers,
        requests,
        shutdown,
    ));
    let first = handle.sync_now(None).await.expect("answered");
    assert_eq!(first.sessions.len(), 1);
    let error = first.sessions[0].error.clone().unwrap_or_default();
    assert!(error.contains("session failed on this node"), "{error}");
    let second = handle.sync_now(Some(*NETWORK)).await.expect("answered");
    assert_eq!(second.sessions[0].error, None, "the pair is free again");
    assert_eq!(second.sessions[0].entries_received, 20);
    assert_eq!((second.connected_peers, second.sharing_peers), (1, 1));
    stop.send(true).unwrap();
    scheduler.await.unwrap();
}
