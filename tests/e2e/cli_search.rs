//! `staffroom search` and `list`'s filters, as a teacher types them: words ranked with titles
//! first, each filter (tag, subject, key stage, licence, author name, network name, dates),
//! facet counts under `--json`, pages with a clear "N more", and errors that say what is wrong.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use staffroom_protocol::fixtures::{blog_body, comment_body, key, membership, reply_to, signed};
use staffroom_protocol::membership::{Action, Profile};
use staffroom_protocol::{BlogPost, Body, Entry, Resource};
use staffroom_tests::cli_process::staffroom_async;
use staffroom_tests::*;

use super::cli::json;

const DAY_MS: u64 = 86_400_000;

async fn ok(dir: &Path, args: &[&str]) -> String {
    let out = staffroom_async(dir, args).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn failed(dir: &Path, args: &[&str]) -> Output {
    let out = staffroom_async(dir, args).await;
    assert!(!out.status.success(), "{args:?} succeeded");
    out
}

/// The ids a `--json` listing (an array) or search (an object) printed, in order.
fn ids(out: &str) -> Vec<String> {
    let value = json(out);
    let entries = match value.get("entries") {
        Some(entries) => entries.clone(),
        None => value,
    };
    entries
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

fn facet(view: &Value, name: &str) -> Vec<(String, u64)> {
    view["facets"][name]
        .as_array()
        .expect("facet")
        .iter()
        .map(|f| {
            (
                f["value"].as_str().unwrap().to_owned(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn post(n: u8, net: &TestNetwork, at: u64, title: &str, tags: &[&str]) -> Entry {
    let body = Body::BlogPost(BlogPost {
        title: title.into(),
        body_md: format!("What happened with {title}."),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    });
    signed(&key(n), net.id, at, vec![], body)
}

fn resource(net: &TestNetwork, at: u64) -> Entry {
    let body = Body::Resource(Resource {
        title: "Fraction wall".into(),
        description_md: "A printable wall of equivalent fractions.".into(),
        subjects: vec!["Mathematics".into()],
        age_min_years: 7,
        age_max_years: 11,
        key_stage: "KS2".into(),
        licence: "CC-BY-4.0".into(),
        language: "en-GB".into(),
        files: Vec::new(),
    });
    signed(&key(2), net.id, at, vec![], body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranks_words_filters_narrow_and_pages_say_how_many_more() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let net = TestNetwork::open("Search");
    node.adopt(&net).await;
    let now = now_ms();
    let strips = post(
        1,
        &net,
        now - 3 * DAY_MS,
        "Fractions with paper strips",
        &["Maths"],
    );
    let reading = post(2, &net, now - DAY_MS, "Reading for pleasure", &["literacy"]);
    let wall = resource(&net, now - 2 * DAY_MS);
    let comment = signed(
        &key(1),
        net.id,
        now - 1_000,
        vec![reply_to(reading.id())],
        comment_body("We tried fractions of books read."),
    );
    let profile = membership(
        &key(2),
        net.id,
        now - 10 * DAY_MS,
        &[net.entries.last().expect("membership").id()],
        Action::SetProfile(Profile {
            display_name: "Ann Example".into(),
            school: "Hilltop Primary".into(),
            role: String::new(),
        }),
    );
    let older: Vec<Entry> = (0..25u64)
        .map(|n| {
            let body = blog_body(&format!("Weekly note {n}"));
            signed(&key(3), net.id, now - 20 * DAY_MS - n, vec![], body)
        })
        .collect();
    for entry in [&profile, &strips, &reading, &wall, &comment]
        .into_iter()
        .chain(&older)
    {
        node.api().submit(entry.encode()).await.expect("accepted");
    }
    let dir = node.dir.path().to_path_buf();
    let hex = |e: &Entry| e.id().to_hex();

    // Words: stemmed, titles first, with facet counts over every match.
    let view = json(&ok(&dir, &["--json", "search", "fraction"]).await);
    assert_eq!(view["total"], 3);
    let found = ids(&view.to_string());
    assert_eq!(found.len(), 3);
    assert!(found[..2].contains(&hex(&strips)) && found[..2].contains(&hex(&wall)));
    assert_eq!(found[2], hex(&comment));
    assert_eq!(
        facet(&view, "kind"),
        [
            ("blog_post".into(), 1),
            ("comment".into(), 1),
            ("resource".into(), 1)
        ]
    );
    assert_eq!(facet(&view, "tag"), [("maths".into(), 1)]);
    assert_eq!(facet(&view, "key_stage"), [("ks2".into(), 1)]);
    assert_eq!(facet(&view, "licence"), [("cc-by-4.0".into(), 1)]);
    assert_eq!(facet(&view, "network"), [(net.id.to_hex(), 3)]);
    let text = ok(&dir, &["search", "fraction", "--limit", "1"]).await;
    assert!(
        text.contains(&hex(&strips)[..8]) || text.contains(&hex(&wall)[..8]),
        "{text}"
    );
    assert!(text.contains("… 2 more (of 3): add --offset 1"), "{text}");
    let none = ok(&dir, &["search", "photosynthesis"]).await;
    assert!(none.contains("No entries match."), "{none}");

    // Each filter, in list and in search; values match whatever their case.
    let list = |args: &'static [&'static str]| {
        let dir = dir.clone();
        async move {
            let mut all = vec!["--json", "list"];
            all.extend_from_slice(args);
            ids(&ok(&dir, &all).await)
        }
    };
    assert_eq!(list(&["--tag", "MATHS"]).await, [hex(&strips)]);
    assert_eq!(list(&["--subject", "mathematics"]).await, [hex(&wall)]);
    assert_eq!(list(&["--key-stage", "ks2"]).await, [hex(&wall)]);
    assert_eq!(list(&["--licence", "cc-by-4.0"]).await, [hex(&wall)]);
    assert_eq!(
        list(&["--author-name", "ann"]).await,
        [hex(&reading), hex(&wall)]
    );
    let prefix = net.id.to_hex()[..6].to_owned();
    let in_network = ok(
        &dir,
        &["--json", "list", "--network", &prefix, "--limit", "1000"],
    )
    .await;
    assert_eq!(ids(&in_network).len(), 29);
    let since = jiff::Timestamp::from_millisecond((now - 2 * DAY_MS - 1) as i64)
        .unwrap()
        .to_string();
    let until = jiff::Timestamp::from_millisecond((now - 1_000) as i64)
        .unwrap()
        .to_string();
    let dated = ok(
        &dir,
        &["--json", "list", "--since", &since, "--until", &until],
    )
    .await;
    assert_eq!(ids(&dated), [hex(&reading), hex(&wall)]);
    let searched = ok(
        &dir,
        &["--json", "search", "fractions", "--author-name", "Ann"],
    )
    .await;
    assert_eq!(ids(&searched), [hex(&wall)]);
    let kinds = ok(&dir, &["--json", "search", "--kind", "resources"]).await;
    assert_eq!(ids(&kinds), [hex(&wall)]);

    // Pages: newest first, "N more" while there are more, and the next page follows on.
    let first = ok(&dir, &["list", "--limit", "10"]).await;
    assert!(
        first.contains("… 19 more (of 29): add --offset 10"),
        "{first}"
    );
    let page = ids(&ok(&dir, &["--json", "list", "--limit", "10", "--offset", "10"]).await);
    let whole = ids(&ok(&dir, &["--json", "list", "--limit", "20"]).await);
    assert_eq!(page, whole[10..20]);

    // Errors that say what is wrong, in text and as JSON.
    let out = failed(&dir, &["list", "--author-name", "Zed"]).await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no author here is called anything like 'Zed'"),
        "{said}"
    );
    let out = failed(&dir, &["--json", "search", "x", "--author-name", "Zed"]).await;
    assert_eq!(
        json(&String::from_utf8_lossy(&out.stderr))["code"],
        "no_such_author"
    );
    let out = failed(&dir, &["list", "--since", "last tuesday"]).await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("--since") && said.contains("is not a date"),
        "{said}"
    );
    let out = failed(
        &dir,
        &["list", "--since", "2026-03-02", "--until", "2026-02-28"],
    )
    .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("the date range ends before it starts"),
        "{said}"
    );
    let out = failed(
        &dir,
        &["list", "--comments-on", &hex(&reading), "--tag", "x"],
    )
    .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("apply to content listed by itself"), "{said}");
    let _dir = node.stop().await;
}
