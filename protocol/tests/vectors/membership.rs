//! The verdict vectors of the membership kinds (6 and 7): a founding entry and common
//! operations, accepted; their broken rules, refused without blaming the sender.

use super::generate::{accepted_one, r, refused_one, resigned, signed, NOW, REFS_AT, SEED};
use super::{Accepted, Refused};
use staffroom_protocol::fixtures::{self, key, network};
use staffroom_protocol::*;

/// A founding entry and one operation of each common action, by fixed keys.
pub fn accepted() -> Vec<Accepted> {
    use staffroom_protocol::membership::{Action, Policy, Profile};
    let founder = key(SEED);
    let g = fixtures::genesis(&founder, "Maths cluster", Policy::InviteOnly, NOW);
    let (net, after) = (g.network, [g.id()]);
    let op = |k: &SigningKey, action| fixtures::membership(k, net, NOW, &after, action).encode();
    let invite = fixtures::membership(
        &founder,
        net,
        NOW,
        &after,
        Action::Invite {
            expires_at_ms: NOW + 7 * 86_400_000,
            uses_max: 3,
        },
    );
    let joiner = key(SEED + 1);
    let join = fixtures::membership(
        &joiner,
        net,
        NOW,
        &[invite.id()],
        Action::Join {
            invite: Some(invite.id()),
        },
    );
    let profile = Profile {
        display_name: "Ms Ada Lovelace".into(),
        school: "Hillside Primary".into(),
        role: "Maths lead".into(),
    };
    let node = NodeKey(key(SEED + 2).verifying_key().to_bytes());
    vec![
        accepted_one(
            "network_founding",
            "kind 6: the network id is BLAKE3 of the context and the content with the network \
             field zeroed",
            g.encode(),
            true,
        ),
        accepted_one(
            "membership_invite",
            "kind 7, action 1: expires in 7 days, 3 uses",
            invite.encode(),
            true,
        ),
        accepted_one(
            "membership_join",
            "kind 7, action 2: redeems the invite it follows",
            join.encode(),
            true,
        ),
        accepted_one(
            "membership_profile",
            "kind 7, action 9",
            op(&joiner, Action::SetProfile(profile)),
            true,
        ),
        accepted_one(
            "membership_bind_node",
            "kind 7, action 10: a school node's ed25519 key",
            op(&founder, Action::BindNode { node }),
            true,
        ),
    ]
}

/// Broken rules of the membership kinds: refused, and (kinds after the first release) not
/// blamed on the sender.
pub fn refused() -> Vec<Refused> {
    use staffroom_protocol::membership::{Action, Policy};
    let founder = key(SEED);
    let g = fixtures::genesis(&founder, "Maths cluster", Policy::Open, NOW);
    let misplaced = fixtures::signed(&founder, network(0x5a), NOW, vec![], g.body.clone());
    let op =
        |after: &[EntryId], action| fixtures::membership(&founder, g.network, NOW, after, action);
    let mut unknown_action = op(&[g.id()], Action::Leave).encode();
    unknown_action[REFS_AT + 33] = 11;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    vec![
        refused_one(
            "network_id_not_derived",
            "a founding entry in a network whose id is not derived from it",
            misplaced.encode(),
            "invalid_field",
        ),
        refused_one(
            "membership_follows_nothing",
            "a membership operation with no `after` reference",
            op(&[], Action::Leave).encode(),
            "bad_references",
        ),
        refused_one(
            "membership_small_order_member",
            "the member to add is the identity point",
            op(
                &[g.id()],
                Action::Add {
                    member: AuthorId(identity),
                },
            )
            .encode(),
            "invalid_field",
        ),
        refused_one(
            "membership_unknown_action",
            "action 11 is defined by no release",
            resigned(&unknown_action[..unknown_action.len() - 64]),
            "invalid_field",
        ),
        refused_one(
            "after_on_blog_post",
            "only membership operations carry `after` references (a first-release kind: blamed)",
            signed(
                NOW,
                vec![r(Relation::After, 1)],
                fixtures::blog_body("A post"),
            ),
            "bad_references",
        ),
    ]
}
