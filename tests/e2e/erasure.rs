//! Erasure across real nodes: an author's deletion reaches every node, including one that was
//! offline, and the entry does not come back from a node that still had it.

use staffroom_protocol::fixtures::{self, key};
use staffroom_protocol::{ErasureAction, ErasureReason};
use staffroom_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_reaches_every_node_and_the_entry_never_returns() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[a.addr()]).await;
    let d = TestNode::start(&[a.addr()]).await;
    let net = TestNetwork::open("Erasure");
    for node in [&a, &b, &d] {
        node.adopt(&net).await;
    }
    let teacher = key(5);
    let post = fixtures::signed(
        &teacher,
        net.id,
        now_ms(),
        vec![],
        fixtures::blog_body("Names a pupil"),
    );
    a.api().submit(post.encode()).await.expect("posted");
    b.wait_for_entry(&post.id()).await;
    d.wait_for_entry(&post.id()).await;
    // D goes offline still holding the post; the author deletes it.
    let d_dir = d.stop().await;
    let body = fixtures::erasure_body(&post, ErasureAction::Delete, ErasureReason::PersonalData);
    let deletion = fixtures::signed(&teacher, net.id, now_ms(), vec![], body);
    a.api()
        .submit(deletion.encode())
        .await
        .expect("deletion accepted");
    b.wait_for_entry(&deletion.id()).await;
    let gone = |node: &TestNode| {
        let api = node.api();
        let id = post.id();
        async move {
            eventually("the post gone", || {
                let api = api.clone();
                async move { api.get(&id).await.is_err() }
            })
            .await
        }
    };
    gone(&a).await;
    gone(&b).await;
    // C was offline during the deletion: it catches up with the tombstone, not the post.
    let c = TestNode::start(&[b.addr()]).await;
    c.adopt(&net).await;
    c.wait_for_entry(&deletion.id()).await;
    assert!(
        c.api().get(&post.id()).await.is_err(),
        "C never takes the post in"
    );
    // D comes back with the post and without the tombstone: it learns the tombstone and
    // purges; no other node takes the post back from it.
    let d = TestNode::restart(d_dir, &[b.addr(), c.addr()]).await;
    d.wait_for_entry(&deletion.id()).await;
    gone(&d).await;
    let expected = net.entry_count() + 1;
    for node in [&a, &b, &c, &d] {
        node.wait_for_count(expected).await;
        assert!(node.api().get(&post.id()).await.is_err());
    }
    // The post offered again, by the API or a peer, is refused, and its sender not blamed.
    let again = a.api().submit(post.encode()).await.unwrap_err();
    assert_eq!(again.code(), Some("erased"), "{again}");
    for node in [a, b, c, d] {
        node.stop().await;
    }
}
