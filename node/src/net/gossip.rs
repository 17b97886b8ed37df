//! Gossipsub settings for Staffroom: one topic per network, content-addressed message ids,
//! a mesh sized for 2–12 schools, manual validation, and scores that punish invalid entries.
//!
//! Everything here must agree across nodes (transmit size, message ids, topic names), so it
//! lives in one place that tests and benchmarks reuse.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libp2p::gossipsub::{
    self, DataTransform, IdentTopic, MaxCountSubscriptionFilter, MessageAuthenticity, MessageId,
    PeerScoreParams, PeerScoreThresholds, RawMessage, TopicHash, TopicScoreParams,
    TopicSubscriptionFilter, ValidationMode,
};
use staffroom_protocol::limits::ENTRY_BYTES_MAX;
use staffroom_protocol::NetworkId;

/// Topic names carry the gossip format's version: a message is one entry's encoding (of any
/// entry format version). Version 2 names topics by a hash of the network id, so a
/// subscription does not show network ids to every connected peer.
const TOPIC_PREFIX: &str = "/staffroom/2/";
/// Hashed with a network id to name its topic.
const TOPIC_CONTEXT: &[u8] = b"staffroom/topic/v1\n";
/// Networks one peer may be known to be subscribed to; a peer claiming more is ignored.
pub const PEER_TOPICS_MAX: usize = 256;
/// Subscriptions one message from a peer may carry.
const SUBSCRIPTIONS_PER_MESSAGE_MAX: usize = 64;
/// One RPC at most: a maximal entry plus room for gossipsub's own framing and control.
pub const TRANSMIT_BYTES_MAX: usize = ENTRY_BYTES_MAX + 16 * 1024;
/// Invalid entries from one peer before this node blocks it outright.
pub const INVALID_MESSAGES_MAX: u32 = 3;

/// The gossip topic of a network: named by a hash of its id, so that a peer learns which
/// networks this node is in only if it already knows their ids.
pub fn topic(network: &NetworkId) -> IdentTopic {
    let mut hasher = blake3::Hasher::new();
    hasher.update(TOPIC_CONTEXT);
    hasher.update(network.as_bytes());
    IdentTopic::new(format!("{TOPIC_PREFIX}{}", hasher.finalize().to_hex()))
}

/// Whether a topic has the shape of a Staffroom network topic (whichever network it is).
fn is_network_topic(topic: &TopicHash) -> bool {
    topic
        .as_str()
        .strip_prefix(TOPIC_PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The topics of the networks this node follows, to tell which network a message is in.
#[derive(Debug, Default)]
pub struct Topics {
    by_hash: HashMap<TopicHash, NetworkId>,
}

impl Topics {
    pub fn insert(&mut self, network: NetworkId) -> IdentTopic {
        let topic = topic(&network);
        self.by_hash.insert(topic.hash(), network);
        topic
    }

    pub fn remove(&mut self, network: &NetworkId) -> IdentTopic {
        let topic = topic(network);
        self.by_hash.remove(&topic.hash());
        topic
    }

    /// The network a topic belongs to, if this node follows it.
    pub fn network_of(&self, topic: &TopicHash) -> Option<NetworkId> {
        self.by_hash.get(topic).copied()
    }

    /// Every network followed.
    pub fn networks(&self) -> Vec<NetworkId> {
        self.by_hash.values().copied().collect()
    }
}

/// The gossipsub configuration every Staffroom node uses.
pub fn config() -> gossipsub::Config {
    let mut builder = gossipsub::ConfigBuilder::default();
    mesh(&mut builder)
        // Entries are signed by their authors; a second, per-node signature would only double
        // the verification cost. Messages carry no source or sequence number.
        .validation_mode(ValidationMode::Anonymous)
        // The message id is the entry id, so the same entry relayed by two nodes is one message.
        .message_id_fn(|m| MessageId::from(blake3::hash(&m.data).as_bytes().to_vec()))
        // Nothing is forwarded until the entry is verified and admitted.
        .validate_messages()
        .build()
        .expect("the gossipsub configuration is valid")
}

/// The size bound, mesh, lazy gossip and heartbeat of Staffroom's gossip, on `builder`: also
/// what the propagation benchmark gives its bare gossipsub baseline.
pub fn mesh(builder: &mut gossipsub::ConfigBuilder) -> &mut gossipsub::ConfigBuilder {
    builder
        .max_transmit_size(TRANSMIT_BYTES_MAX)
        // School networks are small: with the default mesh (6, low 5) every mesh is "low".
        .mesh_n(3)
        .mesh_n_low(1)
        // A node that joins a network after connecting grafts its neighbours at once, and
        // they accept grafts up to this bound: at 6 most meshes held every neighbour, and
        // gossip became flooding (issue 14: 2.3 duplicate copies per node and message at N =
        // 50, 0.6 at 4). A heartbeat prunes a mesh that reaches it back to `mesh_n`.
        .mesh_n_high(4)
        .mesh_outbound_min(1)
        .gossip_lazy(3)
        .heartbeat_initial_delay(Duration::from_millis(200))
        .heartbeat_interval(Duration::from_secs(1))
}

/// Accepts subscriptions to Staffroom network topics only. (Not only followed networks:
/// gossipsub learns a peer's subscriptions once, when it connects, so a node that filtered by
/// its joined networks would never learn who is in a network it joins later.)
#[derive(Debug, Clone, Default)]
pub struct NetworkTopics;

impl TopicSubscriptionFilter for NetworkTopics {
    fn can_subscribe(&mut self, topic: &TopicHash) -> bool {
        is_network_topic(topic)
    }
}

/// The subscription filter: network topics only, a bounded number per peer and per message.
pub type TopicFilter = MaxCountSubscriptionFilter<NetworkTopics>;

pub type Gossipsub = gossipsub::Behaviour<CountingTransform, TopicFilter>;

/// Passes gossip data through unchanged and counts every copy of a message that arrives.
/// gossipsub transforms a message before it drops the copies it has already seen, so the count
/// includes duplicates: against the entries stored, it says how much of the gossip traffic was
/// redundant (the node's status shows it; the propagation benchmark reports it).
#[derive(Debug, Clone, Default)]
pub struct CountingTransform {
    received: Arc<AtomicU64>,
}

impl CountingTransform {
    /// Copies of gossip messages received since the node started, duplicates included.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl DataTransform for CountingTransform {
    fn inbound_transform(&self, raw: RawMessage) -> Result<gossipsub::Message, std::io::Error> {
        self.received.fetch_add(1, Ordering::Relaxed);
        Ok(gossipsub::Message {
            source: raw.source,
            data: raw.data,
            sequence_number: raw.sequence_number,
            topic: raw.topic,
        })
    }

    fn outbound_transform(
        &self,
        _topic: &TopicHash,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, std::io::Error> {
        Ok(data)
    }
}

pub fn topic_filter() -> TopicFilter {
    MaxCountSubscriptionFilter {
        filter: NetworkTopics,
        max_subscribed_topics: PEER_TOPICS_MAX,
        max_subscriptions_per_request: SUBSCRIPTIONS_PER_MESSAGE_MAX,
    }
}

/// A gossipsub behaviour with Staffroom's config, subscription filter and peer scoring;
/// `counter` counts the copies it receives.
pub fn behaviour(counter: CountingTransform) -> Gossipsub {
    let mut behaviour = gossipsub::Behaviour::new_with_subscription_filter_and_transform(
        MessageAuthenticity::Anonymous,
        config(),
        topic_filter(),
        counter,
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
mod mesh_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_hide_their_network_id() {
        let net = NetworkId([7; 32]);
        let hash = topic(&net).hash();
        assert!(!hash.as_str().contains(&net.to_hex()), "{hash}");
        let mut topics = Topics::default();
        assert_eq!(topics.network_of(&hash), None, "not followed");
        topics.insert(net);
        assert_eq!(topics.network_of(&hash), Some(net));
        assert_eq!(topics.network_of(&IdentTopic::new("other").hash()), None);
        topics.remove(&net);
        assert_eq!(topics.network_of(&hash), None);
    }

    #[test]
    fn only_network_topics_pass_the_filter() {
        let mut filter = topic_filter();
        assert!(filter.can_subscribe(&topic(&NetworkId([1; 32])).hash()));
        assert!(!filter.can_subscribe(&IdentTopic::new("/other/topic").hash()));
        assert!(!filter.can_subscribe(&IdentTopic::new("/staffroom/2/zz").hash()));
        let old = format!("/staffroom/1/network/{}", NetworkId([1; 32]));
        assert!(!filter.can_subscribe(&IdentTopic::new(old).hash()));
    }

    #[test]
    fn config_and_scores_are_valid() {
        let _ = behaviour(CountingTransform::default());
        topic_score_params().validate().expect("valid topic params");
        assert_eq!(config().max_transmit_size(), TRANSMIT_BYTES_MAX);
    }
}
