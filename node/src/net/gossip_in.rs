//! Incoming gossip: each message waits its sender's turn (see [`super::gossip_queue`]), then
//! is verified and stored by a task in a bounded set, and its verdict goes back to gossipsub.
//! A content entry is relayed as soon as it is verified and admitted, while it is being stored
//! (a hop never waits for a disk); anything else gets its verdict once the store has answered.
//! Only an entry that breaks a rule every node shares is rejected (and counted against the
//! peer that sent it); anything that depends on this node — its clock, membership, storage, a
//! full queue — is ignored: not forwarded, nobody blamed. An entry already stored is not
//! verified again: if it was stored moments ago by another path (sync, a held entry come due)
//! it is relayed, since peers gossip reaches first may not have it yet; otherwise it is a
//! replay, ignored, so replaying old entries costs a lookup and travels no further.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::PeerId;
use staffroom_protocol::{EntryId, Header, NetworkId};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::gossip_queue::{FairQueue, Refused};
use crate::ingest::{Ingest, IngestError, Ingested};
use crate::store::InsertOutcome;

/// Gossip messages being verified and stored at once, from all peers.
pub const VALIDATIONS_IN_FLIGHT_MAX: usize = 512;
/// Validation tasks at once. Messages that arrive while all are busy wait, and start together
/// in one task: one blocking hop, one verification batch over the cores and one store command
/// for what arrived together. A message that finds a task free starts alone, at once.
const TASKS_MAX: usize = 16;
/// Messages one task takes at most.
const BATCH_MAX: usize = 64;
/// A message that waited longer than this for its turn is ignored unverified: gossipsub
/// forgets an unreported message after five heartbeats (5 s), and accepting it after that
/// would store it here without relaying it.
pub const TURN_WAIT_MAX: Duration = Duration::from_secs(3);
/// What one waiting message costs beyond its data, for the queue's byte bounds.
const WAITING_OVERHEAD_BYTES: usize = 128;
/// Entries stored by another path within this long before they arrive by gossip are relayed.
const RECENT_WINDOW: Duration = Duration::from_secs(60);
/// Recently stored ids remembered at most (a full catch-up stores more: the oldest go first).
const RECENT_IDS_MAX: usize = 16_384;

/// A gossiped entry, verified and stored (or not).
pub struct Validated {
    pub message_id: MessageId,
    pub source: PeerId,
    pub network: NetworkId,
    pub result: Checked,
}

/// What checking a gossiped entry found.
#[derive(Debug)]
pub enum Checked {
    /// Stored here a while ago: not verified again, not relayed again (a replay).
    Known(EntryId),
    /// Stored here moments ago by another path: relayed, not verified again.
    KnownRecently(EntryId),
    /// Waited too long for its turn: ignored unverified, and caught up by sync with its
    /// sender at once (see [`dropped_unverified`]).
    Expired,
    /// Verified and admitted: relayed now, while it is stored.
    Admitted(EntryId),
    /// Verified, then stored or refused.
    Ingested(Result<Ingested, IngestError>),
    /// How storing an entry relayed already ([`Checked::Admitted`]) ended: for the log only,
    /// its verdict went to gossipsub then.
    StoredAfterRelay(Result<Ingested, IngestError>),
}

/// Whether this node dropped the message unverified for a reason of its own (its queue):
/// it relayed nothing, so the nodes behind it lack the entry too, and this node catches up
/// with the sender by sync at once rather than at the next anti-entropy round.
pub fn dropped_unverified(checked: &Checked) -> bool {
    matches!(checked, Checked::Expired)
}

/// What to tell gossipsub about a message, and whether to count it against its sender; `None`
/// when gossipsub was told already.
pub fn verdict(checked: &Checked) -> Option<(MessageAcceptance, bool)> {
    Some(match checked {
        Checked::StoredAfterRelay(_) => return None,
        Checked::Known(_) | Checked::Expired => (MessageAcceptance::Ignore, false),
        Checked::KnownRecently(_) | Checked::Admitted(_) => (MessageAcceptance::Accept, false),
        // Stored meanwhile by another path (sync, the same entry from another peer): it went
        // on from there, or will by sync; relaying it again would only echo it.
        Checked::Ingested(Ok(i)) if i.outcome == InsertOutcome::AlreadyStored => {
            (MessageAcceptance::Ignore, false)
        }
        Checked::Ingested(Ok(_)) => (MessageAcceptance::Accept, false),
        Checked::Ingested(Err(e)) if e.blames_sender() => (MessageAcceptance::Reject, true),
        Checked::Ingested(Err(_)) => (MessageAcceptance::Ignore, false),
    })
}

/// A message waiting for its sender's turn.
pub struct Waiting {
    pub message_id: MessageId,
    pub network: NetworkId,
    data: Vec<u8>,
    queued_at: Instant,
}

pub struct Validations {
    ingest: Ingest,
    waiting: FairQueue<PeerId, Waiting>,
    tasks: JoinSet<Vec<Validated>>,
    /// The senders of each task's messages, to give their turns back even if the task fails.
    senders: HashMap<tokio::task::Id, Vec<PeerId>>,
    /// Messages in the tasks.
    in_flight: usize,
    /// Tasks started since the node started (a task takes one message or a batch).
    tasks_started: u64,
    /// Validations finished, not yet taken by [`Validations::next`].
    finished: VecDeque<Validated>,
    stored: broadcast::Receiver<Ingested>,
    recent: RecentlyStored,
    /// Entries verified and admitted, to relay before their tasks finish storing them (one
    /// at most per task, so bounded by [`VALIDATIONS_IN_FLIGHT_MAX`]).
    admitted: mpsc::UnboundedReceiver<Validated>,
    admitted_tx: mpsc::UnboundedSender<Validated>,
}

impl Validations {
    pub fn new(ingest: Ingest) -> Self {
        let (admitted_tx, admitted) = mpsc::unbounded_channel();
        Validations {
            admitted,
            admitted_tx,
            stored: ingest.watch_stored(),
            ingest,
            waiting: FairQueue::default(),
            tasks: JoinSet::new(),
            senders: HashMap::new(),
            in_flight: 0,
            tasks_started: 0,
            finished: VecDeque::new(),
            recent: RecentlyStored::default(),
        }
    }

    /// Nothing in flight, finished or admitted to report.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.finished.is_empty() && self.admitted.is_empty()
    }

    /// Queues a message from `source` and starts whatever may start. A message that does not
    /// fit comes back with the reason, for the caller to ignore.
    pub fn offer(
        &mut self,
        source: PeerId,
        message_id: MessageId,
        network: NetworkId,
        data: Vec<u8>,
    ) -> Result<(), (Waiting, Refused)> {
        // Counted with what each waiting message costs beyond its data (ids, queue slot), so
        // a flood of tiny messages is bounded as well as one of large ones.
        let bytes = data.len().saturating_add(WAITING_OVERHEAD_BYTES);
        let message = Waiting {
            message_id,
            network,
            data,
            queued_at: Instant::now(),
        };
        self.waiting.push(source, message, bytes)?;
        self.start_turns();
        Ok(())
    }

    /// The messages of `peer` still waiting, taken from the queue (the peer was blocked).
    pub fn take_waiting(&mut self, peer: PeerId) -> Vec<Waiting> {
        self.waiting.take_waiting(peer)
    }

    fn start_turns(&mut self) {
        while self.tasks.len() < TASKS_MAX {
            let mut batch = Vec::new();
            while batch.len() < BATCH_MAX && self.in_flight < VALIDATIONS_IN_FLIGHT_MAX {
                let Some(next) = self.waiting.start_next() else {
                    break;
                };
                self.in_flight += 1;
                batch.push(next);
            }
            if batch.is_empty() {
                return;
            }
            self.tasks_started += 1;
            tracing::trace!(
                messages = batch.len(),
                tasks = self.tasks_started,
                "validating"
            );
            let senders = batch.iter().map(|(source, _)| *source).collect();
            let early = self.admitted_tx.clone();
            let handle = self.tasks.spawn(check(self.ingest.clone(), batch, early));
            self.senders.insert(handle.id(), senders);
        }
    }

    /// The next entry admitted (to relay now), or the next finished validation. `None` if a
    /// task failed (it took its message with it: gossipsub drops an unreported message after
    /// a few heartbeats, blaming nobody).
    pub async fn next(&mut self) -> Option<Validated> {
        if let Ok(admitted) = self.admitted.try_recv() {
            return Some(admitted);
        }
        if let Some(done) = self.finished.pop_front() {
            return Some(self.relay_if_recent(done));
        }
        let joined = tokio::select! {
            biased;
            Some(admitted) = self.admitted.recv() => return Some(admitted),
            joined = self.tasks.join_next_with_id() => joined?,
        };
        let (id, done) = match joined {
            Ok((id, validated)) => (id, validated),
            Err(e) => {
                tracing::error!(error = %e, "gossip validation task failed");
                (e.id(), Vec::new())
            }
        };
        for source in self.senders.remove(&id).unwrap_or_default() {
            self.waiting.finished(source);
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.start_turns();
        self.finished.extend(done);
        // A task sends what it relays before it ends: those go first, so a message's early
        // verdict always comes before its final one.
        if let Ok(admitted) = self.admitted.try_recv() {
            return Some(admitted);
        }
        let done = self.finished.pop_front()?;
        Some(self.relay_if_recent(done))
    }

    /// Tells a replay from an entry stored moments ago by another path.
    fn relay_if_recent(&mut self, mut v: Validated) -> Validated {
        let now = Instant::now();
        loop {
            match self.stored.try_recv() {
                Ok(stored) => self.recent.note(stored.id, now),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        if let Checked::Known(id) = v.result {
            if self.recent.contains(&id, now) {
                v.result = Checked::KnownRecently(id);
            }
        }
        v
    }

    /// Waits for every validation in flight (so what they verified is stored before shutdown);
    /// messages still waiting are dropped (gossipsub forgets them, catch-up sync does not).
    pub async fn drain(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Checks messages that started together: a lookup for entries already stored, else
/// verification and storage, one batch per network. Each message goes to `early` as soon as
/// its entry may be relayed.
async fn check(
    ingest: Ingest,
    batch: Vec<(PeerId, Waiting)>,
    early: mpsc::UnboundedSender<Validated>,
) -> Vec<Validated> {
    let span = tracing::debug_span!("gossip", messages = batch.len());
    async {
        let mut done = Vec::with_capacity(batch.len());
        let mut unknown: BTreeMap<NetworkId, Vec<(PeerId, Waiting, EntryId)>> = BTreeMap::new();
        for (source, message) in batch {
            let validated = |result| Validated {
                message_id: message.message_id.clone(),
                source,
                network: message.network,
                result,
            };
            if message.queued_at.elapsed() > TURN_WAIT_MAX {
                done.push(validated(Checked::Expired));
                continue;
            }
            let id = EntryId(*blake3::hash(&message.data).as_bytes());
            // Known only on its own network's topic: on another, full ingest refuses it as
            // `WrongNetwork` and blames the sender.
            let on_its_topic =
                Header::parse(&message.data).is_ok_and(|h| h.network == message.network);
            match ingest.store().contains(&id) {
                Ok(true) if on_its_topic => done.push(validated(Checked::Known(id))),
                // A failed lookup only costs a verification.
                _ => unknown
                    .entry(message.network)
                    .or_default()
                    .push((source, message, id)),
            }
        }
        for (network, messages) in unknown {
            done.extend(ingest_relaying(&ingest, network, messages, &early).await);
        }
        done
    }
    .instrument(span)
    .await
}

/// Verifies and stores gossiped entries of one network, sending each message to `early` once
/// its entry may be forwarded.
async fn ingest_relaying(
    ingest: &Ingest,
    network: NetworkId,
    messages: Vec<(PeerId, Waiting, EntryId)>,
    early: &mpsc::UnboundedSender<Validated>,
) -> Vec<Validated> {
    let by_id: HashMap<EntryId, (PeerId, MessageId)> = messages
        .iter()
        .map(|(source, m, id)| (*id, (*source, m.message_id.clone())))
        .collect();
    let relayed = std::sync::Mutex::new(HashSet::new());
    let relay = |id: EntryId| {
        let Some((source, message_id)) = by_id.get(&id) else {
            return;
        };
        relayed.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        let _ = early.send(Validated {
            message_id: message_id.clone(),
            source: *source,
            network,
            result: Checked::Admitted(id),
        });
    };
    let (heads, data): (Vec<_>, Vec<_>) = messages
        .into_iter()
        .map(|(source, m, id)| ((source, m.message_id, id), m.data))
        .unzip();
    let results = ingest
        .ingest_relaying(data, Some(network), Some(&relay))
        .await;
    let relayed = relayed.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut results = match results {
        Ok(results) => results.into_iter().map(Some).collect(),
        Err(e) => {
            // The batch failed here (the store, a worker): nobody is blamed.
            tracing::debug!(error = %e, "gossiped entries could not be stored");
            Vec::new()
        }
    };
    results.resize_with(heads.len(), || None);
    heads
        .into_iter()
        .zip(results)
        .map(|((source, message_id, id), result)| {
            let result =
                result.unwrap_or_else(|| Err(IngestError::Worker("not stored here".into())));
            Validated {
                message_id,
                source,
                network,
                result: match relayed.contains(&id) {
                    true => Checked::StoredAfterRelay(result),
                    false => Checked::Ingested(result),
                },
            }
        })
        .collect()
}

/// Ids stored in the last [`RECENT_WINDOW`], at most [`RECENT_IDS_MAX`].
#[derive(Debug, Default)]
struct RecentlyStored {
    order: VecDeque<(EntryId, Instant)>,
    ids: HashSet<EntryId>,
}

impl RecentlyStored {
    fn note(&mut self, id: EntryId, now: Instant) {
        self.forget_old(now);
        if self.order.len() == RECENT_IDS_MAX {
            if let Some((oldest, _)) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        if self.ids.insert(id) {
            self.order.push_back((id, now));
        }
    }

    fn contains(&mut self, id: &EntryId, now: Instant) -> bool {
        self.forget_old(now);
        self.ids.contains(id)
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some((id, at)) = self.order.front() {
            if now.duration_since(*at) <= RECENT_WINDOW {
                break;
            }
            self.ids.remove(id);
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
