//! Finding peers and saying how a dial went: a node restarted without `--peer` reconnects
//! from its peer book; two member nodes that know only a third find each other through the
//! DHT; `dial` reports its outcome (connected, unreachable, a wrong peer id); a node refuses
//! to start on a p2p port already in use.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use staffroom_tests::*;

async fn connected_to(node: &TestNode, peer: PeerId) -> bool {
    node.api()
        .peers()
        .await
        .is_ok_and(|peers| peers.iter().any(|p| p.peer_id == peer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_without_peers_reconnects_from_its_peer_book() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[a.addr()]).await;
    let a_id = a.node.peer_id;
    let book = b.dir.path().join("peers");
    eventually("A in B's peer book", || {
        let book = book.clone();
        async move { std::fs::read_to_string(&book).is_ok_and(|t| t.contains(&a_id.to_string())) }
    })
    .await;
    let dir = b.stop().await;
    let b = TestNode::restart(dir, &[]).await;
    eventually("B reconnected to A with no --peer", || {
        let b = &b;
        async move { connected_to(b, a_id).await }
    })
    .await;
    for node in [a, b] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_waits_for_its_outcome_and_says_what_went_wrong() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[]).await;
    let reply = b
        .api()
        .dial(&a.addr().to_string())
        .await
        .expect("connected");
    assert_eq!(reply.peer_id, a.node.peer_id);
    // A's address, but naming another peer: refused, and said so.
    let mut wrong: Multiaddr = a.addr();
    wrong.pop();
    let wrong = wrong.with(Protocol::P2p(PeerId::random()));
    let err = b.api().dial(&wrong.to_string()).await.unwrap_err();
    assert_eq!(err.code(), Some("dial_failed"), "{err}");
    assert!(
        err.to_string().contains("not the peer the address names"),
        "{err}"
    );
    // Nobody listening there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", PeerId::random());
    let err = b.api().dial(&nowhere).await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    for node in [a, b] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_will_not_start_on_a_p2p_port_in_use() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let mut taken = a.addr();
    taken.pop();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = staffroom_tests::config(dir.path(), &[]);
    config.listen = vec![taken.clone()];
    let Err(error) = staffroom_node::start(config).await else {
        panic!("a second node started on {taken}");
    };
    assert!(
        matches!(error, staffroom_node::NodeError::PortInUse { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("already in use"), "{error}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_nodes_that_know_only_a_third_node_find_each_other_through_the_dht() {
    init_tracing();
    // A follows no network: it only knows B and C, as a school node someone was invited by.
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[a.addr()]).await;
    let c = TestNode::start(&[a.addr()]).await;
    let net = TestNetwork::open("Found through the DHT");
    b.adopt(&net).await;
    c.adopt(&net).await;
    let posted = b
        .post_many(&staffroom_protocol::fixtures::key(3), net.id, 1)
        .await;
    let b_id = b.node.peer_id;
    let start = tokio::time::Instant::now();
    eventually_within(
        "C connected to B and holding its post",
        std::time::Duration::from_secs(60),
        || {
            let c = &c;
            let id = posted[0];
            async move { connected_to(c, b_id).await && c.api().get(&id).await.is_ok() }
        },
    )
    .await;
    // On three nodes the DHT's own routing (its bootstrap queries) already brings B and C
    // together; provider lookups are what finds member nodes among many.
    println!(
        "C found B through the DHT and synced in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    for node in [a, b, c] {
        node.stop().await;
    }
}
