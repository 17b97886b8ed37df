//! Which content keys a private network's member node creates and shares: a pure function of
//! what the node knows (the network's key grants, its current members' nodes, the keys it
//! holds), so it is tested without a network and every node applies the same rules. No rule
//! trusts a clock: a grant's time only picks among keys that are all safe to use.
//!
//! - A key's **recipients** are the nodes its grants name *and the nodes that signed them*
//!   (they knew it). A key is **clean** while all its recipients are current members' nodes.
//! - The **writing key** is the newest clean key this node holds (by its first grant's time,
//!   then id).
//! - A node bound by a facilitator **rotates** — makes a new key for every current member's
//!   node — when no clean key exists (the first key; after a removal or a leave, every key the
//!   departed node knew), and, in a network that gives no history, when a member's node lacks
//!   the writing key (a new member): what they are given opens nothing written before.
//! - Otherwise such a node **shares**: the writing key, and in a network that gives history,
//!   every key it holds, with current members' nodes that lack them.
//!
//! Two facilitators' nodes acting at once make two keys, or two grants of one: harmless, as
//! readers open whichever key an entry names.

use std::collections::BTreeSet;

use super::{KeyId, GRANTS_COUNT_MAX};
use crate::ids::{EntryId, NodeKey};

/// What the node knows of one content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: KeyId,
    /// Its first grant: (time, entry id), which orders keys.
    pub introduced: (u64, EntryId),
    /// Every node it has been granted to.
    pub recipients: BTreeSet<NodeKey>,
}

/// A node's view of one private network, for [`decide`].
#[derive(Debug, Clone, Copy)]
pub struct KeeperView<'a> {
    pub me: NodeKey,
    /// Nodes bound by current members.
    pub bound: &'a BTreeSet<NodeKey>,
    /// Whether this node is bound by a current facilitator (only such nodes grant).
    pub may_grant: bool,
    /// Whether new members are given every key (the network's history), not only the
    /// writing key.
    pub history: bool,
    pub keys: &'a [KeyRecord],
    /// Keys this node has opened.
    pub held: &'a BTreeSet<KeyId>,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// Make a new key and seal it to these nodes (this one included), in as many grant
    /// entries as it takes.
    Rotate { to: Vec<NodeKey> },
    /// Seal a held key to these nodes.
    Share { key_id: KeyId, to: Vec<NodeKey> },
}

fn newest<'a>(keys: impl Iterator<Item = &'a KeyRecord>) -> Option<&'a KeyRecord> {
    keys.max_by_key(|k| k.introduced)
}

fn clean(key: &KeyRecord, bound: &BTreeSet<NodeKey>) -> bool {
    key.recipients.is_subset(bound)
}

/// The key this node seals new entries with, if it has one.
pub fn writing_key(view: &KeeperView<'_>) -> Option<KeyId> {
    let usable = view
        .keys
        .iter()
        .filter(|k| view.held.contains(&k.key_id) && clean(k, view.bound));
    newest(usable).map(|k| k.key_id)
}

/// What this node should do now, given its view. Empty when nothing is needed.
pub fn decide(view: &KeeperView<'_>) -> Vec<KeyAction> {
    if !view.may_grant || !view.bound.contains(&view.me) {
        return Vec::new();
    }
    let rotate = || {
        vec![KeyAction::Rotate {
            to: view.bound.iter().copied().collect(),
        }]
    };
    if !view.keys.iter().any(|k| clean(k, view.bound)) {
        return rotate();
    }
    // A clean key this node does not hold yet: it waits to be given one.
    let Some(writing) = writing_key(view) else {
        return Vec::new();
    };
    let missing = |key: &KeyRecord| -> Vec<NodeKey> {
        view.bound.difference(&key.recipients).copied().collect()
    };
    if !view.history {
        let lacking = view.keys.iter().find(|k| k.key_id == writing).map(missing);
        return match lacking.is_some_and(|m| !m.is_empty()) {
            true => rotate(),
            false => Vec::new(),
        };
    }
    let mut actions = Vec::new();
    for key in view.keys.iter().filter(|k| view.held.contains(&k.key_id)) {
        for chunk in missing(key).chunks(GRANTS_COUNT_MAX) {
            actions.push(KeyAction::Share {
                key_id: key.key_id,
                to: chunk.to_vec(),
            });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeKey {
        NodeKey([n; 32])
    }

    fn key(n: u8, at: u64, to: &[u8]) -> KeyRecord {
        KeyRecord {
            key_id: KeyId([n; 16]),
            introduced: (at, EntryId([n; 32])),
            recipients: to.iter().map(|&n| node(n)).collect(),
        }
    }

    fn view<'a>(
        bound: &'a BTreeSet<NodeKey>,
        keys: &'a [KeyRecord],
        held: &'a BTreeSet<KeyId>,
    ) -> KeeperView<'a> {
        KeeperView {
            me: node(1),
            bound,
            may_grant: true,
            history: true,
            keys,
            held,
        }
    }

    #[test]
    fn the_first_key_is_made_for_every_members_node() {
        let bound: BTreeSet<_> = [node(1), node(2)].into();
        let held = BTreeSet::new();
        let actions = decide(&view(&bound, &[], &held));
        let to = vec![node(1), node(2)];
        assert_eq!(actions, vec![KeyAction::Rotate { to }]);
        let quiet = KeeperView {
            may_grant: false,
            ..view(&bound, &[], &held)
        };
        assert!(decide(&quiet).is_empty(), "only facilitators' nodes grant");
    }

    #[test]
    fn a_removal_rotates_and_the_removed_node_is_left_out() {
        // Node 3's member was removed: key 1 reached it, so a new key goes to 1 and 2 only.
        let bound: BTreeSet<_> = [node(1), node(2)].into();
        let keys = [key(1, 10, &[1, 2, 3])];
        let held: BTreeSet<_> = [KeyId([1; 16])].into();
        let v = view(&bound, &keys, &held);
        assert_eq!(
            writing_key(&v),
            None,
            "never write with a key a removed node has"
        );
        let to = vec![node(1), node(2)];
        assert_eq!(decide(&v), vec![KeyAction::Rotate { to }]);
        // Once the new key exists, it is the writing key and nothing more is done.
        let keys = [key(1, 10, &[1, 2, 3]), key(2, 20, &[1, 2])];
        let held: BTreeSet<_> = [KeyId([1; 16]), KeyId([2; 16])].into();
        let v = view(&bound, &keys, &held);
        assert_eq!(writing_key(&v), Some(KeyId([2; 16])));
        assert!(decide(&v).is_empty());
    }

    #[test]
    fn a_new_member_gets_the_history_the_network_gives() {
        let bound: BTreeSet<_> = [node(1), node(2), node(4)].into();
        let keys = [key(1, 10, &[1, 2, 3]), key(2, 20, &[1, 2])];
        let held: BTreeSet<_> = [KeyId([1; 16]), KeyId([2; 16])].into();
        let v = view(&bound, &keys, &held);
        let share = |n: u8| KeyAction::Share {
            key_id: KeyId([n; 16]),
            to: vec![node(4)],
        };
        assert_eq!(decide(&v), vec![share(1), share(2)]);
        // Without history, the new member's node is given a new key, made for everyone:
        // no key that opens what was written before.
        let no_history = KeeperView {
            history: false,
            ..v
        };
        let to = vec![node(1), node(2), node(4)];
        assert_eq!(decide(&no_history), vec![KeyAction::Rotate { to }]);
        let keys = [
            key(1, 10, &[1, 2, 3]),
            key(2, 20, &[1, 2]),
            key(3, 30, &[1, 2, 4]),
        ];
        let held: BTreeSet<_> = [KeyId([1; 16]), KeyId([2; 16]), KeyId([3; 16])].into();
        let settled = KeeperView {
            history: false,
            ..view(&bound, &keys, &held)
        };
        assert!(decide(&settled).is_empty());
    }

    #[test]
    fn no_clock_can_keep_a_departed_nodes_key_in_use() {
        // Key 2 is dated far ahead and reached node 3, since removed; key 1 is clean.
        let bound: BTreeSet<_> = [node(1), node(2)].into();
        let keys = [key(1, 10, &[1, 2]), key(2, u64::MAX, &[1, 2, 3])];
        let held: BTreeSet<_> = [KeyId([1; 16]), KeyId([2; 16])].into();
        let v = view(&bound, &keys, &held);
        assert_eq!(writing_key(&v), Some(KeyId([1; 16])));
        assert!(decide(&v).is_empty(), "a clean key exists: no new one");
    }

    #[test]
    fn a_node_that_is_not_a_members_does_nothing() {
        let bound: BTreeSet<_> = [node(2)].into();
        let held = BTreeSet::new();
        assert!(decide(&view(&bound, &[], &held)).is_empty());
    }
}
