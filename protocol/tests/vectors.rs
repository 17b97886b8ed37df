//! The test vectors published in `docs/protocol-vectors.json` (and described in
//! `docs/protocol.md`) are exactly what this implementation produces and accepts.

use serde::Deserialize;
use staffroom_protocol::*;

#[derive(Deserialize)]
struct Vector {
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

fn vectors() -> Vec<Vector> {
    let text = include_str!("../../docs/protocol-vectors.json");
    serde_json::from_str(text).expect("docs/protocol-vectors.json parses")
}

#[test]
fn published_vectors_match_this_implementation() {
    let vectors = vectors();
    assert!(vectors.len() >= 5, "one vector per kind at least");
    for v in vectors {
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
        assert_eq!(verified.entry(), &entry, "{name}: decode");
        assert_eq!(verified.id(), v.expected.id, "{name}: id of received bytes");
    }
}
