//! The vectors of private networks: verdicts on sealed entries (kind 10) and key grants
//! (kind 11), which every node reaches without any key; and sealing vectors, with which an
//! implementation checks that it seals and opens content, keys and files as this one does.

use serde::{Deserialize, Serialize};
use staffroom_protocol::fixtures::{self, key, network};
use staffroom_protocol::private::{crypto, file, Grant, KeyGrants};
use staffroom_protocol::*;

use super::generate::{accepted_one, r, refused_one, signed, NOW, REFS_AT, SEED};
use super::{Accepted, Refused};

const CONTENT_KEY: [u8; 32] = [0x42; 32];
const NONCE: [u8; 24] = [0x24; 24];
/// The recipient node's ed25519 seed, and the sealer's one-time X25519 secret.
const NODE_SEED: u8 = 0x33;
const ONE_TIME: [u8; 32] = [0x11; 32];

fn node(seed: u8) -> NodeKey {
    NodeKey(key(seed).verifying_key().to_bytes())
}

fn author() -> AuthorId {
    AuthorId(key(SEED).verifying_key().to_bytes())
}

fn sealed_post() -> private::Sealed {
    let at = (&network(0x5a), &author(), NOW);
    crypto::seal_body(at, &CONTENT_KEY, NONCE, &fixtures::blog_body("Sealed")).unwrap()
}

fn grants(nodes: &[u8]) -> KeyGrants {
    let grants: Vec<Grant> = nodes
        .iter()
        .map(|&n| crypto::seal_key(&network(0x5a), &CONTENT_KEY, &node(n), ONE_TIME).unwrap())
        .collect();
    KeyGrants {
        key_id: crypto::key_id(&CONTENT_KEY),
        grants,
    }
}

/// Two nodes' grants in ascending order of node key.
fn two_grants() -> KeyGrants {
    let mut g = grants(&[NODE_SEED, NODE_SEED + 1]);
    g.grants.sort_by_key(|g| g.node.0);
    g
}

pub fn accepted() -> Vec<Accepted> {
    vec![
        accepted_one(
            "sealed_post",
            "kind 10: key id, nonce, ciphertext (u32 length), no files; the content is not \
             checked by relays",
            signed(NOW, vec![], Body::Sealed(sealed_post())),
            true,
        ),
        accepted_one(
            "sealed_with_references",
            "a sealed entry may reply to one entry and belong to one enquiry (its content kind \
             is for members to check)",
            signed(
                NOW,
                vec![r(Relation::InEnquiry, 1), r(Relation::ReplyTo, 2)],
                Body::Sealed(sealed_post()),
            ),
            true,
        ),
        accepted_one(
            "key_grants",
            "kind 11: a content key sealed to two nodes, ascending by node key",
            signed(NOW, vec![], Body::KeyGrants(two_grants())),
            true,
        ),
    ]
}

pub fn refused() -> Vec<Refused> {
    let short = private::Sealed {
        ciphertext: vec![0; 16],
        ..sealed_post()
    };
    let many_files = private::Sealed {
        files: vec![
            private::SealedFile {
                root: FileRoot([1; 32]),
                size_bytes: 1,
            };
            33
        ],
        ..sealed_post()
    };
    let mut descending = two_grants();
    descending.grants.reverse();
    let mut bad_node = grants(&[NODE_SEED]);
    bad_node.grants[0].node = NodeKey([0; 32]);
    let no_grants = KeyGrants {
        key_id: crypto::key_id(&CONTENT_KEY),
        grants: vec![],
    };
    let _ = REFS_AT;
    vec![
        refused_one(
            "sealed_ciphertext_too_short",
            "a ciphertext of 16 bytes has no room for a kind byte and the 16-byte tag",
            signed(NOW, vec![], Body::Sealed(short)),
            "invalid_field",
        ),
        refused_one(
            "sealed_too_many_files",
            "33 sealed files: a resource carries 32 at most",
            signed(NOW, vec![], Body::Sealed(many_files)),
            "too_many_items",
        ),
        refused_one(
            "sealed_two_replies",
            "a sealed entry replying to two entries",
            signed(
                NOW,
                vec![r(Relation::ReplyTo, 1), r(Relation::ReplyTo, 2)],
                Body::Sealed(sealed_post()),
            ),
            "bad_references",
        ),
        refused_one(
            "key_grants_descending",
            "grants not in ascending order of node key",
            signed(NOW, vec![], Body::KeyGrants(descending)),
            "invalid_field",
        ),
        refused_one(
            "key_grants_empty",
            "a key grant sealing the key to no node",
            signed(NOW, vec![], Body::KeyGrants(no_grants)),
            "invalid_field",
        ),
        refused_one(
            "key_grants_bad_node",
            "a grant to a node key that is not a valid ed25519 key (the identity point)",
            signed(NOW, vec![], Body::KeyGrants(bad_node)),
            "invalid_field",
        ),
        refused_one(
            "key_grants_with_reference",
            "a key grant references nothing",
            signed(
                NOW,
                vec![r(Relation::Related, 1)],
                Body::KeyGrants(grants(&[NODE_SEED])),
            ),
            "bad_references",
        ),
    ]
}

/// Sealing, step by step, with every input fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealingVectors {
    pub network: NetworkId,
    pub content_key_hex: String,
    pub key_id_hex: String,
    /// A sealed blog post: its author, time and nonce, the plaintext (kind byte and body
    /// encoding) and the ciphertext.
    pub body_author: AuthorId,
    pub body_created_at_ms: u64,
    pub body_nonce_hex: String,
    pub body_plaintext_hex: String,
    pub body_ciphertext_hex: String,
    /// The content key sealed to the node whose ed25519 seed is given, with the one-time
    /// X25519 secret given.
    pub grant_node_seed_hex: String,
    pub grant_one_time_secret_hex: String,
    pub grant_node: NodeKey,
    pub grant_ephemeral_hex: String,
    pub grant_sealed_key_hex: String,
    /// A file of `file_plain_bytes` bytes `i % 251`, sealed with this nonce prefix: its sealed
    /// size and root.
    pub file_plain_bytes: u64,
    pub file_nonce_prefix_hex: String,
    pub file_sealed_bytes: u64,
    pub file_sealed_root: FileRoot,
}

/// A sealed file of `len` bytes `i % 251`.
fn sealed_file(len: usize, prefix: [u8; 19]) -> Vec<u8> {
    let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let (mut sealer, mut out) = file::FileSealer::new(&CONTENT_KEY, prefix);
    let segments: Vec<&[u8]> = plain.chunks(file::SEGMENT_PLAIN_BYTES).collect();
    for (n, segment) in segments.iter().enumerate() {
        out.extend(sealer.seal(segment, n + 1 == segments.len()).unwrap());
    }
    out
}

pub fn sealing() -> SealingVectors {
    let sealed = sealed_post();
    let body = fixtures::blog_body("Sealed");
    let entry = fixtures::signed(
        &key(SEED),
        network(0x5a),
        NOW,
        vec![],
        Body::Sealed(sealed.clone()),
    );
    assert_eq!(crypto::open_body(&entry, &CONTENT_KEY), Ok(body.clone()));
    // The plaintext is the content kind's tag, then the body as a clear entry encodes it.
    let clear = fixtures::signed(&key(SEED), network(0x5a), NOW, vec![], body).encode();
    let body_bytes = &clear[REFS_AT..clear.len() - 64];
    let mut plaintext = vec![EntryKind::BlogPost.tag()];
    plaintext.extend_from_slice(body_bytes);
    let grant = crypto::seal_key(&network(0x5a), &CONTENT_KEY, &node(NODE_SEED), ONE_TIME).unwrap();
    let prefix = [0x19; 19];
    let file_bytes = sealed_file(70_000, prefix);
    SealingVectors {
        network: network(0x5a),
        content_key_hex: hex::encode(CONTENT_KEY),
        key_id_hex: crypto::key_id(&CONTENT_KEY).to_hex(),
        body_author: author(),
        body_created_at_ms: NOW,
        body_nonce_hex: hex::encode(NONCE),
        body_plaintext_hex: hex::encode(plaintext),
        body_ciphertext_hex: hex::encode(&sealed.ciphertext),
        grant_node_seed_hex: hex::encode([NODE_SEED; 32]),
        grant_one_time_secret_hex: hex::encode(ONE_TIME),
        grant_node: grant.node,
        grant_ephemeral_hex: hex::encode(grant.ephemeral),
        grant_sealed_key_hex: hex::encode(grant.sealed_key),
        file_plain_bytes: 70_000,
        file_nonce_prefix_hex: hex::encode(prefix),
        file_sealed_bytes: file_bytes.len() as u64,
        file_sealed_root: FileRoot::of(&file_bytes),
    }
}
