//! The verdict vectors of publications (kind 12): a network made public, accepted; a
//! visibility other than 1 or 2, and a publication with a reference, refused without blaming
//! the sender (nodes before kind 12 relay it unchecked).

use super::generate::{accepted_one, refused_one, resigned, signed, NOW, REFS_AT};
use super::{Accepted, Refused};
use staffroom_protocol::*;

fn public() -> Body {
    Body::Publication(Publication { public: true })
}

pub fn accepted() -> Vec<Accepted> {
    vec![accepted_one(
        "publication_public",
        "kind 12: visibility 2 (public); whether its author is a facilitator is the network's \
         membership to say",
        signed(NOW, vec![], public()),
        true,
    )]
}

pub fn refused() -> Vec<Refused> {
    let content = signed(NOW, vec![], public());
    let mut bad = content[..content.len() - 64].to_vec();
    // With no references, the body — one byte — starts right after the reference count.
    bad[REFS_AT] = 3;
    let target = fixtures_target();
    vec![
        refused_one(
            "publication_bad_visibility",
            "kind 12 with visibility 3: only 1 (members only) and 2 (public) exist",
            resigned(&bad),
            "invalid_field",
        ),
        refused_one(
            "publication_with_reference",
            "kind 12 that replies to an entry: a publication references nothing",
            signed(
                NOW,
                vec![Ref {
                    relation: Relation::Related,
                    id: target,
                }],
                public(),
            ),
            "bad_references",
        ),
    ]
}

fn fixtures_target() -> EntryId {
    EntryId([0x42; 32])
}
