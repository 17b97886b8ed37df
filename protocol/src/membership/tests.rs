//! The membership rules on worked examples, and the property that matters most: any order of
//! the same operations gives the same membership.

use proptest::prelude::*;

use super::*;
use crate::ids::{AuthorId, EntryId};

fn key(n: u8) -> AuthorId {
    AuthorId([n; 32])
}

/// Builds operation histories by hand: each operation gets a fresh id.
#[derive(Default)]
struct History {
    ops: Vec<Op>,
}

impl History {
    fn op(&mut self, author: u8, after: &[EntryId], action: Action) -> EntryId {
        let n = self.ops.len() as u64;
        let id = EntryId(*blake3::hash(&n.to_le_bytes()).as_bytes());
        self.ops.push(Op {
            id,
            author: key(author),
            created_at_ms: 1_000 + n,
            after: after.to_vec(),
            action,
        });
        id
    }

    fn found(&mut self, author: u8, policy: Policy) -> EntryId {
        let action = Action::Found {
            policy,
            invite_by: InviteBy::Facilitators,
        };
        self.op(author, &[], action)
    }

    fn resolve(&self) -> Membership {
        resolve(&self.ops, &self.ops[0].id)
    }
}

fn add(m: u8) -> Action {
    Action::Add { member: key(m) }
}

#[test]
fn the_founder_adds_and_removes_members() {
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let a = h.op(1, &[g], add(2));
    let r = h.op(1, &[a], Action::Remove { member: key(2) });
    let m = h.resolve();
    assert_eq!(m.founder, Some(key(1)));
    assert!(m.is_facilitator(&key(1)));
    assert!(!m.is_member(&key(2)));
    assert_eq!(m.former.get(&key(2)), Some(&h.ops[2].created_at_ms));
    assert!(m.valid.contains(&r));
}

#[test]
fn a_members_operations_concurrent_with_their_removal_are_void() {
    // F adds A and B; A invites C while, concurrently, F removes A. Strong removal: A's
    // invite is void, so C's join with it is too.
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let add_a = h.op(1, &[g], add(2));
    let grant_a = h.op(1, &[add_a], Action::Grant { member: key(2) });
    let invite = h.op(
        2,
        &[grant_a],
        Action::Invite {
            expires_at_ms: u64::MAX,
            uses_max: 5,
        },
    );
    let join = h.op(
        3,
        &[invite],
        Action::Join {
            invite: Some(invite),
        },
    );
    let remove = h.op(1, &[grant_a], Action::Remove { member: key(2) });
    let m = h.resolve();
    assert!(m.void.contains(&invite) && m.void.contains(&join), "{m:?}");
    assert!(m.valid.contains(&remove));
    assert!(!m.is_member(&key(2)) && !m.is_member(&key(3)));
}

#[test]
fn what_a_member_did_before_their_removal_stays() {
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let add_a = h.op(1, &[g], add(2));
    let grant_a = h.op(1, &[add_a], Action::Grant { member: key(2) });
    let add_c = h.op(2, &[grant_a], add(3));
    h.op(1, &[add_c], Action::Remove { member: key(2) });
    let m = h.resolve();
    assert!(m.is_member(&key(3)), "A added C before F removed A");
    assert!(!m.is_member(&key(2)));
}

#[test]
fn facilitators_of_equal_seniority_cannot_remove_each_other() {
    // F grants A and B (both rank 1). A and B try to remove each other: neither may. F, more
    // senior, removes B; A's attempt stays void.
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let a = h.op(1, &[g], add(2));
    let b = h.op(1, &[a], add(3));
    let ga = h.op(1, &[b], Action::Grant { member: key(2) });
    let gb = h.op(1, &[ga], Action::Grant { member: key(3) });
    let a_removes_b = h.op(2, &[gb], Action::Remove { member: key(3) });
    let b_removes_a = h.op(3, &[gb], Action::Remove { member: key(2) });
    let m = h.resolve();
    assert!(m.void.contains(&a_removes_b) && m.void.contains(&b_removes_a));
    assert_eq!(m.members.get(&key(2)), Some(&Role::Facilitator { rank: 1 }));
    assert_eq!(m.members.get(&key(3)), Some(&Role::Facilitator { rank: 1 }));
    h.op(
        1,
        &[a_removes_b, b_removes_a],
        Action::Remove { member: key(3) },
    );
    let m = h.resolve();
    assert!(m.is_member(&key(2)) && !m.is_member(&key(3)));
}

#[test]
fn the_more_senior_facilitator_wins_a_mutual_removal() {
    // F grants A (rank 1), A grants B (rank 2). B tries to remove A while A removes B: A is
    // more senior, so only A's removal counts, and B's concurrent operations are void.
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let a = h.op(1, &[g], add(2));
    let ga = h.op(1, &[a], Action::Grant { member: key(2) });
    let b = h.op(2, &[ga], add(3));
    let gb = h.op(2, &[b], Action::Grant { member: key(3) });
    let b_removes_a = h.op(3, &[gb], Action::Remove { member: key(2) });
    let a_removes_b = h.op(2, &[gb], Action::Remove { member: key(3) });
    let m = h.resolve();
    assert!(m.valid.contains(&a_removes_b));
    assert!(m.void.contains(&b_removes_a));
    assert!(m.is_facilitator(&key(2)) && !m.is_member(&key(3)));
}

#[test]
fn re_adding_must_follow_the_removal() {
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let a = h.op(1, &[g], add(2));
    let ga = h.op(1, &[a], Action::Grant { member: key(2) });
    let b = h.op(1, &[ga], add(3));
    // F removes B while A, concurrently, (re-)adds B: the re-add is void.
    let remove = h.op(1, &[b], Action::Remove { member: key(3) });
    let readd = h.op(2, &[b], add(3));
    let m = h.resolve();
    assert!(m.void.contains(&readd) && !m.is_member(&key(3)));
    // Added again after seeing the removal: member again.
    h.op(2, &[remove, readd], add(3));
    assert!(h.resolve().is_member(&key(3)));
}

#[test]
fn invites_have_use_limits_and_can_be_revoked() {
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let invite = h.op(
        1,
        &[g],
        Action::Invite {
            expires_at_ms: u64::MAX,
            uses_max: 2,
        },
    );
    let joins: Vec<EntryId> = (2..5)
        .map(|n| {
            h.op(
                n,
                &[invite],
                Action::Join {
                    invite: Some(invite),
                },
            )
        })
        .collect();
    let m = h.resolve();
    assert_eq!(m.members.len(), 3, "the founder and two of three joiners");
    assert_eq!(joins.iter().filter(|j| m.void.contains(j)).count(), 1);
    // Revoked: joins that did not causally precede the revocation are void.
    let kept = *joins
        .iter()
        .find(|j| m.valid.contains(j))
        .expect("a join counts");
    let revoke = h.op(1, &[kept], Action::RevokeInvite { invite });
    let late = h.op(
        9,
        &[revoke],
        Action::Join {
            invite: Some(invite),
        },
    );
    let m = h.resolve();
    assert!(m.valid.contains(&kept), "it came before the revocation");
    assert!(m.void.contains(&late));
    assert_eq!(
        m.members.len(),
        2,
        "the founder and the join the revocation saw"
    );
    assert!(m.invites[&invite].revoked);
}

#[test]
fn expired_invites_and_closed_networks_admit_nobody() {
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let invite = h.op(
        1,
        &[g],
        Action::Invite {
            expires_at_ms: 1,
            uses_max: 9,
        },
    );
    let late = h.op(
        2,
        &[invite],
        Action::Join {
            invite: Some(invite),
        },
    );
    let uninvited = h.op(3, &[g], Action::Join { invite: None });
    let m = h.resolve();
    assert!(m.void.contains(&late) && m.void.contains(&uninvited));
    let mut open = History::default();
    let g = open.found(1, Policy::Open);
    open.op(3, &[g], Action::Join { invite: None });
    assert!(open.resolve().is_member(&key(3)));
}

#[test]
fn operations_missing_a_predecessor_wait() {
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let unknown = EntryId([7; 32]);
    let waiting = h.op(1, &[g, unknown], add(2));
    let m = h.resolve();
    assert!(m.waiting.contains(&waiting) && !m.is_member(&key(2)));
}

/// A random history: `actors` teachers, each with its own partial view of the operations,
/// making an operation that looks right in that view (so most count), and now and then
/// learning another's view. Views lag, so removals race what the removed are doing.
fn random_history(seed: u64, steps: usize, actors: u8) -> Vec<Op> {
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n.max(1)
    };
    let mut h = History::default();
    h.found(1, Policy::InviteOnly);
    let mut views: Vec<Vec<usize>> = vec![vec![0]; usize::from(actors) + 1];
    for _ in 0..steps {
        let actor = next(u64::from(actors)) as usize + 1;
        if next(3) == 0 {
            let other = next(u64::from(actors)) as usize + 1;
            for i in views[other].clone() {
                if !views[actor].contains(&i) {
                    views[actor].push(i);
                }
            }
        }
        let seen: Vec<Op> = views[actor].iter().map(|&i| h.ops[i].clone()).collect();
        let local = resolve(&seen, &h.ops[0].id);
        let me = key(actor as u8);
        let heads: Vec<EntryId> = seen
            .iter()
            .filter(|op| !seen.iter().any(|o| o.after.contains(&op.id)))
            .map(|op| op.id)
            .take(16)
            .collect();
        let target = key(next(u64::from(actors)) as u8 + 1);
        let open_invite = local
            .invites
            .iter()
            .filter(|(_, i)| !i.revoked)
            .map(|(id, _)| *id)
            .next();
        let action = if !local.is_member(&me) {
            match open_invite {
                Some(invite) => Action::Join {
                    invite: Some(invite),
                },
                None => continue,
            }
        } else if local.is_facilitator(&me) {
            match next(8) {
                0 => Action::Add { member: target },
                1 => Action::Remove { member: target },
                2 => Action::Grant { member: target },
                3 if target != me => Action::Demote { member: target },
                4 => Action::Invite {
                    expires_at_ms: u64::MAX,
                    uses_max: next(3) as u16 + 1,
                },
                5 if open_invite.is_some() && next(2) == 0 => Action::RevokeInvite {
                    invite: open_invite.unwrap_or(h.ops[0].id),
                },
                6 if actor != 1 => Action::Leave,
                _ => Action::SetProfile(Profile {
                    display_name: format!("Teacher {actor}"),
                    ..Profile::default()
                }),
            }
        } else if next(10) == 0 && actor != 1 {
            Action::Leave
        } else {
            Action::SetProfile(Profile {
                school: format!("School {}", next(5)),
                ..Profile::default()
            })
        };
        let id = h.op(actor as u8, &heads, action);
        let at = h.ops.iter().position(|op| op.id == id).unwrap_or(0);
        views[actor].push(at);
    }
    h.ops
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any order of the same operations gives the same membership, voids and all.
    #[test]
    fn every_order_of_the_same_operations_gives_the_same_membership(
        seed in any::<u64>(),
        steps in 1usize..120,
        actors in 2u8..7,
        shuffle in any::<u64>(),
    ) {
        let ops = random_history(seed, steps, actors);
        let genesis = ops[0].id;
        let expected = resolve(&ops, &genesis);
        let mut shuffled = ops.clone();
        let mut r = shuffle;
        for i in (1..shuffled.len()).rev() {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1);
            shuffled.swap(i, (r >> 33) as usize % (i + 1));
        }
        // Duplicates change nothing either.
        shuffled.push(shuffled[0].clone());
        prop_assert_eq!(resolve(&shuffled, &genesis), expected.clone());
        prop_assert_eq!(expected.valid.len() + expected.void.len(), ops.len());
        // Nobody is senior to the founder, who here never leaves nor steps down.
        prop_assert_eq!(expected.members.get(&key(1)), Some(&Role::Facilitator { rank: 0 }));
        // Every other facilitator holds the role through a grant that counts.
        for (member, role) in &expected.members {
            if matches!(role, Role::Facilitator { rank } if *rank > 0) {
                let granted = ops.iter().any(|op| {
                    expected.valid.contains(&op.id)
                        && matches!(&op.action, Action::Grant { member: m } if m == member)
                });
                prop_assert!(granted, "{:?} has no valid grant", member);
            }
        }
    }
}

#[test]
fn a_second_signature_of_the_founding_content_is_the_same_founding() {
    // Two founding entries of one network (same content, two signatures): the smaller id is
    // the founding operation and operations that follow the other follow it too.
    let mut h = History::default();
    let g1 = h.found(1, Policy::InviteOnly);
    let g2 = h.found(1, Policy::InviteOnly);
    let a = h.op(1, &[g2], add(2));
    let b = h.op(1, &[g1], add(3));
    let m = resolve_network(&h.ops);
    assert!(m.valid.contains(&a) && m.valid.contains(&b), "{m:?}");
    assert!(m.is_member(&key(2)) && m.is_member(&key(3)));
    let mut reversed = h.ops.clone();
    reversed.reverse();
    assert_eq!(resolve_network(&reversed), m);
}

#[test]
fn bound_nodes_stop_counting_when_their_member_goes() {
    let node = crate::NodeKey([9; 32]);
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let a = h.op(1, &[g], add(2));
    let bind = h.op(2, &[a], Action::BindNode { node });
    assert!(h.resolve().is_bound(&node));
    h.op(1, &[bind], Action::Remove { member: key(2) });
    let m = h.resolve();
    assert!(!m.is_bound(&node) && m.nodes.is_empty(), "{m:?}");
    // A non-member cannot bind a node.
    let mut h = History::default();
    let g = h.found(1, Policy::InviteOnly);
    let bind = h.op(5, &[g], Action::BindNode { node });
    assert!(h.resolve().void.contains(&bind));
}

#[test]
fn no_founding_operation_means_everything_waits() {
    let mut h = History::default();
    let g = h.found(1, Policy::Open);
    h.op(1, &[g], add(2));
    let without: Vec<Op> = h.ops[1..].to_vec();
    let m = resolve_network(&without);
    assert!(m.members.is_empty() && m.waiting.len() == 1);
}
