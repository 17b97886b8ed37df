//! A node that restarts keeps its data and identity, and catches posts made after it is back.

use staffroom_protocol::fixtures::{self, key};
use staffroom_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_data_and_catches_new_posts() {
    let (mut nodes, network) = super::replication::three_nodes().await;
    let teacher = key(31);
    let before = fixtures::signed(
        &teacher,
        network,
        now_ms(),
        vec![],
        fixtures::blog_body("Before"),
    );
    nodes[0]
        .api()
        .submit(before.encode())
        .await
        .expect("accepted");
    for node in &nodes {
        node.wait_for_entry(&before.id()).await;
    }

    let c = nodes.pop().expect("three nodes");
    let c_peer = c.node.peer_id;
    let dir = c.stop().await;
    let peers = [nodes[0].addr(), nodes[1].addr()];
    let c = TestNode::restart(dir, &peers).await;
    assert_eq!(c.node.peer_id, c_peer, "node identity persists");
    let kept = c
        .api()
        .get(&before.id())
        .await
        .expect("kept across restart");
    assert_eq!(kept.stored.entry, before);
    assert_eq!(
        c.api().networks().await.unwrap().len(),
        1,
        "membership persists"
    );

    c.wait_for_network_peers(network, 2).await;
    nodes[0].wait_for_network_peers(network, 2).await;
    let after = fixtures::signed(
        &teacher,
        network,
        now_ms(),
        vec![],
        fixtures::blog_body("After"),
    );
    nodes[0]
        .api()
        .submit(after.encode())
        .await
        .expect("accepted");
    c.wait_for_entry(&after.id()).await;
    for node in nodes.into_iter().chain([c]) {
        node.stop().await;
    }
}

/// Regression: the refusal repeated its cause two or three times.
#[test]
fn a_second_node_on_a_data_directory_in_use_is_refused_saying_why_once() {
    use staffroom_tests::cli_process::{staffroom, staffroom_ok, NodeProcess, NODE_RUN};
    let dir = tempfile::tempdir().unwrap();
    staffroom_ok(dir.path(), &["init"], None);
    let first = NodeProcess::start(dir.path(), &[]);
    crate::cli::wait_for(dir.path(), &["status", "--json"], "the first node", |_| {
        true
    });
    let second = staffroom(dir.path(), &NODE_RUN, None);
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    let cause = "locked by another Staffroom node using the same data directory";
    assert_eq!(stderr.matches(cause).count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("cannot open the store").count(),
        1,
        "{stderr}"
    );
    assert!(first.stop());
}

/// A store damaged while the node was down: the node starts, says how many acknowledged
/// entries it lost, and gets every one of them back from a peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_lost_to_a_damaged_store_are_reported_and_refilled_from_a_peer() {
    const POSTS: u64 = 150;
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[a.addr()]).await;
    let net = TestNetwork::open("damaged store");
    a.adopt(&net).await;
    b.adopt(&net).await;
    a.post_many(&key(1), net.id, POSTS).await;
    let total = net.entry_count() + POSTS;
    b.wait_for_count(total).await;

    let dir = a.stop().await;
    let log = dir.path().join("store").join("db");
    let mut bytes = std::fs::read(&log).unwrap();
    // A zeroed 4 KiB page two thirds of the way into what sled has written (its file is
    // allocated a segment at a time, so the end of the file may be zeroes already): sled
    // drops everything after it.
    let written = bytes.iter().rposition(|&b| b != 0).unwrap_or(0);
    let start = written * 2 / 3;
    bytes[start..start + 4096].fill(0);
    std::fs::write(&log, bytes).unwrap();

    // B is down while A opens, so nothing refills A before its loss is counted (A starts
    // in ~0.3 s now and would otherwise catch up from B before the status is read).
    let b_dir = b.stop().await;
    let a = TestNode::restart(dir, &[]).await;
    let status = a.api().status().await.unwrap();
    let lost = status
        .problems
        .iter()
        .find(|p| p.code == "entries_lost")
        .unwrap_or_else(|| panic!("the loss is reported: {:?}", status.problems));
    let count: u64 = lost.message.split(' ').next().unwrap().parse().unwrap();
    assert!(count > 0 && count < total, "{}", lost.message);
    assert_eq!(
        status.entries + count,
        total,
        "the loss reported is the loss"
    );
    let _b = TestNode::restart(b_dir, &[a.addr()]).await;
    a.wait_for_count(total).await;
    assert_eq!(a.api().networks().await.unwrap().len(), 1);
}
