//! One catch-up session with one peer for one network, this node as initiator: reconcile,
//! fetch what is missing here, push what is missing there.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use staffroom_protocol::sync::{
    prefix, IdPrefix, Initiator, Message, SyncRequest, SyncResponse, FETCH_IDS_MAX, PUSH_BYTES_MAX,
};
use staffroom_protocol::{EntryId, NetworkId};

use super::PARAMS;
use crate::ingest::Ingest;
use crate::net::NetClient;

/// A whole session, rounds and transfers included, takes at most this long.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("peer {peer} refused: {reason}")]
    Refused { peer: PeerId, reason: String },
    #[error("peer {peer} misbehaved: {reason}")]
    Misbehaved { peer: PeerId, reason: String },
    #[error("request to peer {peer} failed: {reason}")]
    Request { peer: PeerId, reason: String },
    #[error("sync with peer {peer} timed out")]
    Timeout { peer: PeerId },
    #[error("local error: {0}")]
    Local(String),
}

/// What a session did, for logs and for `staffroom sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub peer: String,
    pub network: Option<NetworkId>,
    pub rounds: u32,
    /// Request-response round trips, reconciliation and transfers together.
    pub requests: u32,
    /// Reconciliation bytes this node sent and received (frames, without transport overhead).
    pub reconcile_bytes_sent: u64,
    pub reconcile_bytes_received: u64,
    /// All sync bytes, transfers included.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub entries_received: u64,
    pub entries_sent: u64,
    /// Entries the peer said it had but did not deliver.
    pub entries_undelivered: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
}

struct Session<'a> {
    peer: PeerId,
    network: NetworkId,
    net: &'a NetClient,
    ingest: &'a Ingest,
    report: SyncReport,
}

/// Runs one session. A peer that sends invalid entries or breaks the protocol gets
/// [`SyncError::Misbehaved`]; nothing invalid it sent is stored.
pub async fn run(peer: PeerId, network: NetworkId, net: &NetClient, ingest: &Ingest) -> SyncReport {
    let started = Instant::now();
    let mut session = Session {
        peer,
        network,
        net,
        ingest,
        report: SyncReport {
            peer: peer.to_string(),
            network: Some(network),
            ..Default::default()
        },
    };
    let outcome = tokio::time::timeout(SESSION_TIMEOUT, session.run()).await;
    let mut report = session.report;
    report.duration_ms = started.elapsed().as_millis() as u64;
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(SyncError::Timeout { peer }),
    };
    if let Some(e) = error {
        if let SyncError::Misbehaved { reason, .. } = &e {
            net.cut_off(peer, reason.clone()).await;
        }
        tracing::warn!(%peer, network = %network.short(), error = %e, "sync failed");
        report.error = Some(e.to_string());
    } else {
        tracing::info!(
            %peer, network = %network.short(), rounds = report.rounds,
            received = report.entries_received, sent = report.entries_sent,
            bytes_sent = report.bytes_sent, bytes_received = report.bytes_received,
            "sync done"
        );
    }
    report
}

impl Session<'_> {
    async fn request(&mut self, request: SyncRequest) -> Result<SyncResponse, SyncError> {
        let local = |e: staffroom_protocol::sync::WireError| SyncError::Local(e.to_string());
        let sent = request.encode().map_err(local)?.len() as u64;
        let response = self
            .net
            .sync_request(self.peer, request)
            .await
            .map_err(|e| SyncError::Request {
                peer: self.peer,
                reason: e.to_string(),
            })?;
        self.report.bytes_sent += sent;
        self.report.requests += 1;
        self.report.bytes_received += response.encode().map_err(local)?.len() as u64;
        if let SyncResponse::Refused { reason } = response {
            return Err(SyncError::Refused {
                peer: self.peer,
                reason,
            });
        }
        Ok(response)
    }

    fn misbehaved(&self, reason: impl Into<String>) -> SyncError {
        SyncError::Misbehaved {
            peer: self.peer,
            reason: reason.into(),
        }
    }

    async fn run(&mut self) -> Result<(), SyncError> {
        let store = self.ingest.store().clone();
        let network = self.network;
        let (mut initiator, mut message) =
            store.with_sync_index(&network, |index| Initiator::start(index, PARAMS));
        let (mut have, mut need) = (HashSet::new(), HashSet::new());
        loop {
            self.report.rounds += 1;
            let encoded = message
                .encode()
                .map_err(|e| SyncError::Local(e.to_string()))?;
            let before = (self.report.bytes_sent, self.report.bytes_received);
            let response = self
                .request(SyncRequest::Reconcile {
                    network,
                    message: encoded,
                })
                .await?;
            self.report.reconcile_bytes_sent += self.report.bytes_sent - before.0;
            self.report.reconcile_bytes_received += self.report.bytes_received - before.1;
            let SyncResponse::Reconcile { message: reply } = response else {
                return Err(self.misbehaved("answered a reconcile request with something else"));
            };
            let reply = Message::decode(&reply).map_err(|e| self.misbehaved(e.to_string()))?;
            let (diff, next) = store
                .with_sync_index(&network, |index| initiator.handle(index, &reply))
                .map_err(|e| self.misbehaved(e.to_string()))?;
            have.extend(diff.have.into_iter().map(EntryId));
            need.extend(diff.need);
            match next {
                Some(m) => message = m,
                None => break,
            }
        }
        // Entries can arrive by gossip meanwhile: fetch only what is still missing.
        let need: Vec<IdPrefix> = need
            .into_iter()
            .filter(|p| {
                store
                    .get_by_prefix(p, 1)
                    .map_or(true, |found| found.is_empty())
            })
            .collect();
        self.fetch(need).await?;
        self.push(have.into_iter().collect()).await
    }

    /// Fetches `need` in batches. Each round asks again only for what is still missing, so a
    /// response cut short by its size limit is continued, and a peer that claims ids it cannot
    /// produce ends the batch (counted as undelivered) instead of stalling it.
    async fn fetch(&mut self, need: Vec<IdPrefix>) -> Result<(), SyncError> {
        for chunk in need.chunks(FETCH_IDS_MAX) {
            let mut wanted = chunk.to_vec();
            while !wanted.is_empty() {
                let request = SyncRequest::Fetch {
                    network: self.network,
                    ids: wanted.clone(),
                };
                let SyncResponse::Entries { entries } = self.request(request).await? else {
                    return Err(self.misbehaved("answered a fetch with something else"));
                };
                if entries.is_empty() {
                    self.report.entries_undelivered += wanted.len() as u64;
                    break;
                }
                let asked: HashSet<IdPrefix> = wanted.iter().copied().collect();
                // Two entries may share a prefix (the peer sends each match); the same entry
                // twice, or one whose id starts with no prefix asked for, breaks the protocol.
                let (mut received, mut ids) = (HashSet::new(), HashSet::new());
                for bytes in &entries {
                    let id = *blake3::hash(bytes).as_bytes();
                    if !asked.contains(&prefix(&id)) || !ids.insert(id) {
                        return Err(self.misbehaved("sent an entry that was not asked for"));
                    }
                    received.insert(prefix(&id));
                }
                let results = self
                    .ingest
                    .ingest_many(entries, Some(self.network))
                    .await
                    .map_err(|e| SyncError::Local(e.to_string()))?;
                if let Some(e) = results
                    .iter()
                    .filter_map(|r| r.as_ref().err())
                    .find(|e| e.is_invalid_entry())
                {
                    return Err(self.misbehaved(format!("sent an invalid entry: {e}")));
                }
                self.report.entries_received += results.iter().filter(|r| r.is_ok()).count() as u64;
                wanted.retain(|id| !received.contains(id));
            }
        }
        Ok(())
    }

    async fn push(&mut self, have: Vec<EntryId>) -> Result<(), SyncError> {
        let store = self.ingest.store().clone();
        let mut batch = Vec::new();
        let mut bytes = 0;
        for id in have {
            let Ok(Some(entry)) = store.get_bytes(&id) else {
                continue;
            };
            if bytes + entry.len() > PUSH_BYTES_MAX {
                self.push_batch(std::mem::take(&mut batch)).await?;
                bytes = 0;
            }
            bytes += entry.len();
            batch.push(entry);
        }
        if !batch.is_empty() {
            self.push_batch(batch).await?;
        }
        Ok(())
    }

    async fn push_batch(&mut self, entries: Vec<Vec<u8>>) -> Result<(), SyncError> {
        let count = entries.len() as u64;
        match self
            .request(SyncRequest::Push {
                network: self.network,
                entries,
            })
            .await?
        {
            SyncResponse::Pushed { accepted, .. } => {
                self.report.entries_sent += accepted.min(count);
                Ok(())
            }
            _ => Err(self.misbehaved("answered a push with something else")),
        }
    }
}
