//! `staffroom show` gives an entry with its thread: a post's comments as a tree (replies
//! nested, oldest first), an enquiry's notes in stage order; `--json` the same structure.

use staffroom_protocol::fixtures::{
    blog_body, comment_body, enquiry_body, in_enquiry, key, note_body, reply_to, signed,
};
use staffroom_protocol::{Entry, Stage};
use staffroom_tests::*;

use super::cli::json;

/// The stdout of a CLI command on `dir` that must succeed.
async fn cli_ok(dir: std::path::PathBuf, args: &[&str]) -> String {
    let out = staffroom_tests::cli_process::staffroom_async(&dir, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "staffroom {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_gives_a_post_with_its_comment_tree_and_an_enquiry_with_its_notes() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let net = TestNetwork::open("Threads");
    node.adopt(&net).await;
    let t = now_ms() - 100_000;
    let post = signed(&key(1), net.id, t, vec![], blog_body("Retrieval practice"));
    let on = |to: &Entry, seed: u8, at: u64, text: &str| {
        signed(
            &key(seed),
            net.id,
            at,
            vec![reply_to(to.id())],
            comment_body(text),
        )
    };
    let first = on(&post, 2, t + 10, "First comment");
    let second = on(&post, 3, t + 20, "Second comment");
    let reply = on(&first, 1, t + 30, "A reply to the first");
    let enquiry = signed(
        &key(4),
        net.id,
        t,
        vec![],
        enquiry_body("Does it help recall?"),
    );
    let note = |stage, at, text: &str| {
        signed(
            &key(4),
            net.id,
            at,
            vec![in_enquiry(enquiry.id())],
            note_body(stage, text),
        )
    };
    let action = note(Stage::Action, t + 10, "We tried weekly quizzes");
    let question = note(Stage::Question, t + 20, "Sharpened the question");
    let evidence = note(Stage::Evidence, t + 30, "Scores rose");
    // Submitted out of order: the view orders them.
    for e in [
        &post, &reply, &second, &first, &enquiry, &evidence, &action, &question,
    ] {
        node.api().submit(e.encode()).await.expect("accepted");
    }
    let dir = node.dir.path().to_path_buf();
    let post_id = post.id().to_hex();

    let text = cli_ok(dir.clone(), &["show", &post_id[..8]]).await;
    assert!(text.contains("Comments (3):"), "{text}");
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    assert!(at("First comment") < at("A reply to the first"), "{text}");
    assert!(at("A reply to the first") < at("Second comment"), "{text}");
    let indent = |needle: &str| {
        let line = text.lines().find(|l| l.contains(needle)).unwrap();
        line.len() - line.trim_start().len()
    };
    assert!(
        indent("A reply to the first") > indent("First comment"),
        "{text}"
    );

    let tree = json(&cli_ok(dir.clone(), &["--json", "show", &post_id]).await);
    assert_eq!(tree["id"], post_id);
    assert_eq!(tree["comments"][0]["id"], first.id().to_hex(), "{tree}");
    assert_eq!(tree["comments"][0]["replies"][0]["id"], reply.id().to_hex());
    assert_eq!(tree["comments"][1]["id"], second.id().to_hex());
    assert_eq!(
        tree["comments"][1]["replies"].as_array().map(Vec::len),
        Some(0)
    );

    let enquiry_id = enquiry.id().to_hex();
    let text = cli_ok(dir.clone(), &["show", &enquiry_id]).await;
    assert!(text.contains("Notes (3):"), "{text}");
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    assert!(
        at("[question]") < at("[action]") && at("[action]") < at("[evidence]"),
        "{text}"
    );
    let notes = json(&cli_ok(dir.clone(), &["--json", "show", &enquiry_id]).await);
    let order: Vec<_> = notes["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<_> = [&question, &action, &evidence]
        .iter()
        .map(|e| e.id().to_hex())
        .collect();
    assert_eq!(order, want);
    node.stop().await;
}
