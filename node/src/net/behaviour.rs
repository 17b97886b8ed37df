//! The node's libp2p behaviour: one sub-behaviour per concern, each bounded.

use std::time::Duration;

use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, identify, mdns, ping, request_response};

use super::gossip::Gossipsub;
use super::sync_codec::{SyncCodec, SYNC_PROTOCOL};

/// Connections established at once, in all.
pub const CONNECTIONS_MAX: u32 = 128;
/// Connections established with one peer at once (two: both sides may dial at once).
pub const CONNECTIONS_PER_PEER_MAX: u32 = 2;
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
}

/// Sync streams open at once per connection.
const SYNC_STREAMS_MAX: usize = 16;

impl Behaviour {
    /// `sync_request_timeout`: one sync request's round trip at most, so a peer that stalls
    /// fails its session instead of holding it.
    pub fn new(
        key: &Keypair,
        (mdns_enabled, dht): (bool, bool),
        sync_request_timeout: Duration,
    ) -> Behaviour {
        let peer_id = key.public().to_peer_id();
        let mdns = if mdns_enabled {
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
            gossipsub: super::gossip::behaviour(),
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
                    .with_request_timeout(sync_request_timeout)
                    .with_max_concurrent_streams(SYNC_STREAMS_MAX),
            ),
            streams: libp2p_stream::Behaviour::new(),
            kad: dht.then(|| super::discovery::behaviour(peer_id)).into(),
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
            .with_behaviour(|key| Behaviour::new(key, (false, false), Duration::from_secs(5)))
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build()
    }

    /// The connection limits are wired in: a peer dialling four times gets two connections.
    #[tokio::test]
    async fn a_peer_gets_at_most_two_connections() {
        let (mut a, mut b) = (swarm(), swarm());
        let addr: Multiaddr = format!("/memory/{}", rand_port()).parse().unwrap();
        a.listen_on(addr.clone()).unwrap();
        let a_id = *a.local_peer_id();
        for _ in 0..4 {
            let opts = DialOpts::peer_id(a_id)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::Always)
                .build();
            b.dial(opts).unwrap();
        }
        let (mut established, mut denied) = (0u32, 0u32);
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        while established + denied < 4 {
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

    fn rand_port() -> u64 {
        u64::from_le_bytes(
            crate::secret_file::random_32().unwrap()[..8]
                .try_into()
                .unwrap(),
        )
        .max(1)
    }
}
