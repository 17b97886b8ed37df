//! The one path by which outside entries enter the store: verify off the async threads, check
//! membership, then store durably. Gossip, the API and (later) sync all come through here.

use std::sync::Arc;

use std::cell::RefCell;

use staffroom_protocol::{
    verify_entry_cached, EntryError, EntryId, KeyCache, NetworkId, VerifiedEntry,
};
use tokio::sync::Semaphore;

use crate::store::{InsertOutcome, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] EntryError),
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
    /// True when the entry itself is bad (its sender is at fault), not this node.
    pub fn is_invalid_entry(&self) -> bool {
        matches!(
            self,
            IngestError::Invalid(_) | IngestError::WrongNetwork { .. }
        )
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
}

/// Cloneable handle to the ingest pipeline.
#[derive(Clone)]
pub struct Ingest {
    store: Store,
    /// Signature checks in flight at most: roughly one per core, so verification uses every
    /// core but cannot starve the runtime's blocking pool.
    verify_slots: Arc<Semaphore>,
}

/// Current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Ingest {
    pub fn new(store: Store) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ingest {
            store,
            verify_slots: Arc::new(Semaphore::new(cores)),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Verifies a batch of encoded entries on a blocking thread.
    pub async fn verify_batch(
        &self,
        batch: Vec<Vec<u8>>,
    ) -> Result<Vec<Result<VerifiedEntry, EntryError>>, IngestError> {
        let _slot = self
            .verify_slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let now = now_ms();
        tokio::task::spawn_blocking(move || {
            KEYS.with_borrow_mut(|keys| {
                batch
                    .iter()
                    .map(|b| verify_entry_cached(b, now, keys))
                    .collect()
            })
        })
        .await
        .map_err(|e| IngestError::Worker(e.to_string()))
    }

    /// Verifies and durably stores one entry. `channel` is the network whose topic it came on,
    /// if it came by gossip.
    pub async fn ingest(
        &self,
        bytes: Vec<u8>,
        channel: Option<NetworkId>,
    ) -> Result<Ingested, IngestError> {
        let verified = self
            .verify_batch(vec![bytes])
            .await?
            .pop()
            .expect("one in, one out")?;
        let network = verified.entry().network;
        if let Some(channel) = channel.filter(|c| *c != network) {
            return Err(IngestError::WrongNetwork {
                entry: network,
                channel,
            });
        }
        if self.store.network(&network)?.is_none() {
            return Err(IngestError::NotMember(network));
        }
        let id = verified.id();
        let outcome = self
            .store
            .insert(vec![verified])
            .await?
            .pop()
            .expect("one in, one out");
        Ok(Ingested {
            id,
            network,
            outcome,
        })
    }

    /// Verifies many entries across all cores and stores the valid ones in one durable group.
    /// Results come back in input order. `channel`, if given, is the network they must be in.
    pub async fn ingest_many(
        &self,
        batch: Vec<Vec<u8>>,
        channel: Option<NetworkId>,
    ) -> Result<Vec<Result<(EntryId, InsertOutcome), IngestError>>, IngestError> {
        let slots = self.verify_slots.available_permits().max(1);
        let chunk = batch.len().div_ceil(slots).max(1);
        let mut chunks = Vec::new();
        let mut rest = batch;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk.min(rest.len()));
            chunks.push(std::mem::replace(&mut rest, tail));
        }
        let verifying: Vec<_> = chunks.into_iter().map(|c| self.verify_batch(c)).collect();
        let mut ids = Vec::new();
        let mut valid = Vec::new();
        for verdicts in futures::future::join_all(verifying).await {
            for verdict in verdicts? {
                ids.push(match verdict {
                    Err(e) => Err(IngestError::from(e)),
                    Ok(v) if channel.is_some_and(|c| c != v.entry().network) => {
                        Err(IngestError::WrongNetwork {
                            entry: v.entry().network,
                            channel: channel.expect("checked"),
                        })
                    }
                    Ok(v) if self.store.network(&v.entry().network)?.is_none() => {
                        Err(IngestError::NotMember(v.entry().network))
                    }
                    Ok(v) => {
                        let id = v.id();
                        valid.push(v);
                        Ok(id)
                    }
                });
            }
        }
        let mut outcomes = self.store.insert(valid).await?.into_iter();
        Ok(ids
            .into_iter()
            .map(|r| r.map(|id| (id, outcomes.next().expect("one outcome per stored entry"))))
            .collect())
    }
}
