//! Incoming gossip: each message waits its sender's turn (see [`super::gossip_queue`]), then
//! is verified and stored by a task in a bounded set, and its verdict goes back to gossipsub.
//! Only an entry that breaks a rule every node shares is rejected (and counted against the
//! peer that sent it); anything that depends on this node — its clock, membership, storage, a
//! full queue — is ignored: not forwarded, nobody blamed. An entry already stored is not
//! verified again: if it was stored moments ago by another path (sync, a held entry come due)
//! it is relayed, since peers gossip reaches first may not have it yet; otherwise it is a
//! replay, ignored, so replaying old entries costs a lookup and travels no further.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::PeerId;
use staffroom_protocol::{EntryId, Header, NetworkId};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::gossip_queue::{FairQueue, Refused};
use crate::ingest::{Ingest, IngestError, Ingested};
use crate::store::InsertOutcome;

/// Gossip messages being verified and stored at once, from all peers.
pub const VALIDATIONS_IN_FLIGHT_MAX: usize = 512;
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
    /// Waited too long for its turn: ignored unverified (catch-up sync brings it if needed).
    Expired,
    /// Verified, then stored or refused.
    Ingested(Result<Ingested, IngestError>),
}

/// What to tell gossipsub about a message, and whether to count it against its sender.
pub fn verdict(checked: &Checked) -> (MessageAcceptance, bool) {
    match checked {
        Checked::Known(_) | Checked::Expired => (MessageAcceptance::Ignore, false),
        Checked::KnownRecently(_) => (MessageAcceptance::Accept, false),
        // Stored meanwhile by another path (sync, the same entry from another peer): it went
        // on from there, or will by sync; relaying it again would only echo it.
        Checked::Ingested(Ok(i)) if i.outcome == InsertOutcome::AlreadyStored => {
            (MessageAcceptance::Ignore, false)
        }
        Checked::Ingested(Ok(_)) => (MessageAcceptance::Accept, false),
        Checked::Ingested(Err(e)) if e.blames_sender() => (MessageAcceptance::Reject, true),
        Checked::Ingested(Err(_)) => (MessageAcceptance::Ignore, false),
    }
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
    tasks: JoinSet<Validated>,
    /// The sender of each task, to give its turn back even if the task fails.
    senders: HashMap<tokio::task::Id, PeerId>,
    stored: broadcast::Receiver<Ingested>,
    recent: RecentlyStored,
}

impl Validations {
    pub fn new(ingest: Ingest) -> Self {
        Validations {
            stored: ingest.watch_stored(),
            ingest,
            waiting: FairQueue::default(),
            tasks: JoinSet::new(),
            senders: HashMap::new(),
            recent: RecentlyStored::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
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
        while self.tasks.len() < VALIDATIONS_IN_FLIGHT_MAX {
            let Some((source, message)) = self.waiting.start_next() else {
                return;
            };
            let handle = self
                .tasks
                .spawn(check(self.ingest.clone(), source, message));
            self.senders.insert(handle.id(), source);
        }
    }

    /// The next finished validation. `None` if a task failed (it took its message with it:
    /// gossipsub drops an unreported message after a few heartbeats, blaming nobody).
    pub async fn next(&mut self) -> Option<Validated> {
        let (id, done) = match self.tasks.join_next_with_id().await? {
            Ok((id, validated)) => (id, Some(validated)),
            Err(e) => {
                tracing::error!(error = %e, "gossip validation task failed");
                (e.id(), None)
            }
        };
        if let Some(source) = self.senders.remove(&id) {
            self.waiting.finished(source);
        }
        self.start_turns();
        done.map(|v| self.relay_if_recent(v))
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

/// Checks one message: a lookup for entries already stored, else verification and storage.
async fn check(ingest: Ingest, source: PeerId, message: Waiting) -> Validated {
    let Waiting {
        message_id,
        network,
        data,
        queued_at,
    } = message;
    let span = tracing::debug_span!("gossip", peer = %source, network = %network.short());
    let result = async {
        if queued_at.elapsed() > TURN_WAIT_MAX {
            return Checked::Expired;
        }
        let id = EntryId(*blake3::hash(&data).as_bytes());
        // Known only on its own network's topic: on another, full ingest refuses it as
        // `WrongNetwork` and blames the sender.
        let on_its_topic = Header::parse(&data).is_ok_and(|h| h.network == network);
        match ingest.store().contains(&id) {
            Ok(true) if on_its_topic => Checked::Known(id),
            // A failed lookup only costs a verification.
            _ => Checked::Ingested(ingest.ingest(data, Some(network)).await),
        }
    }
    .instrument(span)
    .await;
    Validated {
        message_id,
        source,
        network,
        result,
    }
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
mod tests {
    use super::*;
    use staffroom_protocol::EntryError;

    #[test]
    fn only_shared_rule_breaks_are_rejected_and_counted() {
        let verdict = |r: Result<Ingested, IngestError>| super::verdict(&Checked::Ingested(r));
        let invalid = Err(IngestError::Invalid(EntryError::BadSignature));
        assert_eq!(verdict(invalid), (MessageAcceptance::Reject, true));
        let early = Err(IngestError::TooEarly {
            created_at_ms: 1,
            held: true,
        });
        assert_eq!(verdict(early), (MessageAcceptance::Ignore, false));
        let not_member = Err(IngestError::NotMember(NetworkId([1; 32])));
        assert_eq!(verdict(not_member), (MessageAcceptance::Ignore, false));
        let worker = Err(IngestError::Worker("gone".into()));
        assert_eq!(verdict(worker), (MessageAcceptance::Ignore, false));
        let storage = Err(IngestError::Store(crate::store::StoreError::Closed));
        assert_eq!(verdict(storage), (MessageAcceptance::Ignore, false));
        let future_kind_body = Err(IngestError::Invalid(EntryError::UnknownKind(42)));
        assert_eq!(
            verdict(future_kind_body),
            (MessageAcceptance::Ignore, false)
        );
        let wrong = Err(IngestError::WrongNetwork {
            entry: NetworkId([1; 32]),
            channel: NetworkId([2; 32]),
        });
        assert_eq!(verdict(wrong), (MessageAcceptance::Reject, true));
    }

    #[test]
    fn entries_already_stored_are_neither_blamed_nor_relayed_again() {
        let id = EntryId([3; 32]);
        let known = Checked::Known(id);
        assert_eq!(super::verdict(&known), (MessageAcceptance::Ignore, false));
        let recent = Checked::KnownRecently(id);
        assert_eq!(super::verdict(&recent), (MessageAcceptance::Accept, false));
        assert_eq!(
            super::verdict(&Checked::Expired),
            (MessageAcceptance::Ignore, false)
        );
        let stored = |outcome| {
            Checked::Ingested(Ok(Ingested {
                id,
                network: NetworkId([1; 32]),
                outcome,
                understood: true,
            }))
        };
        let again = stored(InsertOutcome::AlreadyStored);
        assert_eq!(super::verdict(&again), (MessageAcceptance::Ignore, false));
        let new = stored(InsertOutcome::Inserted);
        assert_eq!(super::verdict(&new), (MessageAcceptance::Accept, false));
    }

    #[test]
    fn recently_stored_ids_are_remembered_for_a_bounded_time_and_count() {
        let mut recent = RecentlyStored::default();
        let start = Instant::now();
        recent.note(EntryId([1; 32]), start);
        assert!(recent.contains(&EntryId([1; 32]), start + RECENT_WINDOW));
        let later = start + RECENT_WINDOW + Duration::from_millis(1);
        assert!(
            !recent.contains(&EntryId([1; 32]), later),
            "forgotten in time"
        );
        for n in 0..RECENT_IDS_MAX + 10 {
            let mut id = [0; 32];
            id[..8].copy_from_slice(&(n as u64).to_le_bytes());
            recent.note(EntryId(id), later);
        }
        assert_eq!(recent.order.len(), RECENT_IDS_MAX);
        assert_eq!(recent.ids.len(), RECENT_IDS_MAX);
        assert!(
            !recent.contains(&EntryId([0; 32]), later),
            "the oldest went first"
        );
    }
}
