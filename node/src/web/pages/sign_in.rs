//! Signing in and out. `GET /sign-in/{token}` shows a button rather than signing in at once,
//! so a link previewer or scanner that fetches the link does not use it up; `POST /sign-in`
//! redeems the link for a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` where
//! browsers come over TLS). Every form post must come from this origin and carry the
//! session's CSRF token (`sign-out` here; the writing forms alike).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use crate::web::layout::bare;
use crate::web::signin::{same_token, SignInError};
use crate::web::{Viewer, WebError, WebState};

pub async fn form(Path(token): Path<String>) -> Response {
    let body = html! {
        h1 { "Sign in to Staffroom" }
        p { "This link signs you in once. Use it on a computer you trust." }
        form method="post" action="/sign-in" {
            input type="hidden" name="token" value=(token);
            button type="submit" { "Sign in" }
        }
    };
    // The token is in this page's address: the pages' `Referrer-Policy: same-origin` keeps it
    // from leaving this origin (and the page links nowhere else). Not `no-referrer`: with
    // it, browsers post the form with `Origin: null`, which the origin check refuses.
    bare("Sign in", body).into_response()
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
}

pub async fn redeem(
    State(s): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, WebError> {
    same_origin(&headers, &s.shared.origin)?;
    let (mut session_secret, mut csrf_secret) = ([0u8; 32], [0u8; 32]);
    getrandom::fill(&mut session_secret)
        .and_then(|()| getrandom::fill(&mut csrf_secret))
        .map_err(|e| {
            tracing::error!(error = %e, "no randomness for a session");
            WebError::busy()
        })?;
    let now_ms = s.clock.now_ms();
    let redeemed =
        s.shared
            .signins()
            .redeem(form.token.trim(), session_secret, csrf_secret, now_ms);
    let (cookie, session) = redeemed.map_err(|e| WebError {
        status: match e {
            SignInError::Expired => StatusCode::GONE,
            _ => StatusCode::FORBIDDEN,
        },
        message: e.to_string(),
    })?;
    tracing::info!(teacher = %session.teacher.short(), "signed in to the web pages");
    let max_age_s = s.shared.signins().session_ms() / 1000;
    let secure = if s.shared.secure { "; Secure" } else { "" };
    let set_cookie = format!(
        "{}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}",
        s.shared.cookie_name
    );
    Ok(([(header::SET_COOKIE, set_cookie)], Redirect::to("/")).into_response())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn sign_out(
    State(s): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let cookie = checked_form(&viewer, &headers, &form.csrf, &s.shared.origin)?;
    s.shared.signins().sign_out(cookie);
    let secure = if s.shared.secure { "; Secure" } else { "" };
    let clear = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        s.shared.cookie_name
    );
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/")).into_response())
}

/// A form post by a signed-in teacher: from this origin, with their session's token. The
/// session cookie's value.
pub fn checked_form<'v>(
    viewer: &'v Viewer,
    headers: &HeaderMap,
    csrf: &str,
    origin: &str,
) -> Result<&'v str, WebError> {
    same_origin(headers, origin)?;
    match viewer {
        Viewer::Teacher { cookie, csrf: expected, .. } if same_token(csrf, expected) => {
            Ok(cookie)
        }
        Viewer::Teacher { .. } => Err(WebError::forbidden(
            "This form is out of date or was not sent from this site; reload the page and try again.",
        )),
        Viewer::Visitor(_) => Err(WebError::forbidden("Sign in first.")),
    }
}

/// A browser says where a post comes from: it must be these pages' origin (`public_url`), or,
/// when the pages are served directly over plain HTTP, `http://` and the `Host` the browser
/// asked (the same node by another name, such as `localhost`).
fn same_origin(headers: &HeaderMap, ours: &str) -> Result<(), WebError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser, or an old one: the token (and SameSite) still stand.
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let direct = ours.starts_with("http://")
        && host.is_some_and(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
    match origin.eq_ignore_ascii_case(ours) || direct {
        true => Ok(()),
        false => Err(WebError::forbidden("This form was sent from another site.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn posts_from_elsewhere_are_refused() {
        let direct = "http://127.0.0.1:4042";
        let check = |origin, host, ours| same_origin(&headers(origin, host), ours).is_ok();
        assert!(check(
            Some("http://127.0.0.1:4042"),
            "127.0.0.1:4042",
            direct
        ));
        assert!(
            check(Some("http://localhost:4042"), "localhost:4042", direct),
            "another name"
        );
        assert!(check(None, "127.0.0.1:4042", direct));
        assert!(!check(
            Some("https://evil.example"),
            "127.0.0.1:4042",
            direct
        ));
        assert!(!check(Some("null"), "127.0.0.1:4042", direct));
        // Behind a TLS proxy: the public origin only, whatever Host the proxy sends.
        let proxied = "https://staffroom.school.example";
        assert!(check(Some(proxied), "127.0.0.1:4042", proxied));
        assert!(
            !check(Some("http://127.0.0.1:4042"), "127.0.0.1:4042", proxied),
            "not in clear"
        );
    }
}
