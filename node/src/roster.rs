//! The resolved membership of each network this node follows: kept in memory, recomputed from
//! the stored membership entries whenever one is stored. Resolution is a pure function of
//! that set (`staffroom_protocol::membership`), so every node that holds the same entries
//! holds the same roster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use libp2p::PeerId;
use staffroom_protocol::membership::{
    resolve_network, Action, InviteState, Membership, Op, Policy,
};
use staffroom_protocol::{AuthorId, Body, NetworkId, NodeKey};

use crate::store::{Store, StoreError};

/// The refusal a peer gets for a network this node does not share with it: the same whether
/// this node follows the network or not, so that asking tells a non-member nothing.
/// (At most 50 characters: sync refusals carry no more.)
pub const NOT_SHARED: &str = "not shared: your node is not bound to a member";

#[derive(Clone)]
pub struct Rosters {
    store: Store,
    /// One per joined network (at most `api::types::NETWORKS_MAX`).
    cache: Arc<RwLock<HashMap<NetworkId, Arc<Membership>>>>,
    /// Held from reading the store to writing the cache, so that a refresh that read less
    /// can never overwrite one that read more.
    refreshing: Arc<Mutex<()>>,
}

impl Rosters {
    pub fn new(store: Store) -> Self {
        Rosters {
            store,
            cache: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    /// The network's membership as this node knows it.
    pub fn get(&self, network: &NetworkId) -> Result<Arc<Membership>, StoreError> {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(network)
            .cloned();
        match cached {
            Some(m) => Ok(m),
            None => self.refresh(network),
        }
    }

    /// Resolves the network's membership again from the store. Blocking: sled reads and a
    /// resolution that grows with the number of operations.
    pub fn refresh(&self, network: &NetworkId) -> Result<Arc<Membership>, StoreError> {
        let _one_at_a_time = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        let entries = self.store.membership_entries(network)?;
        let ops: Vec<Op> = entries
            .iter()
            .filter_map(|s| Op::from_entry(s.id, &s.entry))
            .collect();
        let resolved = Arc::new(resolve_network(&ops));
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*network, resolved.clone());
        Ok(resolved)
    }

    /// Whether this node may exchange `network`'s history with `peer`: in an invite-only
    /// network only with nodes that a current member has bound; in an open one with anyone.
    pub fn may_share(&self, network: &NetworkId, peer: &PeerId) -> Result<bool, StoreError> {
        let roster = self.get(network)?;
        Ok(match roster.policy {
            Some(Policy::Open) => true,
            // Any node may carry a private network: what it gets is sealed, and only members'
            // nodes hold the keys.
            Some(Policy::Private | Policy::PrivateFromJoining) => true,
            Some(Policy::InviteOnly) => node_key(peer).is_some_and(|k| roster.is_bound(&k)),
            // Followed, but its founding entry not here yet (a join in progress): there is
            // nothing to give away, and the peer may be the one to bring it.
            None => true,
        })
    }

    /// Why `peer` is not served `network`, as far as this node can tell: the fate of the join
    /// whose member bound that node, when there is one. Words for the joining teacher.
    pub fn refusal_reason(&self, network: &NetworkId, peer: &PeerId) -> String {
        let fallback = NOT_SHARED.to_owned();
        let (Some(node), Ok(roster), Ok(entries)) = (
            node_key(peer),
            self.get(network),
            self.store.membership_entries(network),
        ) else {
            return fallback;
        };
        let binders: Vec<AuthorId> = entries
            .iter()
            .filter(|e| matches!(&e.entry.body, Body::Membership(Action::BindNode { node: n }) if *n == node))
            .map(|e| e.entry.author)
            .collect();
        let join = entries.iter().find_map(|e| match &e.entry.body {
            Body::Membership(Action::Join {
                invite: Some(invite),
            }) if binders.contains(&e.entry.author) && !roster.valid.contains(&e.id) => {
                Some((e.entry.created_at_ms, *invite))
            }
            _ => None,
        });
        let Some((joined_at_ms, invite)) = join else {
            return fallback;
        };
        join_refusal(roster.invites.get(&invite), joined_at_ms).to_owned()
    }
}

/// Why a join does not count, in words that fit a sync refusal (50 characters).
fn join_refusal(invite: Option<&InviteState>, joined_at_ms: u64) -> &'static str {
    match invite {
        None => "join refused: the invite is not known here",
        Some(i) if i.revoked => "join refused: the invite has been revoked",
        Some(i) if joined_at_ms > i.expires_at_ms => "join refused: the invite has expired",
        Some(_) => "join refused: the invite is used up",
    }
}

/// The ed25519 key of a peer, which school nodes' ids all carry (libp2p inlines ed25519 keys
/// into the peer id). `None` for peers with other kinds of key.
pub fn node_key(peer: &PeerId) -> Option<NodeKey> {
    let public = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    let ed25519 = public.try_into_ed25519().ok()?;
    Some(NodeKey(ed25519.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_id_yields_its_node_key() {
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let peer = keypair.public().to_peer_id();
        let expected = keypair
            .public()
            .try_into_ed25519()
            .expect("ed25519")
            .to_bytes();
        assert_eq!(node_key(&peer), Some(NodeKey(expected)));
        assert_eq!(node_key(&PeerId::random()), None);
    }

    #[test]
    fn refusals_fit_what_a_sync_refusal_carries() {
        // Sync refusals carry 50 characters: every reason must arrive whole.
        let invite = |revoked, uses| InviteState {
            author: AuthorId([1; 32]),
            expires_at_ms: 100,
            uses_max: 1,
            revoked,
            uses,
        };
        let reasons = [
            NOT_SHARED,
            join_refusal(None, 0),
            join_refusal(Some(&invite(true, 0)), 0),
            join_refusal(Some(&invite(false, 0)), 101),
            join_refusal(Some(&invite(false, 1)), 0),
        ];
        for reason in reasons {
            assert!(reason.chars().count() <= 50, "{reason}");
        }
        assert!(reasons[2].contains("revoked") && reasons[3].contains("expired"));
        assert!(reasons[4].contains("used up"));
    }
}
