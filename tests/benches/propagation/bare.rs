//! The baseline: bare rust-libp2p gossipsub nodes with nothing of Staffroom's above them —
//! TCP, Noise and Yamux as a node has them, the same mesh and heartbeat, messages signed by
//! the publishing peer (so each hop verifies an ed25519 signature, as each Staffroom hop
//! verifies the entry's), and delivery timed when the gossipsub event reaches the node.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm};
use staffroom_node::net::gossip::{self, CountingTransform};
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use super::Delivery;

const TOPIC: &str = "/propagation/bench";

type Behaviour = gossipsub::Behaviour<CountingTransform>;

enum Command {
    Dial(Multiaddr),
    Publish(Vec<u8>),
}

/// One bare node, run by its own task.
pub struct BareNode {
    commands: mpsc::UnboundedSender<Command>,
    pub addr: Multiaddr,
    pub counter: CountingTransform,
    /// Peers that told this node they subscribe to the topic.
    pub subscribed: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

/// The same mesh, heartbeat, lazy gossip and size bound as a Staffroom node, with the
/// engine's own signing and validation.
fn config() -> gossipsub::Config {
    let mut builder = gossipsub::ConfigBuilder::default();
    gossip::mesh(&mut builder)
        .build()
        .expect("valid gossipsub config")
}

fn swarm(counter: CountingTransform) -> Swarm<Behaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp transport")
        .with_behaviour(|key| {
            gossipsub::Behaviour::new_with_transform(
                MessageAuthenticity::Signed(key.clone()),
                config(),
                counter,
            )
            .expect("valid behaviour")
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build()
}

impl BareNode {
    /// Starts a node listening on 127.0.0.1, subscribed to the topic; deliveries go to
    /// `deliveries` tagged with `index`.
    pub async fn start(index: usize, deliveries: mpsc::UnboundedSender<Delivery>) -> BareNode {
        let counter = CountingTransform::default();
        let mut swarm = swarm(counter.clone());
        let topic = IdentTopic::new(TOPIC);
        swarm.behaviour_mut().subscribe(&topic).expect("subscribed");
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"))
            .expect("listening");
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        let (commands, rx) = mpsc::unbounded_channel();
        let subscribed = Arc::new(Mutex::new(0));
        let task = tokio::spawn(run(swarm, rx, topic, index, deliveries, subscribed.clone()));
        BareNode {
            commands,
            addr,
            counter,
            subscribed,
            task,
        }
    }

    pub fn dial(&self, addr: Multiaddr) {
        let _ = self.commands.send(Command::Dial(addr));
    }

    pub fn publish(&self, data: Vec<u8>) {
        let _ = self.commands.send(Command::Publish(data));
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn run(
    mut swarm: Swarm<Behaviour>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    topic: IdentTopic,
    index: usize,
    deliveries: mpsc::UnboundedSender<Delivery>,
    subscribed: Arc<Mutex<usize>>,
) {
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Dial(addr)) => {
                    let _ = swarm.dial(addr);
                }
                // Publishing before any peer subscribed fails: that message is lost, as the
                // bare engine loses it.
                Some(Command::Publish(data)) => {
                    let _ = swarm.behaviour_mut().publish(topic.clone(), data);
                }
                None => return,
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) => {
                    let at = Instant::now();
                    if let Some(seq) = super::sequence_of(&message.data) {
                        let _ = deliveries.send(Delivery { node: index, seq, at });
                    }
                }
                SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) => {
                    *subscribed.lock().await += 1;
                }
                _ => {}
            },
        }
    }
}
