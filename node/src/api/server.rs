//! The API's state, routes and limits, its error type, and the small handlers; the guard
//! every request passes first is in `guard.rs`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use staffroom_protocol::limits::ENTRY_BYTES_MAX;
use staffroom_protocol::EntryId;
use tokio::sync::{watch, Semaphore};

use super::auth::{self, ReplayGuard};
use super::listen::ListenLimits;
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
pub(super) const REQUEST_BODY_BYTES_MAX: usize = ENTRY_BYTES_MAX + 4096;

#[derive(Clone)]
pub struct ApiState {
    pub ingest: Ingest,
    pub net: NetClient,
    pub sync: SyncHandle,
    /// Fetching and progress of the files resources carry.
    pub files: crate::files::FetchHandle,
    /// Full-text search over the entries here.
    pub search: crate::search::SearchIndex,
    /// This node's peer id, as text: what requests are signed for.
    pub node_id: Arc<str>,
    /// The random id of this run of the node, as hex: requests are signed for it too.
    pub(super) boot: Arc<str>,
    pub(super) clock: Clock,
    pub(super) replays: Arc<Mutex<ReplayGuard>>,
    /// Requests being handled at once, at most [`REQUESTS_IN_FLIGHT_MAX`].
    pub(super) slots: Arc<Semaphore>,
    /// The web pages' sign-ins, when the pages are served.
    pub(super) web: Option<Arc<crate::web::WebShared>>,
}

impl ApiState {
    pub fn new(
        ingest: Ingest,
        net: NetClient,
        sync: SyncHandle,
        node_id: String,
        clock: Clock,
        files: crate::files::FetchHandle,
        search: crate::search::SearchIndex,
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
            search,
            node_id: node_id.into(),
            boot: hex::encode(boot).into(),
            replays: Arc::new(Mutex::new(ReplayGuard::new(boot))),
            clock,
            slots: Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT_MAX)),
            web: None,
        }
    }

    /// The API with the web pages' sign-ins, so `POST /v1/web/sign-in` can issue links.
    pub fn with_web(mut self, web: Option<Arc<crate::web::WebShared>>) -> Self {
        self.web = web;
        self
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
        .route("/v1/entries/{id}/thread", get(get_thread))
        .route("/v1/sync", axum::routing::post(sync_now))
        .route(
            "/v1/web/sign-in",
            axum::routing::post(super::web_sign_in::issue),
        )
        .route("/v1/resolve/{prefix}", get(super::resolve::resolve))
        .route("/v1/search", get(super::search::search))
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
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::guard::guard,
        ))
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

pub(crate) fn bad_request(message: impl ToString) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", message.to_string())
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
        gossip_copies_received: net.gossip_copies_received,
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
    let (status, response) = submit_bytes(&s.ingest, &s.net, body.to_vec(), None).await?;
    Ok((status, Json(response)))
}

/// Ingests an entry a teacher submitted (by the API or the web pages) and gossips it; with
/// `author`, only an entry of theirs.
pub(crate) async fn submit_bytes(
    ingest: &Ingest,
    net: &NetClient,
    bytes: Vec<u8>,
    author: Option<staffroom_protocol::AuthorId>,
) -> Result<(StatusCode, SubmitResponse), ApiError> {
    if let Some(author) = author {
        let header = staffroom_protocol::Header::parse(&bytes)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
        if header.author != author {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "not_yours",
                "this entry is signed by another author".into(),
            ));
        }
    }
    let Ingested {
        id,
        network,
        outcome,
        understood,
    } = ingest.ingest(bytes.clone(), None).await?;
    // Stored first, then gossiped: what peers receive is already durable here, and an entry
    // the store refuses (a full disk) is never out in the network while its author is told
    // it was not posted.
    let gossip = net.publish(network, bytes).await.map_err(unavailable)?;
    let status = match outcome {
        InsertOutcome::Inserted => StatusCode::CREATED,
        InsertOutcome::AlreadyStored => StatusCode::OK,
        InsertOutcome::Erased => StatusCode::GONE,
    };
    tracing::info!(entry = %id.short(), network = %network.short(), ?outcome, peers = gossip.peers, "entry submitted");
    Ok((
        status,
        SubmitResponse {
            id,
            outcome,
            understood,
            gossip,
        },
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
    Ok(Json(entry_view(&s.ingest, &teacher.key, id)?))
}

/// `GET /v1/entries/{id}/thread`: the entry with its comments as a tree and, for an
/// enquiry, its notes by stage.
async fn get_thread(
    State(s): State<ApiState>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
    Path(id): Path<String>,
) -> Result<Json<crate::thread::Thread>, ApiError> {
    let id: EntryId = id.parse().map_err(bad_request)?;
    let ingest = s.ingest.clone();
    tokio::task::spawn_blocking(move || {
        let view = entry_view(&ingest, &teacher.key, id)?;
        let thread = crate::thread::assemble(view, |filter| {
            crate::private::seal::list_for(&ingest, &teacher.key, filter)
        })?;
        Ok(Json(thread))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))?
}

/// The entry `id` for `reader` (opened if sealed and theirs to read), with its versions.
pub(crate) fn entry_view(
    ingest: &Ingest,
    reader: &staffroom_protocol::AuthorId,
    id: EntryId,
) -> Result<EntryView, ApiError> {
    let store = ingest.store();
    match store.lookup(&id)? {
        Some(Lookup::Entry(mut stored)) => {
            crate::private::seal::open_for(ingest, reader, std::slice::from_mut(&mut stored))?;
            let versions = store.versions(&stored)?;
            let edited_by = (versions.current != id).then_some(versions.current);
            Ok(EntryView {
                stored: *stored,
                edited_by,
                versions: versions.all,
            })
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
