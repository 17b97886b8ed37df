//! Entries of kinds this node does not understand, and stores written under older rules or
//! by nodes that understood fewer kinds.

use super::*;

#[tokio::test]
async fn entries_of_unknown_kinds_are_kept_but_never_listed() {
    let (_dir, store) = joined(&[network(1)]).await;
    let bytes = fixtures::opaque(&key(1), network(1), 5, 1, 42, b"future");
    let opaque = staffroom_protocol::verify_entry(&bytes, 5).unwrap();
    let post = fixtures::numbered_post(&key(1), network(1), 1);
    store
        .insert(vec![opaque.clone(), verified(&post)])
        .await
        .unwrap();
    let all = ListFilter {
        network: Some(network(1)),
        ..Default::default()
    };
    assert_eq!(store.list(&all).unwrap().len(), 1, "only the post");
    assert!(matches!(store.lookup(&opaque.id()).unwrap(), Some(Lookup::Opaque(h)) if h.kind == 42));
    assert_eq!(
        store.get_bytes(&opaque.id()).unwrap().as_deref(),
        Some(&bytes[..])
    );
    assert_eq!(
        store.with_sync_index(&network(1), |ix| ix.len()),
        2,
        "both are synced"
    );
    assert_eq!(store.trees.opaque.len(), 1);
}

/// An entry an older node stored opaquely (it did not know the kind) is indexed for listing
/// once the store is opened by a node that understands it.
#[tokio::test]
async fn entries_stored_opaquely_are_indexed_once_understood() {
    let dir = tempfile::tempdir().unwrap();
    let post = fixtures::numbered_post(&key(1), network(1), 3);
    let id = post.id();
    {
        let store = joined_in(dir.path(), &[network(1)]).await;
        // What an older node's writer leaves: the record, the time key, the opaque mark.
        let t = &store.trees;
        old_time_index(t, &post);
        t.entries.insert(id.as_bytes(), post.encode()).unwrap();
        t.meta.remove(b"record_layout").unwrap();
        t.opaque.insert(id.as_bytes(), &[]).unwrap();
        // ... and a record of understanding fewer kinds than this node does.
        t.meta.insert(b"understood_kinds", &[1u8][..]).unwrap();
        store.flush().await.unwrap();
        let all = ListFilter {
            author: Some(post.author),
            ..Default::default()
        };
        assert!(store.list(&all).unwrap().is_empty(), "no author index yet");
    }
    let store = Store::open(dir.path()).unwrap();
    store.flush().await.unwrap();
    let by_author = ListFilter {
        author: Some(post.author),
        ..Default::default()
    };
    assert_eq!(store.list(&by_author).unwrap()[0].id, id);
    assert_eq!(store.trees.opaque.len(), 0);
}

/// A sources statement (kind 13) stored opaquely by a node that did not know the kind, with
/// its author's deletion of it (which covered nothing there): once the kind is understood,
/// the deletion covers it, as on a node that knew the kind when both arrived.
#[tokio::test]
async fn an_erased_entry_of_a_kind_now_understood_is_removed_on_upgrade() {
    use staffroom_protocol::{Body, ErasureAction, ErasureReason, Sources};
    let dir = tempfile::tempdir().unwrap();
    let body = Body::Sources(Sources {
        resource: staffroom_protocol::EntryId([7; 32]),
        entries: vec![],
        links: vec!["https://example.org/".into()],
    });
    let statement = fixtures::signed(&key(1), network(1), 3, vec![], body);
    let deletion = fixtures::signed(
        &key(1),
        network(1),
        4,
        vec![],
        fixtures::erasure_body(&statement, ErasureAction::Delete, ErasureReason::Mistake),
    );
    let id = statement.id();
    {
        let store = joined_in(dir.path(), &[network(1)]).await;
        store.insert(vec![verified(&deletion)]).await.unwrap();
        // What an older node's writer left of the statement: record, time key, opaque mark.
        let t = &store.trees;
        old_time_index(t, &statement);
        t.entries.insert(id.as_bytes(), statement.encode()).unwrap();
        t.meta.remove(b"record_layout").unwrap();
        t.opaque.insert(id.as_bytes(), &[]).unwrap();
        t.meta.insert(b"understood_kinds", &[1u8][..]).unwrap();
        store.flush().await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    store.flush().await.unwrap();
    assert!(store.get_bytes(&id).unwrap().is_none(), "erased on upgrade");
    assert_eq!(store.trees.opaque.len(), 0);
    assert!(
        store.get_bytes(&deletion.id()).unwrap().is_some(),
        "the erasure stays"
    );
}

/// An entry an older node stored under the rules before issue 7 (a title reordered by a
/// right-to-left override) is quarantined when a node with the present rules opens the store:
/// kept, but neither listed nor synced, so no upgraded peer is ever served it.
#[tokio::test]
async fn entries_the_present_rules_refuse_are_quarantined_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let valid = fixtures::numbered_post(&key(1), network(1), 1);
    let old_rules = fixtures::signed(
        &key(1),
        network(1),
        2,
        vec![],
        fixtures::blog_body("a\u{202E}b"),
    );
    let id = old_rules.id();
    {
        let store = joined_in(dir.path(), &[network(1)]).await;
        store.insert(vec![verified(&valid)]).await.unwrap();
        // What an older node's writer left: every index, and rules version 1.
        let t = &store.trees;
        let e = &old_rules;
        old_time_index(t, e);
        old_listing_keys(t, e);
        t.entries.insert(id.as_bytes(), e.encode()).unwrap();
        t.meta.remove(b"rules_version").unwrap();
        t.meta.remove(b"record_layout").unwrap();
        store.flush().await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.entry_count(), 1);
    assert_eq!(store.get_bytes(&id).unwrap(), None, "not served");
    assert_eq!(
        store.with_sync_index(&network(1), |ix| ix.len()),
        1,
        "not synced"
    );
    let all = ListFilter {
        author: Some(valid.author),
        ..Default::default()
    };
    assert_eq!(store.list(&all).unwrap().len(), 1, "not listed");
    assert!(
        store.trees.quarantine.contains_key(id.as_bytes()).unwrap(),
        "kept"
    );
    drop(store);
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(again.entry_count(), 1, "checked once, not at every open");
    assert!(
        !again
            .trees
            .db
            .tree_names()
            .iter()
            .any(|n| n == OLD_TIME_TREE),
        "the old time index is dropped: its order is the sync index's"
    );
}

/// The tree where stores before issue 14 kept each network's time order.
const OLD_TIME_TREE: &[u8] = b"by_network_time";

/// Writes `e`'s key as those stores did: network ‖ created_at_ms ‖ id.
fn old_time_index(t: &Trees, e: &staffroom_protocol::Entry) {
    let mut key = e.network.as_bytes().to_vec();
    key.extend_from_slice(&e.created_at_ms.to_be_bytes());
    key.extend_from_slice(e.id().as_bytes());
    t.db.open_tree(OLD_TIME_TREE)
        .unwrap()
        .insert(key, &[])
        .unwrap();
}

/// Writes `e`'s author and kind keys as stores before issue 14 did, in trees now held in
/// memory.
fn old_listing_keys(t: &Trees, e: &staffroom_protocol::Entry) {
    let key = |start: &[u8]| {
        let mut key = start.to_vec();
        key.extend_from_slice(&e.created_at_ms.to_be_bytes());
        key.extend_from_slice(e.id().as_bytes());
        key
    };
    let mut kind = e.network.as_bytes()[..8].to_vec();
    kind.push(e.kind().tag());
    for (tree, key) in [
        (OLD_LISTING_TREES[0], key(&e.author.as_bytes()[..8])),
        (OLD_LISTING_TREES[1], key(&kind)),
    ] {
        t.db.open_tree(tree).unwrap().insert(key, &[]).unwrap();
    }
}

/// The trees where stores before this version kept the author and kind listings.
const OLD_LISTING_TREES: [&str; 2] = ["by_author_time", "by_network_kind_time"];

/// A store that kept its author and kind listings in sled trees (before issue 14's last
/// step) has them dropped at open, and lists every entry by author and by kind from the
/// listings the open rebuilt in memory, at that open and the next.
#[tokio::test]
async fn listing_trees_of_older_stores_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let posts: Vec<_> = (0..3)
        .map(|n| fixtures::numbered_post(&key(1), network(1), n))
        .collect();
    {
        let store = joined_in(dir.path(), &[network(1)]).await;
        store
            .insert(posts.iter().map(verified).collect())
            .await
            .unwrap();
        for post in &posts {
            old_listing_keys(&store.trees, post);
        }
        store.flush().await.unwrap();
    }
    for open in ["first", "again"] {
        let store = Store::open(dir.path()).unwrap();
        let by_author = ListFilter {
            author: Some(posts[0].author),
            ..Default::default()
        };
        let by_kind = ListFilter {
            network: Some(network(1)),
            kind: Some(EntryKind::BlogPost),
            ..Default::default()
        };
        assert_eq!(store.list(&by_author).unwrap().len(), 3, "{open}");
        assert_eq!(store.list(&by_kind).unwrap().len(), 3, "{open}");
        let names = store.trees.db.tree_names();
        for old in OLD_LISTING_TREES {
            assert!(!names.iter().any(|n| n == old.as_bytes()), "{open}: {old}");
        }
    }
}

/// A store that kept entries' canonical bytes as they are (before issue 14) has them stored
/// again as records at open, once, compressed where that pays; a pass a crash cut short
/// (some values records already, some not) is finished the same way. Every entry reads back
/// as the bytes it was.
#[tokio::test]
async fn raw_values_are_packed_into_records_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Pupils explain their reasoning to a partner before writing. ".repeat(30);
    let posts: Vec<_> = (0..4u64)
        .map(|n| {
            fixtures::signed(
                &key(1),
                network(1),
                1_700_000_000_000 + n,
                vec![],
                staffroom_protocol::Body::BlogPost(staffroom_protocol::BlogPost {
                    title: "Talk before writing".into(),
                    body_md: text.clone(),
                    tags: vec![],
                }),
            )
        })
        .collect();
    {
        let store = joined_in(dir.path(), &[network(1)]).await;
        store
            .insert(posts.iter().map(verified).collect())
            .await
            .unwrap();
        // Half as an older node left them, half already records (an interrupted pass).
        let t = &store.trees;
        for post in &posts[..2] {
            t.entries
                .insert(post.id().as_bytes(), post.encode())
                .unwrap();
        }
        t.meta.remove(b"record_layout").unwrap();
        store.flush().await.unwrap();
    }
    let mut sizes = Vec::new();
    for open in ["packed", "again"] {
        let store = Store::open(dir.path()).unwrap();
        for post in &posts {
            let bytes = store.get_bytes(&post.id()).unwrap();
            assert_eq!(bytes, Some(post.encode()), "{open}");
            let record = store
                .trees
                .entries
                .get(post.id().as_bytes())
                .unwrap()
                .unwrap();
            assert!(record.len() < post.encode().len() / 2, "{open}: compressed");
            sizes.push(record.len());
        }
        assert_eq!(
            store.with_sync_index(&network(1), |ix| ix.len()),
            4,
            "{open}"
        );
    }
    assert_eq!(sizes[..4], sizes[4..], "the second open changes nothing");
}
