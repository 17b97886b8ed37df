//! `/v1/teachers`: the school's admin registers the teachers who may use this node, each with
//! their own key. Admin only (the guard checks).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use staffroom_protocol::AuthorId;

use super::server::{bad_request, ApiError, ApiState};
use super::types::AddTeacherRequest;
use crate::store::{TeacherRecord, TEACHERS_MAX};

/// A teacher's name on this node.
const TEACHER_NAME_BYTES_MAX: usize = 100;

pub async fn list(State(s): State<ApiState>) -> Result<Json<Vec<TeacherRecord>>, ApiError> {
    Ok(Json(s.ingest.store().teachers()?))
}

pub async fn add(
    State(s): State<ApiState>,
    body: Result<Json<AddTeacherRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<TeacherRecord>), ApiError> {
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.len() > TEACHER_NAME_BYTES_MAX || name.chars().any(char::is_control)
    {
        return Err(bad_request(format!(
            "a teacher's name is one line of 1 to {TEACHER_NAME_BYTES_MAX} bytes"
        )));
    }
    if ed25519_dalek::VerifyingKey::from_bytes(req.key.as_bytes()).is_err() {
        return Err(bad_request("not an ed25519 public key"));
    }
    let store = s.ingest.store();
    let known = store.teacher(&req.key)?;
    if known.is_none() && store.teachers()?.len() >= TEACHERS_MAX {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "too_many_teachers",
            format!("this node registers at most {TEACHERS_MAX} teachers"),
        ));
    }
    let record = TeacherRecord {
        key: req.key,
        name,
        admin: req.admin || known.as_ref().is_some_and(|t| t.admin),
        added_at_ms: known.map_or(s.ingest.clock().now_ms(), |t| t.added_at_ms),
    };
    store.put_teacher(record.clone()).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

pub async fn remove(
    State(s): State<ApiState>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key: AuthorId = key.parse().map_err(bad_request)?;
    let store = s.ingest.store();
    match store.teacher(&key)? {
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no teacher {} is registered here", key.short()),
        )),
        Some(t) if t.admin => Err(ApiError(
            StatusCode::CONFLICT,
            "admin",
            "the school's admin cannot be removed".into(),
        )),
        Some(_) => {
            store.remove_teacher(key).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
