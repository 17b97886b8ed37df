//! The responder side: answers reconcile, fetch and push requests from a peer.

use libp2p::PeerId;
use staffroom_protocol::sync::{
    respond, Message, SyncRequest, SyncResponse, FETCH_IDS_MAX, PUSH_BYTES_MAX,
};

use super::PARAMS;
use crate::ingest::Ingest;

/// Entries returned for one id prefix at most (honest prefixes match one entry).
const PREFIX_MATCHES_MAX: usize = 2;

/// How the peer behaved in a request, for the event loop to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// It sent entries that failed validation (or otherwise broke the protocol): cut it off.
    Misbehaved(String),
}

/// Answers one request. Never panics on what the peer sent; bad input gets `Refused`.
pub async fn serve(peer: PeerId, request: SyncRequest, ingest: &Ingest) -> (SyncResponse, Verdict) {
    let network = request.network();
    let store = ingest.store();
    match store.network(&network) {
        Ok(Some(_)) => {}
        Ok(None) => return (refused("not a member of this network"), Verdict::Fine),
        Err(e) => return (refused(&format!("storage error: {e}")), Verdict::Fine),
    }
    match request {
        SyncRequest::Reconcile { message, .. } => {
            let store = store.clone();
            let answered = tokio::task::spawn_blocking(move || {
                let message = Message::decode(&message).map_err(|e| e.to_string())?;
                let reply = store
                    .with_sync_index(&network, |index| respond(index, &message, PARAMS))
                    .map_err(|e| e.to_string())?;
                reply.encode().map_err(|e| e.to_string())
            })
            .await;
            match answered {
                Ok(Ok(message)) => (SyncResponse::Reconcile { message }, Verdict::Fine),
                Ok(Err(reason)) => (refused(&reason), Verdict::Misbehaved(reason)),
                Err(e) => (refused(&e.to_string()), Verdict::Fine),
            }
        }
        SyncRequest::Fetch { ids, .. } => {
            let mut entries = Vec::new();
            let mut bytes = 0;
            'prefixes: for prefix in ids.iter().take(FETCH_IDS_MAX) {
                let Ok(found) = store.get_by_prefix(prefix, PREFIX_MATCHES_MAX) else {
                    continue;
                };
                for entry in found {
                    // Only this network's entries: knowing an id does not open another network.
                    if entry.get(1..33) != Some(network.as_bytes()) {
                        continue;
                    }
                    if bytes + entry.len() > PUSH_BYTES_MAX {
                        break 'prefixes;
                    }
                    bytes += entry.len();
                    entries.push(entry);
                }
            }
            (SyncResponse::Entries { entries }, Verdict::Fine)
        }
        SyncRequest::Push { entries, .. } => {
            let count = entries.len() as u64;
            match ingest.ingest_many(entries, Some(network)).await {
                Ok(results) => {
                    let rejected: Vec<_> =
                        results.iter().filter_map(|r| r.as_ref().err()).collect();
                    let verdict = match rejected.iter().find(|e| e.is_invalid_entry()) {
                        Some(e) => Verdict::Misbehaved(format!("pushed an invalid entry: {e}")),
                        None => Verdict::Fine,
                    };
                    let rejected = rejected.len() as u64;
                    let response = SyncResponse::Pushed {
                        accepted: count - rejected,
                        rejected,
                    };
                    tracing::debug!(%peer, network = %network.short(), count, rejected, "sync push");
                    (response, verdict)
                }
                Err(e) => (refused(&format!("storage error: {e}")), Verdict::Fine),
            }
        }
    }
}

fn refused(reason: &str) -> SyncResponse {
    SyncResponse::Refused {
        reason: reason.to_owned(),
    }
}
