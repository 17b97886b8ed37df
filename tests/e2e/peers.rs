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

/// Two nodes whose clocks are two minutes apart each see the other's offset (for the doctor),
/// and loopback, which AutoNAT can "confirm" on one machine, never makes a node public.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_clock_offsets_are_measured_and_loopback_is_never_public() {
    init_tracing();
    let ahead_ms: i64 = 120_000;
    let a = TestNode::start(&[]).await;
    let b = TestNode::start_with(&[a.addr()], |c| {
        c.clock = staffroom_node::clock::Clock::offset_by(ahead_ms)
    })
    .await;
    let offset_seen_by = |node: &TestNode, peer: PeerId| {
        let api = node.api();
        async move {
            let peers = api.peers().await.ok()?;
            peers
                .into_iter()
                .find(|p| p.peer_id == peer)?
                .clock_offset_ms
        }
    };
    let near = |offset: Option<i64>, want: i64| offset.is_some_and(|o| (o - want).abs() < 5_000);
    eventually("A measured B's clock", || async {
        near(offset_seen_by(&a, b.node.peer_id).await, ahead_ms)
    })
    .await;
    eventually("B measured A's clock", || async {
        near(offset_seen_by(&b, a.node.peer_id).await, -ahead_ms)
    })
    .await;
    // Once AutoNAT has tested B's loopback address (B dialled A, so A serves B's v2 tests),
    // B is still not public.
    let tested = || async {
        let status = b.api().status().await.ok()?;
        (!status.reach.tests.is_empty()).then_some(status)
    };
    eventually_within(
        "AutoNAT tested B",
        std::time::Duration::from_secs(40),
        || async { tested().await.is_some() },
    )
    .await;
    let status = tested().await.expect("status");
    assert_ne!(status.reach.nat, staffroom_node::net::reach::Nat::Public);
    assert!(
        status
            .external_addrs
            .iter()
            .all(|a| !a.to_string().contains("/127.0.0.1/")),
        "{:?}",
        status.external_addrs
    );
    for node in [a, b] {
        node.stop().await;
    }
}

/// With no node running, the doctor says so and checks the p2p port: held by another
/// program, it says which address and what to do.
#[test]
fn the_doctor_of_a_stopped_node_checks_its_p2p_port() {
    use staffroom_tests::cli_process::{staffroom, staffroom_ok};
    let dir = tempfile::tempdir().unwrap();
    staffroom_ok(dir.path(), &["init"], None);
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let config = format!("listen = [\"/ip4/127.0.0.1/tcp/{port}\"]\n");
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let doctor = |dir: &std::path::Path| {
        let out = staffroom(dir, &["--json", "node", "doctor"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let found = doctor(dir.path());
    let check = |found: &serde_json::Value, name: &str| {
        found
            .as_array()
            .and_then(|f| f.iter().find(|f| f["check"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check in {found}"))
    };
    assert_eq!(check(&found, "node")["ok"], false);
    let held = check(&found, "p2p port");
    assert_eq!(held["ok"], false, "{held}");
    assert!(held["detail"].as_str().unwrap().contains(&port.to_string()));
    assert!(held["advice"].as_str().unwrap().contains("--listen"));
    drop(holder);
    assert_eq!(check(&doctor(dir.path()), "p2p port")["ok"], true);
}
