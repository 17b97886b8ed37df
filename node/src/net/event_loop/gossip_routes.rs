//! The event loop's routes for gossip: messages offered to validation (or ignored when this
//! node cannot take them), verdicts reported to gossipsub, peers' subscriptions tracked, and
//! a peer that broke a shared rule blocked.

use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::PeerId;

use super::super::gossip_in::{self, Checked, Validated};
use super::{EventLoop, BLOCKED_PEERS_MAX};

impl EventLoop {
    pub(super) fn handle_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(network) = self.topics.network_of(&message.topic) else {
                    self.validate_now(&message_id, &propagation_source, MessageAcceptance::Ignore);
                    return;
                };
                let offered =
                    self.validations
                        .offer(propagation_source, message_id, network, message.data);
                if let Err((message, refused)) = offered {
                    // This node's limit, not the peer's fault: catch-up sync brings it now.
                    tracing::debug!(peer = %propagation_source, ?refused, "gossip queue full; ignoring message");
                    self.validate_now(
                        &message.message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                    self.trigger_sync(propagation_source, network);
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                let Some(network) = self.topics.network_of(&topic) else {
                    return;
                };
                self.peers.subscribed(&peer_id, network);
                self.sharing_changed(&peer_id);
                let joined = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .topics()
                    .any(|t| *t == topic);
                if joined {
                    self.trigger_sync(peer_id, network);
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Some(network) = self.topics.network_of(&topic) {
                    self.peers.unsubscribed(&peer_id, &network);
                    self.sharing_changed(&peer_id);
                }
            }
            _ => {}
        }
    }

    pub(super) fn validate_now(
        &mut self,
        id: &MessageId,
        source: &PeerId,
        verdict: MessageAcceptance,
    ) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, verdict);
    }

    /// A gossiped entry has been verified (and stored, if valid): tell gossipsub.
    pub(super) fn report(&mut self, v: Validated) {
        let _span =
            tracing::info_span!("gossip", peer = %v.source, network = %v.network.short()).entered();
        let verdict = gossip_in::verdict(&v.result);
        let penalise = verdict.is_some_and(|(_, penalise)| penalise);
        match &v.result {
            Checked::Admitted(id) => {
                tracing::trace!(entry = %id.short(), "gossiped entry verified; relayed while stored")
            }
            Checked::StoredAfterRelay(Ok(done)) => {
                tracing::debug!(entry = %done.id.short(), outcome = ?done.outcome, "gossiped entry stored")
            }
            Checked::StoredAfterRelay(Err(e)) => {
                tracing::debug!(error = %e, "gossiped entry relayed but not stored here")
            }
            Checked::Known(id) => {
                tracing::trace!(entry = %id.short(), "gossiped entry already stored")
            }
            Checked::KnownRecently(id) => {
                tracing::debug!(entry = %id.short(), "gossiped entry stored moments ago; relayed")
            }
            Checked::Expired => tracing::debug!("gossip waited too long for its turn; ignored"),
            Checked::Ingested(Ok(done)) => {
                tracing::debug!(entry = %done.id.short(), outcome = ?done.outcome, "gossiped entry stored")
            }
            Checked::Ingested(Err(e)) if penalise => {
                tracing::warn!(error = %e, "rejected invalid entry from peer")
            }
            Checked::Ingested(Err(e)) => {
                tracing::debug!(error = %e, "gossiped entry not stored; sender not at fault")
            }
        }
        if penalise && self.peers.penalise(v.source) {
            self.block(v.source, "too many invalid entries");
        }
        if let Some((acceptance, _)) = verdict {
            self.validate_now(&v.message_id, &v.source, acceptance);
        }
        if gossip_in::dropped_unverified(&v.result) {
            self.trigger_sync(v.source, v.network);
        }
    }

    /// Blocks and disconnects `peer`: it broke a rule every node shares.
    pub(super) fn block(&mut self, peer: PeerId, reason: &str) {
        let behaviour = self.swarm.behaviour_mut();
        if behaviour.blocked.blocked_peers().len() < BLOCKED_PEERS_MAX {
            tracing::warn!(%peer, reason, "blocking peer");
            behaviour.blocked.block_peer(peer);
        }
        behaviour.gossipsub.blacklist_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
        // Its messages still waiting are dropped unverified (gossipsub forgets them).
        for message in self.validations.take_waiting(peer) {
            self.validate_now(&message.message_id, &peer, MessageAcceptance::Ignore);
        }
    }
}
