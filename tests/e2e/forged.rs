//! Forged entries: refused by the API with a clear error; injected as gossip, neither stored
//! nor forwarded, and the peer that sent them is penalised, then blocked.

use staffroom_protocol::fixtures::{self, key};
use staffroom_tests::hostile::{forged, Hostile, Seen};
use staffroom_tests::*;

/// Membership entries every node of a [`TestNetwork`] holds.
const M: u64 = TEST_NETWORK_ENTRIES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_a_forged_signature_with_a_clear_error() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let network_net = TestNetwork::open("Cluster");
    a.adopt(&network_net).await;
    let network = network_net.id;
    let entry = forged(network, "Forged");
    let err = a
        .api()
        .submit(entry.encode())
        .await
        .expect_err("forged entry refused");
    assert_eq!(err.code(), Some("bad_signature"));
    assert_eq!(
        err.to_string(),
        "bad signature: the entry was not signed by its author's key"
    );
    assert_eq!(
        a.api().get(&entry.id()).await.unwrap_err().code(),
        Some("not_found")
    );

    // Malformed bytes and entries for networks this node has not joined are refused too.
    let err = a
        .api()
        .submit(vec![1, 2, 3])
        .await
        .expect_err("garbage refused");
    assert_eq!(
        err.code(),
        Some("truncated"),
        "the rule broken, by its code"
    );
    let elsewhere = fixtures::signed(
        &key(41),
        fixtures::network(99),
        now_ms(),
        vec![],
        fixtures::blog_body("x"),
    );
    let err = a
        .api()
        .submit(elsewhere.encode())
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), Some("not_member"));
    assert_eq!(
        a.api().status().await.unwrap().entries - M,
        0,
        "nothing was stored"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_gossip_is_not_stored_nor_forwarded_and_its_sender_is_blocked() {
    let (nodes, network) = super::replication::three_nodes().await;
    let a = &nodes[0];
    let mut hostile = Hostile::connect(a.addr(), network).await;
    let a_peer = a.node.peer_id;
    hostile
        .wait_for(
            "A's subscription",
            |s| matches!(s, Seen::Subscribed(p) if *p == a_peer),
        )
        .await;
    a.wait_for_network_peers(network, 3).await;

    let bad = forged(network, "Forged one");
    hostile
        .publish(bad.encode())
        .await
        .expect("hostile publishes");
    // A valid entry sent the same way afterwards proves the path forwards what is valid.
    let good = fixtures::signed(
        &key(43),
        network,
        now_ms(),
        vec![],
        fixtures::blog_body("Genuine"),
    );
    hostile
        .publish(good.encode())
        .await
        .expect("hostile publishes");
    for node in &nodes {
        node.wait_for_entry(&good.id()).await;
    }
    for node in &nodes {
        let err = node
            .api()
            .get(&bad.id())
            .await
            .expect_err("forged entry not stored");
        assert_eq!(err.code(), Some("not_found"));
    }
    // Had A relayed the forgery, B and C would have rejected it and counted it against A.
    for node in &nodes[1..] {
        let peers = node.api().peers().await.unwrap();
        let from_a = peers
            .iter()
            .find(|p| p.peer_id == a_peer)
            .expect("A is a peer");
        assert_eq!(from_a.invalid_messages, 0, "A forwarded nothing invalid");
    }
    let hostile_id = hostile.peer_id;
    let peers = a.api().peers().await.unwrap();
    let seen = peers
        .iter()
        .find(|p| p.peer_id == hostile_id)
        .expect("A lists the hostile peer");
    assert_eq!(seen.invalid_messages, 1, "the sender is penalised");
    assert!(
        seen.score.is_some_and(|s| s < 0.0),
        "gossipsub score is negative: {:?}",
        seen.score
    );

    // Two more forgeries reach the limit: A blocks the peer and refuses it from then on.
    for title in ["Forged two", "Forged three"] {
        hostile
            .publish(forged(network, title).encode())
            .await
            .expect("hostile publishes");
    }
    hostile
        .wait_for(
            "A disconnecting",
            |s| matches!(s, Seen::Disconnected(p) if *p == a_peer),
        )
        .await;
    hostile.dial(a.addr()).await;
    hostile
        .wait_for("redial refused", |s| {
            matches!(s, Seen::DialFailed | Seen::Disconnected(_))
        })
        .await;
    // The hostile side may see the close before A's event loop has processed it.
    eventually("A dropping the blocked peer", || async {
        let peers = a.api().peers().await.unwrap();
        peers.iter().all(|p| p.peer_id != hostile_id)
    })
    .await;
    assert_eq!(
        a.api().status().await.unwrap().entries - M,
        1,
        "only the genuine entry is stored"
    );
    hostile.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

/// Every published negative vector, submitted to the API, is refused with its own code: the
/// typed error reaches programs as a stable code, not only as English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_every_negative_vector_with_its_code() {
    init_tracing();
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/protocol-vectors.json")).unwrap();
    let refused = vectors["refused"].as_array().expect("refused vectors");
    let now = refused[0]["now_ms"].as_u64().unwrap();
    // The node's clock a little before the vectors' `now_ms`, so the run's own duration
    // cannot carry it past the skew edge the `from_the_future` vector sits on.
    let offset = now as i64 - now_ms() as i64 - 5_000;
    let a = TestNode::start_with(&[], |c| {
        c.clock = staffroom_node::clock::Clock::offset_by(offset)
    })
    .await;
    for v in refused {
        let bytes = hex::decode(v["entry_hex"].as_str().unwrap()).unwrap();
        let err = a.api().submit(bytes).await.expect_err("refused");
        assert_eq!(err.code(), v["error"].as_str(), "{}: {err}", v["name"]);
    }
    assert_eq!(a.entry_count().await, 0);
    a.stop().await;
}
