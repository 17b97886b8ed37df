//! Deterministic sample entries of every kind, for tests and benchmarks in any crate.
//!
//! Enabled by the `fixtures` feature so that production builds do not carry it.

use ed25519_dalek::SigningKey;

use crate::body::{BlogPost, Body, Comment, Enquiry, EnquiryNote, Resource, Stage};
use crate::entry::{Draft, Entry, Ref, Relation};
use crate::ids::{AuthorId, EntryId, NetworkId, NodeKey};
use crate::membership::{Action, Genesis, InviteBy, Policy};

/// A signing key derived from a small number, so tests are reproducible.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn network(seed: u8) -> NetworkId {
    NetworkId([seed; 32])
}

pub fn blog_body(title: &str) -> Body {
    Body::BlogPost(BlogPost {
        title: title.to_owned(),
        body_md: format!("# {title}\n\nWhat we tried in class this week, and what we learnt."),
        tags: vec!["retrieval-practice".into(), "ks3".into()],
    })
}

pub fn resource_body(title: &str) -> Body {
    Body::Resource(Resource {
        title: title.to_owned(),
        description_md: "Worksheet and teacher notes.".into(),
        subjects: vec!["mathematics".into()],
        age_min_years: 11,
        age_max_years: 14,
        key_stage: "KS3".into(),
        licence: "CC-BY-4.0".into(),
        language: "en-GB".into(),
        files: Vec::new(),
    })
}

pub fn enquiry_body(question: &str) -> Body {
    Body::Enquiry(Enquiry {
        question: question.to_owned(),
        description_md: "A two-term enquiry across the cluster.".into(),
    })
}

pub fn note_body(stage: Stage, text: &str) -> Body {
    Body::EnquiryNote(EnquiryNote {
        stage,
        body_md: text.to_owned(),
    })
}

pub fn comment_body(text: &str) -> Body {
    Body::Comment(Comment {
        body_md: text.to_owned(),
    })
}

/// An erasure of `target` (kind 9).
pub fn erasure_body(
    target: &Entry,
    action: crate::ErasureAction,
    reason: crate::ErasureReason,
) -> Body {
    Body::Erasure(crate::Erasure::of(target, action, reason))
}

/// Signs `body` with `key` in `network` at `created_at_ms`, with `refs`.
pub fn signed(
    key: &SigningKey,
    network: NetworkId,
    created_at_ms: u64,
    refs: Vec<Ref>,
    body: Body,
) -> Entry {
    Draft {
        network,
        created_at_ms,
        refs,
        body,
    }
    .sign(key)
}

/// The `n`th blog post of a numbered series: distinct entries for bulk tests and benchmarks.
pub fn numbered_post(key: &SigningKey, network: NetworkId, n: u64) -> Entry {
    signed(
        key,
        network,
        1_700_000_000_000 + n,
        vec![],
        blog_body(&format!("Post number {n}")),
    )
}

pub fn in_enquiry(id: EntryId) -> Ref {
    Ref {
        relation: Relation::InEnquiry,
        id,
    }
}

pub fn reply_to(id: EntryId) -> Ref {
    Ref {
        relation: Relation::ReplyTo,
        id,
    }
}

/// Signs raw content (everything but the signature) as `key`'s author: the way to build
/// entries no [`Draft`] can express, such as malformed ones for tests or future kinds.
pub fn sign_raw(key: &SigningKey, content: &[u8]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let mut message = crate::SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(content);
    let mut entry = content.to_vec();
    entry.extend_from_slice(&key.sign(&message).to_bytes());
    entry
}

/// A signed entry of a kind or version this implementation does not understand: the shared
/// header, then `rest` as the unknown format would have it, then the signature.
pub fn opaque(
    key: &SigningKey,
    network: NetworkId,
    created_at_ms: u64,
    version: u8,
    kind: u8,
    rest: &[u8],
) -> Vec<u8> {
    let mut content = vec![version];
    content.extend_from_slice(network.as_bytes());
    content.extend_from_slice(&key.verifying_key().to_bytes());
    content.extend_from_slice(&created_at_ms.to_be_bytes());
    content.push(kind);
    content.extend_from_slice(rest);
    sign_raw(key, &content)
}

/// The founding entry of a network named `name` with `policy`, by `founder`. The nonce comes
/// from the name and time, so fixtures are reproducible.
pub fn genesis(founder: &SigningKey, name: &str, policy: Policy, created_at_ms: u64) -> Entry {
    let seed = blake3::hash(format!("{name}/{created_at_ms}").as_bytes());
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&seed.as_bytes()[..16]);
    // A private network's founding entry names nothing (its name travels in invites).
    let (name, description_md) = match policy.is_private() {
        true => (String::new(), String::new()),
        false => (name.to_owned(), format!("The {name} network.")),
    };
    Genesis {
        name,
        description_md,
        policy,
        invite_by: InviteBy::Facilitators,
        nonce,
    }
    .found(created_at_ms, founder)
}

/// A membership operation by `key` in `network` that follows the operations `after`.
pub fn membership(
    key: &SigningKey,
    network: NetworkId,
    created_at_ms: u64,
    after: &[EntryId],
    action: Action,
) -> Entry {
    action.draft(network, created_at_ms, after).sign(key)
}

/// An invite-only network founded by `founder`, who has added each of `members` and bound the
/// nodes `nodes` to their own membership: the founding entry first, then the operations in
/// causal order. Every key in `members` may post in it.
pub fn network_with(
    founder: &SigningKey,
    members: &[&SigningKey],
    nodes: &[NodeKey],
    created_at_ms: u64,
) -> Vec<Entry> {
    network_with_policy(founder, Policy::InviteOnly, members, nodes, created_at_ms)
}

/// [`network_with`], with the given policy (an open network shares its history with any node).
pub fn network_with_policy(
    founder: &SigningKey,
    policy: Policy,
    members: &[&SigningKey],
    nodes: &[NodeKey],
    created_at_ms: u64,
) -> Vec<Entry> {
    let genesis = genesis(founder, "Fixture", policy, created_at_ms);
    let network = genesis.network;
    let mut last = genesis.id();
    let mut out = vec![genesis];
    let actions = members
        .iter()
        .map(|m| Action::Add {
            member: AuthorId(m.verifying_key().to_bytes()),
        })
        .chain(nodes.iter().map(|&node| Action::BindNode { node }));
    for (n, action) in actions.enumerate() {
        let op = membership(
            founder,
            network,
            created_at_ms + 1 + n as u64,
            &[last],
            action,
        );
        last = op.id();
        out.push(op);
    }
    out
}

/// An open network founded by `key(250)` at a fixed time, with the teachers `key(seed)` for
/// each seed as members: the same entries on every call. For benchmarks and tests that need a
/// network whose members may post, whatever node holds it.
pub fn open_network_of(seeds: std::ops::RangeInclusive<u8>) -> Vec<Entry> {
    let members: Vec<SigningKey> = seeds.map(key).collect();
    let members: Vec<&SigningKey> = members.iter().collect();
    network_with_policy(&key(250), Policy::Open, &members, &[], 1_600_000_000_000)
}
