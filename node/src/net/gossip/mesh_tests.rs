//! Real gossipsub swarms on 127.0.0.1 with Staffroom's settings: a well-connected node keeps
//! its mesh small, and the peers left out of it still get every message.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{Event, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm};
use tokio::sync::{mpsc, oneshot};

use super::*;

const SPOKES: usize = 5;
/// Every wait here, at most.
const PATIENCE: Duration = Duration::from_secs(20);

enum Ask {
    Subscribe,
    Publish(Vec<u8>),
    /// Peers in the node's mesh, peers it knows to be subscribed, and peers connected.
    Sizes(oneshot::Sender<(usize, usize, usize)>),
}

fn swarm() -> Swarm<Gossipsub> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp transport")
        .with_behaviour(|_| behaviour(CountingTransform::default()))
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(PATIENCE))
        .build()
}

/// Runs a node that subscribes to `topic` when asked: it accepts every message (Staffroom validates by hand)
/// and says on `received` that node `index` got one.
async fn start(
    index: usize,
    topic: IdentTopic,
    dial: Option<Multiaddr>,
    received: mpsc::UnboundedSender<usize>,
) -> (mpsc::UnboundedSender<Ask>, Multiaddr) {
    let mut swarm = swarm();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"))
        .expect("listening");
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    if let Some(hub) = dial {
        swarm.dial(hub).expect("dialling the hub");
    }
    let (asks, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                ask = rx.recv() => match ask {
                    Some(Ask::Subscribe) => {
                        swarm.behaviour_mut().subscribe(&topic).expect("subscribed");
                    }
                    Some(Ask::Publish(data)) => {
                        swarm.behaviour_mut().publish(topic.clone(), data).expect("published");
                    }
                    Some(Ask::Sizes(reply)) => {
                        let gossip = swarm.behaviour();
                        let mesh = gossip.mesh_peers(&topic.hash()).count();
                        let subscribed = gossip.all_peers().filter(|(_, t)| t.contains(&&topic.hash())).count();
                        let connected = gossip.all_peers().count();
                        let _ = reply.send((mesh, subscribed, connected));
                    }
                    None => return,
                },
                event = swarm.select_next_some() => {
                    if let SwarmEvent::Behaviour(Event::Message { propagation_source, message_id, .. }) = event {
                        let gossip = swarm.behaviour_mut();
                        gossip.report_message_validation_result(&message_id, &propagation_source, MessageAcceptance::Accept);
                        let _ = received.send(index);
                    }
                }
            }
        }
    });
    (asks, addr)
}

async fn sizes(node: &mpsc::UnboundedSender<Ask>) -> (usize, usize, usize) {
    let (reply, rx) = oneshot::channel();
    node.send(Ask::Sizes(reply)).expect("node running");
    rx.await.expect("node answers")
}

/// Issue 14: with a mesh bound of 6, nodes that subscribe to a network after connecting
/// (as a node adopting a network does) graft their neighbours at once, and each accepted
/// every graft, so gossip became flooding: 2.3 duplicate copies of each message per node at
/// N = 50 against the bare engine's 0.5. A hub whose five schools join the network after
/// connecting keeps `mesh_n` (3) of them in its mesh, and the schools left out
/// still get a message one of them publishes, by gossip's IHAVE / IWANT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_keeps_its_mesh_small_and_every_spoke_still_gets_each_message() {
    let topic = topic(&NetworkId([9; 32]));
    let (received_tx, mut received) = mpsc::unbounded_channel();
    let (hub, hub_addr) = start(0, topic.clone(), None, received_tx.clone()).await;
    let mut spokes = Vec::new();
    for index in 1..=SPOKES {
        let dial = Some(hub_addr.clone());
        spokes.push(
            start(index, topic.clone(), dial, received_tx.clone())
                .await
                .0,
        );
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    hub.send(Ask::Subscribe).expect("hub running");
    while sizes(&hub).await.2 < SPOKES && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for spoke in &spokes {
        spoke.send(Ask::Subscribe).expect("spoke running");
    }
    // Every spoke subscribed, and heartbeats enough for grafts and prunes to settle.
    while sizes(&hub).await.1 < SPOKES && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (mesh, subscribed, _) = sizes(&hub).await;
    assert_eq!(subscribed, SPOKES);
    // Heartbeats prune a mesh that reaches `mesh_n_high` back to `mesh_n`.
    let target = config().mesh_n();
    assert!(
        (1..=target).contains(&mesh),
        "the hub's mesh has {mesh} of {SPOKES} spokes"
    );

    spokes[0]
        .send(Ask::Publish(b"a post".to_vec()))
        .expect("spoke running");
    let mut got = std::collections::BTreeSet::new();
    while got.len() < SPOKES {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(Some(index)) => got.insert(index),
            _ => panic!("only nodes {got:?} got the message"),
        };
    }
    assert!(
        !got.contains(&1),
        "the publisher does not receive its own message"
    );
}
