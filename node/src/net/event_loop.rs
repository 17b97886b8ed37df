//! The event loop that owns the `Swarm`. It only routes: commands from [`NetClient`]s, swarm
//! events, and the completions of its bounded task sets go to the part that handles them.
//! Local completions are polled before new remote work (`biased`), so a flood of gossip or
//! requests cannot starve the answers already computed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub;
use libp2p::identity::Keypair;
use libp2p::request_response;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identify, kad, mdns, Multiaddr, PeerId, Swarm};
use staffroom_protocol::NetworkId;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::behaviour::{Behaviour, BehaviourConfig, BehaviourEvent};
use super::client::{Command, NetClient, NetError, NetStatus, PublishReport};
use super::gossip;
use super::gossip_in::Validations;
use super::peers::PeerBook;
use super::sync_route::SyncRoutes;
use crate::clock::Clock;
use crate::config::PEERS_COUNT_MAX;
use crate::ingest::Ingest;
use crate::sync::SyncTrigger;

/// Commands queued for the loop at most.
const COMMAND_QUEUE_MAX: usize = 256;
/// How often explicit peers that are not connected are dialled again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(5);
/// Listen addresses of one peer added to the DHT's routing table, at most.
const PEER_LISTEN_ADDRS_MAX: usize = 8;
/// Dials whose outcome someone waits for, at most.
const DIALS_AWAITED_MAX: usize = 64;
/// Blocked peers remembered at most.
const BLOCKED_PEERS_MAX: usize = 10_000;

mod connect;
mod gossip_routes;
mod nat;
mod sync_routes;

pub struct NetConfig {
    pub keypair: Keypair,
    pub listen: Vec<Multiaddr>,
    pub peers: Vec<Multiaddr>,
    pub mdns: bool,
    /// Take part in the Staffroom DHT: learn peers' addresses for it, announce and look up
    /// networks' member nodes.
    pub dht: bool,
    pub networks: Vec<NetworkId>,
    /// Where to say that a peer now shares a network with this node.
    pub sync_triggers: mpsc::Sender<SyncTrigger>,
    /// One sync request's round trip at most.
    pub sync_request_timeout: Duration,
    /// Serving as a relay and reserving on relays.
    pub relay: super::relay::RelayConfig,
    /// Whether this node may share a network with a peer (for the relay's admission).
    pub relay_may_share: super::relay::MayShare,
    /// The node's clock, which peers asking for it get.
    pub clock: Clock,
}

/// The running network side: its client, its listen addresses, and the loop's task.
pub struct NetHandle {
    pub client: NetClient,
    /// Opens and accepts raw streams (file transfer) without going through the loop.
    pub streams: libp2p_stream::Control,
    pub listen_addrs: Vec<Multiaddr>,
    pub task: JoinHandle<()>,
}

/// Builds the swarm, starts listening, subscribes to `networks`, dials `peers`, and spawns the
/// loop. The loop ends when `shutdown` turns true.
pub async fn spawn(
    config: NetConfig,
    ingest: Ingest,
    shutdown: watch::Receiver<bool>,
) -> Result<NetHandle, NetError> {
    let peer_id = config.keypair.public().to_peer_id();
    let sharing = super::relay::SharingPeers::default();
    let gossip_counter = gossip::CountingTransform::default();
    let behaviour = BehaviourConfig {
        mdns: config.mdns,
        dht: config.dht,
        sync_request_timeout: config.sync_request_timeout,
        relay: config.relay.clone(),
        relay_admission: super::relay::Admission {
            sharing: sharing.clone(),
            may_share: config.relay_may_share,
        },
        gossip_counter: gossip_counter.clone(),
    };
    let mut swarm = super::swarm::build(config.keypair, &behaviour)?;
    let listen_addrs = super::swarm::listen(&mut swarm, &config.listen).await?;
    let streams = swarm.behaviour().streams.new_control();
    let (tx, commands) = mpsc::channel(COMMAND_QUEUE_MAX);
    let mut event_loop = EventLoop {
        swarm,
        commands,
        validations: Validations::new(ingest.clone()),
        ingest,
        sync: SyncRoutes::default(),
        sync_triggers: config.sync_triggers,
        peers: PeerBook::new(config.peers, PEERS_COUNT_MAX),
        dial_outcomes: HashMap::new(),
        topics: gossip::Topics::default(),
        reach: super::reach::Reach::new(&config.relay, Instant::now()),
        sharing,
        clock: config.clock,
        clocks_asked: HashMap::new(),
        gossip_counter,
    };
    for network in config.networks {
        event_loop.subscribe(network)?;
    }
    event_loop.redial();
    let span = tracing::info_span!("net", local_peer = %peer_id);
    let task = tokio::spawn(event_loop.run(shutdown).instrument(span));
    Ok(NetHandle {
        client: NetClient { tx, peer_id },
        streams,
        listen_addrs,
        task,
    })
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    ingest: Ingest,
    validations: Validations,
    sync: SyncRoutes,
    sync_triggers: mpsc::Sender<SyncTrigger>,
    peers: PeerBook,
    /// Who waits to hear how a dial ends.
    dial_outcomes: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NetError>>>,
    /// Topics of the networks this node follows.
    topics: gossip::Topics,
    /// Reachability: relays served and reserved.
    reach: super::reach::Reach,
    /// Peers subscribed to followed networks, as the relay's admission reads them.
    sharing: super::relay::SharingPeers,
    clock: Clock,
    /// Clock probes in flight, with this node's time when each was sent.
    clocks_asked: HashMap<request_response::OutboundRequestId, u64>,
    /// The gossip copies received, counted by the gossipsub behaviour's transform.
    gossip_counter: gossip::CountingTransform,
}

impl EventLoop {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut redial = tokio::time::interval(REDIAL_INTERVAL);
        let mut discover = tokio::time::interval(super::discovery::DISCOVER_INTERVAL);
        let mut reach = tokio::time::interval(nat::REACH_INTERVAL);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                Some(done) = self.validations.next(), if !self.validations.is_empty() => {
                    self.report(done);
                }
                Some(served) = self.sync.next_served(), if self.sync.is_serving() => {
                    self.send_sync_response(served);
                }
                Some(command) = self.commands.recv() => self.handle_command(command),
                event = self.swarm.select_next_some() => self.handle_event(event),
                _ = redial.tick() => self.redial(),
                _ = discover.tick() => self.discover(),
                _ = reach.tick() => self.reach_tick(),
            }
        }
        // Let in-flight validations finish storing what they verified; nothing outlives us.
        self.validations.drain().await;
        self.sync.shutdown().await;
        tracing::info!("network event loop stopped");
    }

    fn subscribe(&mut self, network: NetworkId) -> Result<(), NetError> {
        let topic = self.topics.insert(network);
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        let subscribe_error = |reason: String| NetError::Subscribe { network, reason };
        gossipsub
            .subscribe(&topic)
            .map_err(|e| subscribe_error(e.to_string()))?;
        gossipsub
            .set_topic_params(topic.clone(), gossip::topic_score_params())
            .map_err(|e| subscribe_error(e.to_string()))?;
        tracing::info!(network = %network.short(), "subscribed to network");
        // Peers already in the network: catch up with them now.
        let hash = topic.hash();
        let sharing: Vec<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in sharing {
            self.peers.subscribed(&peer, network);
            self.sharing_changed(&peer);
            self.trigger_sync(peer, network);
        }
        Ok(())
    }

    /// Tells the relay's admission which followed networks `peer` is now in.
    fn sharing_changed(&self, peer: &PeerId) {
        self.sharing.set(*peer, self.peers.networks_of(peer));
    }

    fn unsubscribe(&mut self, network: NetworkId) {
        let topic = self.topics.remove(&network);
        self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
        for peer in self.peers.forget_network(&network) {
            self.sharing_changed(&peer);
        }
        // No longer a member node to be found: stop announcing it (others' records expire).
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            kad.stop_providing(&super::discovery::provider_key(&network));
        }
        tracing::info!(network = %network.short(), "unsubscribed from network");
    }

    /// Asks for a catch-up session with `peer` in `network` (the scheduler runs at most one
    /// per pair at a time, so repeated asks while one waits or runs cost nothing).
    fn trigger_sync(&self, peer: PeerId, network: NetworkId) {
        // A full queue only delays this peer's catch-up to the next anti-entropy round.
        let _ = self
            .sync_triggers
            .try_send(SyncTrigger::Shared { peer, network });
    }

    fn dial(&mut self, addr: Multiaddr) -> Result<ConnectionId, NetError> {
        // Dials leave from the listen port, so that NAT routers that keep ports map them to
        // the address peers can punch through to; unless that port is still tied up.
        let opts = match self.peers.needs_new_port(&addr) {
            true => DialOpts::unknown_peer_id()
                .address(addr.clone())
                .allocate_new_port(),
            false => DialOpts::unknown_peer_id().address(addr.clone()),
        }
        .build();
        let id = opts.connection_id();
        self.swarm.dial(opts).map_err(|e| NetError::Dial {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        self.peers.dialing(&addr, id);
        Ok(id)
    }

    /// Announces this node as a member node of every followed network, and looks up the
    /// others (they are dialled as the answers come, in `handle_kad`).
    fn discover(&mut self) {
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else {
            return;
        };
        for network in self.topics.networks() {
            let key = super::discovery::provider_key(&network);
            if let Err(e) = kad.start_providing(key.clone()) {
                tracing::debug!(network = %network.short(), error = %e, "cannot announce");
            }
            kad.get_providers(key);
        }
    }

    fn handle_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed {
                result:
                    kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                        providers,
                        ..
                    })),
                ..
            } => {
                let me = *self.swarm.local_peer_id();
                let new: Vec<PeerId> = providers
                    .into_iter()
                    .filter(|p| *p != me && !self.swarm.is_connected(p))
                    .take(super::discovery::DIALS_PER_ROUND_MAX)
                    .collect();
                for peer in new {
                    // The query still knows the provider's addresses, so kad supplies them.
                    match self.swarm.dial(peer) {
                        Ok(()) => tracing::debug!(%peer, "dialling a member node found in the DHT"),
                        Err(e) => tracing::debug!(%peer, error = %e, "cannot dial a DHT provider"),
                    }
                }
            }
            kad::Event::RoutingUpdated { peer, .. } => {
                tracing::trace!(%peer, "DHT routing table updated");
            }
            _ => {}
        }
    }

    fn redial(&mut self) {
        let swarm = &self.swarm;
        for addr in self
            .peers
            .to_dial(|p| swarm.is_connected(p), Instant::now())
        {
            if let Err(e) = self.dial(addr.clone()) {
                tracing::debug!(%addr, error = %e, "redial failed");
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Publish {
                network,
                bytes,
                reply,
            } => {
                let _ = reply.send(self.publish(network, bytes));
            }
            Command::Subscribe { network, reply } => {
                let _ = reply.send(self.subscribe(network));
            }
            Command::Unsubscribe { network, reply } => {
                self.unsubscribe(network);
                let _ = reply.send(());
            }
            Command::Dial {
                addr,
                outcome,
                reply,
            } => {
                // Dialled peers are kept and redialled, like configured ones, up to a limit.
                let result = if self.peers.add_explicit(addr.clone()) {
                    self.dial(addr)
                } else {
                    Err(NetError::Dial {
                        addr: addr.to_string(),
                        reason: format!("this node already keeps {PEERS_COUNT_MAX} peers"),
                    })
                };
                if let (Ok(id), Some(outcome)) = (&result, outcome) {
                    // Past the bound the waiter is told at once (its channel drops).
                    if self.dial_outcomes.len() < DIALS_AWAITED_MAX {
                        self.dial_outcomes.insert(*id, outcome);
                    }
                }
                let _ = reply.send(result.map(|_| ()));
            }
            Command::Peers { reply } => {
                let behaviour = self.swarm.behaviour();
                let blocked = behaviour.blocked.blocked_peers();
                let infos = self.peers.infos(
                    |p| blocked.contains(p),
                    |p| behaviour.gossipsub.peer_score(p),
                );
                let _ = reply.send(infos);
            }
            Command::SyncRequest {
                peer,
                request,
                reply,
            } => {
                if !self.sync.can_send() {
                    let busy = NetError::Sync("too many sync requests in flight".into());
                    let _ = reply.send(Err(busy));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.sync.sent(id, reply);
            }
            Command::CutOff { peer, reason } => self.block(peer, &reason),
            Command::Status { reply } => {
                let swarm = &self.swarm;
                let _ = reply.send(NetStatus {
                    peer_id: *swarm.local_peer_id(),
                    listen_addrs: swarm.listeners().cloned().collect(),
                    connected_peers: swarm.connected_peers().count(),
                    explicit_peers: self.peers.explicit_infos(|p| swarm.is_connected(p)),
                    reached_peers: self
                        .peers
                        .reached()
                        .into_iter()
                        .map(|(addr, peer)| connect::with_peer_id(addr, peer))
                        .collect(),
                    external_addrs: swarm.external_addresses().cloned().collect(),
                    reach: self.reach.status(),
                    gossip_copies_received: self.gossip_counter.received(),
                });
            }
        }
    }

    fn publish(&mut self, network: NetworkId, bytes: Vec<u8>) -> PublishReport {
        let topic = gossip::topic(&network);
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        let peers = gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic.hash()))
            .count();
        let note = match gossipsub.publish(topic, bytes) {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => None,
            Err(e) => {
                tracing::info!(network = %network.short(), error = %e, "entry stored but not gossiped");
                Some(e.to_string())
            }
        };
        PublishReport { peers, note }
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.handle_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.handle_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.handle_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                self.handle_relay_client(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => self.handle_relay(event),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => self.handle_dcutr(event),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(event)) => self.handle_autonat(event),
            SwarmEvent::Behaviour(BehaviourEvent::AutonatV1(event)) => {
                self.handle_autonat_v1(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Time(event)) => self.handle_time(event),
            SwarmEvent::ExternalAddrConfirmed { address } => self.external_confirmed(address),
            SwarmEvent::ExternalAddrExpired { address } => {
                let actions = self.reach.expired(&address);
                self.apply(actions);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => self.listener_closed(listener_id, reason),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identified(peer_id, info),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                self.on_mdns(found)
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => self.on_connected(peer_id, endpoint, connection_id),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => self.on_closed(peer_id, connection_id, num_established),
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                peer_id,
            } => self.on_dial_failed(connection_id, &error, peer_id),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            _ => {}
        }
    }
}
