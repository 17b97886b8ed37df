//! `POST /v1/networks/join`: joining a network with an invite token. The node dials the
//! inviter's node named in the token, hands it the teacher's signed join and node binding, and
//! catches up with it; the network's history arrives only if the join counts.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use staffroom_protocol::membership::InviteToken;
use staffroom_protocol::sync::{SyncRequest, SyncResponse};
use staffroom_protocol::{verify_entry, AuthorId, Body, EntryKind, NetworkId};

use super::networks::follow;
use super::server::{bad_request, unavailable, ApiError, ApiState};
use super::types::JoinRequest;
use crate::store::NetworkRecord;
use crate::sync::driver::{run_session, SESSION_TIMEOUT};

/// How long to wait for the inviter's node to connect and show its subscription.
const CONNECT_WAIT: Duration = Duration::from_secs(15);
/// Entries a join hands in at most (a join, a binding, a profile).
const JOIN_ENTRIES_MAX: usize = 4;

pub async fn join(
    State(s): State<ApiState>,
    body: Result<Json<JoinRequest>, JsonRejection>,
) -> Result<Json<NetworkRecord>, ApiError> {
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    let token = InviteToken::decode(&req.token).map_err(bad_request)?;
    let now = s.ingest.clock().now_ms();
    if now > token.expires_at_ms {
        return Err(refused(format!(
            "the invite expired at {} ms (this node's clock is {now} ms)",
            token.expires_at_ms
        )));
    }
    let entries = checked_entries(&req.entries, token.network, now)?;
    let joiner = entries.1;
    if s.ingest.rosters().get(&token.network)?.founder.is_some() {
        // This node already holds the network (another teacher of the school is in it): the
        // join is judged here, and gossiped to the other members' nodes.
        return join_here(&s, token.network, entries.0, joiner, token.name).await;
    }
    let inviter = inviter_node(&token)?;
    let network = token.network;
    let placeholder = NetworkRecord {
        id: network,
        name: String::new(),
        joined_at_ms: now,
    };
    let created = follow(&s, placeholder).await?;
    let outcome = hand_in_and_catch_up(&s, &inviter, network, entries.0).await;
    let rosters = s.ingest.rosters().clone();
    let roster = tokio::task::spawn_blocking(move || rosters.refresh(&network))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))??;
    if let (Ok(()), true) = (&outcome, roster.is_member(&joiner)) {
        return Ok(Json(
            named_record(&s, network, Some(token.name.clone())).await?,
        ));
    }
    // Not admitted: leave no trace of following, unless the node followed it before.
    if created {
        s.ingest.store().leave_network(network).await?;
        s.net.unsubscribe(network).await.map_err(unavailable)?;
    }
    Err(refused(outcome.err().unwrap_or_else(|| {
        "the inviting node did not admit this join".into()
    })))
}

/// Joins a network this node already follows: stores the join and binding (through ingest,
/// as from any teacher), then tells the other members' nodes.
async fn join_here(
    s: &ApiState,
    network: NetworkId,
    entries: Vec<Vec<u8>>,
    joiner: AuthorId,
    name: String,
) -> Result<Json<NetworkRecord>, ApiError> {
    let results = s.ingest.ingest_many(entries.clone(), None).await?;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        return Err(match e {
            crate::ingest::IngestError::InviteClosed { .. } => refused(e.to_string()),
            e => e.into(),
        });
    }
    if !s.ingest.rosters().get(&network)?.is_member(&joiner) {
        return Err(refused("the join does not count here".into()));
    }
    for entry in entries {
        s.net.publish(network, entry).await.map_err(unavailable)?;
    }
    Ok(Json(named_record(s, network, Some(name)).await?))
}

fn refused(message: String) -> ApiError {
    ApiError(StatusCode::FORBIDDEN, "invite_refused", message)
}

/// The entries to hand in, decoded and verified: they must be membership operations of the
/// token's network by one author (the joining teacher).
fn checked_entries(
    hex_entries: &[String],
    network: NetworkId,
    now: u64,
) -> Result<(Vec<Vec<u8>>, AuthorId), ApiError> {
    if hex_entries.is_empty() || hex_entries.len() > JOIN_ENTRIES_MAX {
        return Err(bad_request(format!(
            "give from 1 to {JOIN_ENTRIES_MAX} entries: the join first"
        )));
    }
    let mut out = Vec::new();
    let mut author = None;
    for text in hex_entries {
        let bytes = hex::decode(text.trim()).map_err(bad_request)?;
        let v = verify_entry(&bytes, now).map_err(crate::ingest::IngestError::from)?;
        let membership = v.entry().is_some_and(|e| e.kind() == EntryKind::Membership);
        if !membership || v.header().network != network {
            return Err(bad_request(
                "join entries must be membership operations of the invite's network",
            ));
        }
        if author.is_some_and(|a| a != v.header().author) {
            return Err(bad_request(
                "join entries must all be by the joining teacher",
            ));
        }
        author = Some(v.header().author);
        out.push(bytes);
    }
    let author = author.ok_or_else(|| bad_request("no entries"))?;
    Ok((out, author))
}

/// The inviter's peer id and addresses, from the token.
fn inviter_node(token: &InviteToken) -> Result<(PeerId, Vec<Multiaddr>), ApiError> {
    let mut peer = None;
    let mut addrs = Vec::new();
    for bytes in &token.addrs {
        let Ok(addr) = Multiaddr::try_from(bytes.clone()) else {
            continue;
        };
        if let Some(Protocol::P2p(id)) = addr.iter().last() {
            peer = Some(id);
            addrs.push(addr);
        }
    }
    match peer {
        Some(peer) => Ok((peer, addrs)),
        None => Err(bad_request(
            "the invite token names no node address to dial",
        )),
    }
}

/// Tries at a push or a catch-up session with the inviter: a connection can close under a
/// request (a relayed one replaced by a punched one, say), and both are safe to repeat.
const JOIN_ATTEMPTS: u32 = 3;
const JOIN_RETRY_WAIT: Duration = Duration::from_secs(1);
/// Only sessions that failed faster than this are tried again.
const JOIN_RETRY_SESSION_MAX: Duration = Duration::from_secs(10);

/// Dials the inviter (unless already connected), pushes the join, then runs a sync session
/// with it.
async fn hand_in_and_catch_up(
    s: &ApiState,
    (peer, addrs): &(PeerId, Vec<Multiaddr>),
    network: NetworkId,
    entries: Vec<Vec<u8>>,
) -> Result<(), String> {
    let peers = s.net.peers().await.map_err(|e| e.to_string())?;
    if !peers.iter().any(|p| p.peer_id == *peer) {
        for addr in addrs {
            if let Err(e) = s.net.dial(addr.clone()).await {
                tracing::info!(%addr, error = %e, "could not dial the inviter's address");
            }
        }
    }
    wait_for_subscription(s, peer, &network).await?;
    push_join(s, *peer, network, entries).await?;
    let mut error = String::new();
    for _ in 0..JOIN_ATTEMPTS {
        let started = tokio::time::Instant::now();
        let report = run_session(*peer, network, &s.net, &s.ingest, SESSION_TIMEOUT).await;
        match report.error {
            None => return Ok(()),
            // A session that failed slowly (a stalled peer) is not tried again: the client
            // waits for the join, and anti-entropy catches up later anyway.
            Some(e) if started.elapsed() > JOIN_RETRY_SESSION_MAX => return Err(e),
            Some(e) => error = e,
        }
        tokio::time::sleep(JOIN_RETRY_WAIT).await;
    }
    Err(error)
}

/// Hands the join to the inviter, trying again if the connection fails under the request.
async fn push_join(
    s: &ApiState,
    peer: PeerId,
    network: NetworkId,
    entries: Vec<Vec<u8>>,
) -> Result<(), String> {
    let mut error = String::new();
    for _ in 0..JOIN_ATTEMPTS {
        let push = SyncRequest::Push {
            network,
            entries: entries.clone(),
        };
        match s.net.sync_request(peer, push).await {
            Ok(SyncResponse::Pushed { .. }) => return Ok(()),
            Ok(SyncResponse::Refused { reason }) => return Err(reason),
            Ok(_) => return Err("the inviting node answered oddly".into()),
            Err(e) => error = format!("could not reach the inviting node: {e}"),
        }
        tokio::time::sleep(JOIN_RETRY_WAIT).await;
    }
    Err(error)
}

async fn wait_for_subscription(
    s: &ApiState,
    peer: &PeerId,
    network: &NetworkId,
) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    while started.elapsed() < CONNECT_WAIT {
        let peers = s.net.peers().await.map_err(|e| e.to_string())?;
        if peers
            .iter()
            .any(|p| p.peer_id == *peer && p.networks.contains(network))
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "the inviting node {peer} did not answer within {} s (is it running and reachable?)",
        CONNECT_WAIT.as_secs()
    ))
}

/// The network's record, named after its founding entry now that it is here.
async fn named_record(
    s: &ApiState,
    network: NetworkId,
    given: Option<String>,
) -> Result<NetworkRecord, ApiError> {
    let store = s.ingest.store();
    let mut record = store
        .network(&network)?
        .ok_or(crate::store::StoreError::Closed)?;
    let founding = store
        .membership_entries(&network)?
        .into_iter()
        .find_map(|e| match e.entry.body {
            Body::Network(g) => Some(g.name),
            _ => None,
        });
    // A private network's founding entry has no name: the invite gave it.
    let founding = founding
        .filter(|n| !n.is_empty())
        .or(given.filter(|n| !n.is_empty()));
    if let Some(name) = founding.filter(|_| record.name.is_empty()) {
        record.name = name;
        store.rename_network(record.clone()).await?;
    }
    Ok(record)
}
