//! The verdict vectors of erasures (kind 9): an author's deletion and a hiding, accepted;
//! their broken rules, refused without blaming the sender (first-release nodes relay kind 9
//! unchecked).

use super::generate::{accepted_one, r, refused_one, resigned, signed, NOW, REFS_AT, SEED};
use super::{Accepted, Refused};
use staffroom_protocol::fixtures::{self, key, network};
use staffroom_protocol::*;

fn target() -> Entry {
    fixtures::signed(
        &key(SEED),
        network(0x5a),
        NOW - 60_000,
        vec![],
        fixtures::blog_body("Names a pupil"),
    )
}

fn erasure(action: ErasureAction, reason: ErasureReason) -> Body {
    fixtures::erasure_body(&target(), action, reason)
}

pub fn accepted() -> Vec<Accepted> {
    vec![
        accepted_one(
            "erasure_delete",
            "kind 9: action 1 (delete) by the target's author, reason 2 (personal data), then \
             the target's id, author and creation time",
            signed(
                NOW,
                vec![],
                erasure(ErasureAction::Delete, ErasureReason::PersonalData),
            ),
            true,
        ),
        accepted_one(
            "erasure_hide",
            "kind 9: action 3 (hide), by anyone as far as the entry goes: whether its author is a \
             facilitator is the network's membership to say",
            fixtures::signed(
                &key(SEED + 1),
                network(0x5a),
                NOW,
                vec![],
                erasure(ErasureAction::Hide, ErasureReason::Other),
            )
            .encode(),
            true,
        ),
    ]
}

pub fn refused() -> Vec<Refused> {
    let delete = signed(
        NOW,
        vec![],
        erasure(ErasureAction::Delete, ErasureReason::Mistake),
    );
    let content = &delete[..delete.len() - 64];
    let with_byte = |offset: usize, value: u8| {
        let mut bytes = content.to_vec();
        bytes[offset] = value;
        resigned(&bytes)
    };
    // With no references, the body starts right after the reference count.
    let body_at = REFS_AT;
    vec![
        refused_one(
            "erasure_delete_by_another",
            "a deletion signed by someone other than the target's author",
            fixtures::signed(
                &key(SEED + 1),
                network(0x5a),
                NOW,
                vec![],
                erasure(ErasureAction::Delete, ErasureReason::Mistake),
            )
            .encode(),
            "invalid_field",
        ),
        refused_one(
            "erasure_unknown_action",
            "action 4 is defined by no release",
            with_byte(body_at, 4),
            "invalid_field",
        ),
        refused_one(
            "erasure_unknown_reason",
            "reason 9 is defined by no release (reasons are codes, never text)",
            with_byte(body_at + 1, 9),
            "invalid_field",
        ),
        refused_one(
            "erasure_with_reference",
            "an erasure names its target in its body and references nothing",
            signed(
                NOW,
                vec![r(Relation::Related, 3)],
                erasure(ErasureAction::Delete, ErasureReason::Mistake),
            ),
            "bad_references",
        ),
        refused_one(
            "erasure_older_than_target",
            "an erasure dated before the entry it erases",
            signed(
                NOW - 120_000,
                vec![],
                erasure(ErasureAction::Delete, ErasureReason::Mistake),
            ),
            "invalid_field",
        ),
    ]
}
