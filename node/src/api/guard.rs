//! The guard every API request passes before its handler: the body read within a deadline,
//! then one of the slots, then authentication (a registered teacher's signature over this
//! node, the call and its body; admin-only routes need the admin's key).

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth;
use super::listen::ConnHandle;
use super::server::{ApiError, ApiState, REQUEST_BODY_BYTES_MAX};

/// A request body (but an upload's) arrives in full within this, or the request fails.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads the request's body (within `BODY_TIMEOUT`), then takes one of the slots (only
/// requests being processed hold one, so stalled clients cannot take them all), then
/// authenticates the request before any handler runs: a signature by a registered teacher
/// over this node, the call and its body, fresh and never seen before (see `auth`).
/// Admin-only routes need the admin's key. Only `/v1/hello` is open.
pub(super) async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
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
