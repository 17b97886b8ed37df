//! A hostile peer for tests: a bare libp2p gossipsub node that publishes whatever bytes it is
//! told to, with no validation of its own, on a task the test controls.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId};
use staffroom_node::net::gossip;
use staffroom_protocol::NetworkId;
use tokio::sync::{mpsc, oneshot};

/// What the hostile peer saw, for the test to wait on.
#[derive(Debug)]
pub enum Seen {
    Subscribed(PeerId),
    Disconnected(PeerId),
    DialFailed,
}

enum Command {
    Publish(Vec<u8>, oneshot::Sender<Result<(), String>>),
    Dial(Multiaddr),
}

pub struct Hostile {
    pub peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    pub seen: mpsc::Receiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    /// Connects to `target` and subscribes to `network`'s topic.
    pub async fn connect(target: Multiaddr, network: NetworkId) -> Hostile {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp transport")
            .with_behaviour(|_| {
                gossipsub::Behaviour::<
                    gossipsub::IdentityTransform,
                    gossipsub::AllowAllSubscriptionFilter,
                >::new(MessageAuthenticity::Anonymous, gossip::config())
                .expect("gossipsub")
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let topic = gossip::topic(&network);
        swarm.behaviour_mut().subscribe(&topic).expect("subscribe");
        swarm.dial(target).expect("dial");
        let peer_id = *swarm.local_peer_id();
        let (commands, mut rx) = mpsc::channel::<Command>(16);
        let (seen_tx, seen) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        Some(Command::Publish(bytes, reply)) => {
                            let result = swarm.behaviour_mut().publish(topic.clone(), bytes);
                            let _ = reply.send(result.map(|_| ()).map_err(|e| e.to_string()));
                        }
                        Some(Command::Dial(addr)) => {
                            let _ = swarm.dial(addr);
                        }
                        None => break,
                    },
                    event = swarm.select_next_some() => {
                        let seen = match event {
                            SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. }) => {
                                Some(Seen::Subscribed(peer_id))
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

    pub async fn stop(self) {
        drop(self.commands);
        let _ = self.task.await;
    }
}
