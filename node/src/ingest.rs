//! The one path by which outside entries enter the store: verify off the async threads, check
//! membership, then store durably. Gossip, the API and sync all come through here.
//!
//! Every refusal says whose fault it is ([`IngestError::blames_sender`]): only bytes that
//! break a rule every node shares count against the peer that sent them. An entry dated ahead
//! of this node's clock is held (see [`crate::hold`]) and ingested again when it is due.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staffroom_protocol::{
    verify_entry_cached, EntryError, EntryId, KeyCache, NetworkId, VerifiedEntry,
};
use tokio::sync::{watch, Notify, Semaphore};

use crate::clock::Clock;
use crate::hold::{Held, HoldOutcome, HoldPen};
use crate::store::{InsertOutcome, Store, StoreError};

/// The longest the release task sleeps before looking at the pen again.
const RELEASE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] EntryError),
    #[error("entry is dated {created_at_ms} ms, ahead of this node's clock by more than the protocol allows; {}",
        if *held { "held until it is due" } else { "not held (too far ahead, or too many held)" })]
    TooEarly { created_at_ms: u64, held: bool },
    #[error("this node is not a member of network {0}: join it with `staffroom network join`")]
    NotMember(NetworkId),
    #[error("entry belongs to network {entry} but arrived on network {channel}'s topic")]
    WrongNetwork {
        entry: NetworkId,
        channel: NetworkId,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("verification worker failed: {0}")]
    Worker(String),
}

impl IngestError {
    /// True when the entry breaks a rule every node shares, so its sender is at fault. False
    /// for whatever depends on this node: its clock, the kinds it knows, the networks it has
    /// joined, its own storage or workers.
    pub fn blames_sender(&self) -> bool {
        match self {
            IngestError::Invalid(e) => e.blames_sender(),
            IngestError::WrongNetwork { .. } => true,
            IngestError::TooEarly { .. }
            | IngestError::NotMember(_)
            | IngestError::Store(_)
            | IngestError::Worker(_) => false,
        }
    }

    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Invalid(e) => e.code(),
            IngestError::TooEarly { .. } => "from_the_future",
            IngestError::NotMember(_) => "not_member",
            IngestError::WrongNetwork { .. } => "wrong_network",
            IngestError::Store(_) => "storage",
            IngestError::Worker(_) => "worker",
        }
    }
}

thread_local! {
    /// Each blocking thread keeps the authors' keys it has decompressed.
    static KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

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
    /// Signature checks in flight at most: roughly one per core, so verification uses every
    /// core but cannot starve the runtime's blocking pool.
    verify_slots: Arc<Semaphore>,
    held: Arc<Mutex<HoldPen>>,
    held_changed: Arc<Notify>,
}

/// Current wall-clock time in milliseconds since the Unix epoch (the system clock).
pub use crate::clock::now_ms;

impl Ingest {
    pub fn new(store: Store, clock: Clock) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ingest {
            store,
            clock,
            verify_slots: Arc::new(Semaphore::new(cores)),
            held: Arc::default(),
            held_changed: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Entries held for this node's clock to catch up.
    pub fn held_count(&self) -> usize {
        self.pen().len()
    }

    fn pen(&self) -> std::sync::MutexGuard<'_, HoldPen> {
        // The pen is a plain data structure: a panic elsewhere cannot leave it half-updated.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Verifies a batch of encoded entries on a blocking thread. A refused entry comes back
    /// with its bytes, so that one from the future can be held.
    async fn verify_batch(&self, batch: Vec<Vec<u8>>) -> Vec<Verdict> {
        let len = batch.len();
        let worker_failed = |reason: String| {
            tracing::error!(error = %reason, "verification worker failed");
            (0..len)
                .map(|_| Err(Refusal::Worker(reason.clone())))
                .collect()
        };
        let _slot = match self.verify_slots.acquire().await {
            Ok(slot) => slot,
            Err(e) => return worker_failed(e.to_string()),
        };
        let now = self.clock.now_ms();
        let verified = tokio::task::spawn_blocking(move || {
            KEYS.with_borrow_mut(|keys| {
                batch
                    .into_iter()
                    .map(|b| verify_entry_cached(&b, now, keys).map_err(|e| Refusal::Entry(e, b)))
                    .collect()
            })
        })
        .await;
        verified.unwrap_or_else(|e| worker_failed(e.to_string()))
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

    /// Verifies many entries across all cores and stores the valid ones in one durable group.
    /// Results come back in input order. `channel`, if given, is the network they must be in.
    pub async fn ingest_many(
        &self,
        batch: Vec<Vec<u8>>,
        channel: Option<NetworkId>,
    ) -> Result<Vec<Result<Ingested, IngestError>>, IngestError> {
        let slots = self.verify_slots.available_permits().max(1);
        let chunk = batch.len().div_ceil(slots).max(1);
        let mut chunks = Vec::new();
        let mut rest = batch;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk.min(rest.len()));
            chunks.push(std::mem::replace(&mut rest, tail));
        }
        let verifying: Vec<_> = chunks.into_iter().map(|c| self.verify_batch(c)).collect();
        let mut verdicts = Vec::new();
        let mut valid = Vec::new();
        for verdict in futures::future::join_all(verifying)
            .await
            .into_iter()
            .flatten()
        {
            verdicts.push(match verdict {
                Ok(v) => self.admit(v, channel).map(|v| {
                    let summary = (v.id(), v.header().network, v.entry().is_some());
                    valid.push(v);
                    summary
                }),
                // From a peer, held for later; from this node's own API, simply refused (the
                // teacher sees the error and their clock, and nothing is published later).
                Err(Refusal::Entry(EntryError::FromTheFuture { created_at_ms, .. }, bytes))
                    if channel.is_some() =>
                {
                    Err(self.hold(bytes, created_at_ms, channel))
                }
                Err(Refusal::Entry(EntryError::FromTheFuture { created_at_ms, .. }, _)) => {
                    Err(IngestError::TooEarly {
                        created_at_ms,
                        held: false,
                    })
                }
                Err(Refusal::Entry(e, _)) => Err(IngestError::from(e)),
                Err(Refusal::Worker(reason)) => Err(IngestError::Worker(reason)),
            });
        }
        let mut outcomes = self.store.insert(valid).await?.into_iter();
        Ok(verdicts
            .into_iter()
            .map(|r| {
                r.and_then(|(id, network, understood)| {
                    let outcome = outcomes
                        .next()
                        .ok_or_else(|| IngestError::Worker("store lost an outcome".into()))?;
                    Ok(Ingested {
                        id,
                        network,
                        outcome,
                        understood,
                    })
                })
            })
            .collect())
    }

    /// The checks after verification: the channel it came through, and membership.
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
        Ok(v)
    }

    fn hold(&self, bytes: Vec<u8>, created_at_ms: u64, channel: Option<NetworkId>) -> IngestError {
        let id = EntryId(*blake3::hash(&bytes).as_bytes());
        let now = self.clock.now_ms();
        let outcome = self
            .pen()
            .hold(id, created_at_ms, Held { bytes, channel }, now);
        let held = !matches!(outcome, HoldOutcome::Dropped);
        if let HoldOutcome::Held { due_ms } = outcome {
            tracing::debug!(entry = %id.short(), due_ms, "holding an entry from the future");
            self.held_changed.notify_one();
        }
        IngestError::TooEarly {
            created_at_ms,
            held,
        }
    }

    /// Offers held entries to ingest again as they fall due, until `shutdown`.
    pub async fn release_held(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = match self.pen().next_due_ms() {
                Some(due) => Duration::from_millis(due.saturating_sub(self.clock.now_ms())),
                None => RELEASE_CHECK_INTERVAL,
            };
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = self.held_changed.notified() => continue,
                _ = tokio::time::sleep(wait.min(RELEASE_CHECK_INTERVAL)) => {}
            }
            let due = self.pen().take_due(self.clock.now_ms());
            for held in due {
                match self.ingest(held.bytes, held.channel).await {
                    Ok(done) => {
                        tracing::info!(entry = %done.id.short(), "stored an entry once it was due")
                    }
                    Err(e) => tracing::debug!(error = %e, "a held entry was not stored"),
                }
            }
        }
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
