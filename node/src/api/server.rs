//! The API's routes, authentication and limits.

use std::sync::{Arc, Mutex};

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
use tokio::sync::{watch, Semaphore};

use super::auth::{self, ReplayGuard};
use super::listen::{ConnHandle, ListenLimits};
use super::types::*;
use super::{join, networks, teachers};
use crate::clock::Clock;
use crate::ingest::{Ingest, IngestError, Ingested};
use crate::net::NetClient;
use crate::store::{InsertOutcome, ListFilter, Lookup, StoreError};
use crate::sync::SyncHandle;

/// Requests handled at once; more get 503 rather than queueing without bound.
const REQUESTS_IN_FLIGHT_MAX: usize = 64;
/// Request bodies: one maximal entry, plus slack for JSON bodies.
const REQUEST_BODY_BYTES_MAX: usize = ENTRY_BYTES_MAX + 4096;
/// A request body (but an upload's) arrives in full within this, or the request fails.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
pub struct ApiState {
    pub ingest: Ingest,
    pub net: NetClient,
    pub sync: SyncHandle,
    /// Fetching and progress of the files resources carry.
    pub files: crate::files::FetchHandle,
    /// This node's peer id, as text: what requests are signed for.
    pub node_id: Arc<str>,
    /// The random id of this run of the node, as hex: requests are signed for it too.
    boot: Arc<str>,
    clock: Clock,
    replays: Arc<Mutex<ReplayGuard>>,
    slots: Arc<Semaphore>,
}

impl ApiState {
    pub fn new(
        ingest: Ingest,
        net: NetClient,
        sync: SyncHandle,
        node_id: String,
        clock: Clock,
        files: crate::files::FetchHandle,
    ) -> Self {
        let mut boot = [0u8; 16];
        // Without randomness, a run id still differs per run by time; replay protection
        // across restarts then rests on it.
        if getrandom::fill(&mut boot).is_err() {
            boot[..8].copy_from_slice(&clock.now_ms().to_be_bytes());
        }
        ApiState {
            ingest,
            net,
            sync,
            files,
            node_id: node_id.into(),
            boot: hex::encode(boot).into(),
            replays: Arc::new(Mutex::new(ReplayGuard::new(boot))),
            clock,
            slots: Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT_MAX)),
        }
    }
}

/// Serves the API on `listener` (through `tls` if given) until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: ApiState,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(listener, tls, state, ListenLimits::default(), shutdown).await
}

/// [`serve`] with other connection limits (tests use short ones).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: ApiState,
    limits: ListenLimits,
    shutdown: watch::Receiver<bool>,
) {
    let routes = Router::new()
        .route("/v1/hello", get(hello))
        .route("/v1/status", get(status))
        .route("/v1/teachers", get(teachers::list).post(teachers::add))
        .route(
            "/v1/teachers/{key}",
            axum::routing::delete(teachers::remove),
        )
        .route("/v1/peers", get(peers).post(dial))
        .route("/v1/networks", get(networks::list).post(networks::adopt))
        .route("/v1/networks/join", axum::routing::post(join::join))
        .route("/v1/networks/{id}", axum::routing::delete(networks::leave))
        .route("/v1/networks/{id}/members", get(networks::members))
        .route(
            "/v1/networks/{id}/seal",
            axum::routing::post(super::private::seal),
        )
        .route(
            "/v1/networks/{id}/files/{root}",
            axum::routing::put(super::private::upload_sealed),
        )
        .route("/v1/entries", get(list_entries).post(submit_entry))
        .route("/v1/entries/{id}", get(get_entry).delete(purge_entry))
        .route("/v1/sync", axum::routing::post(sync_now))
        .route("/v1/resolve/{prefix}", get(super::resolve::resolve))
        .route(
            "/v1/files/{root}",
            get(super::files::download).put(super::files::upload),
        )
        .route("/v1/entries/{id}/files", get(super::files::status))
        .route(
            "/v1/networks/{id}/files",
            get(super::files::policy).put(super::files::set_policy),
        )
        .route(
            "/v1/entries/{id}/files/fetch",
            axum::routing::post(super::files::fetch),
        )
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .with_state(state);
    super::listen::serve(listener, tls, routes, limits, shutdown).await
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
        if let StoreError::DiskFull { .. } = e {
            return ApiError(StatusCode::INSUFFICIENT_STORAGE, "disk_full", e.to_string());
        }
        tracing::error!(error = %e, "store error serving API request");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
    }
}

/// Every refusal of an entry carries the code of the rule it broke (`field_too_long`,
/// `bad_signature`, ... as listed in `docs/protocol.md`), so programs need not parse English.
impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let status = match &e {
            IngestError::Invalid(_)
            | IngestError::WrongNetwork { .. }
            | IngestError::WrongPrivacy { .. } => StatusCode::BAD_REQUEST,
            IngestError::TooEarly { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::NotMember(_) | IngestError::AwaitingMembership { .. } => {
                StatusCode::CONFLICT
            }
            IngestError::AuthorNotMember { .. }
            | IngestError::FormerMember { .. }
            | IngestError::InviteClosed { .. }
            | IngestError::NotFacilitator { .. } => StatusCode::FORBIDDEN,
            IngestError::Erased(_) => StatusCode::GONE,
            IngestError::Store(StoreError::DiskFull { .. }) => StatusCode::INSUFFICIENT_STORAGE,
            IngestError::Store(_) | IngestError::Worker(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.code(), e.to_string())
    }
}

pub(super) fn bad_request(message: impl ToString) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", message.to_string())
}

/// Reads the request's body (within `BODY_TIMEOUT`), then takes one of the slots (only
/// requests being processed hold one, so stalled clients cannot take them all), then
/// authenticates the request before any handler runs: a signature by a registered teacher
/// over this node, the call and its body, fresh and never seen before (see `auth`).
/// Admin-only routes need the admin's key. Only `/v1/hello` is open.
async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let (request, body_hash) = match read_body(request).await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let Ok(_permit) = state.slots.try_acquire() else {
        return ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "node is busy; try again".into(),
        )
        .into_response();
    };
    let _in_handler = request
        .extensions()
        .get::<ConnHandle>()
        .map(|conn| conn.0.enter_handler());
    if request.uri().path() == "/v1/hello" {
        return next.run(request).await;
    }
    match authenticate(&state, request, body_hash).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// The request with its body read into memory, and the body's hash (what the teacher
/// signed). An upload streams instead: its signed hash is the root it names, checked as
/// the bytes arrive.
async fn read_body(request: Request) -> Result<(Request, blake3::Hash), ApiError> {
    if let Some(root) = super::files::upload_root(request.method(), request.uri().path()) {
        return Ok((request, blake3::Hash::from_bytes(root.0)));
    }
    let (parts, body) = request.into_parts();
    let bytes = read_within(body, REQUEST_BODY_BYTES_MAX, BODY_TIMEOUT).await?;
    let hash = blake3::hash(&bytes);
    Ok((
        Request::from_parts(parts, axum::body::Body::from(bytes)),
        hash,
    ))
}

/// A body of at most `bytes_max` bytes, in full within `timeout`.
async fn read_within(
    body: axum::body::Body,
    bytes_max: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, bytes_max)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body over {bytes_max} bytes"),
        )),
        Err(_) => Err(ApiError(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("request body not received within {} s", timeout.as_secs()),
        )),
    }
}

async fn authenticate(
    state: &ApiState,
    request: Request,
    body_hash: blake3::Hash,
) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let credentials = auth::parse(header).map_err(unauthenticated)?;
    // Signed for an earlier run of this node (the client re-signs when told so).
    if hex::encode(credentials.boot) != *state.boot {
        return Err(unauthenticated(auth::AuthError::Restarted));
    }
    let call = auth::Call {
        node: &state.node_id,
        boot: &state.boot,
        method: parts.method.as_str(),
        target: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        body_hash,
    };
    call.verify(&credentials).map_err(unauthenticated)?;
    let Some(teacher) = state.ingest.store().teacher(&credentials.key)? else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "unknown_teacher",
            format!(
                "key {} is not registered on this node: ask the school's admin to run \
                 `staffroom school add-teacher {}`",
                credentials.key.short(),
                credentials.key
            ),
        ));
    };
    let now = state.clock.now_ms();
    state
        .replays
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .admit(&credentials, now)
        .map_err(unauthenticated)?;
    if parts.uri.path().starts_with("/v1/teachers") && !teacher.admin {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "admin_only",
            "only the school's admin may manage this node's teachers".into(),
        ));
    }
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(teacher);
    Ok(request)
}

fn unauthenticated(e: auth::AuthError) -> ApiError {
    let status = match e {
        auth::AuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    };
    ApiError(status, e.code(), e.to_string())
}

/// Who this node is, for a teacher's CLI to pin before it signs anything (unauthenticated).
async fn hello(State(s): State<ApiState>) -> Json<HelloResponse> {
    Json(HelloResponse {
        node_id: s.node_id.to_string(),
        boot: s.boot.to_string(),
        clock_ms: s.clock.now_ms(),
        version: env!("CARGO_PKG_VERSION").into(),
        auth: auth::SCHEME.into(),
    })
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
        file_bytes_max: s.files.config().file_bytes_max,
        external_addrs: net.external_addrs,
        reach: net.reach,
        problems: store.problems(),
        runtime_tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as u64,
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

/// How long `POST /v1/peers` waits for a dial's outcome.
const DIAL_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// `POST /v1/peers`: dials a peer (kept in the peer book and redialled) and answers with the
/// outcome: the peer connected to, or why not.
async fn dial(
    State(s): State<ApiState>,
    body: Result<Json<DialRequest>, JsonRejection>,
) -> Result<Json<DialReply>, ApiError> {
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    let addr = req
        .addr
        .parse()
        .map_err(|e| bad_request(format!("not a multiaddr ({e}): {:.100}", req.addr)))?;
    let peer_id = s
        .net
        .dial_and_wait(addr, DIAL_WAIT)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, "dial_failed", e.to_string()))?;
    Ok(Json(DialReply {
        addr: req.addr,
        peer_id,
    }))
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
        InsertOutcome::Erased => StatusCode::GONE,
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

/// Lists entries; sealed ones of private networks the teacher is a member of come opened.
async fn list_entries(
    State(s): State<ApiState>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
    filter: Result<Query<ListFilter>, QueryRejection>,
) -> Result<Json<Vec<crate::store::StoredEntry>>, ApiError> {
    let Query(filter) = filter.map_err(|e| bad_request(e.body_text()))?;
    let ingest = s.ingest.clone();
    let listed = tokio::task::spawn_blocking(move || {
        crate::private::seal::list_for(&ingest, &teacher.key, &filter)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))??;
    Ok(Json(listed))
}

/// `DELETE /v1/entries/{id}`: the school's admin purges an entry from this node alone (for
/// legal reasons); it is not stored here again. Other nodes learn nothing: a deletion or
/// removal for every node is an erasure entry.
async fn purge_entry(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
) -> Result<StatusCode, ApiError> {
    let id: EntryId = id.parse().map_err(bad_request)?;
    if !teacher.admin {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "admin_only",
            "only the school's admin may purge entries from this node".into(),
        ));
    }
    match s.ingest.store().purge_entry(id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no entry {id} on this node"),
        )),
    }
}

async fn get_entry(
    State(s): State<ApiState>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
    Path(id): Path<String>,
) -> Result<Json<EntryView>, ApiError> {
    let id: EntryId = id.parse().map_err(bad_request)?;
    let store = s.ingest.store();
    match store.lookup(&id)? {
        Some(Lookup::Entry(mut stored)) => {
            crate::private::seal::open_for(&s.ingest, &teacher.key, std::slice::from_mut(&mut stored))?;
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
