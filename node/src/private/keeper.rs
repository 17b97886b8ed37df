//! The key keeper: for each private network this node follows, opens the content keys sealed
//! to it, and does what `staffroom_protocol::private::keeper::decide` says — make a new key
//! after a removal, share keys with members' nodes that lack them — by signing key grant
//! entries with the node's own key and ingesting and gossiping them like any entry.
//! Runs every [`TEND_INTERVAL`]; the event loop and the API never wait on it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use staffroom_protocol::private::keeper::{decide, KeeperView, KeyAction, KeyRecord};
use staffroom_protocol::private::{crypto, KeyGrants, KeyId, GRANTS_COUNT_MAX};
use staffroom_protocol::{Body, Draft, EntryId, NetworkId, NodeKey, SigningKey};
use tokio::sync::watch;

use crate::ingest::{Ingest, IngestError};
use crate::net::NetClient;
use crate::store::StoreError;

/// How often each private network's keys are tended.
pub const TEND_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("no randomness for a new key: {0}")]
    Random(std::io::Error),
    #[error("cannot seal a key: {0}")]
    Seal(#[from] crypto::SealError),
}

pub struct Keeper {
    pub ingest: Ingest,
    pub net: NetClient,
    /// The node's own ed25519 key (its libp2p identity): what grants are sealed to, and what
    /// signs the grants it makes.
    pub node: SigningKey,
}

impl Keeper {
    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TEND_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = tick.tick() => {}
            }
            let Ok(networks) = self.ingest.store().networks() else {
                continue;
            };
            for network in networks {
                if let Err(e) = self.tend(network.id).await {
                    tracing::warn!(network = %network.id.short(), error = %e, "cannot tend keys");
                }
            }
        }
    }

    fn me(&self) -> NodeKey {
        NodeKey(self.node.verifying_key().to_bytes())
    }

    /// One round for one network.
    async fn tend(&self, network: NetworkId) -> Result<(), KeeperError> {
        let roster = self.ingest.rosters().get(&network)?;
        let Some(policy) = roster.policy.filter(|p| p.is_private()) else {
            return Ok(());
        };
        let store = self.ingest.store();
        let me = self.me();
        let index = store.key_index(&network, &me)?;
        let mut held = store.content_keys(&network)?;
        self.open_mine(network, &index.sealed_to_me, &mut held)
            .await?;
        if !index.complete {
            tracing::error!(network = %network.short(), "key index over its bound: no key is made or shared");
            return Ok(());
        }
        let bound: BTreeSet<NodeKey> = roster.nodes.values().flatten().copied().collect();
        let may_grant = roster
            .nodes
            .iter()
            .any(|(member, nodes)| roster.is_facilitator(member) && nodes.contains(&me));
        let held_ids: BTreeSet<KeyId> = held.keys().copied().collect();
        let view = KeeperView {
            me,
            bound: &bound,
            may_grant,
            history: policy.gives_history(),
            keys: &index.records,
            held: &held_ids,
        };
        for action in decide(&view) {
            self.act(network, action, &held, &index.records).await?;
        }
        Ok(())
    }

    /// Opens and keeps every key sealed to this node that it does not hold yet.
    async fn open_mine(
        &self,
        network: NetworkId,
        sealed_to_me: &[(KeyId, EntryId)],
        held: &mut BTreeMap<KeyId, [u8; 32]>,
    ) -> Result<(), KeeperError> {
        let me = self.me();
        for (key_id, grant_id) in sealed_to_me {
            if held.contains_key(key_id) {
                continue;
            }
            let Some(stored) = self.ingest.store().get(grant_id)? else {
                continue;
            };
            let Body::KeyGrants(g) = &stored.entry.body else {
                continue;
            };
            let Some(grant) = g.grants.iter().find(|grant| grant.node == me) else {
                continue;
            };
            match crypto::open_grant(&network, &g.key_id, grant, &self.node) {
                Ok(key) => {
                    self.ingest.store().put_content_key(network, key).await?;
                    held.insert(g.key_id, key);
                    tracing::info!(network = %network.short(), key = %g.key_id.to_hex(), "content key received");
                }
                // Sealed wrongly by a member's node: another grant may bring it.
                Err(e) => {
                    tracing::warn!(network = %network.short(), entry = %stored.id.short(), error = %e, "cannot open a key grant")
                }
            }
        }
        Ok(())
    }

    async fn act(
        &self,
        network: NetworkId,
        action: KeyAction,
        held: &BTreeMap<KeyId, [u8; 32]>,
        records: &[KeyRecord],
    ) -> Result<(), KeeperError> {
        let (key, to) = match action {
            KeyAction::Rotate { to } => {
                // A key kept by an earlier try whose grant never got stored is used, so failed
                // tries leave no trail of keys.
                let granted = |id: &KeyId| records.iter().any(|r| r.key_id == *id);
                let key = match held.iter().find(|(id, _)| !granted(id)) {
                    Some((_, key)) => *key,
                    None => crate::secret_file::random_32().map_err(KeeperError::Random)?,
                };
                // Kept before anyone can see it granted, so this node never writes with a key
                // it could lose.
                self.ingest.store().put_content_key(network, key).await?;
                tracing::info!(network = %network.short(), nodes = to.len(), "new content key");
                (key, to)
            }
            KeyAction::Share { key_id, to } => match held.get(&key_id) {
                Some(key) => (*key, to),
                None => return Ok(()),
            },
        };
        for chunk in to.chunks(GRANTS_COUNT_MAX) {
            self.grant(network, &key, chunk).await?;
        }
        Ok(())
    }

    /// Signs, stores and gossips one grant of `key` to `to` (at most 64 nodes).
    async fn grant(
        &self,
        network: NetworkId,
        key: &[u8; 32],
        to: &[NodeKey],
    ) -> Result<(), KeeperError> {
        let mut grants = Vec::with_capacity(to.len());
        for node in to {
            let secret = crate::secret_file::random_32().map_err(KeeperError::Random)?;
            grants.push(crypto::seal_key(&network, key, node, secret)?);
        }
        grants.sort_by_key(|g| g.node.0);
        let entry = Draft {
            network,
            created_at_ms: self.ingest.clock().now_ms(),
            refs: Vec::new(),
            body: Body::KeyGrants(KeyGrants {
                key_id: crypto::key_id(key),
                grants,
            }),
        }
        .sign(&self.node);
        let bytes = entry.encode();
        self.ingest.ingest(bytes.clone(), None).await?;
        if let Err(e) = self.net.publish(network, bytes).await {
            tracing::debug!(error = %e, "key grant not gossiped now; sync delivers it");
        }
        Ok(())
    }
}
