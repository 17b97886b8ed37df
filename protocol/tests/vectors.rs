//! The test vectors published in `docs/protocol-vectors.json` (and described in
//! `docs/protocol.md`) are exactly what this implementation produces, accepts and refuses.
//!
//! `drafts` are entries built from their fields; `accepted` and `refused` are raw entries with
//! the verdict every implementation must reach (the refused ones name the error code). The
//! `accepted` and `refused` lists are generated here, deterministically:
//! `STAFFROOM_WRITE_VECTORS=1 cargo test -p staffroom-protocol --test vectors` rewrites them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use staffroom_protocol::*;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol-vectors.json");

#[derive(Serialize, Deserialize)]
struct File {
    drafts: Vec<serde_json::Value>,
    accepted: Vec<Accepted>,
    refused: Vec<Refused>,
    /// Private networks' sealing, step by step.
    sealing: Option<private_vectors::SealingVectors>,
}

#[derive(Deserialize)]
struct DraftVector {
    name: String,
    secret_key_hex: String,
    network: NetworkId,
    created_at_ms: u64,
    refs: Vec<Ref>,
    body: Body,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    author: AuthorId,
    signed_message_hex: String,
    entry_hex: String,
    id: EntryId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Accepted {
    name: String,
    why: String,
    now_ms: u64,
    entry_hex: String,
    id: EntryId,
    /// False for entries of a kind or version this implementation does not understand.
    understood: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Refused {
    name: String,
    why: String,
    now_ms: u64,
    entry_hex: String,
    error: String,
    /// Whether the refusal counts against whoever sent the entry (see "One verdict").
    blames_sender: bool,
}

fn published() -> File {
    let text = std::fs::read_to_string(PATH).expect("docs/protocol-vectors.json exists");
    serde_json::from_str(&text).expect("docs/protocol-vectors.json parses")
}

#[test]
fn published_drafts_match_this_implementation() {
    let drafts = published().drafts;
    assert!(drafts.len() >= 5, "one vector per kind at least");
    for v in drafts {
        let v: DraftVector = serde_json::from_value(v).expect("draft vector");
        let mut secret = [0u8; 32];
        hex::decode_to_slice(&v.secret_key_hex, &mut secret).unwrap();
        let key = SigningKey::from_bytes(&secret);
        let entry = Draft {
            network: v.network,
            created_at_ms: v.created_at_ms,
            refs: v.refs,
            body: v.body,
        }
        .sign(&key);
        let name = &v.name;
        assert_eq!(entry.author, v.expected.author, "{name}: author");
        assert_eq!(
            hex::encode(entry.signed_message()),
            v.expected.signed_message_hex,
            "{name}"
        );
        assert_eq!(
            hex::encode(entry.encode()),
            v.expected.entry_hex,
            "{name}: encoding"
        );
        assert_eq!(entry.id(), v.expected.id, "{name}: id");
        let bytes = hex::decode(&v.expected.entry_hex).unwrap();
        let verified = verify_entry(&bytes, entry.created_at_ms).expect("vector verifies");
        assert_eq!(verified.entry(), Some(&entry), "{name}: decode");
        assert_eq!(verified.id(), v.expected.id, "{name}: id of received bytes");
    }
}

#[test]
fn published_verdicts_match_this_implementation() {
    let file = published();
    for v in &file.accepted {
        let bytes = hex::decode(&v.entry_hex).unwrap();
        let verified = verify_entry(&bytes, v.now_ms)
            .unwrap_or_else(|e| panic!("{}: refused with {e}", v.name));
        assert_eq!(verified.id(), v.id, "{}", v.name);
        assert_eq!(verified.entry().is_some(), v.understood, "{}", v.name);
    }
    for v in &file.refused {
        let bytes = hex::decode(&v.entry_hex).unwrap();
        match verify_entry(&bytes, v.now_ms) {
            Ok(_) => panic!("{}: accepted, but must be refused with {}", v.name, v.error),
            Err(e) => {
                assert_eq!(e.code(), v.error, "{}: {e}", v.name);
                assert_eq!(e.blames_sender(), v.blames_sender, "{}: {e}", v.name);
            }
        }
    }
    // One negative vector at least for every error a verifier can return.
    let covered: BTreeSet<&str> = file.refused.iter().map(|v| v.error.as_str()).collect();
    for code in EntryError::CODES {
        if !matches!(code, "unknown_version" | "unknown_kind") {
            assert!(covered.contains(code), "no negative vector for {code}");
        }
    }
}

#[test]
fn published_verdict_vectors_are_reproducible() {
    let (accepted, refused) = (generate::accepted(), generate::refused());
    let mut file = published();
    let sealing = private_vectors::sealing();
    if std::env::var_os("STAFFROOM_WRITE_VECTORS").is_some() {
        file.accepted = accepted;
        file.refused = refused;
        file.sealing = Some(sealing);
        let text = serde_json::to_string_pretty(&file).unwrap() + "\n";
        std::fs::write(PATH, text).expect("write vectors");
        return;
    }
    assert_eq!(
        file.accepted, accepted,
        "regenerate with STAFFROOM_WRITE_VECTORS=1"
    );
    assert_eq!(
        file.refused, refused,
        "regenerate with STAFFROOM_WRITE_VECTORS=1"
    );
    assert_eq!(
        file.sealing,
        Some(sealing),
        "regenerate with STAFFROOM_WRITE_VECTORS=1"
    );
}

/// Erasures' vectors.
#[path = "vectors/erasure.rs"]
mod erasure_vectors;
#[path = "vectors/files.rs"]
mod files_vectors;
/// Builds every verdict vector from fixed keys, times and curve arithmetic.
#[path = "vectors/generate.rs"]
mod generate;
/// The membership kinds' vectors.
#[path = "vectors/membership.rs"]
mod membership_vectors;
/// Private networks' vectors.
#[path = "vectors/private.rs"]
mod private_vectors;
#[path = "vectors/publication.rs"]
mod publication_vectors;
#[path = "vectors/sources.rs"]
mod sources_vectors;
