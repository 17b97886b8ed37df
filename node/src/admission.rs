//! Admission: whether a verified entry may enter a network, judged from the network's resolved
//! membership — and a bounded pen for entries whose author's admission has not arrived yet.
//!
//! The rules (see "Admission" in `docs/protocol.md`):
//! - a network's founding entry and its membership operations are admitted whoever wrote them
//!   — except operations a former member made after leaving or being removed (other than a
//!   join, with a new invite) — because validity is the resolver's business and every node must
//!   hold the same set of operations to resolve it the same way;
//! - content (and entries of kinds this node does not know) is admitted from current members;
//!   from a former member only if made before the operation that ended their membership —
//!   except a deletion of their own entry, which is admitted whenever it was made;
//! - a join with an invite this node already knows to be revoked, expired or used up is not
//!   taken in (so a late join cannot displace, by the resolver's tie-break, one that already
//!   counts; two nodes admitting joins concurrently past the limit are settled by the
//!   resolver, the same everywhere);
//! - anything else waits: its author's join may simply not have arrived yet. That depends on
//!   what this node has learnt, so it is never the sender's fault.
//!
//! Pure functions and a plain data structure; the ingest pipeline does the I/O.

use std::collections::{HashMap, HashSet, VecDeque};

use staffroom_protocol::membership::{Action, Membership, Policy};
use staffroom_protocol::private::crypto;
use staffroom_protocol::{Body, EntryId, EntryKind, Header, NetworkId, NodeKey, VerifiedEntry};

use crate::hold::Held;

/// What may happen to a verified entry in its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Its author is not (yet, as far as this node knows) a member: wait for membership.
    Await,
    /// Its author's membership ended (at this time, by their clock) before they made it.
    Refuse {
        ended_at_ms: u64,
    },
    /// A join with an invite that, as far as this node knows, admits no more joins: not
    /// taken in, so that a late join cannot displace one that already counts.
    InviteClosed {
        reason: &'static str,
    },
    /// An erasure that removes or hides, by a member who is not a facilitator here.
    NotFacilitator,
    /// Content in the clear in a private network, or private kinds in one that is not.
    WrongPrivacy {
        reason: &'static str,
    },
}

/// Judges `entry` against the membership this node has resolved for its network.
pub fn judge(membership: &Membership, entry: &VerifiedEntry) -> Admission {
    let header = entry.header();
    let kind = header.known_kind();
    if kind == Some(EntryKind::Network) {
        return Admission::Admit;
    }
    if membership.founder.is_none() {
        return Admission::Await;
    }
    if let Some(decided) = judge_privacy(membership, header, kind) {
        return decided;
    }
    let join = match entry.entry().map(|e| &e.body) {
        Some(Body::Membership(Action::Join { invite })) => Some(*invite),
        _ => None,
    };
    let closed = join
        .flatten()
        .and_then(|invite| membership.invites.get(&invite))
        .and_then(|invite| invite.closed_to(header.created_at_ms));
    if let Some(reason) = closed {
        return Admission::InviteClosed { reason };
    }
    // Removing or hiding another's entry, and publishing the network, are facilitators' acts.
    let removes = matches!(
        entry.entry().map(|e| &e.body),
        Some(Body::Erasure(e)) if e.action != staffroom_protocol::ErasureAction::Delete
    ) || kind == Some(EntryKind::Publication);
    let known =
        membership.is_member(&header.author) || membership.former.contains_key(&header.author);
    if removes && known && !membership.is_facilitator(&header.author) {
        return Admission::NotFacilitator;
    }
    if join.is_some() || membership.is_member(&header.author) {
        return Admission::Admit;
    }
    // Taking back one's own words outlives membership: a former member may still delete what
    // they wrote (the protocol lets a deletion name only its author's entries).
    let deletes_own = matches!(
        entry.entry().map(|e| &e.body),
        Some(Body::Erasure(e)) if e.action == staffroom_protocol::ErasureAction::Delete
    );
    if deletes_own && membership.former.contains_key(&header.author) {
        return Admission::Admit;
    }
    match membership.former.get(&header.author) {
        Some(&ended_at_ms) if header.created_at_ms >= ended_at_ms => {
            Admission::Refuse { ended_at_ms }
        }
        Some(_) => Admission::Admit,
        None => Admission::Await,
    }
}

/// The rules of private networks: content there is sealed, and sealed content and key grants
/// belong nowhere else; a key grant's author is a node a member bound, judged like a member
/// (it may simply not be known here yet: then it waits).
fn judge_privacy(
    membership: &Membership,
    header: &Header,
    kind: Option<EntryKind>,
) -> Option<Admission> {
    let private = membership.policy.is_some_and(Policy::is_private);
    let refuse = |reason| Some(Admission::WrongPrivacy { reason });
    match kind? {
        EntryKind::KeyGrants if !private => refuse("key grants belong to private networks only"),
        // As for members' content: from a node a current member binds; from one whose
        // members have all gone, only what it signed before the last of them went.
        EntryKind::KeyGrants => {
            let node = NodeKey(header.author.0);
            Some(match membership.node_ended_at(&node) {
                _ if membership.is_bound(&node) => Admission::Admit,
                Some(end) if header.created_at_ms < end => Admission::Admit,
                Some(ended_at_ms) => Admission::Refuse { ended_at_ms },
                None => Admission::Await,
            })
        }
        EntryKind::Sealed if !private => refuse("sealed entries belong to private networks only"),
        EntryKind::Publication if private => {
            refuse("a private network's content is sealed: its pages cannot be published")
        }
        EntryKind::Sources if private => {
            refuse("sources would show their links to every relay of a private network")
        }
        k if private && crypto::is_sealable(k) => {
            refuse("content in a private network must be sealed")
        }
        _ => None,
    }
}

/// Entries held for membership at once, over all networks.
pub const AWAITING_COUNT_MAX: usize = 4096;
/// Bytes of entries held for membership at once.
pub const AWAITING_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Entries waiting for their author's admission, per network, oldest first. Bounded: past
/// the bounds new arrivals are dropped (catch-up sync offers them again later).
#[derive(Debug, Default)]
pub struct AwaitPen {
    by_network: HashMap<NetworkId, VecDeque<(EntryId, Held)>>,
    ids: HashSet<EntryId>,
    bytes: usize,
}

impl AwaitPen {
    /// Holds an entry; false if it was not held (pen full). Holding one twice is harmless.
    pub fn hold(&mut self, id: EntryId, header: &Header, held: Held) -> bool {
        if self.ids.contains(&id) {
            return true;
        }
        let bytes = held.bytes.len();
        if self.ids.len() >= AWAITING_COUNT_MAX
            || self.bytes.saturating_add(bytes) > AWAITING_BYTES_MAX
        {
            return false;
        }
        self.ids.insert(id);
        self.bytes += bytes;
        self.by_network
            .entry(header.network)
            .or_default()
            .push_back((id, held));
        true
    }

    /// Takes every entry waiting in `network`, to be offered to ingest again.
    pub fn take(&mut self, network: &NetworkId) -> Vec<Held> {
        let taken = self.by_network.remove(network).unwrap_or_default();
        taken
            .into_iter()
            .map(|(id, held)| {
                self.ids.remove(&id);
                self.bytes -= held.bytes.len();
                held
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use staffroom_protocol::fixtures::{self, key};
    use staffroom_protocol::membership::{resolve_network, Op};
    use staffroom_protocol::{verify_entry, AuthorId, Entry};

    const NOW: u64 = 1_767_225_600_000;

    fn verified(e: &Entry) -> VerifiedEntry {
        verify_entry(&e.encode(), NOW + 60_000).expect("valid")
    }

    fn membership_of(entries: &[Entry]) -> Membership {
        let ops: Vec<Op> = entries
            .iter()
            .filter_map(|e| Op::from_entry(e.id(), e))
            .collect();
        resolve_network(&ops)
    }

    fn post(seed: u8, network: NetworkId, at: u64) -> VerifiedEntry {
        verified(&fixtures::signed(
            &key(seed),
            network,
            at,
            vec![],
            fixtures::blog_body("A post"),
        ))
    }

    #[test]
    fn members_are_admitted_strangers_wait_former_members_are_cut_at_their_removal() {
        let mut entries = fixtures::network_with(&key(1), &[&key(2)], &[], NOW);
        let net = entries[0].network;
        let m = membership_of(&entries);
        assert_eq!(judge(&m, &post(2, net, NOW)), Admission::Admit);
        assert_eq!(judge(&m, &post(3, net, NOW)), Admission::Await);
        let last = entries.last().unwrap().id();
        let removal = fixtures::membership(
            &key(1),
            net,
            NOW + 100,
            &[last],
            Action::Remove {
                member: AuthorId(key(2).verifying_key().to_bytes()),
            },
        );
        entries.push(removal);
        let m = membership_of(&entries);
        assert_eq!(judge(&m, &post(2, net, NOW + 99)), Admission::Admit);
        assert_eq!(
            judge(&m, &post(2, net, NOW + 100)),
            Admission::Refuse {
                ended_at_ms: NOW + 100
            }
        );
    }

    #[test]
    fn private_networks_take_sealed_content_and_grants_from_members_nodes_only() {
        use staffroom_protocol::membership::Policy;
        use staffroom_protocol::private::{crypto, KeyGrants};
        let node = |seed: u8| NodeKey(key(seed).verifying_key().to_bytes());
        let private =
            fixtures::network_with_policy(&key(1), Policy::Private, &[&key(2)], &[node(7)], NOW);
        let open = fixtures::network_with_policy(&key(1), Policy::Open, &[&key(2)], &[], NOW);
        let (pn, on) = (private[0].network, open[0].network);
        let (pm, om) = (membership_of(&private), membership_of(&open));
        let author = AuthorId(key(2).verifying_key().to_bytes());
        let sealed = |net| {
            let body = fixtures::blog_body("Sealed");
            let s = crypto::seal_body((&net, &author, NOW), &[9; 32], [1; 24], &body).unwrap();
            verified(&fixtures::signed(
                &key(2),
                net,
                NOW,
                vec![],
                Body::Sealed(s),
            ))
        };
        let refused = |reason| Admission::WrongPrivacy { reason };
        assert_eq!(judge(&pm, &sealed(pn)), Admission::Admit);
        assert_eq!(
            judge(&pm, &post(2, pn, NOW)),
            refused("content in a private network must be sealed")
        );
        assert_eq!(
            judge(&om, &sealed(on)),
            refused("sealed entries belong to private networks only")
        );
        let grants = |seed: u8, net| {
            let grant = crypto::seal_key(&net, &[9; 32], &node(7), [4; 32]).unwrap();
            let body = Body::KeyGrants(KeyGrants {
                key_id: crypto::key_id(&[9; 32]),
                grants: vec![grant],
            });
            verified(&fixtures::signed(&key(seed), net, NOW, vec![], body))
        };
        // Node 7 is bound by the founder: its grants count; a member's own key is no node's.
        assert_eq!(judge(&pm, &grants(7, pn)), Admission::Admit);
        assert_eq!(judge(&pm, &grants(2, pn)), Admission::Await);
        // Key(2) binds node 8, then leaves: node 8's grants count up to then, not after.
        let mut private = private;
        let last = private.last().unwrap().id();
        let bind = Action::BindNode { node: node(8) };
        let bind = fixtures::membership(&key(2), pn, NOW + 100, &[last], bind);
        let leave = fixtures::membership(&key(2), pn, NOW + 200, &[bind.id()], Action::Leave);
        private.extend([bind, leave]);
        let pm = membership_of(&private);
        let at = |t: u64| {
            let grant = crypto::seal_key(&pn, &[9; 32], &node(7), [4; 32]).unwrap();
            let body = Body::KeyGrants(KeyGrants {
                key_id: crypto::key_id(&[9; 32]),
                grants: vec![grant],
            });
            verified(&fixtures::signed(&key(8), pn, t, vec![], body))
        };
        assert_eq!(judge(&pm, &at(NOW + 150)), Admission::Admit);
        assert_eq!(
            judge(&pm, &at(NOW + 250)),
            Admission::Refuse {
                ended_at_ms: NOW + 200
            }
        );
        assert_eq!(
            judge(&om, &grants(7, on)),
            refused("key grants belong to private networks only")
        );
    }

    #[test]
    fn a_former_member_still_deletes_their_own_entries() {
        use staffroom_protocol::{ErasureAction, ErasureReason};
        let mut entries = fixtures::network_with(&key(1), &[&key(2)], &[], NOW);
        let net = entries[0].network;
        let last = entries.last().unwrap().id();
        let leave = fixtures::membership(&key(2), net, NOW + 100, &[last], Action::Leave);
        entries.push(leave);
        let m = membership_of(&entries);
        let mine = fixtures::signed(&key(2), net, NOW + 50, vec![], fixtures::blog_body("Mine"));
        let body = fixtures::erasure_body(&mine, ErasureAction::Delete, ErasureReason::Mistake);
        let later = verified(&fixtures::signed(&key(2), net, NOW + 500, vec![], body));
        assert_eq!(judge(&m, &later), Admission::Admit);
        // Anything else they make after leaving is refused.
        assert!(matches!(
            judge(&m, &post(2, net, NOW + 500)),
            Admission::Refuse { .. }
        ));
        // And a removal or hide dated back to their membership is still not theirs to make.
        let other = fixtures::signed(&key(1), net, NOW + 10, vec![], fixtures::blog_body("X"));
        let body = fixtures::erasure_body(&other, ErasureAction::Remove, ErasureReason::Other);
        let backdated = verified(&fixtures::signed(&key(2), net, NOW + 20, vec![], body));
        assert_eq!(judge(&m, &backdated), Admission::NotFacilitator);
    }

    #[test]
    fn only_facilitators_remove_or_hide_and_authors_delete_their_own() {
        use staffroom_protocol::{ErasureAction, ErasureReason};
        // key(1) founds (a facilitator); key(2) is a member.
        let entries = fixtures::network_with(&key(1), &[&key(2)], &[], NOW);
        let net = entries[0].network;
        let m = membership_of(&entries);
        let target = fixtures::signed(&key(2), net, NOW, vec![], fixtures::blog_body("Oops"));
        let erasure = |by: u8, action| {
            let body = fixtures::erasure_body(&target, action, ErasureReason::PersonalData);
            verified(&fixtures::signed(&key(by), net, NOW + 10, vec![], body))
        };
        assert_eq!(
            judge(&m, &erasure(2, ErasureAction::Delete)),
            Admission::Admit
        );
        assert_eq!(
            judge(&m, &erasure(1, ErasureAction::Remove)),
            Admission::Admit
        );
        assert_eq!(
            judge(&m, &erasure(1, ErasureAction::Hide)),
            Admission::Admit
        );
        assert_eq!(
            judge(&m, &erasure(2, ErasureAction::Remove)),
            Admission::NotFacilitator
        );
        assert_eq!(
            judge(&m, &erasure(2, ErasureAction::Hide)),
            Admission::NotFacilitator
        );
        assert_eq!(
            judge(&m, &erasure(3, ErasureAction::Remove)),
            Admission::Await
        );
    }

    #[test]
    fn only_facilitators_publish_and_never_a_private_network() {
        use staffroom_protocol::{membership::Policy, Publication};
        let publish = |by: u8, net| {
            let body = Body::Publication(Publication { public: true });
            verified(&fixtures::signed(&key(by), net, NOW + 10, vec![], body))
        };
        let entries = fixtures::network_with(&key(1), &[&key(2)], &[], NOW);
        let (net, m) = (entries[0].network, membership_of(&entries));
        assert_eq!(judge(&m, &publish(1, net)), Admission::Admit);
        assert_eq!(judge(&m, &publish(2, net)), Admission::NotFacilitator);
        assert_eq!(judge(&m, &publish(3, net)), Admission::Await);
        let private = fixtures::network_with_policy(&key(1), Policy::Private, &[&key(2)], &[], NOW);
        let m = membership_of(&private);
        assert!(matches!(
            judge(&m, &publish(1, private[0].network)),
            Admission::WrongPrivacy { .. }
        ));
    }

    #[test]
    fn members_state_sources_but_never_in_a_private_network() {
        use staffroom_protocol::{membership::Policy, Sources};
        let state = |by: u8, net| {
            let body = Body::Sources(Sources {
                resource: staffroom_protocol::EntryId([7; 32]),
                entries: vec![],
                links: vec!["https://example.org/".into()],
            });
            verified(&fixtures::signed(&key(by), net, NOW + 10, vec![], body))
        };
        let entries = fixtures::network_with(&key(1), &[&key(2)], &[], NOW);
        let (net, m) = (entries[0].network, membership_of(&entries));
        assert_eq!(judge(&m, &state(2, net)), Admission::Admit);
        assert_eq!(judge(&m, &state(3, net)), Admission::Await);
        let private = fixtures::network_with_policy(&key(1), Policy::Private, &[&key(2)], &[], NOW);
        let m = membership_of(&private);
        assert!(matches!(
            judge(&m, &state(2, private[0].network)),
            Admission::WrongPrivacy { .. }
        ));
    }

    #[test]
    fn without_the_founding_entry_everything_but_it_waits() {
        let entries = fixtures::network_with(&key(1), &[&key(2)], &[], NOW);
        let net = entries[0].network;
        let m = membership_of(&entries[1..]);
        assert_eq!(judge(&m, &post(1, net, NOW)), Admission::Await);
        assert_eq!(judge(&m, &verified(&entries[1])), Admission::Await);
        assert_eq!(judge(&m, &verified(&entries[0])), Admission::Admit);
    }

    #[test]
    fn joins_are_admitted_for_the_resolver_to_judge() {
        let entries = fixtures::network_with(&key(1), &[], &[], NOW);
        let net = entries[0].network;
        let m = membership_of(&entries);
        let join = fixtures::membership(
            &key(5),
            net,
            NOW,
            &[entries[0].id()],
            Action::Join { invite: None },
        );
        assert_eq!(judge(&m, &verified(&join)), Admission::Admit);
        let leave = fixtures::membership(&key(5), net, NOW, &[join.id()], Action::Leave);
        assert_eq!(judge(&m, &verified(&leave)), Admission::Await);
    }

    #[test]
    fn the_pen_is_bounded_and_released_per_network() {
        let mut pen = AwaitPen::default();
        let header = *post(1, NetworkId([1; 32]), NOW).header();
        let held = |n: usize| Held {
            bytes: vec![0; n],
            channel: None,
        };
        assert!(pen.hold(EntryId([1; 32]), &header, held(10)));
        assert!(pen.hold(EntryId([1; 32]), &header, held(10)), "twice");
        assert_eq!(pen.len(), 1);
        assert!(!pen.hold(EntryId([2; 32]), &header, held(AWAITING_BYTES_MAX)));
        assert!(pen.take(&NetworkId([2; 32])).is_empty());
        assert_eq!(pen.take(&header.network).len(), 1);
        assert!(pen.is_empty());
        for n in 0..AWAITING_COUNT_MAX {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            assert!(pen.hold(EntryId(id), &header, held(1)));
        }
        assert!(!pen.hold(EntryId([9; 32]), &header, held(1)));
    }
}
