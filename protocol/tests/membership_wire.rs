//! Membership as entries: founding derives the network id, every action survives the
//! canonical encoding, broken rules of the new kinds are refused without blame, and a set of
//! verified entries resolves to the same members in any order.

use staffroom_protocol::fixtures::{self, genesis, key, membership};
use staffroom_protocol::membership::{
    derived_network_id, resolve_network, Action, Op, Policy, Profile, Role,
};
use staffroom_protocol::{
    verify_entry, AuthorId, Body, Entry, EntryError, EntryId, EntryKind, NodeKey, Ref, Relation,
};

const NOW: u64 = 1_767_225_600_000;

fn author(seed: u8) -> AuthorId {
    AuthorId(key(seed).verifying_key().to_bytes())
}

fn verified(entry: &Entry) -> Entry {
    let v = verify_entry(&entry.encode(), NOW).expect("valid");
    v.entry().expect("understood").clone()
}

fn refused(bytes: &[u8]) -> EntryError {
    verify_entry(bytes, NOW).expect_err("refused")
}

#[test]
fn a_network_id_derives_from_its_founding_entry() {
    let g = genesis(&key(1), "Maths cluster", Policy::InviteOnly, NOW);
    assert_eq!(g.network, derived_network_id(&g));
    let back = verified(&g);
    assert_eq!(back.kind(), EntryKind::Network);
    let op = Op::from_entry(g.id(), &back).expect("an operation");
    assert!(op.after.is_empty() && matches!(op.action, Action::Found { .. }));
    // Another name, another time or another founder: another network.
    let other = genesis(&key(1), "Maths cluster", Policy::InviteOnly, NOW + 1);
    assert_ne!(other.network, g.network);
    let other = genesis(&key(2), "Maths cluster", Policy::InviteOnly, NOW);
    assert_ne!(other.network, g.network);
}

#[test]
fn a_founding_entry_claiming_another_id_is_refused_without_blame() {
    let g = genesis(&key(1), "Maths cluster", Policy::Open, NOW);
    let forged = fixtures::signed(&key(1), fixtures::network(9), NOW, vec![], g.body.clone());
    let err = refused(&forged.encode());
    assert_eq!(err.code(), "invalid_field");
    assert!(
        matches!(&err, EntryError::LaterKind { kind: 6, .. }),
        "{err}"
    );
    assert!(
        !err.blames_sender(),
        "first-release nodes relay kind 6 unchecked"
    );
    assert!(err.to_string().contains("network id derived"), "{err}");
}

#[test]
fn every_action_survives_encoding() {
    let g = genesis(&key(1), "Cluster", Policy::InviteOnly, NOW);
    let invite = EntryId([3; 32]);
    let actions = [
        Action::Invite {
            expires_at_ms: NOW + 7 * 86_400_000,
            uses_max: 5,
        },
        Action::Join {
            invite: Some(invite),
        },
        Action::Join { invite: None },
        Action::Add { member: author(2) },
        Action::Leave,
        Action::Remove { member: author(2) },
        Action::Grant { member: author(2) },
        Action::Demote { member: author(2) },
        Action::RevokeInvite { invite },
        Action::SetProfile(Profile {
            display_name: "Ms Ada Lovelace".into(),
            school: "Hillside Primary".into(),
            role: "Maths lead".into(),
        }),
        Action::BindNode {
            node: NodeKey(key(9).verifying_key().to_bytes()),
        },
    ];
    for action in actions {
        let op = membership(&key(1), g.network, NOW, &[g.id()], action.clone());
        let back = verified(&op);
        assert_eq!(back.body, Body::Membership(action.clone()));
        let parsed = Op::from_entry(op.id(), &back).expect("an operation");
        assert_eq!((parsed.after, parsed.action), (vec![g.id()], action));
    }
}

#[test]
fn broken_rules_of_the_new_kinds_are_refused_without_blame() {
    let g = genesis(&key(1), "Cluster", Policy::InviteOnly, NOW);
    let op = |after: &[EntryId], action| membership(&key(1), g.network, NOW, after, action);
    let small_order = AuthorId({
        let mut k = [0u8; 32];
        k[0] = 1; // the identity point
        k
    });
    let cases: Vec<(Entry, &str)> = vec![
        (op(&[], Action::Leave), "bad_references"),
        (
            op(
                &[g.id()],
                Action::Add {
                    member: small_order,
                },
            ),
            "invalid_field",
        ),
        (
            op(
                &[g.id()],
                Action::Invite {
                    expires_at_ms: NOW,
                    uses_max: 0,
                },
            ),
            "invalid_field",
        ),
        (
            op(
                &[g.id()],
                Action::SetProfile(Profile {
                    display_name: " ".into(),
                    ..Profile::default()
                }),
            ),
            "invalid_field",
        ),
        (
            fixtures::signed(
                &key(1),
                g.network,
                NOW,
                vec![Ref {
                    relation: Relation::ReplyTo,
                    id: g.id(),
                }],
                Body::Membership(Action::Leave),
            ),
            "bad_references",
        ),
    ];
    for (entry, code) in cases {
        let err = refused(&entry.encode());
        assert_eq!(err.code(), code, "{err}");
        assert!(!err.blames_sender(), "{err}");
    }
    // An action tag no release defines.
    let mut bytes = op(&[g.id()], Action::Leave).encode();
    let at = 74 + 1 + 33; // header, reference count, one reference
    bytes[at] = 99;
    let content = bytes[..bytes.len() - 64].to_vec();
    let err = refused(&fixtures::sign_raw(&key(1), &content));
    assert_eq!(err.code(), "invalid_field", "{err}");
}

#[test]
fn content_kinds_cannot_follow_operations_and_are_blamed() {
    let entry = fixtures::signed(
        &key(1),
        fixtures::network(1),
        NOW,
        vec![Ref {
            relation: Relation::After,
            id: EntryId([1; 32]),
        }],
        fixtures::blog_body("A post"),
    );
    let err = refused(&entry.encode());
    assert_eq!(err.code(), "bad_references");
    assert!(err.blames_sender(), "every node checks blog posts");
}

#[test]
fn invite_join_and_binding_resolve_from_entries_in_any_order() {
    let founder = key(1);
    let g = genesis(&founder, "Cluster", Policy::InviteOnly, NOW);
    let net = g.network;
    let invite = membership(
        &founder,
        net,
        NOW + 1,
        &[g.id()],
        Action::Invite {
            expires_at_ms: NOW + 1_000,
            uses_max: 1,
        },
    );
    let join = |seed: u8, at| {
        membership(
            &key(seed),
            net,
            at,
            &[invite.id()],
            Action::Join {
                invite: Some(invite.id()),
            },
        )
    };
    let (join_a, join_b, late) = (join(2, NOW + 2), join(3, NOW + 3), join(4, NOW + 5_000));
    let node = NodeKey(key(20).verifying_key().to_bytes());
    let bind = membership(
        &key(2),
        net,
        NOW + 4,
        &[join_a.id()],
        Action::BindNode { node },
    );
    let mut entries = vec![g, invite, join_a, join_b, late, bind];
    let ops = |entries: &[Entry]| -> Vec<Op> {
        entries
            .iter()
            .map(|e| Op::from_entry(e.id(), &verified(e)).expect("op"))
            .collect()
    };
    let first = resolve_network(&ops(&entries));
    // One use: exactly one of the two concurrent joins counts; the late join is expired.
    let joined: Vec<_> = [2, 3, 4]
        .into_iter()
        .filter(|s| first.is_member(&author(*s)))
        .collect();
    assert_eq!(joined.len(), 1, "{first:?}");
    assert!(!first.is_member(&author(4)));
    assert_eq!(
        first.members.get(&author(1)),
        Some(&Role::Facilitator { rank: 0 })
    );
    assert_eq!(first.is_bound(&node), first.is_member(&author(2)));
    let len = entries.len();
    for rotation in 1..len {
        entries.rotate_left(1);
        entries.swap(0, rotation % len);
        assert_eq!(resolve_network(&ops(&entries)), first);
    }
}
