//! `POST /v1/networks/{id}/seal`: seals a member's content body with the private network's
//! writing key, for their CLI to sign. The caller is the author: the seal binds the author
//! and time it will be signed with.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use staffroom_protocol::private::Sealed;
use staffroom_protocol::NetworkId;

use super::server::{bad_request, ApiError, ApiState};
use super::types::SealRequest;
use crate::private::seal::SealingError;
use crate::store::TeacherRecord;

pub async fn seal(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    axum::Extension(teacher): axum::Extension<TeacherRecord>,
    body: Result<Json<SealRequest>, JsonRejection>,
) -> Result<Json<Sealed>, ApiError> {
    let network: NetworkId = id.parse().map_err(bad_request)?;
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    let node = s
        .node_id
        .parse()
        .ok()
        .and_then(|peer| crate::roster::node_key(&peer))
        .ok_or_else(|| bad_request("this node's key is not ed25519: it cannot seal"))?;
    let ingest = s.ingest.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let at = (network, teacher.key, req.created_at_ms);
        crate::private::seal::seal(&ingest, node, at, &req.body)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))?;
    sealed.map(Json).map_err(|e| {
        let (status, code) = match &e {
            SealingError::NotPrivate(_) | SealingError::FilesNotYet | SealingError::Seal(_) => {
                (StatusCode::BAD_REQUEST, "not_sealable")
            }
            SealingError::NotMember(..) => (StatusCode::FORBIDDEN, "not_member"),
            SealingError::NoKey(_) => (StatusCode::CONFLICT, "no_content_key"),
            SealingError::Random(_) | SealingError::Store(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "storage")
            }
        };
        ApiError(status, code, e.to_string())
    })
}
