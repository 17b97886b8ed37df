//! The API's file routes: upload a file before signing the resource that lists it, download a
//! file held here, and see or start the fetching of a resource's files.
//!
//! An upload is signed like any call, but its body hash is the file's root, taken from the
//! path: the bytes stream to disk while they are hashed, and are kept only if they match.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use staffroom_protocol::{Body as EntryBody, EntryId, FileRef, FileRoot};

use super::server::{bad_request, ApiError, ApiState};
use super::types::*;
use crate::files::FilesError;
use crate::store::Lookup;

/// The root an upload names, if `method` and `path` are an upload (`PUT /v1/files/<root>`,
/// or a sealed one, `PUT /v1/networks/<id>/files/<plaintext root>`).
pub fn upload_root(method: &axum::http::Method, path: &str) -> Option<FileRoot> {
    if method != axum::http::Method::PUT {
        return None;
    }
    let root = match path.strip_prefix("/v1/files/") {
        Some(root) => root,
        None => {
            let rest = path.strip_prefix("/v1/networks/")?;
            let (_network, root) = rest.split_once("/files/")?;
            root
        }
    };
    root.parse().ok()
}

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> Self {
        let (status, code) = match &e {
            FilesError::WrongRoot { .. } => (StatusCode::BAD_REQUEST, "wrong_root"),
            FilesError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"),
            FilesError::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
        };
        ApiError(status, code, e.to_string())
    }
}

/// `PUT /v1/files/{root}`: stores the body if it hashes to `root` and fits the node's limit.
pub async fn upload(
    State(s): State<ApiState>,
    Path(root): Path<String>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileUploaded>), ApiError> {
    let root: FileRoot = root.parse().map_err(bad_request)?;
    let uploaded = receive_upload(&s.ingest, &s.files, &headers, body, Some(root)).await?;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

/// Streams an upload's body into the file store, within the node's per-file limit and the
/// upload pace rules, and keeps it under `expected` — which its bytes must hash to — or,
/// when none is given (the web pages, whose browsers cannot hash BLAKE3), under the root
/// they hash to.
pub(crate) async fn receive_upload(
    ingest: &crate::ingest::Ingest,
    files: &crate::files::FetchHandle,
    headers: &axum::http::HeaderMap,
    body: Body,
    expected: Option<FileRoot>,
) -> Result<FileUploaded, ApiError> {
    let max = files.config().file_bytes_max;
    // A declared length over the limit is refused before a byte is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut chunks = Upload::new(body, ingest.store().clone(), declared);
    if let Some(size) = declared.filter(|size| *size > max) {
        return Err(chunks
            .refuse(FilesError::TooLarge { size, max }.into())
            .await);
    }
    match receive(ingest, files, &mut chunks, expected, max).await {
        Ok(uploaded) => Ok(uploaded),
        Err(e) => Err(chunks.refuse(e).await),
    }
}

/// Writes an upload's body to a new blob and keeps it as `expected` (or its own root).
async fn receive(
    ingest: &crate::ingest::Ingest,
    files: &crate::files::FetchHandle,
    chunks: &mut Upload,
    expected: Option<FileRoot>,
    max: u64,
) -> Result<FileUploaded, ApiError> {
    let mut upload = files.blobs().upload()?;
    while let Some(chunk) = chunks.next().await? {
        let size = upload.size().saturating_add(chunk.len() as u64);
        if size > max {
            return Err(FilesError::TooLarge { size, max }.into());
        }
        upload.write(&chunk)?;
    }
    let size_bytes = upload.size();
    let root = expected.unwrap_or_else(|| upload.root());
    // A file erased earlier and uploaded again is wanted again: its deletion is called off
    // (before it is kept, so the fetcher, which checks again just before deleting, spares it).
    ingest.store().forget_erased_file(root).await?;
    let blobs = files.blobs().clone();
    tokio::task::spawn_blocking(move || blobs.keep(upload, &root))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))??;
    Ok(FileUploaded { root, size_bytes })
}

/// An upload that sends nothing for this long is broken off (it holds one of the API's slots).
const UPLOAD_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// After `UPLOAD_GRACE`, an upload must average at least this: a trickle cannot hold a slot.
const UPLOAD_RATE_MIN_BYTES_PER_SEC: u64 = 16 * 1024;
const UPLOAD_GRACE: Duration = Duration::from_secs(30);
/// The store's disk is checked for room again after every this many bytes of an upload.
const UPLOAD_ROOM_CHECK_BYTES: u64 = 8 * 1024 * 1024;
/// An upload refused while its client is still sending (too large, disk full) is read on to
/// its end, within these bounds, before the refusal is sent: a server that answers and closes
/// in mid-body makes the client's TCP stack see a reset, and the teacher "connection reset"
/// instead of "disk full".
const REFUSED_DRAIN_BYTES_MAX: u64 = 8 * 1024 * 1024;
const REFUSED_DRAIN_TIME: Duration = Duration::from_secs(5);

/// An upload's body as it arrives, within the limits above and the store's disk reserve.
pub(super) struct Upload {
    chunks: axum::body::BodyDataStream,
    store: crate::store::Store,
    started: Instant,
    bytes: u64,
    /// The length the client declared, until the disk has been checked for room for it.
    unchecked: Option<u64>,
}

impl Upload {
    /// The first [`Upload::next`] refuses at once when the store's disk lacks room for
    /// `declared` bytes.
    pub(super) fn new(body: Body, store: crate::store::Store, declared: Option<u64>) -> Self {
        Upload {
            chunks: body.into_data_stream(),
            store,
            started: Instant::now(),
            bytes: 0,
            unchecked: Some(declared.unwrap_or(0)),
        }
    }

    /// Gives `error` back once the rest of a body still arriving has been read, if it is a
    /// refusal of the body itself (too large, no room) and the rest comes within bounds.
    pub(super) async fn refuse(mut self, error: ApiError) -> ApiError {
        let refusal = matches!(
            error.0,
            axum::http::StatusCode::PAYLOAD_TOO_LARGE
                | axum::http::StatusCode::INSUFFICIENT_STORAGE
        );
        if refusal {
            let deadline = tokio::time::Instant::now() + REFUSED_DRAIN_TIME;
            let mut drained = 0u64;
            while drained < REFUSED_DRAIN_BYTES_MAX {
                match tokio::time::timeout_at(deadline, self.chunks.next()).await {
                    Ok(Some(Ok(chunk))) => drained = drained.saturating_add(chunk.len() as u64),
                    _ => break,
                }
            }
        }
        error
    }

    /// The next piece, `None` at the end; an error if the upload breaks off, stalls, is too
    /// slow, or would leave the disk without its reserve.
    pub(super) async fn next(&mut self) -> Result<Option<bytes::Bytes>, ApiError> {
        if let Some(declared) = self.unchecked.take() {
            self.store.room_for(declared)?;
        }
        let allowed =
            UPLOAD_GRACE + Duration::from_secs(self.bytes / UPLOAD_RATE_MIN_BYTES_PER_SEC);
        let left = allowed.saturating_sub(self.started.elapsed());
        let wait = left.min(UPLOAD_STALL_TIMEOUT);
        let chunk = match tokio::time::timeout(wait, self.chunks.next()).await {
            Ok(None) => return Ok(None),
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(e))) => return Err(bad_request(format!("upload broken off: {e}"))),
            Err(_) if wait < UPLOAD_STALL_TIMEOUT => {
                return Err(upload_timeout(format!(
                    "upload too slow: {} bytes in {} s (it must average {} KiB/s)",
                    self.bytes,
                    self.started.elapsed().as_secs(),
                    UPLOAD_RATE_MIN_BYTES_PER_SEC / 1024
                )))
            }
            Err(_) => {
                return Err(upload_timeout(format!(
                    "upload stalled: nothing received for {} s",
                    UPLOAD_STALL_TIMEOUT.as_secs()
                )))
            }
        };
        let before = self.bytes / UPLOAD_ROOM_CHECK_BYTES;
        self.bytes = self.bytes.saturating_add(chunk.len() as u64);
        if self.bytes / UPLOAD_ROOM_CHECK_BYTES != before {
            self.store.room_for(UPLOAD_ROOM_CHECK_BYTES)?;
        }
        Ok(Some(chunk))
    }
}

fn upload_timeout(message: String) -> ApiError {
    ApiError(axum::http::StatusCode::REQUEST_TIMEOUT, "timeout", message)
}

#[derive(Debug, Default, Deserialize)]
pub struct DownloadQuery {
    /// Open a sealed file of a private network the caller is a member of.
    #[serde(default)]
    pub open: bool,
}

/// `GET /v1/files/{root}[?open=true]`: the bytes of a file held here complete (opened, for a
/// member, when sealed).
pub async fn download(
    State(s): State<ApiState>,
    Path(root): Path<String>,
    Query(q): Query<DownloadQuery>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
) -> Result<Response, ApiError> {
    let root: FileRoot = root.parse().map_err(bad_request)?;
    if q.open {
        let (size, body) = super::private::open_file(&s.ingest, &s.files, &teacher.key, &root)?;
        return Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::CONTENT_LENGTH, size.to_string()),
            ],
            body,
        )
            .into_response());
    }
    let not_here = || {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("file {} is not here complete", root.short()),
        )
    };
    let complete = s
        .files
        .blobs()
        .open_complete(&root)
        .map_err(|_| not_here())?;
    let file = tokio::fs::File::from_std(complete.data);
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, complete.size.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct FilesQuery {
    /// Also ask connected member nodes which of them hold each file.
    #[serde(default)]
    pub holders: bool,
}

/// `GET /v1/entries/{id}/files`: a resource's files and how each stands here.
pub async fn status(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<FilesQuery>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
) -> Result<Json<ResourceFiles>, ApiError> {
    let (entry, network, sealed, files) = resource_files(&s, &id, &teacher)?;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let holders = match q.holders {
            true => {
                let peers = s.files.holders(network, &file).await;
                Some(peers.iter().map(|p| p.to_string()).collect())
            }
            false => None,
        };
        out.push(ResourceFile {
            progress: s.files.progress(&network, &file),
            file,
            holders,
        });
    }
    Ok(Json(ResourceFiles {
        entry,
        network,
        sealed,
        files: out,
    }))
}

/// `POST /v1/entries/{id}/files/fetch`: fetch every file of a resource now, whatever the fetch
/// policy; a file over the per-file limit is refused before any byte moves.
pub async fn fetch(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
) -> Result<Json<ResourceFiles>, ApiError> {
    let (entry, network, sealed, files) = resource_files(&s, &id, &teacher)?;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let progress = s.files.ask(network, file.clone())?;
        out.push(ResourceFile {
            file,
            progress,
            holders: None,
        });
    }
    Ok(Json(ResourceFiles {
        entry,
        network,
        sealed,
        files: out,
    }))
}

/// A resource's files: for a sealed one, those its opened content lists (the caller must be
/// a member), with whether they are sealed.
fn resource_files(
    s: &ApiState,
    id: &str,
    reader: &crate::store::TeacherRecord,
) -> Result<(EntryId, staffroom_protocol::NetworkId, bool, Vec<FileRef>), ApiError> {
    let id: EntryId = id.parse().map_err(bad_request)?;
    let Some(Lookup::Entry(mut stored)) = s.ingest.store().lookup(&id)? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no entry {id} on this node"),
        ));
    };
    let network = stored.entry.network;
    if matches!(stored.entry.body, EntryBody::Sealed(_)) {
        crate::private::seal::open_for(&s.ingest, &reader.key, std::slice::from_mut(&mut stored))?;
        return match stored.opened {
            Some(EntryBody::Resource(r)) => Ok((id, network, true, r.files)),
            Some(_) => Err(bad_request(format!(
                "entry {} is not a resource",
                id.short()
            ))),
            None => Err(ApiError(
                StatusCode::FORBIDDEN,
                "cannot_open",
                format!(
                    "entry {} is sealed, and not readable here by you",
                    id.short()
                ),
            )),
        };
    }
    match stored.entry.body {
        EntryBody::Resource(r) => Ok((id, network, false, r.files)),
        _ => Err(bad_request(format!(
            "entry {} is not a resource",
            id.short()
        ))),
    }
}

/// Files one network's policy view looks at, at most.
const POLICY_FILES_MAX: usize = 100_000;

fn network_files_view(
    s: &ApiState,
    network: staffroom_protocol::NetworkId,
) -> Result<NetworkFilesView, ApiError> {
    let store = s.ingest.store();
    if store.network(&network)?.is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("this node does not follow network {}", network.short()),
        ));
    }
    let policy = store.file_policy(&network)?;
    let files = store.network_files(&network, POLICY_FILES_MAX)?;
    let blobs = s.files.blobs();
    let config = s.files.config();
    Ok(NetworkFilesView {
        network,
        policy,
        eager: policy.eager.unwrap_or(config.eager),
        quota_bytes: policy.quota_bytes.unwrap_or(config.network_quota_bytes),
        bytes_here: files
            .iter()
            .map(|(r, size)| blobs.bytes_here(r, *size))
            .sum(),
        files: files.len(),
    })
}

/// `GET /v1/networks/{id}/files`: how the network's files are fetched here.
pub async fn policy(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<NetworkFilesView>, ApiError> {
    Ok(Json(network_files_view(
        &s,
        id.parse().map_err(bad_request)?,
    )?))
}

/// `PUT /v1/networks/{id}/files`: sets it (the school's admin only: it is this node's disk).
pub async fn set_policy(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    axum::Extension(teacher): axum::Extension<crate::store::TeacherRecord>,
    body: Result<Json<crate::store::FilePolicy>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<NetworkFilesView>, ApiError> {
    let network = id.parse().map_err(bad_request)?;
    let Json(policy) = body.map_err(|e| bad_request(e.body_text()))?;
    if !teacher.admin {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "admin_only",
            "only the school's admin may set how this node fetches files".into(),
        ));
    }
    network_files_view(&s, network)?;
    s.ingest.store().set_file_policy(network, policy).await?;
    Ok(Json(network_files_view(&s, network)?))
}
