//! The one path by which outside entries enter the store: verify off the async threads, check
//! membership, then store durably. Gossip, the API and sync all come through here.
//!
//! Every refusal says whose fault it is ([`IngestError::blames_sender`]): only bytes that
//! break a rule every node shares count against the peer that sent them. An entry dated ahead
//! of this node's clock is held (see [`crate::hold`]) and ingested again when it is due.
//!
//! `error.rs`: [`IngestError`]. `release.rs`: the pens and the task that offers their
//! entries again. `verifier.rs`: signature checks on every core, single entries batched.
//! `tests.rs`: admission through the whole pipeline.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use std::collections::BTreeSet;

use staffroom_protocol::membership::Policy;
use staffroom_protocol::{EntryError, EntryId, NetworkId, NodeKey, VerifiedEntry};
use tokio::sync::{broadcast, mpsc, Notify};

use crate::admission::{self, Admission, AwaitPen};
use crate::clock::Clock;
use crate::hold::{Held, HoldPen};
use crate::roster::Rosters;
use crate::store::{InsertOutcome, Store};

mod error;
mod release;
#[cfg(test)]
mod tests;
mod verifier;

pub use error::IngestError;

/// What became of one entry that passed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub id: EntryId,
    pub network: NetworkId,
    pub outcome: InsertOutcome,
    /// False for an entry of a kind or version this node does not understand: stored and
    /// relayed, never listed.
    pub understood: bool,
}

/// Cloneable handle to the ingest pipeline.
#[derive(Clone)]
pub struct Ingest {
    store: Store,
    clock: Clock,
    /// Signature checks, off the async threads.
    verifier: verifier::Verifier,
    held: Arc<Mutex<HoldPen>>,
    /// Entries whose author's admission has not arrived yet.
    awaiting: Arc<Mutex<AwaitPen>>,
    /// Entries released from either pen, to be offered to ingest again.
    ready: Arc<Mutex<Vec<Held>>>,
    /// Entries taken from `ready` that the release task is offering to ingest right now.
    releasing: Arc<AtomicUsize>,
    held_changed: Arc<Notify>,
    rosters: Rosters,
    /// This node's key, and where to say that it should stop following a network because
    /// no current member binds it any more.
    local: Option<(NodeKey, mpsc::Sender<NetworkId>)>,
    /// Every entry newly stored, once it is durable (see [`Ingest::watch_stored`]).
    stored: broadcast::Sender<Ingested>,
}

/// Stored-entry events buffered for each watcher; one that falls further behind misses some
/// (and is told how many), so a slow watcher never holds up ingest.
pub const STORED_EVENTS_MAX: usize = 4096;

/// Networks waiting to be unfollowed at most; more are caught at the next roster change.
pub const UNFOLLOW_QUEUE_MAX: usize = 64;

/// Current wall-clock time in milliseconds since the Unix epoch (the system clock).
pub use crate::clock::now_ms;

impl Ingest {
    pub fn new(store: Store, clock: Clock) -> Self {
        Ingest {
            clock,
            verifier: verifier::Verifier::new(clock),
            held: Arc::default(),
            awaiting: Arc::default(),
            ready: Arc::default(),
            releasing: Arc::default(),
            held_changed: Arc::default(),
            rosters: Rosters::new(store.clone()),
            store,
            local: None,
            stored: broadcast::channel(STORED_EVENTS_MAX).0,
        }
    }

    /// Tells the pipeline this node's key: when the last member binding it leaves or is
    /// removed from an invite-only network, the network's id is sent on `unfollow` and the
    /// node stops following it (an honest node of a removed member stops receiving).
    pub fn with_local_node(mut self, key: NodeKey, unfollow: mpsc::Sender<NetworkId>) -> Self {
        self.local = Some((key, unfollow));
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Entries newly stored from now on, whichever way they came (API, gossip, sync, held),
    /// each sent once its group commit is durable. For live views and for measuring
    /// propagation; a watcher that lags loses the oldest events, never blocks ingest.
    pub fn watch_stored(&self) -> broadcast::Receiver<Ingested> {
        self.stored.subscribe()
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Verifies and durably stores one entry. `channel` is the network whose topic or sync
    /// session it came through, if any.
    pub async fn ingest(
        &self,
        bytes: Vec<u8>,
        channel: Option<NetworkId>,
    ) -> Result<Ingested, IngestError> {
        let mut results = self.ingest_many(vec![bytes], channel).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(IngestError::Worker("no verdict".into())))
    }

    /// Verifies many entries across all cores, admits them by membership and stores them
    /// durably (membership entries first, so that the content of members they admit is judged
    /// by the new roster). Results come back in input order. `channel`, if given, is the
    /// network they must be in.
    pub async fn ingest_many(
        &self,
        batch: Vec<Vec<u8>>,
        channel: Option<NetworkId>,
    ) -> Result<Vec<Result<Ingested, IngestError>>, IngestError> {
        self.ingest_relaying(batch, channel, None).await
    }

    /// [`Ingest::ingest_many`] for entries that came by gossip: `relay` is told each content
    /// entry's id once it is verified, admitted and not erased here — before it is stored, so
    /// that the node can forward it while the store works. Membership entries change who is
    /// admitted, so they are stored first and never announced early. A store that fails after
    /// `relay` loses nothing others need: the entry was valid, and sync brings it back here.
    pub async fn ingest_relaying(
        &self,
        batch: Vec<Vec<u8>>,
        channel: Option<NetworkId>,
        relay: Option<&Relay<'_>>,
    ) -> Result<Vec<Result<Ingested, IngestError>>, IngestError> {
        let mut results: Vec<Option<Result<Ingested, IngestError>>> = Vec::new();
        let (mut membership, mut content) = (Vec::new(), Vec::new());
        for (at, verdict) in self.verifier.verify(batch).await.into_iter().enumerate() {
            results.push(None);
            match verdict {
                Ok(v) if v.header().known_kind().is_some_and(|k| k.is_membership()) => {
                    membership.push((at, v))
                }
                Ok(v) => content.push((at, v)),
                Err(refusal) => results[at] = Some(Err(self.refused(refusal, channel))),
            }
        }
        let changed = self
            .store_membership(membership, channel, &mut results)
            .await?;
        self.admit_and_store(content, channel, &mut results, relay)
            .await?;
        if !changed.is_empty() {
            self.release_awaiting(&changed);
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(IngestError::Worker("no verdict".into()))))
            .collect())
    }

    /// Stores membership entries in rounds: those admissible now, then (with the roster they
    /// change) those that waited on them, so a founding entry and the operations after it can
    /// arrive together. Rounds are bounded by the batch. Returns the networks changed.
    async fn store_membership(
        &self,
        mut pending: Vec<(usize, VerifiedEntry)>,
        channel: Option<NetworkId>,
        results: &mut [Option<Result<Ingested, IngestError>>],
    ) -> Result<BTreeSet<NetworkId>, IngestError> {
        let mut changed = BTreeSet::new();
        while !pending.is_empty() {
            let (waiting, now): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|(_, v)| self.awaits(v));
            pending = waiting;
            if now.is_empty() {
                break;
            }
            // Refreshed even when nothing here was new: another ingest running at the same
            // time (a sync session, gossip) may have stored these entries first, and what
            // waits on them must see the roster they make.
            let touched: BTreeSet<NetworkId> =
                now.iter().map(|(_, v)| v.header().network).collect();
            changed.extend(self.admit_and_store(now, channel, results, None).await?);
            for network in &touched {
                self.refresh_roster(*network).await?;
            }
        }
        // What still waits is held (from a peer) or refused (from the API) as usual.
        self.admit_and_store(pending, channel, results, None)
            .await?;
        Ok(changed)
    }

    /// True when the entry's author is not yet admitted in its network (errors are left to
    /// [`Ingest::admit`] to report).
    fn awaits(&self, v: &VerifiedEntry) -> bool {
        self.rosters
            .get(&v.header().network)
            .is_ok_and(|roster| admission::judge(&roster, v) == Admission::Await)
    }

    /// Why verification refused an entry. One from the future is held if it came from a peer;
    /// from this node's own API it is simply refused (the teacher sees the error and their
    /// clock, and nothing is published later).
    fn refused(&self, refusal: Refusal, channel: Option<NetworkId>) -> IngestError {
        match refusal {
            Refusal::Entry(EntryError::FromTheFuture { created_at_ms, .. }, bytes)
                if channel.is_some() =>
            {
                self.hold(bytes, created_at_ms, channel)
            }
            Refusal::Entry(EntryError::FromTheFuture { created_at_ms, .. }, _) => {
                IngestError::TooEarly {
                    created_at_ms,
                    held: false,
                }
            }
            Refusal::Entry(e, _) => IngestError::from(e),
            Refusal::Worker(reason) => IngestError::Worker(reason),
        }
    }

    /// Admits each verified entry (at its place in `results`), tells `relay` of those admitted
    /// and not erased here, and stores them in one durable group. Returns the networks in which
    /// something new was stored.
    async fn admit_and_store(
        &self,
        verified: Vec<(usize, VerifiedEntry)>,
        channel: Option<NetworkId>,
        results: &mut [Option<Result<Ingested, IngestError>>],
        relay: Option<&Relay<'_>>,
    ) -> Result<BTreeSet<NetworkId>, IngestError> {
        let mut admitted = Vec::new();
        let mut places = Vec::new();
        for (at, v) in verified {
            let summary = (v.id(), v.header().network, v.entry().is_some());
            match self.admit(v, channel) {
                Ok(v) => {
                    // Erased here: stored nowhere, relayed from nowhere. (The store checks
                    // again as it inserts: an erasure may land in between.)
                    if let Some(relay) = relay {
                        if !self.store.is_erased(&v.id(), v.header())? {
                            relay(v.id());
                        }
                    }
                    admitted.push(v);
                    places.push((at, summary));
                }
                Err(e) => results[at] = Some(Err(e)),
            }
        }
        if admitted.is_empty() {
            return Ok(BTreeSet::new());
        }
        let outcomes = self.store.insert(admitted).await?;
        let mut changed = BTreeSet::new();
        for ((at, (id, network, understood)), outcome) in places.into_iter().zip(outcomes) {
            if outcome == InsertOutcome::Inserted {
                changed.insert(network);
            }
            if outcome == InsertOutcome::Erased {
                // Someone still had it: not their fault, and never relayed from here.
                results[at] = Some(Err(IngestError::Erased(id)));
                continue;
            }
            let ingested = Ingested {
                id,
                network,
                outcome,
                understood,
            };
            if outcome == InsertOutcome::Inserted {
                // No watcher is not an error.
                let _ = self.stored.send(ingested);
            }
            results[at] = Some(Ok(ingested));
        }
        Ok(changed)
    }

    /// The checks after verification: the channel it came through, that this node follows
    /// the network, and admission by the network's membership.
    fn admit(
        &self,
        v: VerifiedEntry,
        channel: Option<NetworkId>,
    ) -> Result<VerifiedEntry, IngestError> {
        let network = v.header().network;
        if let Some(channel) = channel.filter(|c| *c != network) {
            return Err(IngestError::WrongNetwork {
                entry: network,
                channel,
            });
        }
        if self.store.network(&network)?.is_none() {
            return Err(IngestError::NotMember(network));
        }
        let roster = self.rosters.get(&network)?;
        let author = v.header().author;
        match admission::judge(&roster, &v) {
            Admission::Admit => Ok(v),
            Admission::Refuse { ended_at_ms } => Err(IngestError::FormerMember {
                author,
                network,
                ended_at_ms,
            }),
            Admission::InviteClosed { reason } => Err(IngestError::InviteClosed { reason }),
            Admission::NotFacilitator => Err(IngestError::NotFacilitator { author, network }),
            Admission::WrongPrivacy { reason } => {
                Err(IngestError::WrongPrivacy { reason, network })
            }
            // From this node's own API: the teacher must join first; nothing is held.
            Admission::Await if channel.is_none() => {
                Err(IngestError::AuthorNotMember { author, network })
            }
            Admission::Await => {
                let held = Held {
                    bytes: v.bytes().to_vec(),
                    channel,
                };
                let held = self.awaiting().hold(v.id(), v.header(), held);
                Err(IngestError::AwaitingMembership {
                    author,
                    network,
                    held,
                })
            }
        }
    }

    /// Resolves a network's membership again, off the async threads, and drops what this
    /// node already held that the new roster rules out: a former member's entries made after
    /// their membership ended (taken in before the removal was known here). Every node then
    /// holds the same set, whatever order things arrived in.
    async fn refresh_roster(&self, network: NetworkId) -> Result<(), IngestError> {
        let before = self.rosters.get(&network)?;
        let rosters = self.rosters.clone();
        let roster = tokio::task::spawn_blocking(move || rosters.refresh(&network))
            .await
            .map_err(|e| IngestError::Worker(e.to_string()))??;
        if let Some((me, unfollow)) = &self.local {
            let invite_only = roster.policy == Some(Policy::InviteOnly);
            if invite_only && before.is_bound(me) && !roster.is_bound(me) {
                tracing::info!(network = %network.short(),
                    "no current member binds this node any more: it stops following the network");
                self.store.leave_network(network).await?;
                // A full queue: the network is no longer followed; gossip stops at restart.
                let _ = unfollow.try_send(network);
            }
        }
        for (author, ended_at_ms) in &roster.former {
            let purged = self.store.purge(network, *author, *ended_at_ms).await?;
            if purged > 0 {
                tracing::info!(network = %network.short(), author = %author.short(), purged,
                    "dropped entries made after their author's membership ended");
            }
        }
        Ok(())
    }

    pub fn rosters(&self) -> &Rosters {
        &self.rosters
    }
}

/// Why verification did not produce a [`VerifiedEntry`].
enum Refusal {
    /// The entry, with its bytes.
    Entry(EntryError, Vec<u8>),
    /// This node's worker failed: nobody is blamed.
    Worker(String),
}

type Verdict = Result<VerifiedEntry, Refusal>;

/// Told the id of each gossiped entry that may be forwarded before it is stored.
pub type Relay<'a> = dyn Fn(EntryId) + Send + Sync + 'a;
