//! `POST /v1/web/sign-in`: a one-time link that signs the teacher whose key signed this
//! request in to the node's web pages (`staffroom web login`). The link is the pages'
//! origin, `/sign-in/`, and 32 random bytes; it works once, within `[web]
//! sign_in_link_seconds`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::server::{ApiError, ApiState};
use super::types::WebSignInResponse;
use crate::store::TeacherRecord;
use crate::web::signin::SignInError;

pub async fn issue(
    State(s): State<ApiState>,
    axum::Extension(teacher): axum::Extension<TeacherRecord>,
) -> Result<Json<WebSignInResponse>, ApiError> {
    let Some(web) = &s.web else {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "web_disabled",
            "this node does not serve web pages ([web] enabled = false in its config)".into(),
        ));
    };
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "worker",
            format!("no randomness: {e}"),
        )
    })?;
    let now_ms = s.clock.now_ms();
    let issued = web.signins().issue(teacher.key, secret, now_ms);
    match issued {
        Ok((token, expires_at_ms)) => {
            tracing::info!(teacher = %teacher.key.short(), "web sign-in link issued");
            Ok(Json(WebSignInResponse {
                url: format!("{}/sign-in/{token}", web.origin),
                expires_at_ms,
                valid_secs: expires_at_ms.saturating_sub(now_ms) / 1000,
            }))
        }
        Err(e @ SignInError::TooManyLinks) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            e.to_string(),
        )),
        Err(e) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "worker",
            e.to_string(),
        )),
    }
}
