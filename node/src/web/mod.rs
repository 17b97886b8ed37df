//! The node's web pages: server-rendered HTML (maud) on the API's accept loop, on a listener
//! of their own. Teachers registered on this node sign in with a one-time link from
//! `staffroom web login` (`signin.rs`); what each visitor may see is decided in `access.rs`;
//! the pages are in `pages/`. No page runs a script to be read, and every response carries a
//! strict Content-Security-Policy (`headers.rs`).

mod access;
mod config;
mod download;
mod error;
mod feeds;
mod headers;
mod layout;
pub mod markdown;
mod names;
mod pages;
pub mod signin;
mod write;

use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{watch, Semaphore};

pub use access::Viewer;
pub use config::{WebConfig, WebConfigError, DEFAULT_WEB_PORT};
pub use error::WebError;
use signin::SignIns;

use crate::api::listen::ListenLimits;
use crate::clock::Clock;
use crate::ingest::Ingest;

/// Page requests handled at once; more get 503 rather than queueing without bound.
const PAGES_IN_FLIGHT_MAX: usize = 32;

/// What the API shares with the pages: sign-in links are issued there, redeemed here.
pub struct WebShared {
    pub signins: Mutex<SignIns>,
    /// Where browsers reach the pages (`https://host` or `http://addr`), no trailing slash.
    pub origin: String,
    /// Cookies carry `Secure`.
    pub secure: bool,
    /// The session cookie's name, this node's own (`access::session_cookie_name`).
    pub cookie_name: String,
    /// The public networks, as last read (see `access::public_networks`).
    public: Mutex<Option<(std::time::Instant, PublicNetworks)>>,
    /// Held by the one request that reads the public networks again.
    public_refresh: tokio::sync::Mutex<()>,
}

/// The networks followed here whose pages are public.
pub type PublicNetworks = Arc<std::collections::BTreeSet<staffroom_protocol::NetworkId>>;

impl WebShared {
    pub fn new(config: &WebConfig, bound: std::net::SocketAddr) -> Self {
        WebShared {
            signins: Mutex::new(SignIns::new(
                u64::from(config.sign_in_link_seconds) * 1000,
                u64::from(config.session_minutes) * 60_000,
            )),
            origin: config.origin(bound),
            secure: config.secure(),
            cookie_name: access::session_cookie_name(&config.origin(bound), config.secure()),
            public: Mutex::new(None),
            public_refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn signins(&self) -> std::sync::MutexGuard<'_, SignIns> {
        self.signins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone)]
pub struct WebState {
    pub ingest: Ingest,
    /// Publishes what teachers write from the pages.
    pub net: crate::net::NetClient,
    pub search: crate::search::SearchIndex,
    pub files: crate::files::FetchHandle,
    pub clock: Clock,
    /// This node's key, which seals private networks' content with the keys granted to it
    /// (`None` when the node's identity is not ed25519: it cannot seal).
    pub node: Option<staffroom_protocol::NodeKey>,
    pub shared: Arc<WebShared>,
    slots: Arc<Semaphore>,
}

impl WebState {
    /// Everything but what is shared with the API, which exists once the pages are bound.
    pub fn partial(
        ingest: Ingest,
        net: crate::net::NetClient,
        search: crate::search::SearchIndex,
        files: crate::files::FetchHandle,
        clock: Clock,
        node: Option<staffroom_protocol::NodeKey>,
    ) -> impl FnOnce(Arc<WebShared>) -> WebState {
        move |shared| WebState {
            ingest,
            net,
            search,
            files,
            clock,
            node,
            shared,
            slots: Arc::new(Semaphore::new(PAGES_IN_FLIGHT_MAX)),
        }
    }
}

/// The pages' routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(pages::networks::home))
        .route("/style.css", get(headers::stylesheet))
        .route("/sign-in/{token}", get(pages::sign_in::form))
        .route("/sign-in", post(pages::sign_in::redeem))
        .route("/sign-out", post(pages::sign_in::sign_out))
        .route("/n/{network}", get(pages::stream::stream))
        .route("/e/{id}", get(pages::entry::entry))
        .route("/e/{id}/files/{index}", get(download::download))
        .route("/a/{author}", get(pages::author::author))
        .route("/search", get(pages::search::search))
        .route(
            "/w/prepare",
            post(write::prepare).layer(DefaultBodyLimit::max(WRITE_BYTES_MAX)),
        )
        .route(
            "/w/submit",
            post(write::submit).layer(DefaultBodyLimit::max(WRITE_BYTES_MAX)),
        )
        .route("/w/upload", post(write::upload))
        .route("/w/no-script", post(pages::compose::no_script))
        .route("/n/{network}/write", get(pages::compose::write))
        .route("/key", get(pages::compose::key))
        .route("/write.js", get(headers::script))
        .route("/n/{network}/feed.atom", get(feeds::network))
        .route("/a/{author}/feed.atom", get(feeds::author))
        .route("/tags/{tag}/feed.atom", get(feeds::tag))
        .route("/subjects/{subject}/feed.atom", get(feeds::subject))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::guard,
        ))
        .layer(DefaultBodyLimit::max(FORM_BYTES_MAX))
        .with_state(state)
}

/// Form bodies at most (the pages' forms carry a few short fields).
const FORM_BYTES_MAX: usize = 16 * 1024;
/// A write's JSON at most: a maximal entry in hex, with room for its fields' escapes.
const WRITE_BYTES_MAX: usize = 4 * staffroom_protocol::limits::ENTRY_BYTES_MAX + 4096;

/// Serves the pages on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: watch::Receiver<bool>,
) {
    let routes = router(state);
    crate::api::listen::serve(listener, None, routes, ListenLimits::default(), shutdown).await
}
