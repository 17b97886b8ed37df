//! The cryptography of private networks, with no randomness of its own: callers pass fresh
//! random bytes (content keys, nonces, one-time secrets) in.
//!
//! - A content key (32 random bytes) is named by [`key_id`]: BLAKE3 `derive_key` with context
//!   [`KEY_ID_CONTEXT`], first 16 bytes.
//! - A grant seals a content key to a node: X25519 between a one-time secret and the
//!   Montgomery form of the node's ed25519 key (RFC 7748 clamping; the node uses the X25519
//!   secret that ed25519 derives, `SHA-512(seed)[..32]`), then XChaCha20-Poly1305 under
//!   `derive_key(GRANT_CONTEXT, shared ‖ ephemeral ‖ node_x25519 ‖ network ‖ key_id)` with an
//!   all-zero nonce (each grant key encrypts once) and `network ‖ key_id ‖ node` as
//!   associated data. Using one key pair for ed25519 and X25519 this way is analysed in
//!   Thormarker, "On using the same key pair for Ed25519 and an X25519 based KEM" (2021).
//! - A sealed body is XChaCha20-Poly1305 under the content key, with a random 24-byte nonce
//!   and `SEALED_CONTEXT ‖ network ‖ author ‖ created_at_ms ‖ key_id` as associated data, so
//!   a ciphertext cannot be passed off under another author, time or network.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{SigningKey, VerifyingKey};

use super::{Grant, KeyId, Sealed, SealedFile, SEALED_KEY_BYTES};
use crate::body::{Body, EntryKind};
use crate::codec::{Reader, Writer};
use crate::entry::Entry;
use crate::error::EntryError;
use crate::ids::{AuthorId, NetworkId, NodeKey};

/// BLAKE3 `derive_key` context naming a content key.
pub const KEY_ID_CONTEXT: &str = "staffroom 2026-11-26 private network content key id";
/// BLAKE3 `derive_key` context of the key that seals a content key to one node.
pub const GRANT_CONTEXT: &str = "staffroom 2026-11-26 private network key grant";
/// Prefixed to a sealed body's associated data.
pub const SEALED_CONTEXT: &[u8] = b"staffroom/sealed/v1\n";

/// Why sealing or opening failed. Opening fails for anyone without the key, or for bytes a
/// member wrote wrongly: what that means is the caller's business, never a verdict on the
/// entry (relays cannot check it, so members must not judge it differently).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a {0} entry is not sealed: only content kinds are")]
    NotSealable(&'static str),
    #[error("the node key is not a valid ed25519 public key")]
    BadNodeKey,
    #[error("the key agreement gave a weak shared secret")]
    WeakSecret,
    #[error("cannot open: not sealed with this key, or damaged")]
    CannotOpen,
    #[error("the opened key does not match its key id")]
    KeyIdMismatch,
    #[error("the opened content breaks a rule: {0}")]
    BadContent(EntryError),
}

/// The id of a content key.
pub fn key_id(key: &[u8; 32]) -> KeyId {
    let derived = blake3::derive_key(KEY_ID_CONTEXT, key);
    let mut id = [0u8; 16];
    id.copy_from_slice(&derived[..16]);
    KeyId(id)
}

fn node_x25519(node: &NodeKey) -> Result<MontgomeryPoint, SealError> {
    let key = VerifyingKey::from_bytes(node.as_bytes()).map_err(|_| SealError::BadNodeKey)?;
    if key.is_weak() {
        return Err(SealError::BadNodeKey);
    }
    Ok(key.to_montgomery())
}

fn grant_cipher(
    shared: &MontgomeryPoint,
    ephemeral: &[u8; 32],
    node_x: &MontgomeryPoint,
    network: &NetworkId,
    key_id: &KeyId,
) -> Result<XChaCha20Poly1305, SealError> {
    if shared.as_bytes() == &[0u8; 32] {
        return Err(SealError::WeakSecret);
    }
    let mut material = Vec::with_capacity(32 * 4 + 16);
    material.extend_from_slice(shared.as_bytes());
    material.extend_from_slice(ephemeral);
    material.extend_from_slice(node_x.as_bytes());
    material.extend_from_slice(network.as_bytes());
    material.extend_from_slice(&key_id.0);
    let key = blake3::derive_key(GRANT_CONTEXT, &material);
    Ok(XChaCha20Poly1305::new(&key.into()))
}

fn grant_aad(network: &NetworkId, key_id: &KeyId, node: &NodeKey) -> Vec<u8> {
    [network.as_bytes().as_slice(), &key_id.0, node.as_bytes()].concat()
}

/// Seals `key` to `node`, with `one_time_secret` (32 fresh random bytes).
pub fn seal_key(
    network: &NetworkId,
    key: &[u8; 32],
    node: &NodeKey,
    one_time_secret: [u8; 32],
) -> Result<Grant, SealError> {
    let node_x = node_x25519(node)?;
    let ephemeral = MontgomeryPoint::mul_base_clamped(one_time_secret).to_bytes();
    let shared = node_x.mul_clamped(one_time_secret);
    let id = key_id(key);
    let cipher = grant_cipher(&shared, &ephemeral, &node_x, network, &id)?;
    let aad = grant_aad(network, &id, node);
    let sealed = cipher
        .encrypt(
            &XNonce::default(),
            Payload {
                msg: key,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::CannotOpen)?;
    let sealed_key: [u8; SEALED_KEY_BYTES] =
        sealed.try_into().map_err(|_| SealError::CannotOpen)?;
    Ok(Grant {
        node: *node,
        ephemeral,
        sealed_key,
    })
}

/// Opens a grant sealed to the node whose ed25519 key is `node_key`, checking that the key
/// it holds is the one `key_id` names.
pub fn open_grant(
    network: &NetworkId,
    key_id: &KeyId,
    grant: &Grant,
    node_key: &SigningKey,
) -> Result<[u8; 32], SealError> {
    let node = NodeKey(node_key.verifying_key().to_bytes());
    if grant.node != node {
        return Err(SealError::CannotOpen);
    }
    let node_x = node_x25519(&node)?;
    let shared = MontgomeryPoint(grant.ephemeral).mul_clamped(node_key.to_scalar_bytes());
    let cipher = grant_cipher(&shared, &grant.ephemeral, &node_x, network, key_id)?;
    let aad = grant_aad(network, key_id, &node);
    let payload = Payload {
        msg: &grant.sealed_key,
        aad: &aad,
    };
    let opened = cipher
        .decrypt(&XNonce::default(), payload)
        .map_err(|_| SealError::CannotOpen)?;
    let key: [u8; 32] = opened.try_into().map_err(|_| SealError::CannotOpen)?;
    match self::key_id(&key) == *key_id {
        true => Ok(key),
        false => Err(SealError::KeyIdMismatch),
    }
}

fn body_aad(network: &NetworkId, author: &AuthorId, created_at_ms: u64, id: &KeyId) -> Vec<u8> {
    let mut aad = SEALED_CONTEXT.to_vec();
    aad.extend_from_slice(network.as_bytes());
    aad.extend_from_slice(author.as_bytes());
    aad.extend_from_slice(&created_at_ms.to_be_bytes());
    aad.extend_from_slice(&id.0);
    aad
}

fn clear_file(f: &crate::FileRef) -> SealedFile {
    SealedFile {
        root: f.root,
        size_bytes: f.size_bytes,
    }
}

/// Whether entries of this kind are sealed in a private network (content kinds).
pub fn is_sealable(kind: EntryKind) -> bool {
    matches!(
        kind,
        EntryKind::BlogPost
            | EntryKind::Resource
            | EntryKind::ResourceWithFiles
            | EntryKind::Enquiry
            | EntryKind::EnquiryNote
            | EntryKind::Comment
    )
}

/// Seals a content body for an entry by `author` in `network` at `created_at_ms`, under `key`
/// with `nonce` (24 fresh random bytes).
pub fn seal_body(
    (network, author, created_at_ms): (&NetworkId, &AuthorId, u64),
    key: &[u8; 32],
    nonce: [u8; 24],
    body: &Body,
) -> Result<Sealed, SealError> {
    if !is_sealable(body.kind()) {
        return Err(SealError::NotSealable(body.kind().name()));
    }
    let mut plaintext = Writer::with_capacity(256);
    plaintext.u8(body.kind().tag());
    body.encode(&mut plaintext);
    let id = key_id(key);
    let aad = body_aad(network, author, created_at_ms, &id);
    let payload = Payload {
        msg: &plaintext.finish(),
        aad: &aad,
    };
    let ciphertext = XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(&nonce), payload)
        .map_err(|_| SealError::CannotOpen)?;
    let files = match body {
        Body::Resource(r) => r.files.iter().map(clear_file).collect(),
        _ => Vec::new(),
    };
    Ok(Sealed {
        key_id: id,
        nonce,
        ciphertext,
        files,
    })
}

/// Opens the sealed body of `entry` with `key`, and checks the content against every rule
/// of its kind, references included (as if the entry were that kind in the clear).
pub fn open_body(entry: &Entry, key: &[u8; 32]) -> Result<Body, SealError> {
    let Body::Sealed(sealed) = &entry.body else {
        return Err(SealError::CannotOpen);
    };
    if key_id(key) != sealed.key_id {
        return Err(SealError::KeyIdMismatch);
    }
    let aad = body_aad(
        &entry.network,
        &entry.author,
        entry.created_at_ms,
        &sealed.key_id,
    );
    let payload = Payload {
        msg: &sealed.ciphertext,
        aad: &aad,
    };
    let plaintext = XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(&sealed.nonce), payload)
        .map_err(|_| SealError::CannotOpen)?;
    let mut r = Reader::new(&plaintext);
    let kind = EntryKind::from_tag(r.u8("sealed kind").map_err(SealError::BadContent)?)
        .map_err(SealError::BadContent)?;
    if !is_sealable(kind) {
        return Err(SealError::NotSealable(kind.name()));
    }
    let body = Body::decode(kind, &mut r).map_err(SealError::BadContent)?;
    r.finish().map_err(SealError::BadContent)?;
    body.check().map_err(SealError::BadContent)?;
    let inside: Vec<SealedFile> = match &body {
        Body::Resource(r) => r.files.iter().map(clear_file).collect(),
        _ => Vec::new(),
    };
    if inside != sealed.files {
        return Err(SealError::BadContent(EntryError::InvalidField {
            field: "files",
            reason: "the sealed resource's files differ from those its entry lists",
        }));
    }
    let inner = Entry {
        body: body.clone(),
        ..entry.clone()
    };
    inner.check_references().map_err(SealError::BadContent)?;
    Ok(body)
}
