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
    use staffroom_tests::cli_process::{staffroom, staffroom_ok, NodeProcess};
    let dir = tempfile::tempdir().unwrap();
    staffroom_ok(dir.path(), &["init"], None);
    let first = NodeProcess::start(dir.path(), &[]);
    crate::cli::wait_for(dir.path(), &["status", "--json"], "the first node", |_| {
        true
    });
    let args = [
        "node",
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
    ];
    let second = staffroom(dir.path(), &args, None);
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
