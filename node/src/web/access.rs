//! Who is looking, and what they may see. A teacher registered here, signed in, sees every
//! network this node follows (a private network's content only where they are a member and
//! it opens). Anyone else sees only the networks whose facilitators made them public (kind
//! 12): every page of another answers 404, as if it did not exist here, so a visitor learns
//! nothing of what else the school follows.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use staffroom_protocol::{AuthorId, Body, NetworkId};

use super::{PublicNetworks, WebState};
use crate::ingest::Ingest;
use crate::store::{NetworkRecord, StoreError, StoredEntry, TeacherRecord};
use crate::thread::shown;

/// The session cookie's name for pages at `origin`. Browsers keep cookies per host, not per
/// port, so two nodes on one machine (or another service there) would otherwise share — and
/// overwrite, and be sent — each other's sessions: the name carries the origin's hash. Over
/// TLS it is a `__Host-` cookie, which browsers bind to the exact host and path `/`.
pub fn session_cookie_name(origin: &str, secure: bool) -> String {
    let tag = &blake3::hash(origin.as_bytes()).to_hex()[..12];
    match secure {
        true => format!("__Host-staffroom_{tag}"),
        false => format!("staffroom_{tag}"),
    }
}

/// How long the list of public networks is reused before it is read again.
const PUBLIC_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Who is asking for a page.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// Anyone not signed in, with the networks public when they asked.
    Visitor(PublicNetworks),
    Teacher {
        record: TeacherRecord,
        /// The session cookie's value.
        cookie: String,
        /// The token this session's forms carry.
        csrf: String,
    },
}

impl FromRequestParts<WebState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let Some(cookie) = session_cookie(parts, &state.shared.cookie_name) else {
            return Ok(visitor(state).await);
        };
        let session = {
            let signins = state.shared.signins();
            signins.session(cookie, state.clock.now_ms()).cloned()
        };
        let Some(session) = session else {
            return Ok(visitor(state).await);
        };
        // A teacher the admin has removed since signing in is signed out.
        let (store, key) = (state.ingest.store().clone(), session.teacher);
        let record = match tokio::task::spawn_blocking(move || store.teacher(&key)).await {
            Ok(read) => read.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match record {
            Ok(Some(record)) => Ok(Viewer::Teacher {
                record,
                cookie: cookie.to_owned(),
                csrf: session.csrf,
            }),
            Ok(None) => Ok(visitor(state).await),
            Err(e) => {
                tracing::warn!(error = %e, "teacher lookup failed; treating as signed out");
                Ok(visitor(state).await)
            }
        }
    }
}

/// The public networks as last read, if read less than `PUBLIC_TTL` before `now`.
fn fresh_public(state: &WebState, now: std::time::Instant) -> Option<PublicNetworks> {
    let cached = state
        .shared
        .public
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (at, public) = cached.as_ref()?;
    (now.duration_since(*at) < PUBLIC_TTL).then(|| public.clone())
}

/// A visitor, with the public networks: read at most every `PUBLIC_TTL` (each is a walk of
/// the network's time order for its newest publication), on a blocking thread. A failure to
/// read shows nothing as public.
async fn visitor(state: &WebState) -> Viewer {
    let now = std::time::Instant::now();
    if let Some(public) = fresh_public(state, now) {
        return Viewer::Visitor(public);
    }
    // One reader at a time: the others wait for its answer rather than each walking every
    // network again.
    let _reading = state.shared.public_refresh.lock().await;
    if let Some(public) = fresh_public(state, now) {
        return Viewer::Visitor(public);
    }
    let ingest = state.ingest.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let store = ingest.store();
        let mut public = std::collections::BTreeSet::new();
        for record in store.networks()? {
            if store.is_public(&record.id)? {
                public.insert(record.id);
            }
        }
        Ok(public)
    })
    .await;
    let public: PublicNetworks = match read {
        Ok(Ok(public)) => std::sync::Arc::new(public),
        failed => {
            tracing::warn!(
                ?failed,
                "cannot read which networks are public; showing none"
            );
            return Viewer::Visitor(PublicNetworks::default());
        }
    };
    *state
        .shared
        .public
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some((now, public.clone()));
    Viewer::Visitor(public)
}

/// The session cookie's value, if the request carries one.
fn session_cookie<'p>(parts: &'p Parts, cookie_name: &str) -> Option<&'p str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == cookie_name).then_some(value)
        })
}

impl Viewer {
    /// The teacher, when signed in.
    pub fn teacher(&self) -> Option<&TeacherRecord> {
        match self {
            Viewer::Teacher { record, .. } => Some(record),
            Viewer::Visitor(_) => None,
        }
    }

    /// The key sealed entries are opened for: a visitor's opens nothing (it is nobody's).
    pub fn reader(&self) -> AuthorId {
        self.teacher().map(|t| t.key).unwrap_or(AuthorId([0; 32]))
    }

    /// The networks whose pages this viewer may see.
    pub fn networks(&self, ingest: &Ingest) -> Result<Vec<NetworkRecord>, StoreError> {
        let mut networks = ingest.store().networks()?;
        if let Viewer::Visitor(public) = self {
            networks.retain(|n| public.contains(&n.id));
        }
        Ok(networks)
    }

    /// This viewer may see `network`'s pages.
    pub fn sees(&self, ingest: &Ingest, network: &NetworkId) -> Result<bool, StoreError> {
        match self {
            Viewer::Teacher { .. } => Ok(ingest.store().network(network)?.is_some()),
            Viewer::Visitor(public) => {
                Ok(public.contains(network) && ingest.store().network(network)?.is_some())
            }
        }
    }

    /// This viewer may read `stored`: its network is one they see, and it is content they
    /// can read (a sealed entry only once opened for them).
    pub fn reads(&self, ingest: &Ingest, stored: &StoredEntry) -> Result<bool, StoreError> {
        let readable = !matches!(shown(stored), Body::Sealed(_) | Body::KeyGrants(_))
            && shown(stored).kind().is_content();
        Ok(readable && self.sees(ingest, &stored.entry.network)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(cookies: &[&str]) -> Parts {
        let mut b = axum::http::Request::builder();
        for c in cookies {
            b = b.header(header::COOKIE, *c);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn each_origin_has_its_own_cookie() {
        let (a, b) = ("http://127.0.0.1:4042", "http://127.0.0.1:4052");
        assert_ne!(session_cookie_name(a, false), session_cookie_name(b, false));
        assert!(session_cookie_name(a, true).starts_with("__Host-"));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            session_cookie(
                &parts(&["a=1; staffroom_session=abc; b=2"]),
                "staffroom_session"
            ),
            Some("abc")
        );
        assert_eq!(
            session_cookie(
                &parts(&["a=1", "staffroom_session=def"]),
                "staffroom_session"
            ),
            Some("def")
        );
        assert_eq!(
            session_cookie(&parts(&["xstaffroom_session=abc"]), "staffroom_session"),
            None
        );
        assert_eq!(session_cookie(&parts(&[]), "staffroom_session"), None);
    }
}
