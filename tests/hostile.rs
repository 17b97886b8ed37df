//! A hostile peer for tests: a bare libp2p node that publishes whatever gossip it is told to,
//! with no validation of its own, and answers sync requests according to a [`SyncLie`].

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAuthenticity};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId};
use staffroom_node::net::gossip;
use staffroom_node::net::sync_codec::{SyncCodec, SYNC_PROTOCOL};
use staffroom_protocol::sync::{prefix, Bound, Message, Mode, SyncRequest, SyncResponse};
use staffroom_protocol::NetworkId;

/// An entry whose signature does not match the author it claims: written by teacher 41,
/// claimed for teacher 42.
pub fn forged(network: NetworkId, title: &str) -> staffroom_protocol::Entry {
    use staffroom_protocol::fixtures::{blog_body, key, signed};
    let mut entry = signed(&key(41), network, crate::now_ms(), vec![], blog_body(title));
    entry.author = staffroom_protocol::AuthorId(key(42).verifying_key().to_bytes());
    entry
}

/// How the hostile peer answers sync requests.
#[derive(Debug, Clone)]
pub enum SyncLie {
    /// Claims to hold these ids; never delivers them.
    Claims(Vec<[u8; 32]>),
    /// Claims these entries' ids and delivers them (forged) when asked.
    Serves(Vec<Vec<u8>>),
    /// Accepts sync requests and never answers them (it keeps the streams open).
    Silent,
}

#[derive(NetworkBehaviour)]
struct HostileBehaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    files: libp2p_stream::Behaviour,
}

impl SyncLie {
    fn claimed_ids(&self) -> Vec<[u8; 32]> {
        match self {
            SyncLie::Claims(ids) => ids.clone(),
            SyncLie::Serves(entries) => entries
                .iter()
                .map(|e| *blake3::hash(e).as_bytes())
                .collect(),
            SyncLie::Silent => vec![],
        }
    }

    /// Asks for the peer's ids everywhere, then claims to hold ids it lacks.
    fn answer(&self, request: SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::Reconcile { message, .. } => {
                let Ok(message) = Message::decode(&message) else {
                    return SyncResponse::Refused {
                        reason: "bad message".into(),
                    };
                };
                let mut reply = Message::default();
                for range in message.ranges {
                    let mode = match range.mode {
                        Mode::IdList(listed) => Mode::IdListReply {
                            not_in_list: self.claimed_ids().iter().map(prefix).collect(),
                            wanted: vec![0; listed.len().div_ceil(8)],
                        },
                        Mode::Skip => Mode::Skip,
                        _ => Mode::ListRequest,
                    };
                    reply.push(range.upper, mode);
                }
                if reply.ranges.is_empty() {
                    reply.push(Bound::Infinity, Mode::Skip);
                }
                SyncResponse::Reconcile {
                    message: reply.encode().expect("small message"),
                }
            }
            SyncRequest::Fetch { .. } => match self {
                SyncLie::Claims(_) | SyncLie::Silent => SyncResponse::Entries { entries: vec![] },
                SyncLie::Serves(entries) => SyncResponse::Entries {
                    entries: entries.clone(),
                },
            },
            SyncRequest::Push { entries, .. } => SyncResponse::Pushed {
                accepted: entries.len() as u64,
                rejected: 0,
            },
        }
    }
}
use tokio::sync::{mpsc, oneshot};

/// What the hostile peer saw, for the test to wait on.
#[derive(Debug)]
pub enum Seen {
    Subscribed(PeerId),
    Disconnected(PeerId),
    DialFailed,
    SyncRequest,
}

enum Command {
    Publish(Vec<u8>, oneshot::Sender<Result<(), String>>),
    Dial(Multiaddr),
    /// Subscribes to this many topics shaped like network topics, of networks that do not
    /// exist; replies with how many subscriptions were made.
    SubscribeJunk(usize, oneshot::Sender<usize>),
}

/// How the hostile peer's own gossipsub differs from an honest node's.
#[derive(Debug, Clone)]
pub struct HostileOptions {
    /// The largest message it will send (honest nodes refuse above theirs).
    pub transmit_bytes_max: usize,
    /// How long it remembers a message it sent, refusing to send it again meanwhile: a
    /// replaying peer sets this short.
    pub duplicate_cache: Duration,
}

impl Default for HostileOptions {
    fn default() -> Self {
        HostileOptions {
            transmit_bytes_max: gossip::TRANSMIT_BYTES_MAX,
            duplicate_cache: Duration::from_secs(60),
        }
    }
}

pub struct Hostile {
    pub peer_id: PeerId,
    files: libp2p_stream::Control,
    commands: mpsc::Sender<Command>,
    pub seen: mpsc::Receiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    /// Connects to `target` and subscribes to `network`'s topic.
    pub async fn connect(target: Multiaddr, network: NetworkId) -> Hostile {
        Self::connect_lying(target, network, SyncLie::Claims(vec![])).await
    }

    /// Connects as [`Hostile::connect`], answering sync requests with `lie`.
    pub async fn connect_lying(target: Multiaddr, network: NetworkId, lie: SyncLie) -> Hostile {
        Self::connect_with(target, network, lie, HostileOptions::default()).await
    }

    /// Connects as [`Hostile::connect_lying`], with its own gossip `options`.
    pub async fn connect_with(
        target: Multiaddr,
        network: NetworkId,
        lie: SyncLie,
        options: HostileOptions,
    ) -> Hostile {
        let config = gossipsub::ConfigBuilder::from(gossip::config())
            .max_transmit_size(options.transmit_bytes_max)
            .duplicate_cache_time(options.duplicate_cache)
            .build()
            .expect("hostile gossip config");
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp transport")
            .with_behaviour(|_| HostileBehaviour {
                gossipsub: gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
                    .expect("gossipsub"),
                sync: request_response::Behaviour::with_codec(
                    SyncCodec,
                    [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default(),
                ),
                files: libp2p_stream::Behaviour::new(),
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let topic = gossip::topic(&network);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .expect("subscribe");
        swarm.dial(target).expect("dial");
        let peer_id = *swarm.local_peer_id();
        let files = swarm.behaviour().files.new_control();
        let (commands, mut rx) = mpsc::channel::<Command>(16);
        let (seen_tx, seen) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            // Response channels a silent peer holds on to: dropping them would answer at once.
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        Some(Command::Publish(bytes, reply)) => {
                            let result = swarm.behaviour_mut().gossipsub.publish(topic.clone(), bytes);
                            let _ = reply.send(result.map(|_| ()).map_err(|e| e.to_string()));
                        }
                        Some(Command::Dial(addr)) => {
                            let _ = swarm.dial(addr);
                        }
                        Some(Command::SubscribeJunk(count, reply)) => {
                            let made = (0..count)
                                .filter(|n| {
                                    let junk = NetworkId(*blake3::hash(&n.to_le_bytes()).as_bytes());
                                    let topic = gossip::topic(&junk);
                                    swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap_or(false)
                                })
                                .count();
                            let _ = reply.send(made);
                        }
                        None => break,
                    },
                    event = swarm.select_next_some() => {
                        let seen = match event {
                            SwarmEvent::Behaviour(HostileBehaviourEvent::Gossipsub(
                                gossipsub::Event::Subscribed { peer_id, .. },
                            )) => Some(Seen::Subscribed(peer_id)),
                            SwarmEvent::Behaviour(HostileBehaviourEvent::Sync(
                                request_response::Event::Message {
                                    message: request_response::Message::Request { request, channel, .. },
                                    ..
                                },
                            )) => {
                                if matches!(lie, SyncLie::Silent) {
                                    held.push(channel);
                                } else {
                                    let answer = lie.answer(request);
                                    let _ = swarm.behaviour_mut().sync.send_response(channel, answer);
                                }
                                Some(Seen::SyncRequest)
                            }
                            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                                Some(Seen::Disconnected(peer_id))
                            }
                            SwarmEvent::OutgoingConnectionError { .. } => Some(Seen::DialFailed),
                            _ => None,
                        };
                        if let Some(seen) = seen {
                            let _ = seen_tx.try_send(seen);
                        }
                    }
                }
            }
        });
        Hostile {
            peer_id,
            files,
            commands,
            seen,
            task,
        }
    }

    pub async fn publish(&self, bytes: Vec<u8>) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Publish(bytes, reply))
            .await
            .expect("hostile task runs");
        rx.await.expect("hostile task replies")
    }

    /// Subscribes to `count` topics of networks that do not exist; returns how many it made.
    pub async fn subscribe_junk(&self, count: usize) -> usize {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::SubscribeJunk(count, reply))
            .await
            .expect("hostile task runs");
        rx.await.expect("hostile task replies")
    }

    pub async fn dial(&self, addr: Multiaddr) {
        self.commands
            .send(Command::Dial(addr))
            .await
            .expect("hostile task runs");
    }

    /// Waits (bounded) for something the hostile peer sees.
    pub async fn wait_for(&mut self, what: &str, mut pred: impl FnMut(&Seen) -> bool) {
        let deadline = tokio::time::Instant::now() + crate::DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(seen)) if pred(&seen) => return,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("hostile peer stopped while waiting for {what}"),
                Err(_) => panic!("timed out waiting for hostile peer to see {what}"),
            }
        }
    }

    /// Claims to hold the file `data` (for any network) and serves it with one group in 64
    /// corrupted, under the parent hashes of the true file: what a lying node sends. Returns a
    /// counter of the groups it was asked for.
    pub fn serve_corrupt_file(
        &mut self,
        data: Vec<u8>,
    ) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let incoming = self
            .files
            .accept(staffroom_node::files::transfer::protocol())
            .expect("file protocol not yet accepted");
        tokio::spawn(crate::hostile_files::serve_corrupt(
            incoming,
            data,
            sent.clone(),
        ));
        sent
    }

    pub async fn stop(self) {
        drop(self.commands);
        let _ = self.task.await;
    }
}
