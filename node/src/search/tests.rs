//! The search index against a real store: ranking, filters and facets, paging, edits,
//! erasures (whose words leave the disk), networks left and joined again. (Recovery is in
//! `rebuild_tests.rs`.)

use std::path::Path;

use staffroom_protocol::fixtures::{self, key, network};
use staffroom_protocol::{
    verify_entry, BlogPost, Body, Entry, ErasureAction, ErasureReason, Ref, Relation,
};

use super::*;
use crate::store::{NetworkRecord, Store};

pub(super) const T: u64 = 1_767_225_600_000;
const DAY_MS: u64 = 86_400_000;

pub(super) fn post(n: u8, at: u64, title: &str, body: &str, tags: &[&str]) -> Entry {
    let body = Body::BlogPost(BlogPost {
        title: title.into(),
        body_md: body.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    });
    fixtures::signed(&key(n), network(1), at, vec![], body)
}

/// Teacher 1's edit of their post `original`, a moment later, with a new title.
fn edit_of(original: &Entry, title: &str) -> Entry {
    let supersedes = Ref {
        relation: Relation::Supersedes,
        id: original.id(),
    };
    let body = Body::BlogPost(BlogPost {
        title: title.into(),
        body_md: "second".into(),
        tags: vec![],
    });
    fixtures::signed(
        &key(1),
        network(1),
        original.created_at_ms + 1,
        vec![supersedes],
        body,
    )
}

pub(super) async fn store_in(dir: &Path, networks: &[u8]) -> Store {
    let store = Store::open(&dir.join("store")).unwrap();
    for n in networks {
        let record = NetworkRecord {
            id: network(*n),
            name: format!("net {n}"),
            joined_at_ms: 0,
        };
        store.join_network(record).await.unwrap();
    }
    store
}

pub(super) async fn insert(store: &Store, entries: &[&Entry]) {
    let verified = entries
        .iter()
        .map(|e| verify_entry(&e.encode(), u64::MAX / 2).unwrap())
        .collect();
    store.insert(verified).await.unwrap();
}

pub(super) fn find(index: &SearchIndex, q: &str) -> Vec<EntryIdT> {
    let request = SearchRequest {
        q: q.into(),
        ..Default::default()
    };
    ids(index, &request)
}

type EntryIdT = staffroom_protocol::EntryId;

fn ids(index: &SearchIndex, request: &SearchRequest) -> Vec<EntryIdT> {
    let hits = index.search(request, &[]).unwrap();
    assert!(!hits.behind, "the index caught up within the wait");
    hits.ids.into_iter().map(|(id, _)| id).collect()
}

#[tokio::test]
async fn words_find_entries_best_first_with_facets_over_every_match() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path(), &[1]).await;
    let index = SearchIndex::open(&dir.path().join("search"), store.clone()).unwrap();
    let in_title = post(
        1,
        T,
        "Fractions with paper strips",
        "Cut and stick.",
        &["maths"],
    );
    let in_body = post(
        2,
        T + 1,
        "Year 5 week",
        "We folded fractions today.",
        &["maths"],
    );
    let other = post(1, T + 2, "Phonics", "Sounds and letters.", &["literacy"]);
    let resource = fixtures::signed(
        &key(1),
        network(1),
        T + 3,
        vec![],
        fixtures::resource_body("Fraction wall"),
    );
    insert(&store, &[&in_title, &in_body, &other, &resource]).await;

    // Stemmed: "fraction" finds "fractions"; the title match ranks first.
    let found = find(&index, "fraction");
    assert_eq!(found.len(), 3);
    assert!(found[..2].contains(&in_title.id()) && found[..2].contains(&resource.id()));
    assert_eq!(found[2], in_body.id());
    // Every word must match; a phrase matches in order only.
    assert_eq!(find(&index, "folded fractions"), vec![in_body.id()]);
    assert_eq!(find(&index, "\"fractions folded\""), vec![]);
    assert_eq!(find(&index, "fractions -paper").len(), 2);
    // A stray quote or colon is no error.
    assert_eq!(find(&index, "phonics\"").len(), 1);
    assert_eq!(find(&index, "phonics:").len(), 1);

    let hits = index
        .search(
            &SearchRequest {
                q: "fraction".into(),
                limit: Some(1),
                ..Default::default()
            },
            &[],
        )
        .unwrap();
    assert_eq!((hits.total, hits.ids.len()), (3, 1));
    let counts = |name: &str| -> Vec<(String, u64)> {
        hits.facets[name]
            .iter()
            .map(|f| (f.value.clone(), f.count))
            .collect()
    };
    assert_eq!(counts("tag"), [("maths".to_string(), 2)]);
    assert_eq!(
        counts("kind"),
        [("blog_post".to_string(), 2), ("resource".to_string(), 1)]
    );
    assert_eq!(counts("subject"), [("mathematics".to_string(), 1)]);
    assert_eq!(counts("key_stage"), [("ks3".to_string(), 1)]);
    assert_eq!(counts("licence"), [("cc-by-4.0".to_string(), 1)]);
    assert_eq!(counts("author").len(), 2);
    index.close();
}

#[tokio::test]
async fn filters_narrow_and_pages_follow_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path(), &[1, 2]).await;
    let index = SearchIndex::open(&dir.path().join("search"), store.clone()).unwrap();
    let posts: Vec<Entry> = (0..30u64)
        .map(|i| {
            let tags: &[&str] = if i % 3 == 0 { &["Maths"] } else { &["art"] };
            post(
                (i % 2) as u8 + 1,
                T + i * DAY_MS,
                &format!("Day {i}"),
                "Notes",
                tags,
            )
        })
        .collect();
    let elsewhere = fixtures::signed(&key(1), network(2), T, vec![], fixtures::blog_body("x"));
    insert(
        &store,
        &posts.iter().chain([&elsewhere]).collect::<Vec<_>>(),
    )
    .await;

    let all = SearchRequest {
        limit: Some(200),
        ..Default::default()
    };
    let newest: Vec<_> = posts.iter().rev().map(Entry::id).collect();
    assert_eq!(ids(&index, &all).len(), 31);
    let in_one = SearchRequest {
        network: Some(network(1)),
        limit: Some(10),
        offset: 10,
        ..Default::default()
    };
    assert_eq!(ids(&index, &in_one), newest[10..20].to_vec());
    // Facet values match whatever their case.
    let maths = SearchRequest {
        tag: Some("MATHS".into()),
        network: Some(network(1)),
        ..Default::default()
    };
    assert_eq!(ids(&index, &maths).len(), 10);
    let by_author = SearchRequest {
        authors: vec![staffroom_protocol::AuthorId(
            key(2).verifying_key().to_bytes(),
        )],
        ..Default::default()
    };
    assert_eq!(index.search(&by_author, &[]).unwrap().total, 15);
    // Dates: since is inclusive, until exclusive.
    let week = SearchRequest {
        since_ms: Some(T + 7 * DAY_MS),
        until_ms: Some(T + 14 * DAY_MS),
        ..Default::default()
    };
    assert_eq!(ids(&index, &week), newest[16..23].to_vec());
    let kind = SearchRequest {
        kind: Some(staffroom_protocol::EntryKind::Resource),
        ..Default::default()
    };
    assert_eq!(ids(&index, &kind), vec![]);
    index.close();
}

#[tokio::test]
async fn an_edit_replaces_its_original_and_an_erasure_leaves_no_word_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path(), &[1]).await;
    let index_dir = dir.path().join("search");
    let index = SearchIndex::open(&index_dir, store.clone()).unwrap();
    let original = post(1, T, "Zanzibarish draft", "first", &[]);
    let edit = edit_of(&original, "Quokkaesque final");
    insert(&store, &[&original]).await;
    assert_eq!(find(&index, "zanzibarish"), vec![original.id()]);
    insert(&store, &[&edit]).await;
    assert_eq!(find(&index, "zanzibarish"), vec![]);
    assert_eq!(find(&index, "quokkaesque"), vec![edit.id()]);

    let erasure = fixtures::signed(
        &key(1),
        network(1),
        T + 2,
        vec![],
        fixtures::erasure_body(&edit, ErasureAction::Delete, ErasureReason::PersonalData),
    );
    insert(&store, &[&erasure]).await;
    assert_eq!(find(&index, "quokkaesque"), vec![]);
    assert!(
        !dir_contains(&index_dir, b"quokkaesque"),
        "an erased word is still in the index's files"
    );
    index.close();
}

/// Whether any file in `dir` holds `needle`.
fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|f| {
        let bytes = std::fs::read(f.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[tokio::test]
async fn a_network_left_leaves_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path(), &[1, 2]).await;
    let index = SearchIndex::open(&dir.path().join("search"), store.clone()).unwrap();
    let here = post(1, T, "Owls", "in network one", &[]);
    let there = fixtures::signed(&key(1), network(2), T, vec![], fixtures::blog_body("Owls"));
    insert(&store, &[&here, &there]).await;
    assert_eq!(find(&index, "owls").len(), 2);
    store.leave_network(network(2)).await.unwrap();
    assert_eq!(find(&index, "owls"), vec![here.id()]);
    index.close();
}

/// Regression: changes were once announced before the store showed them, and an indexer
/// that read the store at once skipped the entry.
#[tokio::test]
async fn entries_stored_one_at_a_time_are_all_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path(), &[1]).await;
    let index = SearchIndex::open(&dir.path().join("search"), store.clone()).unwrap();
    for n in 0..200u64 {
        insert(
            &store,
            &[&post(1, T + n, &format!("Lesson {n}"), "Starter.", &[])],
        )
        .await;
    }
    let all = SearchRequest {
        q: "lesson".into(),
        ..Default::default()
    };
    assert_eq!(index.search(&all, &[]).unwrap().total, 200);
    index.close();
}

/// Words opened from a private network's sealed entries match only for its members now: a
/// network left, or not known as private, hides them too.
#[test]
fn opened_words_match_only_for_readers_of_their_network() {
    let (schema, fields) = schema::Fields::schema();
    let index = tantivy::Index::create_in_ram(schema);
    let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
    let doc = |id: u8, opened_in: Option<u8>| {
        let mut doc = tantivy::TantivyDocument::new();
        doc.add_text(fields.id, staffroom_protocol::EntryId([id; 32]).to_string());
        doc.add_text(fields.body, "secret plans");
        doc.add_u64(fields.time, u64::from(id));
        if let Some(n) = opened_in {
            let facet = tantivy::schema::Facet::from_path(["opened", &network(n).to_string()]);
            doc.add_facet(fields.facet, facet);
        }
        doc
    };
    writer.add_document(doc(1, None)).unwrap();
    writer.add_document(doc(2, Some(7))).unwrap();
    writer.add_document(doc(3, Some(8))).unwrap();
    writer.commit().unwrap();
    let searcher = index.reader().unwrap().searcher();
    let found = |readable: &[staffroom_protocol::NetworkId]| {
        let request = SearchRequest {
            q: "secret".into(),
            ..Default::default()
        };
        let hits = query::run(&searcher, &fields, &request, readable).unwrap();
        let mut ids: Vec<u8> = hits.ids.iter().map(|(id, _)| id.0[0]).collect();
        ids.sort();
        (ids, hits.total)
    };
    assert_eq!(found(&[]), (vec![1], 1));
    assert_eq!(found(&[network(7)]), (vec![1, 2], 2));
    assert_eq!(found(&[network(7), network(8)]), (vec![1, 2, 3], 3));
    // Query syntax beyond words is spaces, not an error or a field lookup.
    let request = SearchRequest {
        q: "body:(secret^2 ~plans) [a TO z]".into(),
        ..Default::default()
    };
    assert_eq!(
        query::run(&searcher, &fields, &request, &[]).unwrap().total,
        0
    );
}

/// Review finding: an edit stored before its original was indexed as its own family, and
/// stayed beside the family's document once the original came.
#[tokio::test]
async fn an_edit_before_its_original_is_listed_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path(), &[1]).await;
    let index = SearchIndex::open(&dir.path().join("search"), store.clone()).unwrap();
    let original = post(1, T, "Kestrel draft", "first", &[]);
    let edit = edit_of(&original, "Kestrel final");
    insert(&store, &[&edit]).await;
    assert_eq!(find(&index, "kestrel"), vec![edit.id()]);
    insert(&store, &[&original]).await;
    assert_eq!(find(&index, "kestrel"), vec![edit.id()]);
    index.close();
}

/// Review finding: leaving and rejoining a network lost the rejoin (a repeated change was
/// merged into one the indexer had read), so the network's entries stayed out.
#[tokio::test]
async fn a_network_left_and_joined_again_is_searchable_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path(), &[1]).await;
    let index = SearchIndex::open(&dir.path().join("search"), store.clone()).unwrap();
    insert(&store, &[&post(1, T, "Heron", "a bird", &[])]).await;
    assert_eq!(find(&index, "heron").len(), 1);
    store.leave_network(network(1)).await.unwrap();
    assert_eq!(find(&index, "heron").len(), 0);
    let record = NetworkRecord {
        id: network(1),
        name: "again".into(),
        joined_at_ms: 1,
    };
    store.join_network(record).await.unwrap();
    assert_eq!(find(&index, "heron").len(), 1);
    index.close();
}
