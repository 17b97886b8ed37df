//! Public networks on the web pages: a facilitator's publication (kind 12) opens one network
//! to visitors — pages, feed, search within it — and no other; a member's is refused, and
//! withdrawing it closes the network again.

use std::time::Duration;

use reqwest::StatusCode;
use staffroom_protocol::fixtures::{blog_body, key, signed};
use staffroom_protocol::Body;
use staffroom_tests::*;

use super::web_site::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facilitators_publication_opens_a_network_to_visitors_and_no_other() {
    use staffroom_protocol::Publication;
    init_tracing();
    let node = TestNode::start(&[]).await;
    let (open, closed) = (
        TestNetwork::open("Published"),
        TestNetwork::open("Members only"),
    );
    node.adopt(&open).await;
    node.adopt(&closed).await;
    let api = node.api();
    let author = staffroom_protocol::AuthorId(key(1).verifying_key().to_bytes());
    api.add_teacher(author, "Registered Name")
        .await
        .expect("registered");
    let t = now_ms() - 60_000;
    let public_post = signed(&key(1), open.id, t, vec![], blog_body("Open to all"));
    let private_post = signed(&key(1), closed.id, t, vec![], blog_body("Staff only"));
    for e in [&public_post, &private_post] {
        api.submit(e.encode()).await.expect("accepted");
    }
    let publish = |by: u8, public: bool, at: u64| {
        signed(
            &key(by),
            open.id,
            at,
            vec![],
            Body::Publication(Publication { public }),
        )
    };
    // key(250) founded the test networks; key(2) is a member, not a facilitator.
    let refused = api.submit(publish(2, true, t + 1).encode()).await;
    assert!(
        matches!(&refused, Err(staffroom_node::api::ClientError::Api { code, .. }) if code == "not_facilitator"),
        "{refused:?}"
    );
    api.submit(publish(250, true, t + 2).encode())
        .await
        .expect("a facilitator publishes");

    let visitor = Browser::new(&node);
    let home = visitor.get("/").await;
    assert!(
        home.body.contains(&format!("/n/{}", open.id)),
        "the public network is listed"
    );
    assert!(
        !home.body.contains(&format!("/n/{}", closed.id)),
        "the other is not"
    );
    for (path, status) in [
        (format!("/n/{}", open.id), StatusCode::OK),
        (format!("/e/{}", public_post.id()), StatusCode::OK),
        (format!("/n/{}/feed.atom", open.id), StatusCode::OK),
        (format!("/n/{}", closed.id), StatusCode::NOT_FOUND),
        (format!("/e/{}", private_post.id()), StatusCode::NOT_FOUND),
        (format!("/n/{}/feed.atom", closed.id), StatusCode::NOT_FOUND),
        ("/search?q=".to_owned(), StatusCode::NOT_FOUND),
        (
            format!("/search?q=&network={}", closed.id),
            StatusCode::NOT_FOUND,
        ),
    ] {
        assert_eq!(visitor.get(&path).await.status, status, "{path}");
    }
    node.wait_for_search_index(Duration::from_secs(30)).await;
    let found = visitor
        .get(&format!("/search?q=&network={}", open.id))
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.body.contains("Open to all") && !found.body.contains("Staff only"));
    let feed: atom_syndication::Feed = visitor
        .get(&format!("/n/{}/feed.atom", open.id))
        .await
        .body
        .parse()
        .expect("Atom");
    assert_eq!(
        feed.entries().len(),
        1,
        "a feed reader without a session reads it"
    );
    // Both posts carry the tag; a visitor's tag and author feeds hold the public one only.
    for path in [
        "/tags/retrieval-practice/feed.atom".to_owned(),
        format!("/a/{author}/feed.atom"),
    ] {
        let feed: atom_syndication::Feed = visitor.get(&path).await.body.parse().expect("Atom");
        let titles: Vec<_> = feed
            .entries()
            .iter()
            .map(|e| e.title().value.clone())
            .collect();
        assert_eq!(titles, ["Open to all"], "{path}");
    }
    let page = visitor.get(&format!("/e/{}", public_post.id())).await;
    assert!(
        !page.body.contains("Add a comment"),
        "no writing forms for visitors"
    );
    assert!(
        !page.body.contains("Registered Name"),
        "the school's register names nobody to visitors"
    );
    // An entry of a kind this node does not know is a 404 like any other, not a description.
    let later =
        staffroom_protocol::fixtures::opaque(&key(1), open.id, now_ms() - 1000, 1, 42, b"later");
    api.submit(later.clone()).await.expect("kept as opaque");
    let id = staffroom_protocol::EntryId(*blake3::hash(&later).as_bytes());
    let opaque = visitor.get(&format!("/e/{id}")).await;
    assert_eq!(opaque.status, StatusCode::NOT_FOUND, "{}", opaque.body);

    // Members only again: visitors lose it (within the pages' 2 s reuse of the list).
    api.submit(publish(250, false, t + 3).encode())
        .await
        .expect("withdrawn");
    eventually("the network is members-only again", || async {
        visitor
            .get(&format!("/e/{}", public_post.id()))
            .await
            .status
            == StatusCode::NOT_FOUND
    })
    .await;
    node.node.stop().await.expect("stops");
}
