//! Private networks in the API: `POST /v1/networks/{id}/seal` seals a member's content body
//! with the network's writing key, for their CLI to sign (the caller is the author: the seal
//! binds the author and time it will be signed with); `PUT /v1/networks/{id}/files/{root}`
//! seals a member's file as it arrives; [`open_file`] opens a sealed file for a member.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use staffroom_protocol::private::file::{
    plain_size, read_header, sealed_size, segment_count, FileOpener, FileSealer, FILE_HEADER_BYTES,
    SEGMENT_PLAIN_BYTES, SEGMENT_SEALED_BYTES,
};
use staffroom_protocol::private::Sealed;
use staffroom_protocol::{FileRoot, NetworkId};

use super::server::{bad_request, ApiError, ApiState};
use super::types::{FileUploaded, SealRequest};
use crate::files::FilesError;
use crate::private::seal::SealingError;
use crate::store::TeacherRecord;

pub async fn seal(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    axum::Extension(teacher): axum::Extension<TeacherRecord>,
    body: Result<Json<SealRequest>, JsonRejection>,
) -> Result<Json<Sealed>, ApiError> {
    let network: NetworkId = id.parse().map_err(bad_request)?;
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    let node = node_key(&s)?;
    let ingest = s.ingest.clone();
    let blobs = s.files.blobs().clone();
    let checked = tokio::task::spawn_blocking({
        let (ingest, body) = (ingest.clone(), req.body.clone());
        move || crate::private::seal::check_sealed_files(&ingest, &blobs, &network, &body)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))?;
    checked.map_err(|reason| ApiError(StatusCode::BAD_REQUEST, "not_sealable", reason))?;
    let sealed = tokio::task::spawn_blocking(move || {
        let at = (network, teacher.key, req.created_at_ms);
        crate::private::seal::seal(&ingest, node, at, &req.body)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))?;
    sealed.map(Json).map_err(sealing_error)
}

/// `PUT /v1/networks/{id}/files/{plain_root}`: seals a member's file with the private
/// network's writing key as it streams in (the plaintext must hash to `plain_root`, which the
/// request's signature covers), and keeps the sealed bytes under their own root: the root
/// and size the sealed resource lists.
pub async fn upload_sealed(
    State(s): State<ApiState>,
    Path((id, plain_root)): Path<(String, String)>,
    axum::Extension(teacher): axum::Extension<TeacherRecord>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<FileUploaded>), ApiError> {
    let network: NetworkId = id.parse().map_err(bad_request)?;
    let plain_root: FileRoot = plain_root.parse().map_err(bad_request)?;
    let node = node_key(&s)?;
    let writer = SealedUpload {
        node,
        network,
        author: teacher.key,
        plain_root: Some(plain_root),
    };
    let uploaded = receive_sealed(&s.ingest, &s.files, writer, body).await?;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

/// Who seals a file, for which network, and what its plaintext must hash to (when the
/// request's signature names it).
pub(crate) struct SealedUpload {
    pub node: staffroom_protocol::NodeKey,
    pub network: NetworkId,
    pub author: staffroom_protocol::AuthorId,
    pub plain_root: Option<FileRoot>,
}

/// Seals `body` as it streams in, with the writing key `upload.author` has in the network,
/// and keeps the sealed bytes under their own root.
pub(crate) async fn receive_sealed(
    ingest: &crate::ingest::Ingest,
    files: &crate::files::FetchHandle,
    upload: SealedUpload,
    body: axum::body::Body,
) -> Result<FileUploaded, ApiError> {
    let key = crate::private::seal::writing_key(ingest, upload.node, upload.network, upload.author)
        .map_err(sealing_error)?;
    let prefix =
        crate::secret_file::random_32().map_err(|e| sealing_error(SealingError::Random(e)))?;
    let mut nonce_prefix = [0u8; 19];
    nonce_prefix.copy_from_slice(&prefix[..19]);
    let (mut sealer, header) = FileSealer::new(&key, nonce_prefix);

    let max = files.config().file_bytes_max;
    let mut chunks = super::files::Upload::new(body, ingest.store().clone(), None);
    // Refusals go through `refuse`, which reads the rest of a body still arriving first.
    let received = async {
        let mut blob = files.blobs().upload()?;
        blob.write(&header)?;
        let (mut plain, mut hasher) = (0u64, blake3::Hasher::new());
        let mut pending: Vec<u8> = Vec::with_capacity(SEGMENT_PLAIN_BYTES);
        while let Some(chunk) = chunks.next().await? {
            plain = plain.saturating_add(chunk.len() as u64);
            let size = sealed_size(plain);
            if size > max {
                return Err(FilesError::TooLarge { size, max }.into());
            }
            hasher.update(&chunk);
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                // A full segment is sealed only once more bytes show it is not the last.
                if pending.len() == SEGMENT_PLAIN_BYTES {
                    blob.write(&sealer.seal(&pending, false).map_err(seal_failed)?)?;
                    pending.clear();
                }
                let take = rest.len().min(SEGMENT_PLAIN_BYTES - pending.len());
                pending.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
            }
        }
        blob.write(&sealer.seal(&pending, true).map_err(seal_failed)?)?;
        let actual = FileRoot(*hasher.finalize().as_bytes());
        if let Some(expected) = upload.plain_root.filter(|e| *e != actual) {
            return Err(FilesError::WrongRoot { expected, actual }.into());
        }
        let (root, size_bytes) = (blob.root(), blob.size());
        let blobs = files.blobs().clone();
        tokio::task::spawn_blocking(move || blobs.keep(blob, &root))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))??;
        Ok::<_, ApiError>(FileUploaded { root, size_bytes })
    }
    .await;
    match received {
        Ok(done) => Ok(done),
        Err(e) => Err(chunks.refuse(e).await),
    }
}

/// The plaintext of a sealed file held here complete, for a member reader: its size, and a
/// stream of it opened segment by segment on a blocking thread.
pub fn open_file(
    ingest: &crate::ingest::Ingest,
    files: &crate::files::FetchHandle,
    reader: &staffroom_protocol::AuthorId,
    root: &FileRoot,
) -> Result<(u64, axum::body::Body), ApiError> {
    use std::io::Read;
    let complete = files.blobs().open_complete(root)?;
    let mut data = complete.data;
    let mut header = [0u8; FILE_HEADER_BYTES];
    let unreadable = |why: &str| {
        ApiError(
            StatusCode::FORBIDDEN,
            "cannot_open",
            format!("file {} cannot be opened here: {why}", root.short()),
        )
    };
    data.read_exact(&mut header)
        .map_err(|_| unreadable("not a sealed file"))?;
    let (key_id, prefix) = read_header(&header).map_err(|_| unreadable("not a sealed file"))?;
    let key = crate::private::seal::file_key(ingest, reader, root, &key_id)?
        .ok_or_else(|| unreadable("no private network you are a member of here holds its key"))?;
    let plain =
        plain_size(complete.size).ok_or_else(|| unreadable("its size is not a sealed file's"))?;
    let segments = segment_count(plain);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut opener = FileOpener::new(&key, prefix);
        let mut left = complete.size - FILE_HEADER_BYTES as u64;
        for n in 0..segments {
            let len = left.min(SEGMENT_SEALED_BYTES as u64) as usize;
            left -= len as u64;
            let mut sealed = vec![0u8; len];
            let item = data
                .read_exact(&mut sealed)
                .and_then(|()| {
                    opener
                        .open(&sealed, n + 1 == segments)
                        .map_err(std::io::Error::other)
                })
                .map(bytes::Bytes::from);
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((plain, axum::body::Body::from_stream(stream)))
}

fn node_key(s: &ApiState) -> Result<staffroom_protocol::NodeKey, ApiError> {
    node_key_of(&s.node_id)
}

/// The node's own key, which seals with the content keys granted to it.
pub(crate) fn node_key_of(node_id: &str) -> Result<staffroom_protocol::NodeKey, ApiError> {
    node_id
        .parse()
        .ok()
        .and_then(|peer| crate::roster::node_key(&peer))
        .ok_or_else(|| bad_request("this node's key is not ed25519: it cannot seal"))
}

fn seal_failed(e: staffroom_protocol::private::crypto::SealError) -> ApiError {
    sealing_error(SealingError::Seal(e))
}

pub(crate) fn sealing_error(e: SealingError) -> ApiError {
    let (status, code) = match &e {
        SealingError::NotPrivate(_) | SealingError::Seal(_) => {
            (StatusCode::BAD_REQUEST, "not_sealable")
        }
        SealingError::NotMember(..) => (StatusCode::FORBIDDEN, "not_member"),
        SealingError::NoKey(_) => (StatusCode::CONFLICT, "no_content_key"),
        SealingError::Random(_) | SealingError::Store(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "storage")
        }
    };
    ApiError(status, code, e.to_string())
}
