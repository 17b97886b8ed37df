//! What every page response passes through: a slot (bounded work), then the security
//! headers — a Content-Security-Policy that allows nothing but this origin's stylesheet and
//! scripts and forms posting back here, no framing, no sniffing, no referrer beyond this
//! origin, no caching of what a signed-in teacher saw. And the stylesheet itself.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{WebError, WebState};
use crate::api::listen::ConnHandle;

/// Nothing from elsewhere, no inline script or style, forms only to here, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub(super) async fn guard(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let Ok(_permit) = state.slots.try_acquire() else {
        return with_headers(WebError::busy().into_response());
    };
    let _in_handler = request
        .extensions()
        .get::<ConnHandle>()
        .map(|conn| conn.0.enter_handler());
    with_headers(next.run(request).await)
}

fn with_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    response
}

/// `GET /write.js`: the writing forms' script (signing in the browser).
pub(super) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("write.js"),
    )
        .into_response()
}

/// `GET /style.css`.
pub(super) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}
