//! Writing from the browser, signed by the teacher's own key *in the browser*: the node never
//! holds it. `POST /w/prepare` turns what the teacher wrote into the exact bytes to sign (the
//! signing context and the entry's canonical content, authored by the signed-in teacher,
//! dated by the node's clock); the page's script signs them with WebCrypto Ed25519 and
//! `POST /w/submit` joins bytes and signature into the entry, which then goes the way every
//! entry does (`Ingest`, stored, gossiped). `POST /w/upload` takes a resource's file first,
//! hashed as it streams (browsers have no BLAKE3). Each call needs the session, its CSRF
//! token in `X-CSRF-Token`, and a same-origin `Origin`.

use axum::body::Body as HttpBody;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use staffroom_protocol::{AuthorId, Body, Entry, EntryId, NetworkId, Ref, Relation};

use super::pages::sign_in::checked_form;
use super::{Viewer, WebState};
use crate::api::files::receive_upload;
use crate::api::private::{receive_sealed, SealedUpload};
use crate::api::server::{bad_request, submit_bytes, ApiError};

/// The header a script's calls carry the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the teacher wrote, to be made into an entry.
#[derive(Debug, Deserialize)]
pub struct PrepareRequest {
    pub network: NetworkId,
    /// The content, as the protocol's JSON form of a body (`{"kind": "blog_post", ...}`).
    pub body: Body,
    pub reply_to: Option<EntryId>,
    pub enquiry: Option<EntryId>,
}

#[derive(Debug, Serialize)]
pub struct Prepared {
    /// Hex of the bytes to sign: the signing context, then the entry's content.
    pub message: String,
    /// The author the entry is made for (the signed-in teacher), hex.
    pub author: AuthorId,
    /// The content is sealed (a private network's): the bytes hold it encrypted, so the
    /// page cannot find the typed text in them.
    pub sealed: bool,
}

#[derive(Debug, Deserialize)]
pub struct SubmitRequest {
    /// The `message` of `/w/prepare`, hex.
    pub message: String,
    /// Ed25519 signature over it, hex (128 characters).
    pub signature: String,
}

#[derive(Debug, Serialize)]
pub struct Submitted {
    pub id: EntryId,
    /// The entry's page.
    pub url: String,
}

fn forbidden(message: &str) -> ApiError {
    ApiError(StatusCode::FORBIDDEN, "forbidden", message.into())
}

/// The signed-in teacher, if the call carries their session's token from this origin.
fn writer(viewer: &Viewer, headers: &HeaderMap, origin: &str) -> Result<AuthorId, ApiError> {
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    checked_form(viewer, headers, token, origin).map_err(|e| forbidden(&e.message))?;
    viewer
        .teacher()
        .map(|t| t.key)
        .ok_or_else(|| forbidden("Sign in first."))
}

/// What every `/w/` call checks first: the signed-in teacher, their session's token from this
/// origin, and a body that parses.
fn checked<T>(
    s: &WebState,
    viewer: &Viewer,
    headers: &HeaderMap,
    request: Result<Json<T>, JsonRejection>,
) -> Result<(AuthorId, T), ApiError> {
    let author = writer(viewer, headers, &s.shared.origin)?;
    let Json(request) = request.map_err(|e| bad_request(e.body_text()))?;
    Ok((author, request))
}

pub async fn prepare(
    State(s): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    request: Result<Json<PrepareRequest>, JsonRejection>,
) -> Result<Json<Prepared>, ApiError> {
    let (author, request) = checked(&s, &viewer, &headers, request)?;
    let (entry, sealed) =
        tokio::task::spawn_blocking(move || prepared_entry(&s, &viewer, author, request))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))??;
    Ok(Json(Prepared {
        message: hex::encode(entry.signed_message()),
        author,
        sealed,
    }))
}

/// The entry to sign for `request`, and whether it is sealed: drafted, its rules checked,
/// sealed for a private network (store reads, a signature check, encryption: on a blocking
/// thread).
fn prepared_entry(
    s: &WebState,
    viewer: &Viewer,
    author: AuthorId,
    request: PrepareRequest,
) -> Result<(Entry, bool), ApiError> {
    let policy = s.ingest.rosters().get(&request.network)?.policy;
    let private = policy.is_some_and(|p| p.is_private());
    let mut entry = draft(s, viewer, author, request, private)?;
    rules_kept(&entry, s.clock.now_ms())?;
    if private {
        entry.body = Body::Sealed(seal(s, &entry)?);
        // Sealing adds bytes: a body near the entry's limit may no longer fit.
        rules_kept(&entry, s.clock.now_ms())?;
    }
    Ok((entry, private))
}

/// Sources are stated for the teacher's own resource in its network, never a private one's
/// (they travel in the clear): any other statement would be shown by no node. Puts them in
/// the protocol's order: entries ascending, each entry and link once.
fn sources_for_own(
    s: &WebState,
    author: AuthorId,
    (network, private): (NetworkId, bool),
    sources: &mut staffroom_protocol::Sources,
) -> Result<(), ApiError> {
    let refused =
        |code, message: &str| ApiError(StatusCode::UNPROCESSABLE_ENTITY, code, message.into());
    if private {
        return Err(refused(
            "not_writable",
            "A private network's resources name no sources: they would travel in the clear.",
        ));
    }
    let stored = s.ingest.store().get(&sources.resource)?;
    let own = stored.is_some_and(|r| {
        r.entry.author == author
            && r.entry.network == network
            && r.entry.kind().family() == staffroom_protocol::EntryKind::Resource
    });
    if !own {
        return Err(refused(
            "not_yours",
            "Sources are stated for one of your own resources, in its network.",
        ));
    }
    sources.entries.sort();
    sources.entries.dedup();
    let mut seen = std::collections::HashSet::new();
    sources.links.retain(|l| seen.insert(l.clone()));
    Ok(())
}

/// Refuses, before anything is signed, content that breaks a field or reference rule: the
/// teacher hears which (a title too long, a blank body) rather than a refused signature.
/// Sealed content keeps the rules of its kind in the clear, so the plain draft is checked.
fn rules_kept(entry: &Entry, now_ms: u64) -> Result<(), ApiError> {
    // Every rule comes before the signature's (`docs/protocol.md`, "Verification order"):
    // with none broken, the unsigned draft fails on its signature alone.
    match staffroom_protocol::verify_entry(&entry.encode(), now_ms) {
        Err(staffroom_protocol::EntryError::BadSignature) => Ok(()),
        Err(e) => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            e.to_string(),
        )),
        Ok(_) => Ok(()),
    }
}

/// `entry`'s content sealed by this node for its private network, as the CLI's is (`POST
/// /v1/networks/{id}/seal`): its files must be sealed files held here, uploaded to it.
fn seal(s: &WebState, entry: &Entry) -> Result<staffroom_protocol::private::Sealed, ApiError> {
    let node = s
        .node
        .ok_or_else(|| cannot_seal("this node's key is not ed25519: it cannot seal"))?;
    let (network, author, at) = (entry.network, entry.author, entry.created_at_ms);
    crate::private::seal::check_sealed_files(&s.ingest, s.files.blobs(), &network, &entry.body)
        .map_err(|reason| cannot_seal(&reason))?;
    crate::private::seal::seal(&s.ingest, node, (network, author, at), &entry.body)
        .map_err(crate::api::private::sealing_error)
}

fn cannot_seal(reason: &str) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "not_sealable", reason.into())
}

/// The unsigned entry for `request`, checked against what the pages let a teacher write.
fn draft(
    s: &WebState,
    viewer: &Viewer,
    author: AuthorId,
    mut request: PrepareRequest,
    private: bool,
) -> Result<Entry, ApiError> {
    let refused = |message: &str| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_writable",
            message.into(),
        )
    };
    if !matches!(
        request.body,
        Body::BlogPost(_)
            | Body::Resource(_)
            | Body::Enquiry(_)
            | Body::EnquiryNote(_)
            | Body::Comment(_)
            | Body::Sources(_)
    ) {
        return Err(refused(
            "The pages write blogs, resources and their sources, enquiries, notes and comments only.",
        ));
    }
    if !viewer.sees(&s.ingest, &request.network)? {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such network here.".into(),
        ));
    }
    if let Body::Sources(sources) = &mut request.body {
        sources_for_own(s, author, (request.network, private), sources)?;
    }
    let mut refs = Vec::new();
    if let Some(id) = request.reply_to {
        refs.push(Ref {
            relation: Relation::ReplyTo,
            id,
        });
    }
    if let Some(id) = request.enquiry {
        refs.push(Ref {
            relation: Relation::InEnquiry,
            id,
        });
    }
    refs.sort();
    Ok(Entry {
        network: request.network,
        author,
        created_at_ms: s.clock.now_ms(),
        refs,
        body: request.body,
        signature: [0; 64],
    })
}

pub async fn submit(
    State(s): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    request: Result<Json<SubmitRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (author, request) = checked(&s, &viewer, &headers, request)?;
    let bytes = entry_bytes(&request).map_err(bad_request)?;
    let (status, submitted) = submit_bytes(&s.ingest, &s.net, bytes, Some(author)).await?;
    let id = submitted.id;
    Ok((
        status,
        Json(Submitted {
            id,
            url: format!("/e/{id}"),
        }),
    )
        .into_response())
}

/// The entry's canonical bytes: the message without its signing context, then the signature.
fn entry_bytes(request: &SubmitRequest) -> Result<Vec<u8>, &'static str> {
    let message = hex::decode(&request.message).map_err(|_| "the message is not hex")?;
    let content = message
        .strip_prefix(staffroom_protocol::SIGNING_CONTEXT)
        .ok_or("the message does not start with the signing context")?;
    let mut signature = [0u8; 64];
    hex::decode_to_slice(&request.signature, &mut signature)
        .map_err(|_| "the signature is not 128 hex characters")?;
    Ok([content, &signature[..]].concat())
}

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// The file's name, for the log only: the resource's entry names it.
    #[serde(default)]
    pub name: String,
    /// The network the resource is for: a private network's files are sealed as they come.
    pub network: Option<NetworkId>,
}

pub async fn upload(
    State(s): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: HttpBody,
) -> Result<Response, ApiError> {
    let author = writer(&viewer, &headers, &s.shared.origin)?;
    let sealed_in = match q.network {
        Some(network) if !viewer.sees(&s.ingest, &network)? => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such network here.".into(),
            ))
        }
        Some(network) => {
            let roster = s.ingest.rosters().get(&network)?;
            roster
                .policy
                .is_some_and(|p| p.is_private())
                .then_some(network)
        }
        None => None,
    };
    let uploaded = match sealed_in {
        Some(network) => {
            let node = s
                .node
                .ok_or_else(|| cannot_seal("this node's key is not ed25519: it cannot seal"))?;
            let upload = SealedUpload {
                node,
                network,
                author,
                plain_root: None,
            };
            receive_sealed(&s.ingest, &s.files, upload, body).await?
        }
        None => receive_upload(&s.ingest, &s.files, &headers, body, None).await?,
    };
    tracing::info!(
        teacher = %author.short(),
        file = %q.name.chars().take(80).collect::<String>(),
        root = %uploaded.root.short(),
        "file uploaded from the web pages"
    );
    Ok((StatusCode::CREATED, Json(uploaded)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_replaces_the_context() {
        let mut message = staffroom_protocol::SIGNING_CONTEXT.to_vec();
        message.extend_from_slice(b"content");
        let request = SubmitRequest {
            message: hex::encode(&message),
            signature: hex::encode([7u8; 64]),
        };
        let bytes = entry_bytes(&request).unwrap();
        assert_eq!(&bytes[..7], b"content");
        assert_eq!(&bytes[7..], &[7u8; 64][..]);
        let no_context = SubmitRequest {
            message: hex::encode(b"content"),
            signature: request.signature.clone(),
        };
        assert!(entry_bytes(&no_context).is_err());
        let short = SubmitRequest {
            message: request.message.clone(),
            signature: "00".into(),
        };
        assert!(entry_bytes(&short).is_err());
    }

    #[test]
    fn a_broken_rule_is_named_before_anything_is_signed() {
        use staffroom_protocol::fixtures::{blog_body, key, network};
        let draft = |body: Body| Entry {
            network: network(1),
            author: AuthorId(key(1).verifying_key().to_bytes()),
            created_at_ms: 1_000,
            refs: vec![],
            body,
            signature: [0; 64],
        };
        assert!(rules_kept(&draft(blog_body("Fine")), 2_000).is_ok());
        let code = |body| rules_kept(&draft(body), 2_000).err().map(|e| e.1);
        let mut long = blog_body("x");
        if let Body::BlogPost(p) = &mut long {
            p.title = "t".repeat(201);
        }
        assert_eq!(code(long), Some("field_too_long"));
        let mut blank = blog_body("x");
        if let Body::BlogPost(p) = &mut blank {
            p.body_md = " \n".into();
        }
        assert_eq!(code(blank), Some("invalid_field"));
    }
}
