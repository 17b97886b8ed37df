//! Gossipsub settings for Staffroom: one topic per network, content-addressed message ids,
//! a mesh sized for 2–12 schools, manual validation, and scores that punish invalid entries.
//!
//! Everything here must agree across nodes (transmit size, message ids, topic names), so it
//! lives in one place that tests and benchmarks reuse.

use std::time::Duration;

use libp2p::gossipsub::{
    self, IdentTopic, MaxCountSubscriptionFilter, MessageAuthenticity, MessageId, PeerScoreParams,
    PeerScoreThresholds, TopicHash, TopicScoreParams, TopicSubscriptionFilter, ValidationMode,
};
use staffroom_protocol::limits::ENTRY_BYTES_MAX;
use staffroom_protocol::NetworkId;

/// Topic names carry the gossip format's version: a message is one entry's encoding (of any
/// entry format version). A change to that would be `/staffroom/2/…`.
const TOPIC_PREFIX: &str = "/staffroom/1/network/";
/// Networks one peer may be known to be subscribed to; a peer claiming more is ignored.
pub const PEER_TOPICS_MAX: usize = 256;
/// Subscriptions one message from a peer may carry.
const SUBSCRIPTIONS_PER_MESSAGE_MAX: usize = 64;
/// One RPC at most: a maximal entry plus room for gossipsub's own framing and control.
pub const TRANSMIT_BYTES_MAX: usize = ENTRY_BYTES_MAX + 16 * 1024;
/// Invalid entries from one peer before this node blocks it outright.
pub const INVALID_MESSAGES_MAX: u32 = 3;

/// The gossip topic of a network.
pub fn topic(network: &NetworkId) -> IdentTopic {
    IdentTopic::new(format!("{TOPIC_PREFIX}{network}"))
}

/// The network a topic belongs to, if it is one of ours.
pub fn network_of(topic: &TopicHash) -> Option<NetworkId> {
    topic.as_str().strip_prefix(TOPIC_PREFIX)?.parse().ok()
}

/// The gossipsub configuration every Staffroom node uses.
pub fn config() -> gossipsub::Config {
    gossipsub::ConfigBuilder::default()
        // Entries are signed by their authors; a second, per-node signature would only double
        // the verification cost. Messages carry no source or sequence number.
        .validation_mode(ValidationMode::Anonymous)
        // The message id is the entry id, so the same entry relayed by two nodes is one message.
        .message_id_fn(|m| MessageId::from(blake3::hash(&m.data).as_bytes().to_vec()))
        // Nothing is forwarded until the entry is verified and stored.
        .validate_messages()
        .max_transmit_size(TRANSMIT_BYTES_MAX)
        // School networks are small: with the default mesh (6, low 5) every mesh is "low".
        .mesh_n(3)
        .mesh_n_low(1)
        .mesh_n_high(6)
        .mesh_outbound_min(1)
        .gossip_lazy(3)
        .heartbeat_initial_delay(Duration::from_millis(200))
        .heartbeat_interval(Duration::from_secs(1))
        .build()
        .expect("the gossipsub configuration is valid")
}

/// Accepts subscriptions to Staffroom network topics only. (Not only joined networks:
/// gossipsub learns a peer's subscriptions once, when it connects, so a node that filtered by
/// its joined networks would never learn who is in a network it joins later.)
#[derive(Debug, Clone, Default)]
pub struct NetworkTopics;

impl TopicSubscriptionFilter for NetworkTopics {
    fn can_subscribe(&mut self, topic: &TopicHash) -> bool {
        network_of(topic).is_some()
    }
}

/// The subscription filter: network topics only, a bounded number per peer and per message.
pub type TopicFilter = MaxCountSubscriptionFilter<NetworkTopics>;

pub type Gossipsub = gossipsub::Behaviour<gossipsub::IdentityTransform, TopicFilter>;

pub fn topic_filter() -> TopicFilter {
    MaxCountSubscriptionFilter {
        filter: NetworkTopics,
        max_subscribed_topics: PEER_TOPICS_MAX,
        max_subscriptions_per_request: SUBSCRIPTIONS_PER_MESSAGE_MAX,
    }
}

/// A gossipsub behaviour with Staffroom's config, subscription filter and peer scoring.
pub fn behaviour() -> Gossipsub {
    let mut behaviour = gossipsub::Behaviour::new_with_subscription_filter(
        MessageAuthenticity::Anonymous,
        config(),
        topic_filter(),
    )
    .expect("anonymous authenticity matches anonymous validation");
    let params = PeerScoreParams {
        // Schools in tests and benchmarks share 127.0.0.1; schools behind one NAT share an IP.
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    };
    behaviour
        .with_peer_score(params, PeerScoreThresholds::default())
        .expect("the score parameters are valid");
    behaviour
}

/// Per-topic scores: quiet networks must not punish honest peers for sending little, so only
/// invalid deliveries (P4) count, heavily: three invalid entries put a peer below the graylist.
pub fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9,
        ..TopicScoreParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_their_network() {
        let net = NetworkId([7; 32]);
        let hash = topic(&net).hash();
        assert_eq!(network_of(&hash), Some(net));
        assert_eq!(network_of(&IdentTopic::new("other").hash()), None);
    }

    #[test]
    fn only_network_topics_pass_the_filter() {
        let mut filter = topic_filter();
        assert!(filter.can_subscribe(&topic(&NetworkId([1; 32])).hash()));
        assert!(!filter.can_subscribe(&IdentTopic::new("/other/topic").hash()));
        assert!(!filter.can_subscribe(&IdentTopic::new("/staffroom/1/network/zz").hash()));
    }

    #[test]
    fn config_and_scores_are_valid() {
        let _ = behaviour();
        topic_score_params().validate().expect("valid topic params");
        assert_eq!(config().max_transmit_size(), TRANSMIT_BYTES_MAX);
    }
}
