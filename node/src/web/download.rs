//! `GET /e/{id}/files/{index}`: a resource's file as a download — streamed from the file
//! store with the media type its author signed and a `Content-Disposition` naming it — to a
//! viewer who may read the resource. A sealed file is opened on the way for a member. Never
//! rendered on this origin: always an attachment, under a sandboxing policy.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use staffroom_protocol::files::FileRef;
use staffroom_protocol::EntryId;

use super::{Viewer, WebError, WebState};
use crate::store::Lookup;
use crate::thread::shown;

pub(super) async fn download(
    State(s): State<WebState>,
    viewer: Viewer,
    Path((id, index)): Path<(String, usize)>,
) -> Result<Response, WebError> {
    let id: EntryId = id.parse().map_err(|_| WebError::not_found())?;
    // The lookups, the key search of a sealed file and the opening read the disk.
    let (file, size, body) = super::pages::blocking({
        let (s, viewer) = (s.clone(), viewer.clone());
        move || {
            let (file, sealed) = file_of(&s, &viewer, id, index)?;
            let (size, body) = opened(&s, &viewer, &file, sealed)?;
            Ok((file, size, body))
        }
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, file.media_type.clone()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CONTENT_DISPOSITION, disposition(&file.name)),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".to_owned(),
            ),
        ],
        body,
    )
        .into_response())
}

/// The file's plaintext size and bytes: a sealed file opened for `viewer`, a clear one as kept.
fn opened(
    s: &WebState,
    viewer: &Viewer,
    file: &FileRef,
    sealed: bool,
) -> Result<(u64, Body), WebError> {
    if sealed {
        return crate::api::private::open_file(&s.ingest, &s.files, &viewer.reader(), &file.root)
            .map_err(|_| WebError::not_found());
    }
    let complete = s
        .files
        .blobs()
        .open_complete(&file.root)
        .map_err(|_| not_here())?;
    let stream = tokio_util::io::ReaderStream::with_capacity(
        tokio::fs::File::from_std(complete.data),
        256 * 1024,
    );
    Ok((complete.size, Body::from_stream(stream)))
}

/// The `index`th file of resource `id`, if `viewer` may read it, and whether it is sealed.
fn file_of(
    s: &WebState,
    viewer: &Viewer,
    id: EntryId,
    index: usize,
) -> Result<(FileRef, bool), WebError> {
    let Some(Lookup::Entry(mut stored)) = s.ingest.store().lookup(&id)? else {
        return Err(WebError::not_found());
    };
    let reader = viewer.reader();
    crate::private::seal::open_for(&s.ingest, &reader, std::slice::from_mut(&mut stored))?;
    if !viewer.reads(&s.ingest, &stored)? || s.ingest.store().is_hidden(&stored)? {
        return Err(WebError::not_found());
    }
    let sealed = stored.opened.is_some();
    match shown(&stored) {
        staffroom_protocol::Body::Resource(r) => r
            .files
            .get(index)
            .cloned()
            .map(|f| (f, sealed))
            .ok_or_else(WebError::not_found),
        _ => Err(WebError::not_found()),
    }
}

fn not_here() -> WebError {
    WebError {
        status: axum::http::StatusCode::NOT_FOUND,
        message: "This file has not reached this node yet; try again later.".into(),
    }
}

/// `attachment` with the file's name: an ASCII fallback and the exact name (RFC 6266, RFC
/// 8187). Names are single-line text by the protocol's rules; quotes and backslashes are
/// replaced in the fallback.
pub fn disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut exact = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                exact.push(b as char)
            }
            _ => exact.push_str(&format!("%{b:02X}")),
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn names_survive_the_header() {
        assert_eq!(
            disposition("fractions.pdf"),
            "attachment; filename=\"fractions.pdf\"; filename*=UTF-8''fractions.pdf"
        );
        assert_eq!(
            disposition("Évaluation \"finale\".pdf"),
            "attachment; filename=\"_valuation _finale_.pdf\"; \
             filename*=UTF-8''%C3%89valuation%20%22finale%22.pdf"
        );
        assert!(axum::http::HeaderValue::from_str(&disposition("a\u{7f}b")).is_ok());
    }
}
