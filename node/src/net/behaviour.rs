//! The node's libp2p behaviour: one sub-behaviour per concern, each bounded.

use std::time::Duration;

use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, autonat, dcutr, identify, mdns, ping, relay, request_response};

use super::gossip::Gossipsub;
use super::sync_codec::{SyncCodec, SYNC_PROTOCOL};

/// Connections established at once, in all.
pub const CONNECTIONS_MAX: u32 = 128;
/// Connections established with one peer at once: both sides may dial at once (two), and a
/// hole punch adds a direct connection while those are still relayed (three). A fourth is
/// never needed.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 3;
/// Connections being set up at once, each way.
pub const PENDING_CONNECTIONS_MAX: u32 = 32;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Bounds on connections, checked before any other behaviour sees one.
    pub limits: connection_limits::Behaviour,
    /// Peers blocked for breaking the protocol.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub gossipsub: Gossipsub,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    /// Local-network discovery; off when configured so, or when mDNS cannot start.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Catch-up sync: reconcile, fetch and push (`/staffroom/sync/2`).
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Raw streams for file transfer (`/staffroom/files/1`), driven outside the event loop.
    pub streams: libp2p_stream::Behaviour,
    /// The Staffroom DHT: finds the other member nodes of each network (see `discovery`);
    /// absent when the node is configured without it.
    pub kad: Toggle<super::discovery::Kademlia>,
    /// Reservations on relays and connections through them (the swarm builder makes it).
    pub relay_client: relay::client::Behaviour,
    /// Serving as a relay: advertised only while `reach` says so (`set_status`).
    pub relay: relay::Behaviour,
    /// Hole punching: upgrades relayed connections to direct ones.
    pub dcutr: dcutr::Behaviour,
    /// Which of this node's addresses peers can dial back (AutoNAT v2, both roles). A v2
    /// client asks only peers it dialled itself.
    pub autonat: autonat::v2::client::Behaviour,
    pub autonat_server: autonat::v2::server::Behaviour,
    /// AutoNAT v1, both roles, over any connection: how a public node that others dial, and
    /// that dials no one, learns it is reachable. Its servers dial back from a new port.
    pub autonat_v1: autonat::v1::Behaviour,
    /// Peers' clocks, for the doctor (`/staffroom/time/1`).
    pub time: super::time_probe::TimeProbe,
}

/// What a node needs besides its key to build its behaviour.
pub struct BehaviourConfig {
    pub mdns: bool,
    pub dht: bool,
    /// One sync request's round trip at most, so a peer that stalls fails its session
    /// instead of holding it.
    pub sync_request_timeout: Duration,
    pub relay: super::relay::RelayConfig,
    pub relay_admission: super::relay::Admission,
    /// Counts the gossip copies received (see [`super::gossip::CountingTransform`]).
    pub gossip_counter: super::gossip::CountingTransform,
}

/// The relay server, not advertised until `reach` finds this node public: its own status
/// logic would count a relay circuit of this node's as a public address.
fn relay_server(
    peer_id: libp2p::PeerId,
    config: &super::relay::RelayConfig,
    admission: &super::relay::Admission,
) -> relay::Behaviour {
    let mut relay = relay::Behaviour::new(peer_id, config.server(admission));
    relay.set_status(Some(relay::Status::Disable));
    relay
}

/// AutoNAT v1, quicker than its defaults (a school's node should know within a minute), and
/// not limited to global IP addresses: schools' networks may be private WANs. Loopback
/// confirmations are dropped by the event loop.
fn autonat_v1_config() -> autonat::v1::Config {
    autonat::v1::Config {
        boot_delay: Duration::from_secs(5),
        retry_interval: Duration::from_secs(30),
        refresh_interval: Duration::from_secs(600),
        throttle_server_period: Duration::from_secs(30),
        timeout: Duration::from_secs(15),
        only_global_ips: false,
        ..autonat::v1::Config::default()
    }
}

/// Sync streams open at once per connection.
const SYNC_STREAMS_MAX: usize = 16;

impl Behaviour {
    pub fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        config: &BehaviourConfig,
    ) -> Behaviour {
        let peer_id = key.public().to_peer_id();
        let mdns = if config.mdns {
            match mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "mDNS could not start; continuing without it");
                    None
                }
            }
        } else {
            None
        };
        let limits = ConnectionLimits::default()
            .with_max_established(Some(CONNECTIONS_MAX))
            .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
            .with_max_pending_incoming(Some(PENDING_CONNECTIONS_MAX))
            .with_max_pending_outgoing(Some(PENDING_CONNECTIONS_MAX));
        Behaviour {
            limits: connection_limits::Behaviour::new(limits),
            blocked: Default::default(),
            gossipsub: super::gossip::behaviour(config.gossip_counter.clone()),
            // Identify announces the protocols this node speaks (sync versions included), so
            // peers learn what it supports without trying.
            identify: identify::Behaviour::new(
                identify::Config::new(super::PROTOCOL_VERSION.into(), key.public())
                    .with_agent_version(format!("staffroom/{}", env!("CARGO_PKG_VERSION")))
                    .with_interval(Duration::from_secs(300)),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            mdns: mdns.into(),
            sync: request_response::Behaviour::with_codec(
                SyncCodec,
                [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(config.sync_request_timeout)
                    .with_max_concurrent_streams(SYNC_STREAMS_MAX),
            ),
            streams: libp2p_stream::Behaviour::new(),
            kad: config
                .dht
                .then(|| super::discovery::behaviour(peer_id))
                .into(),
            relay_client,
            relay: relay_server(peer_id, &config.relay, &config.relay_admission),
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat: autonat::v2::client::Behaviour::default(),
            autonat_server: autonat::v2::server::Behaviour::default(),
            autonat_v1: autonat::v1::Behaviour::new(peer_id, autonat_v1_config()),
            time: super::time_probe::behaviour(),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use libp2p::core::transport::{upgrade::Version, MemoryTransport, Transport};
    use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
    use libp2p::swarm::SwarmEvent;
    use libp2p::{noise, yamux, Multiaddr, Swarm, SwarmBuilder};

    use super::*;

    fn swarm() -> Swarm<Behaviour> {
        SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_other_transport(|key| {
                MemoryTransport::default()
                    .upgrade(Version::V1)
                    .authenticate(noise::Config::new(key).expect("noise keys"))
                    .multiplex(yamux::Config::default())
            })
            .expect("memory transport")
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .expect("relay client")
            .with_behaviour(|key, relay| Behaviour::new(key, relay, &test_config()))
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build()
    }

    /// The connection limits are wired in: a peer dialling five times gets three connections.
    #[tokio::test]
    async fn a_peer_gets_at_most_two_connections() {
        let (mut a, mut b) = (swarm(), swarm());
        let addr: Multiaddr = format!("/memory/{}", rand_port()).parse().unwrap();
        a.listen_on(addr.clone()).unwrap();
        let a_id = *a.local_peer_id();
        for _ in 0..5 {
            let opts = DialOpts::peer_id(a_id)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::Always)
                .build();
            b.dial(opts).unwrap();
        }
        let (mut established, mut denied) = (0u32, 0u32);
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        while established + denied < 5 {
            tokio::select! {
                event = a.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { .. } => established += 1,
                    SwarmEvent::IncomingConnectionError { .. } => denied += 1,
                    _ => {}
                },
                event = b.select_next_some() => {
                    if let SwarmEvent::OutgoingConnectionError { .. } = event {
                        denied += 1;
                    }
                }
                _ = &mut deadline => break,
            }
        }
        assert_eq!(established, CONNECTIONS_PER_PEER_MAX, "denied {denied}");
        assert!(denied >= 1);
        assert_eq!(a.connected_peers().count(), 1);
    }

    fn test_config() -> BehaviourConfig {
        BehaviourConfig {
            mdns: false,
            dht: false,
            sync_request_timeout: Duration::from_secs(5),
            relay: Default::default(),
            relay_admission: super::super::relay::Admission {
                sharing: Default::default(),
                may_share: std::sync::Arc::new(|_, _| true),
            },
            gossip_counter: Default::default(),
        }
    }

    fn rand_port() -> u64 {
        u64::from_le_bytes(
            crate::secret_file::random_32().unwrap()[..8]
                .try_into()
                .unwrap(),
        )
        .max(1)
    }
}
