//! Erasure across real nodes: an author's deletion reaches every node, including one that was
//! offline, and the entry does not come back from a node that still had it; a deleted
//! resource's files leave every node's file store; only those who may erase, do.

use staffroom_node::api::ApiClient;
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

/// Names in a node's file store (complete and partial) that belong to `root`.
fn file_names(node_dir: &std::path::Path, root: &staffroom_protocol::FileRoot) -> Vec<String> {
    let mut names = Vec::new();
    for sub in ["complete", "partial"] {
        let Ok(dir) = std::fs::read_dir(node_dir.join("files").join(sub)) else {
            continue;
        };
        for item in dir.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with(&root.to_hex()) {
                names.push(format!("{sub}/{name}"));
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_resources_file_leaves_every_node_including_one_offline() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[a.addr()]).await;
    let d = TestNode::start(&[a.addr()]).await;
    let net = TestNetwork::open("Erasure of files");
    for node in [&a, &b, &d] {
        node.adopt(&net).await;
    }
    let bytes = crate::files::file_bytes(300 * 1024, 7);
    let resource = crate::files::share(&a.api(), net.id, &[("pupils.pdf", &bytes)]).await;
    let root = staffroom_protocol::FileRoot::of(&bytes);
    crate::files::wait_complete(&b.api(), &resource).await;
    crate::files::wait_complete(&d.api(), &resource).await;
    assert!(!file_names(d.dir.path(), &root).is_empty());
    let d_dir = d.stop().await;
    let body = fixtures::erasure_body(
        &resource,
        ErasureAction::Delete,
        ErasureReason::PersonalData,
    );
    let deletion = fixtures::signed(&key(31), net.id, now_ms(), vec![], body);
    a.api()
        .submit(deletion.encode())
        .await
        .expect("deletion accepted");
    for node_dir in [a.dir.path(), b.dir.path()] {
        let dir = node_dir.to_path_buf();
        eventually("the file gone from the file store", || {
            let dir = dir.clone();
            async move { file_names(&dir, &root).is_empty() }
        })
        .await;
    }
    // D was offline: on its return it learns the tombstone by catch-up and deletes the file.
    let d = TestNode::restart(d_dir, &[a.addr(), b.addr()]).await;
    d.wait_for_entry(&deletion.id()).await;
    let dir = d.dir.path().to_path_buf();
    eventually("the file gone from the returning node", || {
        let dir = dir.clone();
        async move { file_names(&dir, &root).is_empty() }
    })
    .await;
    for node in [&a, &b, &d] {
        assert!(
            node.api().get(&resource.id()).await.is_err(),
            "gone from the store"
        );
    }
    // Nobody serves or fetches it again: the resource is refused, so nothing lists it.
    let again = b.api().submit(resource.encode()).await.unwrap_err();
    assert_eq!(again.code(), Some("erased"), "{again}");
    // D, which had it, offers nothing back: after a catch-up, A and B still lack it.
    a.api().sync(None).await.expect("sync");
    for node in [&a, &b] {
        assert!(
            node.api().get(&resource.id()).await.is_err(),
            "it does not return"
        );
    }
    for node in [a, b, d] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_author_deletes_and_only_a_facilitator_hides() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let net = TestNetwork::open("Erasure rights");
    a.adopt(&net).await;
    let post = fixtures::signed(
        &key(5),
        net.id,
        now_ms(),
        vec![],
        fixtures::blog_body("Mine"),
    );
    a.api().submit(post.encode()).await.expect("posted");
    // Another member may not delete it, nor remove or hide it (not a facilitator).
    let not_theirs = fixtures::erasure_body(&post, ErasureAction::Delete, ErasureReason::Mistake);
    let not_theirs = fixtures::signed(&key(6), net.id, now_ms(), vec![], not_theirs);
    let refused = a.api().submit(not_theirs.encode()).await.unwrap_err();
    assert_eq!(refused.code(), Some("invalid_field"), "{refused}");
    let hide = fixtures::erasure_body(&post, ErasureAction::Hide, ErasureReason::Other);
    let by_member = fixtures::signed(&key(6), net.id, now_ms(), vec![], hide.clone());
    let refused = a.api().submit(by_member.encode()).await.unwrap_err();
    assert_eq!(refused.code(), Some("not_facilitator"), "{refused}");
    let post_id = post.id();
    let listed = |api: ApiClient| async move {
        let filter = staffroom_node::store::ListFilter {
            network: Some(net.id),
            ..Default::default()
        };
        api.list(&filter)
            .await
            .expect("listed")
            .iter()
            .any(|e| e.id == post_id)
    };
    assert!(listed(a.api()).await, "the post stays listed");
    // The founder (a facilitator) hides it: kept and synced, but no longer listed.
    let by_founder = fixtures::signed(&key(250), net.id, now_ms(), vec![], hide);
    a.api().submit(by_founder.encode()).await.expect("hidden");
    assert!(!listed(a.api()).await, "a hidden post is not listed");
    assert!(a.api().get(&post.id()).await.is_ok(), "but it is kept");
    a.stop().await;
}
