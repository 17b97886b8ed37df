//! The responder side: answers reconcile, fetch and push requests from a peer, and says
//! whether the peer broke a rule every node shares. This node's own failures (storage, its
//! limits, its encoder) are answered with a refusal and blamed on nobody.

use libp2p::PeerId;
use staffroom_protocol::sync::{
    respond, Message, SyncRequest, SyncResponse, FETCH_IDS_MAX, PUSH_BYTES_MAX,
};
use staffroom_protocol::NetworkId;

use super::PARAMS;
use crate::ingest::{Ingest, IngestError};
use crate::store::{InsertOutcome, Store};

/// Entries returned for one id prefix at most (honest prefixes match one entry).
const PREFIX_MATCHES_MAX: usize = 2;

/// How the peer behaved in a request, for the event loop to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// It broke a shared rule (a malformed message, an invalid entry): cut it off.
    Misbehaved(String),
}

/// Answers one request. Never panics on what the peer sent.
pub async fn serve(peer: PeerId, request: SyncRequest, ingest: &Ingest) -> (SyncResponse, Verdict) {
    let (response, verdict, _) = serve_relaying(peer, request, ingest).await;
    (response, verdict)
}

/// [`serve`], also giving back the membership entries a push brought that were new here: the
/// event loop gossips them on, so every member soon learns of a join handed in to this node.
pub async fn serve_relaying(
    peer: PeerId,
    request: SyncRequest,
    ingest: &Ingest,
) -> (SyncResponse, Verdict, Vec<Vec<u8>>) {
    if let SyncRequest::Push { network, entries } = request {
        let membership_only = entries.iter().all(|e| is_membership_op(e));
        if let Some(refusal) = gate(peer, network, ingest, membership_only) {
            return (refusal, Verdict::Fine, Vec::new());
        }
        return push(peer, ingest, network, entries).await;
    }
    let (response, verdict) = answer(peer, request, ingest).await;
    (response, verdict, Vec::new())
}

/// A version-1 membership operation (kind 7), by its header.
fn is_membership_op(entry: &[u8]) -> bool {
    entry.first() == Some(&1) && entry.get(73) == Some(&7)
}

/// Whether `peer` may be served `network`: this node follows it and, in an invite-only
/// network, a current member has bound the peer's node. Anyone may hand in membership
/// operations (a join, its binding): the resolver judges them, and they are how a new member's
/// node comes to be bound. Refusals depend on what this node knows: nobody is blamed.
fn gate(
    peer: PeerId,
    network: NetworkId,
    ingest: &Ingest,
    membership_only: bool,
) -> Option<SyncResponse> {
    match ingest.store().network(&network) {
        Ok(Some(_)) => {}
        Ok(None) => return Some(refused(crate::roster::NOT_SHARED)),
        Err(e) => return Some(refused(&format!("storage error: {e}"))),
    }
    match ingest.rosters().may_share(&network, &peer) {
        Ok(true) => None,
        Ok(false) if membership_only => None,
        Ok(false) => Some(refused(&ingest.rosters().refusal_reason(&network, &peer))),
        Err(e) => Some(refused(&format!("storage error: {e}"))),
    }
}

async fn answer(peer: PeerId, request: SyncRequest, ingest: &Ingest) -> (SyncResponse, Verdict) {
    let network = request.network();
    if let Some(refusal) = gate(peer, network, ingest, false) {
        return (refusal, Verdict::Fine);
    }
    match request {
        SyncRequest::Reconcile { message, .. } => reconcile(ingest, network, message).await,
        SyncRequest::Fetch { ids, .. } => {
            // Reads from a store larger than its cache take a while (0.75 s for a thousand
            // entries at a million): not on the async threads.
            let store = ingest.store().clone();
            match tokio::task::spawn_blocking(move || fetch(&store, network, &ids)).await {
                Ok(response) => (response, Verdict::Fine),
                Err(e) => (refused(&format!("internal error: {e}")), Verdict::Fine),
            }
        }
        SyncRequest::Push { entries, .. } => {
            let (response, verdict, _) = push(peer, ingest, network, entries).await;
            (response, verdict)
        }
    }
}

async fn reconcile(
    ingest: &Ingest,
    network: NetworkId,
    message: Vec<u8>,
) -> (SyncResponse, Verdict) {
    let store = ingest.store().clone();
    let answered = tokio::task::spawn_blocking(move || {
        // The peer's fault: a message that does not decode, or modes its role never sends.
        let message = Message::decode(&message).map_err(|e| Err(e.to_string()))?;
        let reply = store
            .with_sync_index(&network, |index| respond(index, &message, PARAMS))
            .map_err(|e| Err(e.to_string()))?;
        // Ours: answers are budgeted, so this cannot fail; if it did, it is not the peer's doing.
        reply.encode().map_err(|e| Ok(e.to_string()))
    })
    .await;
    match answered {
        Ok(Ok(message)) => (SyncResponse::Reconcile { message }, Verdict::Fine),
        Ok(Err(Err(theirs))) => (refused(&theirs), Verdict::Misbehaved(theirs)),
        Ok(Err(Ok(ours))) => {
            tracing::error!(error = %ours, "could not encode a reconciliation answer");
            (refused("internal error; try again later"), Verdict::Fine)
        }
        Err(e) => (refused(&format!("internal error: {e}")), Verdict::Fine),
    }
}

fn fetch(store: &Store, network: NetworkId, ids: &[[u8; 8]]) -> SyncResponse {
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    'prefixes: for prefix in ids.iter().take(FETCH_IDS_MAX) {
        let Ok(found) = store.get_by_prefix(prefix, PREFIX_MATCHES_MAX) else {
            continue;
        };
        for entry in found {
            // Only this network's entries: knowing an id does not open another network.
            if entry.get(1..33) != Some(network.as_bytes()) {
                continue;
            }
            if bytes.saturating_add(entry.len()) > PUSH_BYTES_MAX {
                break 'prefixes;
            }
            bytes += entry.len();
            entries.push(entry);
        }
    }
    SyncResponse::Entries { entries }
}

async fn push(
    peer: PeerId,
    ingest: &Ingest,
    network: NetworkId,
    entries: Vec<Vec<u8>>,
) -> (SyncResponse, Verdict, Vec<Vec<u8>>) {
    let count = entries.len() as u64;
    // The peer's session brings entries until it ends: the search index waits for it.
    ingest.store().changes().pushed_to();
    let ops: Vec<Option<Vec<u8>>> = entries
        .iter()
        .map(|e| is_membership_op(e).then(|| e.clone()))
        .collect();
    let results = match ingest.ingest_many(entries, Some(network)).await {
        Ok(results) => results,
        Err(e) => {
            let refusal = refused(&format!("storage error: {e}"));
            return (refusal, Verdict::Fine, Vec::new());
        }
    };
    let relay = results
        .iter()
        .zip(ops)
        .filter(|(r, _)| {
            r.as_ref()
                .is_ok_and(|i| i.outcome == InsertOutcome::Inserted)
        })
        .filter_map(|(_, op)| op)
        .collect();
    let rejected: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let verdict = match rejected.iter().find(|e| e.blames_sender()) {
        Some(e) => Verdict::Misbehaved(format!("pushed an invalid entry: {e}")),
        None => Verdict::Fine,
    };
    // A joining node hands in its join this way: tell it plainly why the join was not taken.
    if let Some(closed) = rejected
        .iter()
        .find(|e| matches!(e, IngestError::InviteClosed { .. }))
    {
        return (refused(&closed.to_string()), verdict, relay);
    }
    let rejected = rejected.len() as u64;
    tracing::debug!(%peer, network = %network.short(), count, rejected, "sync push");
    let response = SyncResponse::Pushed {
        accepted: count.saturating_sub(rejected),
        rejected,
    };
    (response, verdict, relay)
}

fn refused(reason: &str) -> SyncResponse {
    SyncResponse::Refused {
        reason: reason.to_owned(),
    }
}
