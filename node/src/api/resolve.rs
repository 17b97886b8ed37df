//! `GET /v1/resolve/{prefix}`: what the start of an id, as people type it (4 to 64 hex
//! characters, like git's short hashes), could mean on this node: the entries, authors and
//! networks whose ids start with it, a few of each.

use axum::extract::{Path, State};
use axum::Json;
use staffroom_protocol::IdPrefix;

use super::server::{bad_request, ApiError, ApiState};
use super::types::ResolveView;

/// Candidates of each sort shown at most; one more is returned to say that there are more.
pub const RESOLVE_CANDIDATES_MAX: usize = 10;

pub async fn resolve(
    State(s): State<ApiState>,
    Path(prefix): Path<String>,
) -> Result<Json<ResolveView>, ApiError> {
    let prefix: IdPrefix = prefix.parse().map_err(|e| bad_request(format!("{e}")))?;
    let store = s.ingest.store();
    let limit = RESOLVE_CANDIDATES_MAX + 1;
    Ok(Json(ResolveView {
        entries: store.entries_with_prefix(&prefix, limit)?,
        authors: store.authors_with_prefix(&prefix, limit)?,
        networks: store.networks_with_prefix(&prefix, limit)?,
        prefix: prefix.as_str().to_owned(),
    }))
}
