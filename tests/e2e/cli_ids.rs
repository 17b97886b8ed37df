//! Ids as teachers type them, like git's: any unique start of at least four hex characters
//! names an entry, an author or a network; an ambiguous start lists the candidates; an
//! unknown one says so. The CLI runs against an in-process node's data directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;

use staffroom_protocol::fixtures::{blog_body, comment_body, key, reply_to, signed};
use staffroom_protocol::Entry;
use staffroom_tests::cli_process::staffroom_async;
use staffroom_tests::*;

use super::cli::json;

async fn cli(dir: PathBuf, args: &[&str]) -> Output {
    staffroom_async(&dir, args).await
}

fn stderr(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Posts until two ids share their first four hex characters and differ in the fifth, with
/// no other stored id starting with those four. Returns the pair.
fn two_posts_sharing_four(net: &TestNetwork) -> (Entry, Entry) {
    let taken: Vec<String> = net.entries.iter().map(|e| e.id().to_hex()).collect();
    let mut by_four: HashMap<String, Entry> = HashMap::new();
    for n in 0..100_000u64 {
        let post = signed(
            &key(1),
            net.id,
            now_ms() - 60_000 - n,
            vec![],
            blog_body(&format!("Post {n}")),
        );
        let hex = post.id().to_hex();
        let four = hex[..4].to_owned();
        if taken.iter().any(|t| t.starts_with(&four)) {
            continue;
        }
        match by_four.get(&four) {
            Some(other) if other.id().to_hex()[..5] != hex[..5] => return (other.clone(), post),
            Some(_) => {}
            None => {
                by_four.insert(four, post);
            }
        }
    }
    panic!("no two ids shared four characters in 100,000 posts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_authors_and_networks_are_named_by_any_unique_start_of_their_id() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let net = TestNetwork::open("Prefixes");
    node.adopt(&net).await;
    let (one, two) = two_posts_sharing_four(&net);
    let comment = signed(
        &key(2),
        net.id,
        now_ms() - 1_000,
        vec![reply_to(one.id())],
        comment_body("Thanks"),
    );
    for entry in [&one, &two, &comment] {
        node.api().submit(entry.encode()).await.expect("accepted");
    }
    let dir = node.dir.path().to_path_buf();
    let (one_hex, two_hex) = (one.id().to_hex(), two.id().to_hex());

    // A unique start names the entry, in text and in JSON.
    let shown = cli(dir.clone(), &["--json", "show", &one_hex[..5]]).await;
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert_eq!(json(&String::from_utf8_lossy(&shown.stdout))["id"], one_hex);
    let shown = cli(dir.clone(), &["show", &two_hex[..6].to_uppercase()]).await;
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains(&two_hex[..8]),
        "{shown:?}"
    );

    // Times are shown in the reader's zone, with its offset.
    let zoned = tokio::task::spawn_blocking({
        let (dir, id) = (dir.clone(), one_hex.clone());
        move || {
            std::process::Command::new(staffroom_tests::cli_process::staffroom_bin())
                .arg("--data-dir")
                .arg(&dir)
                .args(["show", &id])
                .env("TZ", "AAA-5:30")
                .output()
                .expect("the CLI ran")
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&zoned.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("created:") && l.ends_with("+05:30")),
        "{text}"
    );

    // An ambiguous start lists both candidates, with what they are.
    let ambiguous = stderr(&cli(dir.clone(), &["show", &one_hex[..4]]).await);
    assert!(
        ambiguous.contains(&format!("{} is ambiguous: 2 ids", &one_hex[..4])),
        "{ambiguous}"
    );
    assert!(
        ambiguous.contains(&one_hex) && ambiguous.contains(&two_hex),
        "{ambiguous}"
    );
    assert!(
        ambiguous.contains("Post "),
        "the candidates' titles: {ambiguous}"
    );

    // Unknown and malformed starts say so.
    let stored: Vec<String> = net
        .entries
        .iter()
        .chain([&one, &two, &comment])
        .map(|e| e.id().to_hex())
        .collect();
    let unknown = (0..u16::MAX)
        .map(|n| format!("{n:04x}"))
        .find(|p| !stored.iter().any(|id| id.starts_with(p)))
        .expect("a free prefix");
    let none = stderr(&cli(dir.clone(), &["show", &unknown]).await);
    assert!(
        none.contains(&format!(
            "no entry known to this node has an id starting with {unknown}"
        )),
        "{none}"
    );
    let short = stderr(&cli(dir.clone(), &["show", "abc"]).await);
    assert!(short.contains("at least its first 4 characters"), "{short}");

    // Filters take starts too: comments on an entry, an author, a network.
    let comments = cli(
        dir.clone(),
        &["--json", "list", "--comments-on", &one_hex[..5]],
    )
    .await;
    let listed = json(&String::from_utf8_lossy(&comments.stdout));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], comment.id().to_hex());
    let author = hex::encode(key(2).verifying_key().to_bytes());
    let by_author = cli(dir.clone(), &["--json", "list", "--author", &author[..6]]).await;
    let listed = json(&String::from_utf8_lossy(&by_author.stdout));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let network = net.id.to_hex();
    let in_network = cli(dir.clone(), &["--json", "list", "--network", &network[..6]]).await;
    let listed = json(&String::from_utf8_lossy(&in_network.stdout));
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(3),
        "the two posts and the comment: {listed}"
    );
    node.stop().await;
}
