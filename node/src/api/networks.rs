//! The API's network routes: list the networks this node follows, adopt one from its founding
//! entry (and membership entries), stop following one, and show a network's members.

use std::collections::BTreeSet;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use staffroom_protocol::membership::{Membership, Role};
use staffroom_protocol::{verify_entry, Body, EntryId, NetworkId, Relation};

use super::server::{bad_request, unavailable, ApiError, ApiState};
use super::types::*;
use crate::ingest::IngestError;
use crate::store::{NetworkRecord, StoreError, StoredEntry};

/// Entries one adoption may carry (founding entry first).
pub const ADOPT_ENTRIES_MAX: usize = 256;
/// `after` references a new membership operation may carry (the protocol's reference limit).
const HEADS_MAX: usize = staffroom_protocol::limits::REFS_COUNT_MAX;

pub async fn list(State(s): State<ApiState>) -> Result<Json<Vec<NetworkRecord>>, ApiError> {
    Ok(Json(s.ingest.store().networks()?))
}

/// Follows the network that the first entry founds, then ingests every entry given. Nothing
/// is recorded unless every entry verifies.
pub async fn adopt(
    State(s): State<ApiState>,
    body: Result<Json<AdoptNetworkRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<NetworkRecord>), ApiError> {
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    if req.entries.is_empty() || req.entries.len() > ADOPT_ENTRIES_MAX {
        return Err(bad_request(format!(
            "give from 1 to {ADOPT_ENTRIES_MAX} entries, the network's founding entry first"
        )));
    }
    let mut entries = Vec::with_capacity(req.entries.len());
    for (n, text) in req.entries.iter().enumerate() {
        let bytes = hex::decode(text.trim())
            .map_err(|e| bad_request(format!("entry {n} is not hex: {e}")))?;
        entries.push(bytes);
    }
    let now = s.ingest.clock().now_ms();
    let first = entries[0].clone();
    let founding = tokio::task::spawn_blocking(move || verify_entry(&first, now))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))?
        .map_err(IngestError::from)?;
    let Some(Body::Network(genesis)) = founding.entry().map(|e| &e.body) else {
        return Err(bad_request(
            "the first entry must found a network (an entry of kind `network`)",
        ));
    };
    let name = match (genesis.name.is_empty(), &req.name) {
        (true, Some(local)) => local_name(local)?,
        _ => genesis.name.clone(),
    };
    let record = NetworkRecord {
        id: founding.header().network,
        name,
        joined_at_ms: now,
    };
    let created = follow(&s, record.clone()).await?;
    for result in s.ingest.ingest_many(entries, None).await? {
        if let Err(e) = result {
            tracing::info!(network = %record.id.short(), error = %e, "an adopted entry was not stored");
        }
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let stored = s.ingest.store().network(&record.id)?.unwrap_or(record);
    Ok((status, Json(stored)))
}

/// Records a network as followed (within the bound) and subscribes to its gossip.
pub(super) async fn follow(s: &ApiState, record: NetworkRecord) -> Result<bool, ApiError> {
    let store = s.ingest.store();
    let known = store.network(&record.id)?.is_some();
    if !known && store.networks()?.len() >= NETWORKS_MAX {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "too_many_networks",
            format!("this node follows {NETWORKS_MAX} networks, the most it keeps"),
        ));
    }
    let created = store.join_network(record.clone()).await?;
    s.net.subscribe(record.id).await.map_err(unavailable)?;
    Ok(created)
}

/// Stops following a network: no more gossip or sync for it here. What is stored stays.
/// `DELETE /v1/networks/{id}[?purge=true]`: stop following; with `purge` (the school's admin
/// only), also delete everything of the network held here, its files included.
pub async fn leave(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<LeaveQuery>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
) -> Result<Json<LeaveView>, ApiError> {
    let id: NetworkId = id.parse().map_err(bad_request)?;
    if query.purge && !teacher.admin {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "admin_only",
            "only the school's admin may delete a network's data from this node".into(),
        ));
    }
    let store = s.ingest.store();
    let followed = store.leave_network(id).await?;
    if !followed && !query.purge {
        return Err(not_following(&id));
    }
    s.net.unsubscribe(id).await.map_err(unavailable)?;
    let purged_entries = match query.purge {
        true => store.purge_network(id).await?,
        false => 0,
    };
    Ok(Json(LeaveView {
        network: id,
        purged_entries,
    }))
}

/// A name for a network on this node: one line of 1 to 100 bytes.
fn local_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    staffroom_protocol::text::single_line(
        "name",
        name,
        staffroom_protocol::membership::NETWORK_NAME_BYTES_MAX,
    )
    .map_err(bad_request)?;
    Ok(name.to_owned())
}

fn not_following(id: &NetworkId) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "not_member",
        format!("this node does not follow network {id}"),
    )
}

/// Who is in a network, as this node has resolved it, and the heads a new operation follows.
pub async fn members(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<MembersView>, ApiError> {
    let id: NetworkId = id.parse().map_err(bad_request)?;
    let Some(record) = s.ingest.store().network(&id)? else {
        return Err(not_following(&id));
    };
    let store = s.ingest.store().clone();
    let rosters = s.ingest.rosters().clone();
    let (roster, entries) = tokio::task::spawn_blocking(move || {
        Ok::<_, StoreError>((rosters.get(&id)?, store.membership_entries(&id)?))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))??;
    Ok(Json(view(record, &roster, &entries)))
}

fn view(record: NetworkRecord, m: &Membership, entries: &[StoredEntry]) -> MembersView {
    let members = m
        .members
        .iter()
        .map(|(author, role)| MemberView {
            author: *author,
            facilitator: matches!(role, Role::Facilitator { .. }),
            rank: match role {
                Role::Facilitator { rank } => Some(*rank),
                Role::Member => None,
            },
            profile: m.profiles.get(author).cloned(),
            nodes: m.nodes.get(author).into_iter().flatten().copied().collect(),
        })
        .collect();
    let invites = m
        .invites
        .iter()
        .map(|(id, i)| InviteView {
            id: *id,
            author: i.author,
            expires_at_ms: i.expires_at_ms,
            uses_max: i.uses_max,
            uses: i.uses,
            revoked: i.revoked,
        })
        .collect();
    MembersView {
        network: record.id,
        name: record.name,
        founder: m.founder,
        policy: m.policy,
        invite_by: m.invite_by,
        members,
        former: m.former.clone(),
        profiles: m.profiles.clone(),
        invites,
        heads: heads(m, entries),
        operations: OperationCounts {
            valid: m.valid.len(),
            void: m.void.len(),
            waiting: m.waiting.len(),
        },
    }
}

/// The operations no other operation follows: what a new operation should reference. Valid
/// ones first, then by id, at most [`HEADS_MAX`].
fn heads(m: &Membership, entries: &[StoredEntry]) -> Vec<EntryId> {
    let followed: BTreeSet<EntryId> = entries
        .iter()
        .flat_map(|e| e.entry.refs.iter())
        .filter(|r| r.relation == Relation::After)
        .map(|r| r.id)
        .collect();
    let mut heads: Vec<EntryId> = entries
        .iter()
        .map(|e| e.id)
        .filter(|id| !followed.contains(id) && !m.waiting.contains(id))
        .collect();
    heads.sort_by_key(|id| (!m.valid.contains(id), *id));
    heads.dedup();
    heads.truncate(HEADS_MAX);
    heads
}
