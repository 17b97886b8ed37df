//! One typed method per API route: what each sends and what it returns. The transport and
//! the signing are `ApiClient::send`'s business.

use staffroom_protocol::{AuthorId, EntryId, NetworkId};

use super::{ApiClient, ClientError, JOIN_TIMEOUT, REQUEST_TIMEOUT};
use crate::api::types::*;
use crate::net::PeerInfo;
use crate::store::{ListFilter, NetworkRecord, StoredEntry, TeacherRecord};

impl ApiClient {
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.send(self.http.get(self.url("/v1/status"))).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, ClientError> {
        self.send(self.http.get(self.url("/v1/peers"))).await
    }

    /// Dials a peer and waits for the outcome.
    pub async fn dial(&self, addr: &str) -> Result<DialReply, ClientError> {
        let body = DialRequest {
            addr: addr.to_owned(),
        };
        self.send(self.http.post(self.url("/v1/peers")).json(&body))
            .await
    }

    /// The entries, authors and networks whose ids start with `prefix`.
    pub async fn resolve(
        &self,
        prefix: &staffroom_protocol::IdPrefix,
    ) -> Result<ResolveView, ClientError> {
        // A parsed prefix is hex only: nothing in it needs escaping in a path.
        let path = format!("/v1/resolve/{}", prefix.as_str());
        self.send(self.http.get(self.url(&path))).await
    }

    pub async fn networks(&self) -> Result<Vec<NetworkRecord>, ClientError> {
        self.send(self.http.get(self.url("/v1/networks"))).await
    }

    /// Follows the network that `entries[0]` founds, storing the membership entries after it.
    pub async fn adopt_network(&self, entries: &[Vec<u8>]) -> Result<NetworkRecord, ClientError> {
        self.adopt_network_named(entries, None).await
    }

    /// [`ApiClient::adopt_network`], naming it here when its founding entry has no name (a
    /// private network).
    pub async fn adopt_network_named(
        &self,
        entries: &[Vec<u8>],
        name: Option<&str>,
    ) -> Result<NetworkRecord, ClientError> {
        let body = AdoptNetworkRequest {
            entries: entries.iter().map(hex::encode).collect(),
            name: name.map(str::to_owned),
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

    /// Teachers registered on this node (admin only).
    pub async fn teachers(&self) -> Result<Vec<TeacherRecord>, ClientError> {
        self.send(self.http.get(self.url("/v1/teachers"))).await
    }

    /// Registers a teacher's key on this node (admin only).
    pub async fn add_teacher(
        &self,
        key: AuthorId,
        name: &str,
    ) -> Result<TeacherRecord, ClientError> {
        let body = AddTeacherRequest {
            key,
            name: name.to_owned(),
            admin: false,
        };
        self.send(self.http.post(self.url("/v1/teachers")).json(&body))
            .await
    }

    /// Removes a teacher's registration (admin only).
    pub async fn remove_teacher(&self, key: &AuthorId) -> Result<(), ClientError> {
        self.send(self.http.delete(self.url(&format!("/v1/teachers/{key}"))))
            .await
    }

    /// Stops this node following a network.
    /// Stops following a network; with `purge`, deletes its data here too (admin only).
    pub async fn leave_network(
        &self,
        id: &NetworkId,
        purge: bool,
    ) -> Result<LeaveView, ClientError> {
        let path = match purge {
            true => format!("/v1/networks/{id}?purge=true"),
            false => format!("/v1/networks/{id}"),
        };
        self.send(self.http.delete(self.url(&path))).await
    }

    /// Seals a content body for the calling teacher to sign at `created_at_ms` in a private
    /// network.
    pub async fn seal(
        &self,
        network: &NetworkId,
        created_at_ms: u64,
        body: staffroom_protocol::Body,
    ) -> Result<staffroom_protocol::private::Sealed, ClientError> {
        let req = SealRequest {
            created_at_ms,
            body,
        };
        let url = self.url(&format!("/v1/networks/{network}/seal"));
        self.send(self.http.post(url).json(&req)).await
    }

    /// The school's admin purges an entry from this node alone.
    pub async fn purge_entry(&self, id: &EntryId) -> Result<(), ClientError> {
        let request = self.http.delete(self.url(&format!("/v1/entries/{id}")));
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

    /// Searches the entries on the node (see `GET /v1/search`).
    pub async fn search(
        &self,
        query: &crate::api::search::SearchQuery,
    ) -> Result<crate::api::search::SearchView, ClientError> {
        self.send(self.http.get(self.url("/v1/search")).query(query))
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

    /// A one-time link that signs this teacher in to the node's web pages.
    pub async fn web_sign_in(&self) -> Result<WebSignInResponse, ClientError> {
        self.send(self.http.post(self.url("/v1/web/sign-in")).body(Vec::new()))
            .await
    }

    /// The entry with its comments as a tree and, for an enquiry, its notes by stage.
    pub async fn thread(&self, id: &EntryId) -> Result<crate::thread::Thread, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/entries/{id}/thread"))))
            .await
    }
}
