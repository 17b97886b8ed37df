//! The API's routes, authentication and limits.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use staffroom_protocol::limits::ENTRY_BYTES_MAX;
use staffroom_protocol::EntryId;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::types::*;
use super::{join, networks};
use crate::ingest::{Ingest, IngestError, Ingested};
use crate::net::NetClient;
use crate::store::{InsertOutcome, ListFilter, Lookup, StoreError};
use crate::sync::SyncHandle;

/// Requests handled at once; more get 503 rather than queueing without bound.
const REQUESTS_IN_FLIGHT_MAX: usize = 64;
/// Request bodies: one maximal entry, plus slack for JSON bodies.
const REQUEST_BODY_BYTES_MAX: usize = ENTRY_BYTES_MAX + 4096;

#[derive(Clone)]
pub struct ApiState {
    pub ingest: Ingest,
    pub net: NetClient,
    pub sync: SyncHandle,
    pub token: Arc<str>,
    slots: Arc<Semaphore>,
}

impl ApiState {
    pub fn new(ingest: Ingest, net: NetClient, sync: SyncHandle, token: String) -> Self {
        ApiState {
            ingest,
            net,
            sync,
            token: token.into(),
            slots: Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT_MAX)),
        }
    }
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let routes = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/peers", get(peers).post(dial))
        .route("/v1/networks", get(networks::list).post(networks::adopt))
        .route("/v1/networks/join", axum::routing::post(join::join))
        .route("/v1/networks/{id}", axum::routing::delete(networks::leave))
        .route("/v1/networks/{id}/members", get(networks::members))
        .route("/v1/entries", get(list_entries).post(submit_entry))
        .route("/v1/entries/{id}", get(get_entry))
        .route("/v1/sync", axum::routing::post(sync_now))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .with_state(state);
    axum::serve(listener, routes)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}

/// An API error: an HTTP status, a stable code and a one-line message.
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            code: self.1.to_owned(),
            error: self.2,
        };
        (self.0, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error serving API request");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
    }
}

/// Every refusal of an entry carries the code of the rule it broke (`field_too_long`,
/// `bad_signature`, ... as listed in `docs/protocol.md`), so programs need not parse English.
impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let status = match &e {
            IngestError::Invalid(_) | IngestError::WrongNetwork { .. } => StatusCode::BAD_REQUEST,
            IngestError::TooEarly { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::NotMember(_) | IngestError::AwaitingMembership { .. } => {
                StatusCode::CONFLICT
            }
            IngestError::AuthorNotMember { .. }
            | IngestError::FormerMember { .. }
            | IngestError::InviteClosed { .. } => StatusCode::FORBIDDEN,
            IngestError::Store(_) | IngestError::Worker(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.code(), e.to_string())
    }
}

pub(super) fn bad_request(message: impl ToString) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", message.to_string())
}

/// Checks the bearer token and bounds concurrency before any handler runs.
async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), state.token.as_bytes())) {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API token (the CLI reads it from the node's data directory)".into(),
        )
        .into_response();
    }
    let Ok(_permit) = state.slots.try_acquire() else {
        return ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "node is busy; try again".into(),
        )
        .into_response();
    };
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn status(State(s): State<ApiState>) -> Result<Json<StatusResponse>, ApiError> {
    let net = s.net.status().await.map_err(unavailable)?;
    let store = s.ingest.store();
    Ok(Json(StatusResponse {
        version: env!("CARGO_PKG_VERSION").into(),
        node_key: crate::roster::node_key(&net.peer_id),
        peer_id: net.peer_id,
        listen_addrs: net.listen_addrs,
        connected_peers: net.connected_peers,
        explicit_peers: net.explicit_peers,
        networks: store.networks()?.len(),
        entries: store.entry_count(),
        held_entries: s.ingest.held_count(),
        clock_ms: s.ingest.clock().now_ms(),
    }))
}

pub(super) fn unavailable(e: crate::net::NetError) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "network_stopped",
        e.to_string(),
    )
}

async fn peers(State(s): State<ApiState>) -> Result<Json<Vec<crate::net::PeerInfo>>, ApiError> {
    Ok(Json(s.net.peers().await.map_err(unavailable)?))
}

async fn dial(
    State(s): State<ApiState>,
    body: Result<Json<DialRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    let addr = req
        .addr
        .parse()
        .map_err(|e| bad_request(format!("not a multiaddr ({e}): {:.100}", req.addr)))?;
    s.net
        .dial(addr)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, "dial_failed", e.to_string()))?;
    Ok(StatusCode::ACCEPTED)
}

async fn submit_entry(
    State(s): State<ApiState>,
    body: Bytes,
) -> Result<(StatusCode, Json<SubmitResponse>), ApiError> {
    let Ingested {
        id,
        network,
        outcome,
        understood,
    } = s.ingest.ingest(body.to_vec(), None).await?;
    // Stored first, then gossiped: what peers receive is already durable here.
    let gossip = s
        .net
        .publish(network, body.to_vec())
        .await
        .map_err(unavailable)?;
    let status = match outcome {
        InsertOutcome::Inserted => StatusCode::CREATED,
        InsertOutcome::AlreadyStored => StatusCode::OK,
    };
    tracing::info!(entry = %id.short(), network = %network.short(), ?outcome, peers = gossip.peers, "entry submitted");
    Ok((
        status,
        Json(SubmitResponse {
            id,
            outcome,
            understood,
            gossip,
        }),
    ))
}

async fn list_entries(
    State(s): State<ApiState>,
    filter: Result<Query<ListFilter>, QueryRejection>,
) -> Result<Json<Vec<crate::store::StoredEntry>>, ApiError> {
    let Query(filter) = filter.map_err(|e| bad_request(e.body_text()))?;
    let store = s.ingest.store().clone();
    let listed = tokio::task::spawn_blocking(move || store.list(&filter))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))??;
    Ok(Json(listed))
}

async fn get_entry(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<EntryView>, ApiError> {
    let id: EntryId = id.parse().map_err(bad_request)?;
    let store = s.ingest.store();
    match store.lookup(&id)? {
        Some(Lookup::Entry(stored)) => {
            let versions = store.versions(&stored)?;
            let edited_by = (versions.current != id).then_some(versions.current);
            Ok(Json(EntryView {
                stored: *stored,
                edited_by,
                versions: versions.all,
            }))
        }
        Some(Lookup::Opaque(header)) => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_understood",
            format!(
                "entry {id} is of kind {} (format version {}), which this node does not understand; \
                 it is kept and passed on for nodes that do",
                header.kind, header.version
            ),
        )),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no entry {id} on this node"),
        )),
    }
}

async fn sync_now(
    State(s): State<ApiState>,
    body: Result<Json<SyncRequestBody>, JsonRejection>,
) -> Result<Json<crate::sync::SyncNowReport>, ApiError> {
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    if let Some(network) = req.network {
        if s.ingest.store().network(&network)?.is_none() {
            return Err(IngestError::NotMember(network).into());
        }
    }
    match s.sync.sync_now(req.network).await {
        Some(report) => Ok(Json(report)),
        None => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many sync requests waiting on this node; try again".into(),
        )),
    }
}
