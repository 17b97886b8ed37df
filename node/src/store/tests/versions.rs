//! Edits: one current version per original, threads of comments, networks kept apart.

use super::*;

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

/// `docs/protocol.md`, "Sources": the newest statement by the resource's author about any of
/// its versions applies; another author's, or one about another resource, never does.
#[tokio::test]
async fn a_resource_shows_its_authors_newest_sources_for_any_version() {
    use staffroom_protocol::{Body, Ref, Relation, Sources};
    let net = network(1);
    let (_dir, store) = joined(&[net]).await;
    let (alice, mallory) = (key(1), key(2));
    let original = fixtures::signed(&alice, net, 1, vec![], fixtures::resource_body("v1"));
    let edit_refs = vec![Ref {
        relation: Relation::Supersedes,
        id: original.id(),
    }];
    let edit = fixtures::signed(&alice, net, 2, edit_refs, fixtures::resource_body("v2"));
    let other = fixtures::signed(&alice, net, 3, vec![], fixtures::resource_body("other"));
    let says = |key, at, about: &staffroom_protocol::Entry, link: &str| {
        let body = Body::Sources(Sources {
            resource: about.id(),
            entries: vec![],
            links: vec![link.to_string()],
        });
        fixtures::signed(key, net, at, vec![], body)
    };
    let first = says(&alice, 10, &original, "https://a.example/1");
    let about_edit = says(&alice, 11, &edit, "https://a.example/2");
    let about_other = says(&alice, 12, &other, "https://a.example/3");
    let hijack = says(&mallory, 13, &original, "https://evil.example/");
    let all = [&original, &edit, &other, &first, &hijack];
    store
        .insert(all.into_iter().map(verified).collect())
        .await
        .unwrap();
    let links = |entry: &staffroom_protocol::Entry| {
        let stored = store.get(&entry.id()).unwrap().unwrap();
        store.sources_of(&stored).unwrap().map(|s| s.links)
    };
    assert_eq!(links(&edit), Some(vec!["https://a.example/1".to_string()]));
    assert_eq!(links(&other), None, "a statement about another resource");
    store
        .insert(vec![verified(&about_edit), verified(&about_other)])
        .await
        .unwrap();
    // The newest about any version, seen from either version.
    assert_eq!(
        links(&original),
        Some(vec!["https://a.example/2".to_string()])
    );
    assert_eq!(links(&other), Some(vec!["https://a.example/3".to_string()]));
    // Sources are not content: no stream lists them.
    let listed = store
        .list(&ListFilter {
            network: Some(net),
            ..Default::default()
        })
        .unwrap();
    assert!(listed
        .iter()
        .all(|e| e.entry.kind() != staffroom_protocol::EntryKind::Sources));
}
