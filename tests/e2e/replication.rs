//! Three nodes: every kind of entry posted on one is stored by the others.

use staffroom_protocol::fixtures::{self, key};
use staffroom_protocol::{Entry, Stage};
use staffroom_tests::*;

/// A, B and C, connected as a triangle, all members of one network.
pub async fn three_nodes() -> (Vec<TestNode>, staffroom_protocol::NetworkId) {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[a.addr()]).await;
    let c = TestNode::start(&[a.addr(), b.addr()]).await;
    let net = TestNetwork::open("Cluster");
    for node in [&a, &b, &c] {
        node.adopt(&net).await;
    }
    let network = net.id;
    for node in [&a, &b, &c] {
        node.wait_for_network_peers(network, 2).await;
    }
    (vec![a, b, c], network)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_posted_on_one_node_reaches_the_others() {
    let (nodes, network) = three_nodes().await;
    let teacher = key(21);
    let t = now_ms();
    let enquiry = fixtures::signed(
        &teacher,
        network,
        t,
        vec![],
        fixtures::enquiry_body("Does it help?"),
    );
    let entries: Vec<Entry> = vec![
        fixtures::signed(
            &teacher,
            network,
            t,
            vec![],
            fixtures::blog_body("Hello cluster"),
        ),
        fixtures::signed(
            &teacher,
            network,
            t,
            vec![],
            fixtures::resource_body("Fractions mat"),
        ),
        enquiry.clone(),
        fixtures::signed(
            &teacher,
            network,
            t + 1,
            vec![fixtures::in_enquiry(enquiry.id())],
            fixtures::note_body(Stage::Evidence, "Scores rose"),
        ),
        fixtures::signed(
            &key(22),
            network,
            t + 2,
            vec![fixtures::reply_to(enquiry.id())],
            fixtures::comment_body("Same here"),
        ),
    ];
    for (i, entry) in entries.iter().enumerate() {
        // Post from different nodes, so each node is both a source and a receiver.
        let origin = &nodes[i % nodes.len()];
        let reply = origin.api().submit(entry.encode()).await.expect("accepted");
        assert_eq!(reply.id, entry.id());
        assert!(
            reply.gossip.peers >= 2,
            "published to both peers: {:?}",
            reply.gossip
        );
    }
    for node in &nodes {
        for entry in &entries {
            node.wait_for_entry(&entry.id()).await;
            let stored = node.api().get(&entry.id()).await.expect("stored");
            assert_eq!(&stored.stored.entry, entry, "stored exactly as signed");
        }
    }
    // Listings by enquiry and kind see the replicated entries on a node that did not post them.
    let c = nodes[2].api();
    let notes = c
        .list(&staffroom_node::store::ListFilter {
            enquiry: Some(enquiry.id()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].id, entries[3].id());
    for node in nodes {
        node.stop().await;
    }
}
