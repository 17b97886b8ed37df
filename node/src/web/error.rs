//! A page that could not be shown: its status and one line for the reader, as a small HTML
//! page. Nothing internal (paths, store errors) reaches the reader; the log has it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::server::ApiError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    /// Not here, or not for this viewer: the same answer, so a visitor cannot tell a private
    /// entry from one that does not exist.
    pub fn not_found() -> Self {
        WebError {
            status: StatusCode::NOT_FOUND,
            message: "There is nothing here, or you need to sign in to see it.".into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        WebError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        WebError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    pub fn busy() -> Self {
        WebError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "The node is busy; try again in a moment.".into(),
        }
    }

    fn internal() -> Self {
        WebError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "Something went wrong on this node; its log says what.".into(),
        }
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error serving a page");
        WebError::internal()
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        match e.0 {
            StatusCode::NOT_FOUND => WebError::not_found(),
            s if s.is_client_error() => WebError::bad_request(e.2),
            s => {
                tracing::error!(status = %s, code = e.1, error = %e.2, "error serving a page");
                WebError {
                    status: s,
                    message: match s {
                        StatusCode::SERVICE_UNAVAILABLE => {
                            "Search is not available right now; try again in a moment.".into()
                        }
                        _ => WebError::internal().message,
                    },
                }
            }
        }
    }
}

impl From<tokio::task::JoinError> for WebError {
    fn from(e: tokio::task::JoinError) -> Self {
        tracing::error!(error = %e, "page worker failed");
        WebError::internal()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "That did not work",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::SERVICE_UNAVAILABLE => "Busy",
            _ => "Something went wrong",
        };
        let body = maud::html! { h1 { (title) } p { (self.message) } p { a href="/" { "Back to the start" } } };
        (self.status, super::layout::bare(title, body)).into_response()
    }
}
