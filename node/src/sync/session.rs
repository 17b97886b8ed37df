//! One catch-up session with one peer for one network, this node as initiator, as a plain
//! state machine: every decision — what to ask next, what the answer means, whose fault a
//! failure is — is made here from the events fed in; [`super::driver`] only moves bytes.
//!
//! A session interleaves reconciliation rounds with transfers: whenever a full batch of ids to
//! fetch (or to push) has been learnt, it moves before the next round. So memory stays bounded
//! by one round's worth of ids however large the difference, and what is learnt is stored as
//! it goes: a session cut short leaves only durable, verified entries behind.

use std::collections::{HashSet, VecDeque};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use staffroom_protocol::sync::{
    prefix, IdPrefix, Initiator, Message, SyncIndex, SyncRequest, SyncResponse, FETCH_IDS_MAX,
    PUSH_BYTES_MAX,
};
use staffroom_protocol::{EntryId, NetworkId};

use super::PARAMS;
use crate::ingest::{IngestError, Ingested};
use crate::store::InsertOutcome;

/// Batches of fetched entries being verified and stored at once while the next batch is
/// fetched: storing overlaps the network and the peer's reads.
pub const STORES_IN_FLIGHT_MAX: usize = 2;
/// Ids remembered per direction to keep one session from moving an id twice; past this the
/// memory starts afresh (moving an id twice is harmless, only wasteful).
pub const SEEN_IDS_MAX: usize = 1 << 20;
/// Ids a peer may claim and fail to deliver in one session; past this the session ends (the
/// peer may have lost them, so it is not blamed; the next session tries again).
pub const UNDELIVERED_MAX: u64 = 65_536;
/// Ids handed to the store to read for one push at most; the reader stops once it has read
/// [`PUSH_BYTES_MAX`], so memory is bounded by bytes, not by this.
pub const LOAD_IDS_MAX: usize = 8192;

/// Why a session ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("peer {peer} refused: {reason}")]
    Refused { peer: PeerId, reason: String },
    /// The peer broke a rule every node shares: it is cut off.
    #[error("peer {peer} misbehaved: {reason}")]
    Misbehaved { peer: PeerId, reason: String },
    #[error("request to peer {peer} failed: {reason}")]
    Request { peer: PeerId, reason: String },
    #[error("sync with peer {peer} timed out")]
    Timeout { peer: PeerId },
    /// This node's own failure or limit: nobody is blamed.
    #[error("local error: {0}")]
    Local(String),
}

/// What a session did, for logs and for `staffroom sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub peer: PeerId,
    pub network: NetworkId,
    pub rounds: u32,
    /// Request-response round trips, reconciliation and transfers together.
    pub requests: u32,
    /// Reconciliation bytes this node sent and received (frames, without transport overhead).
    pub reconcile_bytes_sent: u64,
    pub reconcile_bytes_received: u64,
    /// All sync bytes, transfers included.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Entries fetched and newly stored here (ones that arrived meanwhile by gossip or
    /// another session are not counted).
    pub entries_received: u64,
    /// Entries pushed that the peer accepted.
    pub entries_sent: u64,
    /// Entries the peer said it had but did not deliver.
    pub entries_undelivered: u64,
    /// Entries received dated ahead of this node's clock: held until they are due.
    #[serde(default)]
    pub entries_held: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
}

impl SyncReport {
    pub fn new(peer: PeerId, network: NetworkId) -> SyncReport {
        SyncReport {
            peer,
            network,
            rounds: 0,
            requests: 0,
            reconcile_bytes_sent: 0,
            reconcile_bytes_received: 0,
            bytes_sent: 0,
            bytes_received: 0,
            entries_received: 0,
            entries_sent: 0,
            entries_undelivered: 0,
            entries_held: 0,
            duration_ms: 0,
            error: None,
        }
    }
}

/// What the session needs done next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this request to the peer; feed the answer to [`Session::on_response`]. At most one
    /// request is outstanding.
    Send(SyncRequest),
    /// Start verifying and storing these entries, then ask [`Session::resume`] for the next
    /// step without waiting; feed the results, when they come, to [`Session::on_stored`].
    Store(Vec<Vec<u8>>),
    /// Say which of these id prefixes the store already holds (they may have come by gossip
    /// or another session); feed one flag per prefix, in order, to [`Session::on_checked`].
    Check(Vec<IdPrefix>),
    /// Read these entries' bytes from the store, in order, stopping once [`PUSH_BYTES_MAX`]
    /// bytes are read; feed what was read (`None` for an entry no longer stored) to
    /// [`Session::on_loaded`].
    Load(Vec<EntryId>),
    /// Nothing to do until the outstanding request is answered or a store finishes.
    Wait,
    /// The session is over (see [`Session::report`]).
    Done(Result<(), SyncError>),
}

/// The request or read the session is waiting for (stores are counted apart).
#[derive(Debug)]
enum Waiting {
    Reconcile,
    Check(Vec<IdPrefix>),
    Fetch(Vec<IdPrefix>),
    Load(Vec<EntryId>),
    Push(u64),
    Nothing,
}

pub struct Session {
    peer: PeerId,
    network: NetworkId,
    initiator: Option<Initiator>,
    /// The next reconciliation message, once this round's transfers are done.
    next_message: Option<Message>,
    /// Ids to fetch, and ids to push, from the rounds so far.
    need: VecDeque<IdPrefix>,
    have: VecDeque<EntryId>,
    /// Every id seen as needed or pushed, so none is moved twice in one session.
    seen_need: HashSet<IdPrefix>,
    seen_have: HashSet<EntryId>,
    waiting: Waiting,
    /// Store batches started and not yet reported.
    storing: usize,
    report: SyncReport,
}

impl Session {
    pub fn new(peer: PeerId, network: NetworkId) -> Session {
        Session {
            peer,
            network,
            initiator: None,
            next_message: None,
            need: VecDeque::new(),
            have: VecDeque::new(),
            seen_need: HashSet::new(),
            seen_have: HashSet::new(),
            waiting: Waiting::Nothing,
            storing: 0,
            report: SyncReport::new(peer, network),
        }
    }

    pub fn report(&self) -> &SyncReport {
        &self.report
    }

    pub fn into_report(self) -> SyncReport {
        self.report
    }

    /// The first step: the opening reconciliation message.
    pub fn start(&mut self, index: &SyncIndex) -> Step {
        let (initiator, message) = Initiator::start(index, PARAMS);
        self.initiator = Some(initiator);
        self.reconcile(message)
    }

    /// Counts a request's bytes (the driver measures them on the wire).
    pub fn count_bytes(&mut self, sent: u64, received: u64) {
        self.report.requests += 1;
        self.report.bytes_sent += sent;
        self.report.bytes_received += received;
        if matches!(self.waiting, Waiting::Reconcile) {
            self.report.reconcile_bytes_sent += sent;
            self.report.reconcile_bytes_received += received;
        }
    }

    fn reconcile(&mut self, message: Message) -> Step {
        match message.encode() {
            Ok(bytes) => {
                self.report.rounds += 1;
                self.waiting = Waiting::Reconcile;
                Step::Send(SyncRequest::Reconcile {
                    network: self.network,
                    message: bytes,
                })
            }
            Err(e) => self.fail(SyncError::Local(e.to_string())),
        }
    }

    fn fail(&mut self, error: SyncError) -> Step {
        self.waiting = Waiting::Nothing;
        self.report.error = Some(error.to_string());
        Step::Done(Err(error))
    }

    fn misbehaved(&mut self, reason: impl Into<String>) -> Step {
        let peer = self.peer;
        self.fail(SyncError::Misbehaved {
            peer,
            reason: reason.into(),
        })
    }

    /// The peer's answer. `index` is this node's sync index for the network now.
    pub fn on_response(&mut self, response: SyncResponse, index: &SyncIndex) -> Step {
        if let SyncResponse::Refused { reason } = response {
            let peer = self.peer;
            return self.fail(SyncError::Refused { peer, reason });
        }
        match (
            std::mem::replace(&mut self.waiting, Waiting::Nothing),
            response,
        ) {
            (Waiting::Reconcile, SyncResponse::Reconcile { message }) => {
                self.on_reconciled(&message, index)
            }
            (Waiting::Fetch(asked), SyncResponse::Entries { entries }) => {
                self.on_entries(asked, entries)
            }
            (Waiting::Push(count), SyncResponse::Pushed { accepted, .. }) => {
                self.report.entries_sent += accepted.min(count);
                self.next_transfer()
            }
            (waiting, other) => {
                let what = format!("answered {waiting:?} with {}", response_name(&other));
                self.misbehaved(what)
            }
        }
    }

    fn on_reconciled(&mut self, message: &[u8], index: &SyncIndex) -> Step {
        let reply = match Message::decode(message) {
            Ok(reply) => reply,
            Err(e) => return self.misbehaved(e.to_string()),
        };
        let Some(initiator) = self.initiator.as_mut() else {
            return self.fail(SyncError::Local("reconciliation was not started".into()));
        };
        let (diff, next) = match initiator.handle(index, &reply) {
            Ok(handled) => handled,
            Err(e) if e.blames_peer() => return self.misbehaved(e.to_string()),
            Err(e) => return self.fail(SyncError::Local(e.to_string())),
        };
        let mut candidates = Vec::new();
        for p in diff.need {
            if self.seen_need.len() >= SEEN_IDS_MAX {
                self.seen_need.clear();
            }
            if self.seen_need.insert(p) {
                candidates.push(p);
            }
        }
        for id in diff.have.into_iter().map(EntryId) {
            if self.seen_have.len() >= SEEN_IDS_MAX {
                self.seen_have.clear();
            }
            if self.seen_have.insert(id) {
                self.have.push_back(id);
            }
        }
        self.next_message = next;
        if candidates.is_empty() {
            return self.next_transfer();
        }
        self.waiting = Waiting::Check(candidates.clone());
        Step::Check(candidates)
    }

    /// Which of the ids learnt this round this node already holds: only the others are
    /// fetched.
    pub fn on_checked(&mut self, held: Vec<bool>) -> Step {
        let Waiting::Check(asked) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return self.fail(SyncError::Local("checked ids arrived unasked".into()));
        };
        let held = held.into_iter().chain(std::iter::repeat(false));
        for (p, held) in asked.into_iter().zip(held) {
            if !held {
                self.need.push_back(p);
            }
        }
        self.next_transfer()
    }

    /// Fetch what is needed, then push what the peer lacks, then the next round, then done.
    /// Transfers go in full batches while rounds remain (fewer requests and durable groups),
    /// and whatever is left once reconciliation is over; so at most a batch carries over
    /// between rounds and memory stays bounded by one round's ids. A new round, and the end,
    /// wait for the stores in flight, so each round sees what the last one fetched.
    fn next_transfer(&mut self) -> Step {
        if self.storing >= STORES_IN_FLIGHT_MAX {
            return Step::Wait;
        }
        let last = self.next_message.is_none();
        if self.need.len() >= FETCH_IDS_MAX || (last && !self.need.is_empty()) {
            let count = self.need.len().min(FETCH_IDS_MAX);
            let batch: Vec<IdPrefix> = self.need.drain(..count).collect();
            return self.fetch(batch);
        }
        if self.have.len() >= LOAD_IDS_MAX || (last && !self.have.is_empty()) {
            let count = self.have.len().min(LOAD_IDS_MAX);
            let ids: Vec<EntryId> = self.have.drain(..count).collect();
            self.waiting = Waiting::Load(ids.clone());
            return Step::Load(ids);
        }
        if self.storing > 0 {
            return Step::Wait;
        }
        match self.next_message.take() {
            Some(message) => self.reconcile(message),
            None => {
                self.waiting = Waiting::Nothing;
                Step::Done(Ok(()))
            }
        }
    }

    /// The next step once a store has been started.
    pub fn resume(&mut self) -> Step {
        self.next_transfer()
    }

    fn fetch(&mut self, ids: Vec<IdPrefix>) -> Step {
        self.waiting = Waiting::Fetch(ids.clone());
        Step::Send(SyncRequest::Fetch {
            network: self.network,
            ids,
        })
    }

    /// Entries answering a fetch: each must hash to a prefix asked for, none twice. An empty
    /// answer means the peer cannot deliver the rest: counted, not waited on.
    fn on_entries(&mut self, asked: Vec<IdPrefix>, entries: Vec<Vec<u8>>) -> Step {
        if entries.is_empty() {
            self.report.entries_undelivered += asked.len() as u64;
            if self.report.entries_undelivered > UNDELIVERED_MAX {
                let reason = format!(
                    "the peer did not deliver {} entries it claimed; stopping this session",
                    self.report.entries_undelivered
                );
                return self.fail(SyncError::Local(reason));
            }
            return self.next_transfer();
        }
        let wanted: HashSet<IdPrefix> = asked.iter().copied().collect();
        let mut ids = HashSet::new();
        let mut received = HashSet::new();
        for bytes in &entries {
            let id = *blake3::hash(bytes).as_bytes();
            // Two entries may share a prefix (the peer sends each match); the same entry
            // twice, or one whose id starts with no prefix asked for, breaks the protocol.
            if !wanted.contains(&prefix(&id)) || !ids.insert(id) {
                return self.misbehaved("sent an entry that was not asked for");
            }
            received.insert(prefix(&id));
        }
        // A response cut short by its size limit: what did not come is asked for again first.
        let rest: Vec<IdPrefix> = asked
            .into_iter()
            .filter(|p| !received.contains(p))
            .collect();
        for p in rest.into_iter().rev() {
            self.need.push_front(p);
        }
        self.storing += 1;
        Step::Store(entries)
    }

    /// The verdicts on a batch of fetched entries. One that breaks a shared rule ends the
    /// session and cuts the peer off; one dated ahead of this node's clock is held, nobody's
    /// fault.
    pub fn on_stored(
        &mut self,
        results: Result<Vec<Result<Ingested, IngestError>>, IngestError>,
    ) -> Step {
        if self.storing == 0 {
            return self.fail(SyncError::Local("stored results arrived unasked".into()));
        }
        self.storing -= 1;
        let results = match results {
            Ok(results) => results,
            Err(e) => return self.fail(SyncError::Local(e.to_string())),
        };
        if let Some(e) = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .find(|e| e.blames_sender())
        {
            return self.misbehaved(format!("sent an invalid entry: {e}"));
        }
        for result in &results {
            match result {
                Ok(done) if done.outcome == InsertOutcome::Inserted => {
                    self.report.entries_received += 1
                }
                Ok(_) => {}
                Err(IngestError::TooEarly { .. }) => self.report.entries_held += 1,
                Err(e) => tracing::debug!(error = %e, "fetched entry not stored"),
            }
        }
        if matches!(self.waiting, Waiting::Nothing) {
            self.next_transfer()
        } else {
            Step::Wait
        }
    }

    /// Entries read for a push, in the order asked (`None`: no longer stored). Pushes those
    /// that fit one request; the rest, and the ids not read yet, go back to the front of the
    /// queue in order.
    pub fn on_loaded(&mut self, loaded: Vec<(EntryId, Option<Vec<u8>>)>) -> Step {
        let Waiting::Load(asked) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return self.fail(SyncError::Local("loaded entries arrived unasked".into()));
        };
        let read = loaded.len();
        let mut entries = Vec::new();
        let mut later = Vec::new();
        let mut bytes = 0usize;
        for (id, entry) in loaded {
            let Some(entry) = entry else { continue };
            let fits = bytes.saturating_add(entry.len()) <= PUSH_BYTES_MAX || entries.is_empty();
            if later.is_empty() && fits {
                bytes += entry.len();
                entries.push(entry);
            } else {
                later.push(id);
            }
        }
        later.extend(asked.into_iter().skip(read));
        for id in later.into_iter().rev() {
            self.have.push_front(id);
        }
        if entries.is_empty() {
            return self.next_transfer();
        }
        self.waiting = Waiting::Push(entries.len() as u64);
        Step::Send(SyncRequest::Push {
            network: self.network,
            entries,
        })
    }

    /// The request failed on the way (timeout, closed connection): nobody's verdict.
    pub fn on_request_failed(&mut self, reason: String) -> Step {
        let peer = self.peer;
        self.fail(SyncError::Request { peer, reason })
    }
}

fn response_name(response: &SyncResponse) -> &'static str {
    match response {
        SyncResponse::Reconcile { .. } => "a reconcile answer",
        SyncResponse::Entries { .. } => "entries",
        SyncResponse::Pushed { .. } => "a push result",
        SyncResponse::Refused { .. } => "a refusal",
    }
}
