//! A typed client for the node's API, used by the CLI and by end-to-end tests: finding the
//! node, its transport (plain on loopback, TLS with a pinned certificate), and signing every
//! request (`auth`). The calls themselves, one per route, are in `calls.rs`.

mod calls;
mod files;
pub use files::hash_file;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use staffroom_protocol::SigningKey;

use super::auth;
use super::types::*;
use crate::config::{DataDir, NodeConfig};

/// One API call takes at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A join dials the inviter and catches up with it: as long as a sync may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(330);
/// Responses larger than this are refused (a full listing is well under it).
const RESPONSE_BYTES_MAX: usize = 128 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("node not running at {addr}: start it with `staffroom node run`")]
    NotRunning { addr: String },
    #[error("no node has run with data directory {dir}: start one with `staffroom node run`, or, on a teacher's own computer, pin the school's node with `staffroom connect HOST:PORT --pin PIN`")]
    NoNode { dir: String },
    #[error("no Staffroom data directory at {dir}: give the one `staffroom init` made (--data-dir or STAFFROOM_DATA_DIR), or run `staffroom --data-dir {dir} init`")]
    NoDataDir { dir: String },
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("API request failed: {0}")]
    Http(String),
    #[error("{0}")]
    Key(String),
    /// The teacher's `client.toml` does not parse: where, and why.
    #[error("{0}")]
    Config(String),
    #[error("the node answering at {addr} is {found}, not {expected}, the node this data directory uses: refusing to send it anything")]
    WrongNode {
        addr: String,
        expected: String,
        found: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ClientError {
    /// The API's error code, if the node answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct ApiClient {
    base: String,
    addr: String,
    /// The node's peer id: every request is signed for it.
    node_id: String,
    key: SigningKey,
    http: reqwest::Client,
    transport: Transport,
    /// What `GET /v1/hello` said, shared by clones.
    session: Arc<tokio::sync::Mutex<Option<Session>>>,
}

/// The node's current run and clock, as this client last learnt them.
#[derive(Debug, Clone)]
struct Session {
    boot: String,
    /// The node's clock minus this computer's, ms.
    offset_ms: i64,
}

/// A teacher's CLI settings for a school node on another computer (`client.toml`, written
/// by `staffroom connect`): where it is, and which node it is, pinned at first contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// `host:port` of the node's API.
    pub node: String,
    /// The node's peer id, as it said at first contact.
    pub node_id: String,
    /// The pin of the node's TLS certificate, when its API is served over TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// How a client reaches the node's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// HTTP, on loopback.
    Plain,
    /// HTTPS, accepting only the certificate with this pin — or, with `None` (first contact),
    /// any certificate, whose pin `ApiClient::hello` returns.
    Tls { pin: Option<String> },
}

/// An HTTP client for `transport`. TLS is always configured (reqwest would otherwise look
/// for a process-wide crypto provider): for plain HTTP, one that accepts no certificate.
fn http_client(
    transport: &Transport,
    seen: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
) -> reqwest::Client {
    let pin = match transport {
        Transport::Plain => Some("none: plain HTTP".to_owned()),
        Transport::Tls { pin } => pin.clone(),
    };
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        // Well below the node's deadline for the next request's headers (10 s, which also
        // closes idle kept-alive connections), so a pooled connection is never one it closes.
        .pool_idle_timeout(Duration::from_secs(5))
        .no_proxy()
        .tls_backend_preconfigured(super::tls::client_config(pin, seen))
        .build()
        .expect("an HTTP client with a preconfigured TLS backend always builds")
}

impl ApiClient {
    /// A client for the node at `addr` whose peer id is `node_id`, signing as `key`, over
    /// plain HTTP (the node's API on loopback).
    pub fn new(addr: impl ToString, node_id: String, key: SigningKey) -> Self {
        let addr = addr.to_string();
        ApiClient {
            base: format!("http://{addr}"),
            addr,
            node_id,
            key,
            http: http_client(&Transport::Plain, Arc::default()),
            transport: Transport::Plain,
            session: Arc::default(),
        }
    }

    /// The same node over TLS, accepting only the certificate with `pin`.
    pub fn over_tls(self, pin: String) -> Self {
        let transport = Transport::Tls { pin: Some(pin) };
        ApiClient {
            base: format!("https://{}", self.addr),
            http: http_client(&transport, Arc::default()),
            transport,
            session: Arc::default(),
            ..self
        }
    }

    /// The same node, signing as another teacher.
    pub fn as_teacher(&self, key: SigningKey) -> Self {
        ApiClient {
            key,
            session: Arc::default(),
            ..self.clone()
        }
    }

    /// Who answers at `addr` (the one unsigned call), and over TLS the pin of the
    /// certificate it showed.
    pub async fn hello(
        addr: &str,
        transport: &Transport,
    ) -> Result<(HelloResponse, Option<String>), ClientError> {
        let seen: Arc<std::sync::Mutex<Option<Vec<u8>>>> = Arc::default();
        let http = http_client(transport, seen.clone());
        let scheme = match transport {
            Transport::Plain => "http",
            Transport::Tls { .. } => "https",
        };
        let response = http
            .get(format!("{scheme}://{addr}/v1/hello"))
            .send()
            .await
            .map_err(|e| {
                let mut text = format!("{e}");
                let mut source = std::error::Error::source(&e);
                while let Some(inner) = source {
                    text = format!("{text}: {inner}");
                    source = inner.source();
                }
                if text.contains("certificate") {
                    ClientError::Http(format!("refusing the node at {addr}: {text}"))
                } else if e.is_connect() {
                    ClientError::NotRunning {
                        addr: addr.to_owned(),
                    }
                } else {
                    ClientError::Http(format!("no Staffroom node answers at {addr}: {text}"))
                }
            })?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let hello = response.json().await.map_err(|e| {
            ClientError::Http(format!(
                "what answers at {addr} is not a Staffroom node: {e}"
            ))
        })?;
        let pin = seen
            .lock()
            .ok()
            .and_then(|s| s.as_deref().map(super::tls::pin_of));
        Ok((hello, pin))
    }

    /// The client for data directory `dir`: the node configured by `staffroom connect`
    /// (`client.toml`), or else the node that runs on `dir` itself; signing as `dir`'s teacher.
    pub fn from_data_dir(dir: &Path) -> Result<Self, ClientError> {
        let files = DataDir::new(dir);
        // The commonest slip: a data directory that is not there (a typo, another user's).
        if !dir.is_dir() {
            return Err(ClientError::NoDataDir {
                dir: dir.display().to_string(),
            });
        }
        let key = crate::teacher_key::load(&files.teacher_key())
            .map_err(|e| ClientError::Key(e.to_string()))?;
        if let Some(text) = read_small(&files.client_config())? {
            let config: ClientConfig = toml::from_str(&text).map_err(|e| {
                ClientError::Config(format!(
                    "{}, {}: {}",
                    files.client_config().display(),
                    crate::config::place_of(&text, e.span()),
                    e.message().trim()
                ))
            })?;
            let client = ApiClient::new(config.node, config.node_id, key);
            return Ok(match config.pin {
                Some(pin) => client.over_tls(pin),
                None => client,
            });
        }
        let configured = || NodeConfig::load(dir, None).map(|c| c.api_listen).ok();
        let addr: Option<SocketAddr> = match read_small(&files.api_addr())? {
            Some(text) => text.parse().ok(),
            None => configured(),
        };
        let Some(addr) = addr else {
            return Err(ClientError::NoNode {
                dir: dir.display().to_string(),
            });
        };
        // No node id means no node has ever run here: whatever answers at `addr` is not ours.
        let node_id = read_small(&files.node_id())?.ok_or_else(|| ClientError::NoNode {
            dir: dir.display().to_string(),
        })?;
        let client = ApiClient::new(addr, node_id, key);
        Ok(match read_small(&files.api_pin())? {
            Some(pin) => client.over_tls(pin),
            None => client,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Signs a request for this node: method, path and query, body, time, a fresh nonce.
    /// `body_hash` is given for bodies streamed from a file (its root); otherwise the body's
    /// bytes are hashed.
    fn signed(
        &self,
        request: reqwest::RequestBuilder,
        session: &Session,
        body_hash: Option<blake3::Hash>,
    ) -> Result<reqwest::Request, ClientError> {
        let mut request = request
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let url = request.url();
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let body_hash = match body_hash {
            Some(hash) => hash,
            None => blake3::hash(request.body().and_then(|b| b.as_bytes()).unwrap_or(&[])),
        };
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| ClientError::Http(e.to_string()))?;
        let call = auth::Call {
            node: &self.node_id,
            boot: &session.boot,
            method: request.method().as_str(),
            target: &target,
            body_hash,
        };
        let node_now = crate::clock::now_ms().saturating_add_signed(session.offset_ms);
        let header = call.sign(&self.key, node_now, nonce);
        let value = reqwest::header::HeaderValue::from_str(&header)
            .map_err(|e| ClientError::Http(e.to_string()))?;
        request
            .headers_mut()
            .insert(reqwest::header::AUTHORIZATION, value);
        Ok(request)
    }

    /// Sends a signed request. If the node restarted, or its clock moved, since this client
    /// last asked who it is, asks again and signs once more.
    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let retry = request.try_clone();
        match self.send_once(request, false).await {
            Err(ClientError::Api { code, .. })
                if matches!(code.as_str(), "node_restarted" | "stale_request") =>
            {
                let retry = retry.ok_or_else(|| ClientError::Http("cannot re-sign".into()))?;
                self.send_once(retry, true).await
            }
            other => other,
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        refresh: bool,
    ) -> Result<T, ClientError> {
        let response = self.execute(request, refresh, None).await?;
        if response
            .content_length()
            .is_some_and(|n| n as usize > RESPONSE_BYTES_MAX)
        {
            return Err(ClientError::Http("response too large".into()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        if bytes.is_empty() {
            // Endpoints that answer with no body deserialize from JSON null.
            return serde_json::from_slice(b"null").map_err(|e| ClientError::Http(e.to_string()));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Http(format!("bad response: {e}")))
    }

    /// Signs and sends a request; a refusal becomes the node's error, success the response
    /// (its body not yet read).
    async fn execute(
        &self,
        request: reqwest::RequestBuilder,
        refresh: bool,
        body_hash: Option<blake3::Hash>,
    ) -> Result<reqwest::Response, ClientError> {
        let session = self.session(refresh).await?;
        let request = self.signed(request, &session, body_hash)?;
        let response = self.http.execute(request).await.map_err(|e| {
            if e.is_connect() {
                ClientError::NotRunning {
                    addr: self.addr.clone(),
                }
            } else {
                ClientError::Http(e.to_string())
            }
        })?;
        match response.status().is_success() {
            true => Ok(response),
            false => Err(refusal(response).await),
        }
    }

    /// The node's run id and clock offset, asked once (or again when `refresh`). The node
    /// must be the one this client is for: anything else answering at its address is refused.
    async fn session(&self, refresh: bool) -> Result<Session, ClientError> {
        let mut cached = self.session.lock().await;
        if let (Some(session), false) = (cached.as_ref(), refresh) {
            return Ok(session.clone());
        }
        let asked_at = crate::clock::now_ms();
        let (hello, _) = ApiClient::hello(&self.addr, &self.transport).await?;
        if hello.node_id != self.node_id {
            return Err(ClientError::WrongNode {
                addr: self.addr.clone(),
                expected: self.node_id.clone(),
                found: hello.node_id,
            });
        }
        let session = Session {
            boot: hello.boot,
            offset_ms: hello.clock_ms as i64 - asked_at as i64,
        };
        *cached = Some(session.clone());
        Ok(session)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A small text file's trimmed contents, or `None` if it does not exist.
fn read_small(path: &Path) -> Result<Option<String>, ClientError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ClientError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The node's refusal of a request, from its error body.
async fn refusal(response: reqwest::Response) -> ClientError {
    let status = response.status();
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return ClientError::Http(e.to_string()),
    };
    match serde_json::from_slice::<ApiErrorBody>(&bytes) {
        Ok(body) => ClientError::Api {
            status: status.as_u16(),
            code: body.code,
            message: body.error,
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: "http".into(),
            message: format!("node answered {status}"),
        },
    }
}
