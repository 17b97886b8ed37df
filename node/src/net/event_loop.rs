//! The event loop that owns the `Swarm`: commands in, swarm events handled, gossip validated.
//!
//! Incoming gossip is verified and stored by tasks in a bounded [`JoinSet`] owned by the loop,
//! and only then reported to gossipsub: accepted entries are forwarded, invalid ones rejected
//! (which lowers the sender's score) and counted; a peer that sends too many is blocked.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identify, mdns, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use staffroom_protocol::sync::{SyncRequest, SyncResponse};
use staffroom_protocol::NetworkId;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::client::{Command, NetClient, NetError, NetStatus, PeerInfo, PublishReport};
use super::gossip;
use crate::config::PEERS_COUNT_MAX;
use crate::ingest::{Ingest, IngestError, Ingested};
use crate::store::InsertOutcome;
use crate::sync::serve::{self, Verdict};
use crate::sync::SyncTrigger;

/// Commands queued for the loop at most.
const COMMAND_QUEUE_MAX: usize = 256;
/// Gossip messages being verified and stored at once; beyond this, messages are ignored
/// (not forwarded, sender not penalised) and left to catch-up sync.
const VALIDATIONS_IN_FLIGHT_MAX: usize = 512;
/// How often configured peers that are not connected are dialled again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(5);
/// Connections stay open this long without traffic: school networks are quiet.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long start-up waits for listeners to report their addresses.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses remembered per connected peer.
const PEER_ADDRESSES_MAX: usize = 8;
/// Blocked peers remembered at most.
const BLOCKED_PEERS_MAX: usize = 10_000;
/// Sync requests this node waits on at once.
const SYNC_PENDING_MAX: usize = 64;
/// Sync requests from peers being answered at once; beyond, peers are told to come back.
const SYNC_SERVING_MAX: usize = 32;

pub struct NetConfig {
    pub keypair: Keypair,
    pub listen: Vec<Multiaddr>,
    pub peers: Vec<Multiaddr>,
    pub mdns: bool,
    pub networks: Vec<NetworkId>,
    /// Where to say that a peer now shares a network with this node.
    pub sync_triggers: mpsc::Sender<SyncTrigger>,
    /// One sync request's round trip at most.
    pub sync_request_timeout: Duration,
}

/// The running network side: its client, its listen addresses, and the loop's task.
pub struct NetHandle {
    pub client: NetClient,
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
    let (mdns, sync_timeout) = (config.mdns, config.sync_request_timeout);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Listen {
            addr: "tcp".into(),
            reason: e.to_string(),
        })?
        .with_behaviour(|key| Behaviour::new(key, mdns, sync_timeout))
        .map_err(|e| NetError::Listen {
            addr: "behaviour".into(),
            reason: e.to_string(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();

    let listen_addrs = listen(&mut swarm, &config.listen).await?;
    let (tx, commands) = mpsc::channel(COMMAND_QUEUE_MAX);
    let mut event_loop = EventLoop {
        swarm,
        commands,
        ingest,
        validations: JoinSet::new(),
        sync_pending: HashMap::new(),
        sync_serving: JoinSet::new(),
        sync_triggers: config.sync_triggers,
        peers: HashMap::new(),
        explicit: config
            .peers
            .into_iter()
            .map(|addr| ExplicitPeer {
                addr,
                dialing: None,
                peer: None,
            })
            .collect(),
    };
    for network in config.networks {
        event_loop.subscribe(network)?;
    }
    event_loop.redial();
    let span = tracing::info_span!("net", local_peer = %peer_id);
    let task = tokio::spawn(event_loop.run(shutdown).instrument(span));
    Ok(NetHandle {
        client: NetClient { tx, peer_id },
        listen_addrs,
        task,
    })
}

/// Starts every listener and waits until each has reported at least one address, so callers
/// (and tests using port 0) learn the real ports.
async fn listen(
    swarm: &mut Swarm<Behaviour>,
    addrs: &[Multiaddr],
) -> Result<Vec<Multiaddr>, NetError> {
    let mut waiting = HashSet::new();
    for addr in addrs {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        waiting.insert(id);
    }
    let mut found = Vec::new();
    let deadline = tokio::time::sleep(LISTEN_TIMEOUT);
    tokio::pin!(deadline);
    while !waiting.is_empty() {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    waiting.remove(&listener_id);
                    found.push(address);
                }
                SwarmEvent::ListenerClosed { reason: Err(e), .. }
                | SwarmEvent::ListenerError { error: e, .. } => {
                    return Err(NetError::Listen { addr: format!("{addrs:?}"), reason: e.to_string() });
                }
                _ => {}
            },
            _ = &mut deadline => {
                return Err(NetError::Listen { addr: format!("{addrs:?}"), reason: "timed out".into() });
            }
        }
    }
    Ok(found)
}

struct ExplicitPeer {
    addr: Multiaddr,
    dialing: Option<ConnectionId>,
    peer: Option<PeerId>,
}

#[derive(Default)]
struct PeerState {
    addresses: Vec<Multiaddr>,
    agent: Option<String>,
    networks: HashSet<NetworkId>,
    invalid_messages: u32,
}

struct Validated {
    message_id: MessageId,
    source: PeerId,
    network: NetworkId,
    result: Result<Ingested, IngestError>,
}

/// A sync request answered, waiting to be sent back.
struct Served {
    channel: ResponseChannel<SyncResponse>,
    response: SyncResponse,
    peer: PeerId,
    verdict: Verdict,
}

type SyncReply = oneshot::Sender<Result<SyncResponse, NetError>>;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    ingest: Ingest,
    validations: JoinSet<Validated>,
    sync_pending: HashMap<OutboundRequestId, SyncReply>,
    sync_serving: JoinSet<Served>,
    sync_triggers: mpsc::Sender<SyncTrigger>,
    peers: HashMap<PeerId, PeerState>,
    explicit: Vec<ExplicitPeer>,
}

impl EventLoop {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut redial = tokio::time::interval(REDIAL_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                Some(command) = self.commands.recv() => self.handle_command(command),
                event = self.swarm.select_next_some() => self.handle_event(event),
                Some(done) = self.validations.join_next(), if !self.validations.is_empty() => {
                    match done {
                        Ok(v) => self.report(v),
                        Err(e) => tracing::error!(error = %e, "gossip validation task failed"),
                    }
                }
                Some(done) = self.sync_serving.join_next(), if !self.sync_serving.is_empty() => {
                    match done {
                        Ok(served) => self.send_sync_response(served),
                        Err(e) => tracing::error!(error = %e, "sync serving task failed"),
                    }
                }
                _ = redial.tick() => self.redial(),
            }
        }
        // Let in-flight validations finish storing what they verified; nothing outlives us.
        while self.validations.join_next().await.is_some() {}
        self.sync_serving.shutdown().await;
        tracing::info!("network event loop stopped");
    }

    fn subscribe(&mut self, network: NetworkId) -> Result<(), NetError> {
        let topic = gossip::topic(&network);
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        gossipsub
            .subscribe(&topic)
            .map_err(|e| NetError::Subscribe {
                network,
                reason: e.to_string(),
            })?;
        gossipsub
            .set_topic_params(topic, gossip::topic_score_params())
            .map_err(|reason| NetError::Subscribe {
                network,
                reason: reason.to_string(),
            })?;
        tracing::info!(network = %network.short(), "subscribed to network");
        // Peers already in the network: catch up with them now.
        let hash = gossip::topic(&network).hash();
        let sharing: Vec<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in sharing {
            self.trigger_sync(peer, network);
        }
        Ok(())
    }

    fn trigger_sync(&self, peer: PeerId, network: NetworkId) {
        // A full queue only delays this peer's catch-up to the next anti-entropy round.
        let _ = self
            .sync_triggers
            .try_send(SyncTrigger::Shared { peer, network });
    }

    fn send_sync_response(&mut self, served: Served) {
        if let Verdict::Misbehaved(reason) = &served.verdict {
            self.block(served.peer, reason);
        }
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(served.channel, served.response);
    }

    fn handle_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if self.sync_serving.len() >= SYNC_SERVING_MAX {
                        let busy = SyncResponse::Refused {
                            reason: "busy; try again later".into(),
                        };
                        let _ = self.swarm.behaviour_mut().sync.send_response(channel, busy);
                        return;
                    }
                    let ingest = self.ingest.clone();
                    let span = tracing::debug_span!("sync_serve", %peer, network = %request.network().short());
                    self.sync_serving.spawn(
                        async move {
                            let (response, verdict) = serve::serve(peer, request, &ingest).await;
                            Served {
                                channel,
                                response,
                                peer,
                                verdict,
                            }
                        }
                        .instrument(span),
                    );
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.sync_pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                tracing::debug!(%peer, error = %error, "sync request failed");
                if let Some(reply) = self.sync_pending.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Sync(error.to_string())));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, error = %error, "answering a sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn dial(&mut self, addr: Multiaddr) -> Result<ConnectionId, NetError> {
        let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
        let id = opts.connection_id();
        self.swarm.dial(opts).map_err(|e| NetError::Dial {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        Ok(id)
    }

    fn redial(&mut self) {
        for i in 0..self.explicit.len() {
            let peer = &self.explicit[i];
            let connected = peer.peer.is_some_and(|p| self.swarm.is_connected(&p));
            if connected || peer.dialing.is_some() {
                continue;
            }
            let addr = peer.addr.clone();
            match self.dial(addr.clone()) {
                Ok(id) => self.explicit[i].dialing = Some(id),
                Err(e) => tracing::debug!(%addr, error = %e, "redial failed"),
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
                let topic = gossip::topic(&network);
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&topic.hash()))
                    .count();
                let note = match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                    Ok(_) => None,
                    Err(gossipsub::PublishError::Duplicate) => None,
                    Err(e) => {
                        tracing::info!(network = %network.short(), error = %e, "entry stored but not gossiped");
                        Some(e.to_string())
                    }
                };
                let _ = reply.send(PublishReport { peers, note });
            }
            Command::Subscribe { network, reply } => {
                let _ = reply.send(self.subscribe(network));
            }
            Command::Dial { addr, reply } => {
                // Dialled peers are kept and redialled, like configured ones, up to the same limit.
                let known = self.explicit.iter().any(|p| p.addr == addr);
                let result = if !known && self.explicit.len() >= PEERS_COUNT_MAX {
                    Err(NetError::Dial {
                        addr: addr.to_string(),
                        reason: format!("this node already keeps {PEERS_COUNT_MAX} peers"),
                    })
                } else {
                    self.dial(addr.clone()).map(|id| {
                        match self.explicit.iter_mut().find(|p| p.addr == addr) {
                            Some(peer) => peer.dialing = Some(id),
                            None => self.explicit.push(ExplicitPeer {
                                addr,
                                dialing: Some(id),
                                peer: None,
                            }),
                        }
                    })
                };
                let _ = reply.send(result);
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos());
            }
            Command::SyncRequest {
                peer,
                request,
                reply,
            } => {
                if self.sync_pending.len() >= SYNC_PENDING_MAX {
                    let _ = reply.send(Err(NetError::Sync(
                        "too many sync requests in flight".into(),
                    )));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.sync_pending.insert(id, reply);
            }
            Command::CutOff { peer, reason } => self.block(peer, &reason),
            Command::Status { reply } => {
                let _ = reply.send(NetStatus {
                    peer_id: self.swarm.local_peer_id().to_string(),
                    listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
                    connected_peers: self.swarm.connected_peers().count(),
                });
            }
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let blocked = self.swarm.behaviour().blocked.blocked_peers();
        let mut infos: Vec<_> = self
            .peers
            .iter()
            .map(|(id, state)| {
                let mut networks: Vec<_> = state.networks.iter().copied().collect();
                networks.sort();
                PeerInfo {
                    peer_id: id.to_string(),
                    addresses: state.addresses.iter().map(|a| a.to_string()).collect(),
                    agent: state.agent.clone(),
                    networks,
                    invalid_messages: state.invalid_messages,
                    blocked: blocked.contains(id),
                    score: gossipsub.peer_score(id),
                }
            })
            .collect();
        infos.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        infos
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.handle_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.handle_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.agent = Some(info.agent_version.chars().take(100).collect());
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if !self.swarm.is_connected(&peer) {
                        tracing::debug!(%peer, %addr, "dialling peer found by mDNS");
                        let _ = self
                            .swarm
                            .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
                    }
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                let addr = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
                };
                tracing::info!(peer = %peer_id, %addr, "connected");
                for explicit in &mut self.explicit {
                    if explicit.dialing == Some(connection_id) {
                        explicit.dialing = None;
                        explicit.peer = Some(peer_id);
                    }
                }
                let state = self.peers.entry(peer_id).or_default();
                if state.addresses.len() < PEER_ADDRESSES_MAX && !state.addresses.contains(&addr) {
                    state.addresses.push(addr);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::info!(peer = %peer_id, "disconnected");
                self.peers.remove(&peer_id);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                peer_id,
            } => {
                for explicit in &mut self.explicit {
                    if explicit.dialing == Some(connection_id) {
                        explicit.dialing = None;
                    }
                }
                tracing::debug!(peer = ?peer_id, error = %error, "outgoing connection failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            _ => {}
        }
    }

    fn handle_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(network) = gossip::network_of(&message.topic) else {
                    self.validate_now(&message_id, &propagation_source, MessageAcceptance::Ignore);
                    return;
                };
                if self.validations.len() >= VALIDATIONS_IN_FLIGHT_MAX {
                    tracing::warn!(peer = %propagation_source, "validation queue full; ignoring gossip");
                    self.validate_now(&message_id, &propagation_source, MessageAcceptance::Ignore);
                    return;
                }
                let ingest = self.ingest.clone();
                let span = tracing::debug_span!("gossip", peer = %propagation_source, network = %network.short());
                self.validations.spawn(
                    async move {
                        let result = ingest.ingest(message.data, Some(network)).await;
                        Validated {
                            message_id,
                            source: propagation_source,
                            network,
                            result,
                        }
                    }
                    .instrument(span),
                );
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                let Some(network) = gossip::network_of(&topic) else {
                    return;
                };
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.networks.insert(network);
                }
                if self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .topics()
                    .any(|t| *t == topic)
                {
                    self.trigger_sync(peer_id, network);
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let (Some(network), Some(state)) =
                    (gossip::network_of(&topic), self.peers.get_mut(&peer_id))
                {
                    state.networks.remove(&network);
                }
            }
            _ => {}
        }
    }

    fn validate_now(&mut self, id: &MessageId, source: &PeerId, verdict: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, verdict);
    }

    fn report(&mut self, v: Validated) {
        let _span =
            tracing::info_span!("gossip", peer = %v.source, network = %v.network.short()).entered();
        let verdict = match &v.result {
            Ok(Ingested {
                id,
                outcome: InsertOutcome::Inserted,
                ..
            }) => {
                tracing::debug!(entry = %id.short(), "stored entry from gossip");
                MessageAcceptance::Accept
            }
            Ok(Ingested {
                outcome: InsertOutcome::AlreadyStored,
                ..
            }) => MessageAcceptance::Accept,
            Err(e) if e.is_invalid_entry() => {
                tracing::warn!(error = %e, "rejected invalid entry from peer");
                self.penalise(v.source);
                MessageAcceptance::Reject
            }
            Err(e) => {
                tracing::error!(error = %e, "could not store gossiped entry");
                MessageAcceptance::Ignore
            }
        };
        self.validate_now(&v.message_id, &v.source, verdict);
    }

    /// Counts an invalid entry against `peer`; past the limit, blocks and disconnects it.
    fn penalise(&mut self, peer: PeerId) {
        let state = self.peers.entry(peer).or_default();
        state.invalid_messages += 1;
        if state.invalid_messages < gossip::INVALID_MESSAGES_MAX {
            return;
        }
        self.block(peer, "too many invalid entries");
    }

    /// Blocks and disconnects `peer`: it broke the protocol or sent invalid entries.
    fn block(&mut self, peer: PeerId, reason: &str) {
        let behaviour = self.swarm.behaviour_mut();
        if behaviour.blocked.blocked_peers().len() < BLOCKED_PEERS_MAX {
            tracing::warn!(%peer, reason, "blocking peer");
            behaviour.blocked.block_peer(peer);
        }
        behaviour.gossipsub.blacklist_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }
}
