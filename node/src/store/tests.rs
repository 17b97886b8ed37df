//! Store behaviour: idempotent inserts, durable acknowledgement, index-driven listing.

use super::*;
use staffroom_protocol::fixtures::{self, key, network};
use staffroom_protocol::{verify_entry, Stage};

/// A store in a fresh temporary directory that has joined `networks`.
async fn joined(networks: &[staffroom_protocol::NetworkId]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = joined_in(dir.path(), networks).await;
    (dir, store)
}

/// The store in `dir`, having joined `networks`.
async fn joined_in(dir: &std::path::Path, networks: &[staffroom_protocol::NetworkId]) -> Store {
    let store = Store::open(dir).unwrap();
    for id in networks {
        let record = NetworkRecord {
            id: *id,
            name: String::new(),
            joined_at_ms: 0,
        };
        store.join_network(record).await.unwrap();
    }
    store
}

fn verified(entry: &staffroom_protocol::Entry) -> VerifiedEntry {
    verify_entry(&entry.encode(), u64::MAX / 2).expect("fixture is valid")
}

#[tokio::test]
async fn inserting_twice_is_a_no_op_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let post = fixtures::numbered_post(&key(1), network(1), 1);
    {
        let store = Store::open(dir.path()).unwrap();
        let first = store.insert(vec![verified(&post)]).await.unwrap();
        let again = store
            .insert(vec![verified(&post), verified(&post)])
            .await
            .unwrap();
        assert_eq!(first, [InsertOutcome::Inserted]);
        assert_eq!(
            again,
            [InsertOutcome::AlreadyStored, InsertOutcome::AlreadyStored]
        );
        assert_eq!(store.entry_count(), 1);
    }
    // Dropping the store joined its writer; the directory can be opened again at once.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.entry_count(), 1);
    let got = store.get(&post.id()).unwrap().expect("stored");
    assert_eq!(got.entry, post);
}

#[tokio::test]
async fn listing_uses_every_filter_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (alice, bob) = (key(1), key(2));
    let (net_a, net_b) = (network(1), network(2));
    let enquiry = fixtures::signed(&alice, net_a, 10, vec![], fixtures::enquiry_body("Q?"));
    let eid = enquiry.id();
    let entries = [
        fixtures::signed(&alice, net_a, 1, vec![], fixtures::blog_body("a1")),
        fixtures::signed(&bob, net_a, 2, vec![], fixtures::blog_body("b1")),
        fixtures::signed(&bob, net_b, 3, vec![], fixtures::resource_body("r")),
        enquiry.clone(),
        fixtures::signed(
            &bob,
            net_a,
            11,
            vec![fixtures::in_enquiry(eid)],
            fixtures::note_body(Stage::Action, "n1"),
        ),
        fixtures::signed(
            &alice,
            net_a,
            12,
            vec![fixtures::in_enquiry(eid)],
            fixtures::note_body(Stage::Reflection, "n2"),
        ),
        fixtures::signed(
            &bob,
            net_a,
            13,
            vec![fixtures::reply_to(eid)],
            fixtures::comment_body("c"),
        ),
    ];
    store
        .insert(entries.iter().map(verified).collect())
        .await
        .unwrap();
    for net in [net_a, net_b] {
        let record = NetworkRecord {
            id: net,
            name: String::new(),
            joined_at_ms: 0,
        };
        store.join_network(record).await.unwrap();
    }

    let times = |f: ListFilter| -> Vec<u64> {
        store
            .list(&f)
            .unwrap()
            .iter()
            .map(|s| s.entry.created_at_ms)
            .collect()
    };
    assert_eq!(times(ListFilter::default()), [13, 12, 11, 10, 3, 2, 1]);
    assert_eq!(
        times(ListFilter {
            network: Some(net_b),
            ..Default::default()
        }),
        [3]
    );
    assert_eq!(
        times(ListFilter {
            network: Some(net_a),
            kind: Some(EntryKind::BlogPost),
            ..Default::default()
        }),
        [2, 1]
    );
    let bob_id = staffroom_protocol::AuthorId(bob.verifying_key().to_bytes());
    assert_eq!(
        times(ListFilter {
            author: Some(bob_id),
            ..Default::default()
        }),
        [13, 11, 3, 2]
    );
    assert_eq!(
        times(ListFilter {
            author: Some(bob_id),
            network: Some(net_a),
            ..Default::default()
        }),
        [13, 11, 2]
    );
    assert_eq!(
        times(ListFilter {
            enquiry: Some(eid),
            ..Default::default()
        }),
        [12, 11]
    );
    assert_eq!(
        times(ListFilter {
            reply_to: Some(eid),
            ..Default::default()
        }),
        [13]
    );
    assert_eq!(
        times(ListFilter {
            limit: Some(2),
            ..Default::default()
        }),
        [13, 12]
    );
}

#[tokio::test]
async fn corrupted_record_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let post = fixtures::numbered_post(&key(1), network(1), 7);
    store.insert(vec![verified(&post)]).await.unwrap();
    let mut bytes = post.encode();
    bytes[100] ^= 1;
    store
        .trees
        .entries
        .insert(post.id().as_bytes(), bytes)
        .unwrap();
    assert!(matches!(store.get(&post.id()), Err(StoreError::Corrupt(id)) if id == post.id()));
}

#[tokio::test]
async fn networks_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = NetworkRecord {
        id: network(5),
        name: "Maths hub".into(),
        joined_at_ms: 1,
    };
    assert!(store.join_network(record.clone()).await.unwrap());
    assert!(!store.join_network(record.clone()).await.unwrap());
    assert_eq!(store.networks().unwrap(), std::slice::from_ref(&record));
    assert_eq!(store.network(&network(5)).unwrap(), Some(record));
    assert_eq!(store.network(&network(6)).unwrap(), None);
}

#[tokio::test]
async fn concurrent_inserts_are_grouped_and_all_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key(3);
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let store = store.clone();
            let entry = verified(&fixtures::numbered_post(&k, network(1), n));
            tokio::spawn(async move { store.insert(vec![entry]).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), [InsertOutcome::Inserted]);
    }
    assert_eq!(store.entry_count(), 64);
}

#[tokio::test]
async fn listings_show_the_latest_edit_by_the_same_author_only() {
    let net = network(1);
    let (_dir, store) = joined(&[net]).await;
    let (alice, mallory) = (key(1), key(2));
    let original = fixtures::signed(&alice, net, 1, vec![], fixtures::blog_body("v1"));
    let supersedes = |id| {
        vec![staffroom_protocol::Ref {
            relation: staffroom_protocol::Relation::Supersedes,
            id,
        }]
    };
    let edit = fixtures::signed(
        &alice,
        net,
        2,
        supersedes(original.id()),
        fixtures::blog_body("v2"),
    );
    let other = fixtures::signed(&alice, net, 3, vec![], fixtures::blog_body("other"));
    let hijack = fixtures::signed(
        &mallory,
        net,
        4,
        supersedes(other.id()),
        fixtures::blog_body("x"),
    );
    store
        .insert(
            [&original, &edit, &other, &hijack]
                .into_iter()
                .map(verified)
                .collect(),
        )
        .await
        .unwrap();
    let titles = |all_versions| -> Vec<String> {
        let filter = ListFilter {
            network: Some(net),
            all_versions,
            ..Default::default()
        };
        store
            .list(&filter)
            .unwrap()
            .iter()
            .map(|e| e.entry.body.headline())
            .collect()
    };
    // "other" stays: only its own author may replace it.
    assert_eq!(titles(false), ["x", "other", "v2"]);
    assert_eq!(titles(true), ["x", "other", "v2", "v1"]);
    let stored = store.get(&original.id()).unwrap().unwrap();
    assert_eq!(store.edited_by(&stored).unwrap(), Some(edit.id()));
}

#[tokio::test]
async fn sync_index_follows_inserts_and_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(4);
    let entries: Vec<_> = (0..100)
        .map(|n| fixtures::numbered_post(&k, network(1), n))
        .collect();
    let fingerprint = {
        let store = Store::open(dir.path()).unwrap();
        store
            .insert(entries.iter().map(verified).collect())
            .await
            .unwrap();
        let (len, fp) =
            store.with_sync_index(&network(1), |ix| (ix.len(), ix.fingerprint(0, ix.len())));
        assert_eq!(len, 100);
        assert_eq!(store.with_sync_index(&network(2), |ix| ix.len()), 0);
        fp
    };
    let store = Store::open(dir.path()).unwrap();
    let rebuilt = store.with_sync_index(&network(1), |ix| ix.fingerprint(0, ix.len()));
    assert_eq!(rebuilt, fingerprint, "the same set after a restart");
}

/// Failure 6 of issue 7: two edits of one post both listed; an edit of an edit hidden behind
/// the older one; comments on the original missing from the edited version.
#[tokio::test]
async fn edits_form_one_thread_with_one_current_version() {
    use staffroom_protocol::{Ref, Relation};
    let net = network(1);
    let (_dir, store) = joined(&[net]).await;
    let (alice, bob) = (key(1), key(2));
    let edit_of = |id| {
        vec![Ref {
            relation: Relation::Supersedes,
            id,
        }]
    };
    let post =
        |at, refs, title: &str| fixtures::signed(&alice, net, at, refs, fixtures::blog_body(title));
    let original = post(10, vec![], "v1");
    let first = post(20, edit_of(original.id()), "v2");
    let second = post(30, edit_of(original.id()), "v3");
    let of_edit = post(40, edit_of(second.id()), "v4");
    let comment = |on: &staffroom_protocol::Entry, at| {
        fixtures::signed(
            &bob,
            net,
            at,
            vec![fixtures::reply_to(on.id())],
            fixtures::comment_body("c"),
        )
    };
    let on_original = comment(&original, 11);
    let on_first = comment(&first, 21);
    let entries = [
        &original,
        &first,
        &second,
        &of_edit,
        &on_original,
        &on_first,
    ];
    store
        .insert(entries.into_iter().map(verified).collect())
        .await
        .unwrap();

    let posts = ListFilter {
        network: Some(net),
        kind: Some(staffroom_protocol::EntryKind::BlogPost),
        ..Default::default()
    };
    let listed: Vec<_> = store.list(&posts).unwrap().iter().map(|e| e.id).collect();
    assert_eq!(
        listed,
        [of_edit.id()],
        "one current version, reached through an edit of an edit"
    );

    for version in [&original, &first, &second, &of_edit] {
        let stored = store.get(&version.id()).unwrap().unwrap();
        let versions = store.versions(&stored).unwrap();
        assert_eq!(
            versions.current,
            of_edit.id(),
            "every version names the newest"
        );
        assert_eq!(versions.original, original.id());
        assert_eq!(
            versions.all,
            [original.id(), first.id(), second.id(), of_edit.id()]
        );
    }
    let comments = ListFilter {
        reply_to: Some(of_edit.id()),
        ..Default::default()
    };
    let listed: Vec<_> = store
        .list(&comments)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        listed,
        [on_first.id(), on_original.id()],
        "comments follow the thread"
    );
    let on_the_original = ListFilter {
        reply_to: Some(original.id()),
        ..Default::default()
    };
    assert_eq!(store.list(&on_the_original).unwrap().len(), 2);
}

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
        t.by_time
            .insert(
                keys::by_time(&Header::parse(&post.encode()).unwrap(), &id),
                &[],
            )
            .unwrap();
        t.entries.insert(id.as_bytes(), post.encode()).unwrap();
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

/// An edit claims only entries of its own network: one in another network hides nothing.
#[tokio::test]
async fn an_edit_in_another_network_is_not_a_version() {
    use staffroom_protocol::{Ref, Relation};
    let (_dir, store) = joined(&[network(1), network(2)]).await;
    let original = fixtures::signed(&key(1), network(1), 1, vec![], fixtures::blog_body("here"));
    let supersedes = vec![Ref {
        relation: Relation::Supersedes,
        id: original.id(),
    }];
    let elsewhere = fixtures::signed(
        &key(1),
        network(2),
        2,
        supersedes,
        fixtures::blog_body("there"),
    );
    store
        .insert(vec![verified(&original), verified(&elsewhere)])
        .await
        .unwrap();
    let here = ListFilter {
        network: Some(network(1)),
        ..Default::default()
    };
    assert_eq!(store.list(&here).unwrap()[0].id, original.id());
    let stored = store.get(&original.id()).unwrap().unwrap();
    assert_eq!(store.edited_by(&stored).unwrap(), None);
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
        t.by_time
            .insert(
                keys::by_time(&Header::parse(&e.encode()).unwrap(), &id),
                &[],
            )
            .unwrap();
        t.by_author.insert(keys::by_author(e, &id), &[]).unwrap();
        t.by_kind.insert(keys::by_kind(e, &id), &[]).unwrap();
        t.entries.insert(id.as_bytes(), e.encode()).unwrap();
        t.meta.remove(b"rules_version").unwrap();
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
}
