//! A typed client for the node's API, used by the CLI and by end-to-end tests.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use staffroom_protocol::{EntryId, NetworkId};

use super::types::*;
use crate::config::{DataDir, NodeConfig};
use crate::net::PeerInfo;
use crate::store::{ListFilter, NetworkRecord, StoredEntry};

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
    #[error("no node found for data directory {dir}: start one with `staffroom node run`")]
    NoNode { dir: String },
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("API request failed: {0}")]
    Http(String),
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
    addr: SocketAddr,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(addr: SocketAddr, token: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .build()
            .expect("a plain HTTP client always builds");
        ApiClient {
            base: format!("http://{addr}"),
            addr,
            token,
            http,
        }
    }

    /// Finds the node that runs with `dir` as its data directory: the address it last bound,
    /// or else the configured one.
    pub fn from_data_dir(dir: &Path) -> Result<Self, ClientError> {
        let files = DataDir::new(dir);
        let read = |path: std::path::PathBuf| match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ClientError::Io {
                path: path.display().to_string(),
                source,
            }),
        };
        let configured = || NodeConfig::load(dir, None).map(|c| c.api_listen).ok();
        let addr = match read(files.api_addr())? {
            Some(text) => text.parse().ok(),
            None => configured(),
        };
        let Some(addr) = addr else {
            return Err(ClientError::NoNode {
                dir: dir.display().to_string(),
            });
        };
        // No token means no node has ever run here: whatever answers at `addr` is not ours.
        let token = read(files.api_token())?.ok_or_else(|| ClientError::NotRunning {
            addr: addr.to_string(),
        })?;
        Ok(ApiClient::new(addr, token))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| {
            if e.is_connect() {
                ClientError::NotRunning {
                    addr: self.addr.to_string(),
                }
            } else {
                ClientError::Http(e.to_string())
            }
        })?;
        let status = response.status();
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
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ApiErrorBody>(&bytes) {
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
            });
        }
        if bytes.is_empty() {
            // Endpoints that answer with no body deserialize from JSON null.
            return serde_json::from_slice(b"null").map_err(|e| ClientError::Http(e.to_string()));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Http(format!("bad response: {e}")))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.send(self.http.get(self.url("/v1/status"))).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, ClientError> {
        self.send(self.http.get(self.url("/v1/peers"))).await
    }

    pub async fn dial(&self, addr: &str) -> Result<(), ClientError> {
        let body = DialRequest {
            addr: addr.to_owned(),
        };
        self.send(self.http.post(self.url("/v1/peers")).json(&body))
            .await
    }

    pub async fn networks(&self) -> Result<Vec<NetworkRecord>, ClientError> {
        self.send(self.http.get(self.url("/v1/networks"))).await
    }

    /// Follows the network that `entries[0]` founds, storing the membership entries after it.
    pub async fn adopt_network(&self, entries: &[Vec<u8>]) -> Result<NetworkRecord, ClientError> {
        let body = AdoptNetworkRequest {
            entries: entries.iter().map(hex::encode).collect(),
        };
        self.send(self.http.post(self.url("/v1/networks")).json(&body))
            .await
    }

    /// Joins a network with an invite token, handing in the teacher's signed `entries` (the
    /// join, then the node binding). Waits while the node dials the inviter and catches up.
    pub async fn join_with_token(
        &self,
        token: &str,
        entries: &[Vec<u8>],
    ) -> Result<NetworkRecord, ClientError> {
        let body = JoinRequest {
            token: token.to_owned(),
            entries: entries.iter().map(hex::encode).collect(),
        };
        let request = self.http.post(self.url("/v1/networks/join")).json(&body);
        self.send(request.timeout(JOIN_TIMEOUT)).await
    }

    /// Stops this node following a network.
    pub async fn leave_network(&self, id: &NetworkId) -> Result<(), ClientError> {
        let request = self.http.delete(self.url(&format!("/v1/networks/{id}")));
        self.send(request).await
    }

    /// A network's members, as this node has resolved them.
    pub async fn members(&self, id: &NetworkId) -> Result<MembersView, ClientError> {
        self.send(
            self.http
                .get(self.url(&format!("/v1/networks/{id}/members"))),
        )
        .await
    }

    /// Submits an entry's canonical bytes.
    pub async fn submit(&self, bytes: Vec<u8>) -> Result<SubmitResponse, ClientError> {
        let request = self
            .http
            .post(self.url("/v1/entries"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.send(request).await
    }

    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<StoredEntry>, ClientError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(n) = filter.network {
            query.push(("network", n.to_hex()));
        }
        if let Some(k) = filter.kind {
            query.push(("kind", k.name().to_owned()));
        }
        if let Some(a) = filter.author {
            query.push(("author", a.to_hex()));
        }
        if let Some(e) = filter.enquiry {
            query.push(("enquiry", e.to_hex()));
        }
        if let Some(t) = filter.reply_to {
            query.push(("reply_to", t.to_hex()));
        }
        if filter.all_versions {
            query.push(("all_versions", "true".to_owned()));
        }
        if let Some(l) = filter.limit {
            query.push(("limit", l.to_string()));
        }
        self.send(self.http.get(self.url("/v1/entries")).query(&query))
            .await
    }

    /// Syncs now with every peer sharing `network` (or any network), returning each session.
    pub async fn sync(
        &self,
        network: Option<NetworkId>,
    ) -> Result<crate::sync::SyncNowReport, ClientError> {
        let body = SyncRequestBody { network };
        // Sessions may run for minutes on a large network; the node bounds them, not this.
        let wait = crate::sync::driver::SESSION_TIMEOUT + REQUEST_TIMEOUT;
        let request = self.http.post(self.url("/v1/sync")).json(&body);
        self.send(request.timeout(wait)).await
    }

    pub async fn get(&self, id: &EntryId) -> Result<EntryView, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/entries/{id}"))))
            .await
    }
}
