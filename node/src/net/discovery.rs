//! Finding the other member nodes of a network beyond the LAN, with no hub: a Kademlia DHT
//! of Staffroom nodes only (protocol `/staffroom/kad/1.0.0`, never the public IPFS DHT),
//! joined through the peers this node already knows (its peer book, invites, configured
//! peers). Each node announces itself as a *provider* of every network it follows, under a
//! key derived from the network id — a hash, so the DHT never shows a network's id, let alone
//! a private network's, to nodes that do not know it — and looks up the other providers
//! every [`DISCOVER_INTERVAL`], dialling those it is not connected to.

use std::time::Duration;

use libp2p::kad::{self, store::MemoryStore, store::MemoryStoreConfig, Mode};
use libp2p::{PeerId, StreamProtocol};
use staffroom_protocol::NetworkId;

/// The DHT's protocol: Staffroom's own, so that no other network's nodes join it.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/staffroom/kad/1.0.0");
/// Hashed with a network id into the key under which its member nodes are found.
pub const PROVIDER_KEY_CONTEXT: &[u8] = b"staffroom/dht/network/v1\n";
/// How often each followed network's providers are announced and looked up.
pub const DISCOVER_INTERVAL: Duration = Duration::from_secs(10);
/// Providers dialled per network per round, at most.
pub const DIALS_PER_ROUND_MAX: usize = 16;
/// Provider records this node keeps for others, at most (and per key).
const PROVIDED_KEYS_MAX: usize = 1024;
const PROVIDERS_PER_KEY_MAX: usize = 64;
const RECORDS_MAX: usize = 1024;

pub type Kademlia = kad::Behaviour<MemoryStore>;

/// The DHT behaviour, answering queries (server mode: school nodes are the DHT), with bounded
/// storage.
pub fn behaviour(peer_id: PeerId) -> Kademlia {
    let store = MemoryStore::with_config(
        peer_id,
        MemoryStoreConfig {
            max_records: RECORDS_MAX,
            max_provided_keys: PROVIDED_KEYS_MAX,
            max_providers_per_key: PROVIDERS_PER_KEY_MAX,
            ..MemoryStoreConfig::default()
        },
    );
    let mut config = kad::Config::new(KAD_PROTOCOL);
    // Announcements are renewed every round, so records need not outlive a few rounds.
    config.set_provider_record_ttl(Some(Duration::from_secs(3600)));
    config.set_provider_publication_interval(None);
    let mut kad = kad::Behaviour::with_config(peer_id, store, config);
    kad.set_mode(Some(Mode::Server));
    kad
}

/// The DHT key under which `network`'s member nodes announce themselves.
pub fn provider_key(network: &NetworkId) -> kad::RecordKey {
    let mut hasher = blake3::Hasher::new();
    hasher.update(PROVIDER_KEY_CONTEXT);
    hasher.update(network.as_bytes());
    kad::RecordKey::new(hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_do_not_show_the_network_id() {
        let network = NetworkId([7; 32]);
        let key = provider_key(&network);
        assert_ne!(key.as_ref(), network.as_bytes().as_slice());
        assert_eq!(key, provider_key(&network));
        assert_ne!(key, provider_key(&NetworkId([8; 32])));
    }
}
