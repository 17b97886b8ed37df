//! One verdict: what depends on a node — its clock, the kinds it knows — never turns honest
//! nodes against each other. Nodes with clocks apart converge without blocking anyone, and
//! entries of a kind no node here understands travel by gossip and sync without blame.

use std::time::Duration;

use staffroom_node::clock::Clock;
use staffroom_protocol::fixtures::{self, key};
use staffroom_protocol::limits::CLOCK_SKEW_MS_MAX;
use staffroom_protocol::{EntryId, NetworkId};
use staffroom_tests::hostile::{Hostile, Seen};
use staffroom_tests::*;

/// Membership entries every node of a [`TestNetwork`] holds.
const M: u64 = TEST_NETWORK_ENTRIES;

/// Nobody connected to `node` is blocked or has been counted against.
async fn nobody_blamed(node: &TestNode, what: &str) {
    let peers = node.api().peers().await.unwrap();
    assert!(!peers.is_empty(), "{what}: has peers");
    for p in peers {
        assert!(!p.blocked, "{what}: {} blocked", p.peer_id);
        assert_eq!(p.invalid_messages, 0, "{what}: {} blamed", p.peer_id);
    }
}

async fn two_nodes(offset_a_ms: i64, offset_b_ms: i64) -> (TestNode, TestNode, NetworkId) {
    init_tracing();
    let a = TestNode::start_with(&[], |c| c.clock = Clock::offset_by(offset_a_ms)).await;
    let b = TestNode::start_with(&[a.addr()], |c| c.clock = Clock::offset_by(offset_b_ms)).await;
    let network_net = TestNetwork::open("Skew");
    a.adopt(&network_net).await;
    let network = network_net.id;
    b.adopt(&network_net).await;
    a.wait_for_network_peers(network, 1).await;
    b.wait_for_network_peers(network, 1).await;
    // Each announces, through identify, the sync protocol version it speaks.
    eventually("identify's protocols", || async {
        let peers = a.api().peers().await.unwrap_or_default();
        let sync = |p: &staffroom_node::net::PeerInfo| {
            p.protocols.iter().any(|p| p == "/staffroom/sync/2")
        };
        peers.iter().any(sync)
    })
    .await;
    (a, b, network)
}

/// Failure 2 of issue 7: an entry dated at the edge of the skew bound is valid for the node
/// whose clock is ahead and early for the one behind. The one behind holds it, blames nobody,
/// and stores it when its clock allows; the relay's own later posts still reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_clocks_apart_converge_and_block_nobody() {
    // A is 2.5 s ahead, B 2.5 s behind: five seconds apart.
    let (a, b, network) = two_nodes(2_500, -2_500).await;
    let mut outsider = Hostile::connect(a.addr(), network).await;
    outsider.dial(b.addr()).await;
    for _ in 0..2 {
        outsider
            .wait_for("a subscription", |s| matches!(s, Seen::Subscribed(_)))
            .await;
    }
    a.wait_for_network_peers(network, 2).await;
    b.wait_for_network_peers(network, 2).await;
    // Dated 1–2 s inside A's bound: beyond B's by 3–4 s. Gossip both ways, several times
    // over, as the failure needed three strikes to block.
    let edge = now_ms() + CLOCK_SKEW_MS_MAX + 1_000;
    let mut ids = Vec::new();
    for n in 0..5 {
        let body = fixtures::blog_body(&format!("Dated at the edge {n}"));
        let entry = fixtures::signed(&key(70), network, edge + n * 200, vec![], body);
        ids.push(entry.id());
        outsider.publish(entry.encode()).await.expect("published");
    }
    for id in &ids {
        a.wait_for_entry(id).await;
    }
    // B held them; once its clock passes their due time it stores them.
    for id in &ids {
        b.wait_for_entry(id).await;
    }
    // The release task counts a batch as held until its whole durable group returns, a
    // moment after the entries show: the pen empties, it does not stay full.
    eventually("B's pen empties", || async {
        b.api().status().await.is_ok_and(|s| s.held_entries == 0)
    })
    .await;
    nobody_blamed(&a, "A").await;
    nobody_blamed(&b, "B").await;
    // The relay's own later posts still reach the node whose clock is behind.
    let later = a.post_many(&key(71), network, 1).await;
    b.wait_for_entry(&later[0]).await;
    outsider.stop().await;
    b.stop().await;
    a.stop().await;
}

/// Failure 3 of issue 7: an entry of a kind this version does not know (kind 42) is kept and
/// relayed by gossip, served by sync to a node that joins later, listed by none, and blamed on
/// nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_kind_travels_by_gossip_and_sync_without_blame() {
    let (a, b, network) = two_nodes(0, 0).await;
    let mut newer = Hostile::connect(a.addr(), network).await;
    newer
        .wait_for("A's subscription", |s| matches!(s, Seen::Subscribed(_)))
        .await;
    a.wait_for_network_peers(network, 2).await;
    // A new kind in format version 1, and a new format version.
    let future = [
        fixtures::opaque(&key(72), network, now_ms(), 1, 42, b"a kind from later"),
        fixtures::opaque(&key(72), network, now_ms(), 2, 1, b"a format from later"),
    ];
    let ids = future
        .clone()
        .map(|bytes| EntryId(*blake3::hash(&bytes).as_bytes()));
    for (bytes, id) in future.iter().zip(ids) {
        // Published a few times: the first may go out before the mesh has formed.
        for attempt in 0..20 {
            let _ = newer.publish(bytes.clone()).await;
            let got = b.api().get(&id).await;
            if got.is_err_and(|e| e.code() == Some("not_understood")) {
                break;
            }
            assert!(attempt < 19, "the entry never reached B by gossip");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for node in [&a, &b] {
        for id in &ids {
            let err = node.api().get(id).await.expect_err("kept, but not shown");
            assert_eq!(err.code(), Some("not_understood"), "{err}");
        }
        let listed = node.api().list(&Default::default()).await.unwrap();
        assert!(listed.is_empty(), "never listed");
        assert_eq!(node.entry_count().await, M + 2);
    }
    nobody_blamed(&a, "A").await;
    nobody_blamed(&b, "B").await;

    // C joins later: only sync can bring it the entry.
    let c = TestNode::start(&[b.addr()]).await;
    c.adopt(&TestNetwork::open("Skew")).await;
    c.wait_for_count(M + 2).await;
    for id in &ids {
        let err = c.api().get(id).await.expect_err("kept, but not shown");
        assert_eq!(err.code(), Some("not_understood"));
    }
    nobody_blamed(&c, "C").await;
    newer.stop().await;
    for node in [c, b, a] {
        node.stop().await;
    }
}
