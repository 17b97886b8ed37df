//! The async side of sync: runs the [`Session`] and [`Scheduler`] state machines, moving bytes
//! between them and the network ([`SyncNet`]) and the store ([`Ingest`]). No decision is made
//! here; every branch is a state machine's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use staffroom_protocol::sync::{SyncRequest, SyncResponse, PUSH_BYTES_MAX};
use staffroom_protocol::{EntryId, NetworkId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::scheduler::{Action, Pair, Scheduler, SyncConfig, SyncTrigger, WaiterId};
use super::session::{Session, Step, SyncError, SyncReport};
use crate::ingest::Ingest;
use crate::net::{NetClient, NetError, PeerInfo};

/// A whole session, rounds and transfers included, takes at most this long; what it stored
/// stays, and the next session carries on from there.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(300);
/// `staffroom sync` requests queued for the scheduler at most.
pub const REQUEST_QUEUE_MAX: usize = 16;

/// What sync needs from the network: requests to a peer, cutting a peer off, and who is
/// connected. [`NetClient`] is the real one; tests use fakes.
pub trait SyncNet: Clone + Send + Sync + 'static {
    fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> impl Future<Output = Result<SyncResponse, NetError>> + Send;
    fn cut_off(&self, peer: PeerId, reason: String) -> impl Future<Output = ()> + Send;
    fn peers(&self) -> impl Future<Output = Result<Vec<PeerInfo>, NetError>> + Send;
}

impl SyncNet for NetClient {
    async fn request(&self, peer: PeerId, request: SyncRequest) -> Result<SyncResponse, NetError> {
        self.sync_request(peer, request).await
    }
    async fn cut_off(&self, peer: PeerId, reason: String) {
        NetClient::cut_off(self, peer, reason).await
    }
    async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        NetClient::peers(self).await
    }
}

/// Runs one session to its end and returns what it did. A peer that broke a shared rule is
/// cut off; nothing invalid it sent is stored.
pub async fn run_session<N: SyncNet>(
    peer: PeerId,
    network: NetworkId,
    net: &N,
    ingest: &Ingest,
    timeout: Duration,
) -> SyncReport {
    let span = tracing::info_span!("sync", %peer, network = %network.short());
    async move {
        let started = Instant::now();
        let mut session = Session::new(peer, network);
        // However the session was asked for (a tick, a request, a peer subscribing), a
        // network's history goes only to nodes its members have bound.
        if !ingest.rosters().may_share(&network, &peer).unwrap_or(false) {
            let mut report = session.into_report();
            report.error = Some(format!(
                "not synced: peer {peer} is not a node bound to a member of this network"
            ));
            return report;
        }
        let outcome = tokio::time::timeout(timeout, drive(&mut session, net, ingest)).await;
        let mut report = session.into_report();
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(SyncError::Timeout { peer }),
        };
        match error {
            Some(e) => {
                if let SyncError::Misbehaved { reason, .. } = &e {
                    net.cut_off(peer, reason.clone()).await;
                }
                tracing::warn!(error = %e, "sync failed");
                report.error = Some(e.to_string());
            }
            None => tracing::info!(
                rounds = report.rounds,
                received = report.entries_received,
                sent = report.entries_sent,
                held = report.entries_held,
                bytes_sent = report.bytes_sent,
                bytes_received = report.bytes_received,
                "sync done"
            ),
        }
        report
    }
    .instrument(span)
    .await
}

async fn drive<N: SyncNet>(
    session: &mut Session,
    net: &N,
    ingest: &Ingest,
) -> Result<(), SyncError> {
    let store = ingest.store().clone();
    let (peer, network) = (session.report().peer, session.report().network);
    // The one outstanding request (with the bytes it took), and the stores in flight.
    let mut request = None;
    let mut stores = FuturesUnordered::new();
    // Once entries come, the store's followers are told a catch-up is under way until the
    // session ends (the search index waits for it rather than indexing entry by entry).
    let mut catching_up = None;
    let mut step = store.with_sync_index(&network, |index| session.start(index));
    loop {
        step = match step {
            Step::Send(req) => {
                let sent = req.encoded_len() as u64;
                request = Some((sent, Box::pin(net.request(peer, req))));
                Step::Wait
            }
            Step::Store(entries) => {
                catching_up.get_or_insert_with(|| store.changes().catch_up());
                stores.push(ingest.ingest_many(entries, Some(network)));
                session.resume()
            }
            Step::Load(ids) => {
                let store = store.clone();
                session.on_loaded(off_the_async_threads(move || load(&store, ids)).await?)
            }
            Step::Check(prefixes) => {
                let store = store.clone();
                session.on_checked(off_the_async_threads(move || held(&store, &prefixes)).await?)
            }
            Step::Done(result) => return result,
            Step::Wait if request.is_none() && stores.is_empty() => {
                return Err(SyncError::Local("the session waits on nothing".into()));
            }
            Step::Wait => {
                let waiting_for_answer = request.is_some();
                let answered = async {
                    match request.as_mut() {
                        Some((sent, pending)) => (*sent, pending.await),
                        None => futures::future::pending().await,
                    }
                };
                tokio::select! {
                    (sent, answer) = answered, if waiting_for_answer => {
                        request = None;
                        match answer {
                            Ok(response) => {
                                session.count_bytes(sent, response.encoded_len() as u64);
                                store.with_sync_index(&network, |index| {
                                    session.on_response(response, index)
                                })
                            }
                            Err(e) => session.on_request_failed(e.to_string()),
                        }
                    }
                    Some(results) = stores.next(), if !stores.is_empty() => session.on_stored(results),
                }
            }
        }
    }
}

/// Reads entries for a push, in order, until a push's worth of bytes.
/// Store reads on a blocking thread: at a million entries, far past sled's cache, a
/// thousand took most of a second.
async fn off_the_async_threads<T: Send + 'static>(
    read: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| SyncError::Local(e.to_string()))
}

/// Whether this node holds an entry under each prefix.
fn held(store: &crate::store::Store, prefixes: &[[u8; 8]]) -> Vec<bool> {
    prefixes
        .iter()
        .map(|p| {
            store
                .get_by_prefix(p, 1)
                .is_ok_and(|found| !found.is_empty())
        })
        .collect()
}

fn load(store: &crate::store::Store, ids: Vec<EntryId>) -> Vec<(EntryId, Option<Vec<u8>>)> {
    let mut loaded = Vec::new();
    let mut bytes = 0usize;
    for id in ids {
        if bytes >= PUSH_BYTES_MAX {
            break;
        }
        let entry = store.get_bytes(&id).ok().flatten();
        bytes += entry.as_ref().map_or(0, Vec::len);
        loaded.push((id, entry));
    }
    loaded
}

/// What `staffroom sync` gets back: every session it waited for, and why there may be none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncNowReport {
    pub sessions: Vec<SyncReport>,
    /// Peers connected when the request came.
    pub connected_peers: usize,
    /// Of those, peers that share a network with this node (and are not blocked).
    pub sharing_peers: usize,
    /// Connected peers this node has blocked.
    pub blocked_peers: usize,
}

/// Asks the scheduler for sessions now (the API's `POST /v1/sync`).
#[derive(Clone)]
pub struct SyncHandle {
    tx: mpsc::Sender<SyncNow>,
}

struct SyncNow {
    network: Option<NetworkId>,
    reply: oneshot::Sender<SyncNowReport>,
}

impl SyncHandle {
    pub fn channel() -> (SyncHandle, SyncRequests) {
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE_MAX);
        (SyncHandle { tx }, SyncRequests(rx))
    }

    /// Syncs now with every connected peer that shares `network` (or any joined network),
    /// within the scheduler's limits, and returns each session's report. `None` when the
    /// scheduler has stopped or is too busy to take the request.
    pub async fn sync_now(&self, network: Option<NetworkId>) -> Option<SyncNowReport> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(SyncNow { network, reply }).ok()?;
        rx.await.ok()
    }
}

/// The scheduler's end of [`SyncHandle`].
pub struct SyncRequests(mpsc::Receiver<SyncNow>);

/// The scheduler's loop: runs until `shutdown`; sessions still running then are cancelled
/// (they are restartable: whatever they stored is durable).
pub async fn run_scheduler<N: SyncNet>(
    config: SyncConfig,
    net: N,
    ingest: Ingest,
    mut triggers: mpsc::Receiver<SyncTrigger>,
    SyncRequests(mut requests): SyncRequests,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut run = Sessions::new(net, ingest);
    let period = Duration::from_secs(config.interval_secs.max(1));
    let mut anti_entropy = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    enum Wake {
        Finished(Result<(tokio::task::Id, SyncReport), tokio::task::JoinError>),
        Trigger(Pair),
        Request(SyncNow),
        Tick,
    }
    loop {
        // Local completions first: finishing sessions frees slots before new work is taken.
        let wake = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(done) = run.tasks.join_next_with_id(), if !run.tasks.is_empty() => Wake::Finished(done),
            Some(SyncTrigger::Shared { peer, network }) = triggers.recv() => Wake::Trigger((peer, network)),
            Some(request) = requests.recv() => Wake::Request(request),
            _ = anti_entropy.tick(), if config.interval_secs > 0 => Wake::Tick,
        };
        let actions = match wake {
            Wake::Finished(done) => run.finished(done),
            Wake::Trigger(pair) if config.on_connect => run.scheduler.trigger(pair),
            Wake::Trigger(_) => continue,
            Wake::Request(request) => run.request(request).await,
            Wake::Tick => run.tick().await,
        };
        run.apply(actions);
    }
    run.tasks.shutdown().await;
}

/// The scheduler's state machine and the sessions it started.
struct Sessions<N> {
    scheduler: Scheduler,
    tasks: JoinSet<SyncReport>,
    pairs_of_tasks: HashMap<tokio::task::Id, Pair>,
    waiting: HashMap<WaiterId, (oneshot::Sender<SyncNowReport>, SyncNowReport)>,
    next_waiter: WaiterId,
    net: N,
    ingest: Ingest,
}

impl<N: SyncNet> Sessions<N> {
    fn new(net: N, ingest: Ingest) -> Self {
        Sessions {
            scheduler: Scheduler::default(),
            tasks: JoinSet::new(),
            pairs_of_tasks: HashMap::new(),
            waiting: HashMap::new(),
            next_waiter: 0,
            net,
            ingest,
        }
    }

    /// A session task ended. One that panicked still ends: its pair may run again, and its
    /// waiters hear of it.
    fn finished(
        &mut self,
        done: Result<(tokio::task::Id, SyncReport), tokio::task::JoinError>,
    ) -> Vec<Action> {
        let (id, report) = match done {
            Ok((id, report)) => (id, Ok(report)),
            Err(e) => (e.id(), Err(e.to_string())),
        };
        let Some(pair) = self.pairs_of_tasks.remove(&id) else {
            return Vec::new();
        };
        let report = report.unwrap_or_else(|e| SyncReport {
            error: Some(format!("session failed on this node: {e}")),
            ..SyncReport::new(pair.0, pair.1)
        });
        self.scheduler.finished(pair, report)
    }

    async fn request(&mut self, request: SyncNow) -> Vec<Action> {
        let (pairs, overview) = sharing_pairs(&self.net, &self.ingest, request.network).await;
        self.next_waiter = self.next_waiter.wrapping_add(1);
        self.waiting
            .insert(self.next_waiter, (request.reply, overview));
        self.scheduler.request(self.next_waiter, &pairs)
    }

    async fn tick(&mut self) -> Vec<Action> {
        let (pairs, _) = sharing_pairs(&self.net, &self.ingest, None).await;
        let mut by_network: BTreeMap<NetworkId, Vec<PeerId>> = BTreeMap::new();
        for (peer, network) in pairs {
            by_network.entry(network).or_default().push(peer);
        }
        self.scheduler.tick(&by_network)
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Start((peer, network)) => {
                    let (net, ingest) = (self.net.clone(), self.ingest.clone());
                    let task = self.tasks.spawn(async move {
                        run_session(peer, network, &net, &ingest, SESSION_TIMEOUT).await
                    });
                    self.pairs_of_tasks.insert(task.id(), (peer, network));
                }
                Action::Reply(waiter, reports) => {
                    if let Some((reply, mut overview)) = self.waiting.remove(&waiter) {
                        overview.sessions = reports;
                        let _ = reply.send(overview);
                    }
                }
            }
        }
    }
}

/// The (peer, network) pairs to sync: connected, not blocked, sharing a joined network (only
/// `network`, if given) that allows this peer; and the counts that explain an empty answer.
async fn sharing_pairs<N: SyncNet>(
    net: &N,
    ingest: &Ingest,
    network: Option<NetworkId>,
) -> (Vec<Pair>, SyncNowReport) {
    let peers = net.peers().await.unwrap_or_default();
    let joined: HashSet<NetworkId> = match ingest.store().networks() {
        Ok(records) => records.into_iter().map(|r| r.id).collect(),
        Err(_) => HashSet::new(),
    };
    let mut pairs = Vec::new();
    let mut sharing = HashSet::new();
    for peer in peers.iter().filter(|p| !p.blocked) {
        for shared in peer.networks.iter().filter(|n| joined.contains(n)) {
            // Only with nodes the network's members have bound (in invite-only networks).
            let allowed = ingest
                .rosters()
                .may_share(shared, &peer.peer_id)
                .unwrap_or(false);
            if allowed && network.is_none_or(|n| n == *shared) {
                pairs.push((peer.peer_id, *shared));
                sharing.insert(peer.peer_id);
            }
        }
    }
    let overview = SyncNowReport {
        sessions: Vec::new(),
        connected_peers: peers.len(),
        sharing_peers: sharing.len(),
        blocked_peers: peers.iter().filter(|p| p.blocked).count(),
    };
    (pairs, overview)
}
