//! `staffroom backup` and `restore` with a real node: while it runs, the keys and config
//! alone; stopped, everything; restored into a new data directory, the node starts as the
//! same node with the same teacher and every entry, its search index rebuilt.

use std::path::Path;

use staffroom_protocol::fixtures::{blog_body, key, signed};
use staffroom_tests::cli_process::staffroom_async;
use staffroom_tests::*;

use super::cli::json;

async fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    staffroom_async(dir, args).await
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_elsewhere_is_the_same_node_with_every_entry() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let net = TestNetwork::open("Backups");
    node.adopt(&net).await;
    let posts: Vec<_> = (0..5u64)
        .map(|n| {
            let body = blog_body(&format!("Kept safe {n}"));
            signed(&key(1), net.id, now_ms() - 10_000 + n, vec![], body)
        })
        .collect();
    for post in &posts {
        node.api().submit(post.encode()).await.expect("accepted");
    }
    let peer_id = node.node.peer_id;
    let root = tempfile::tempdir().unwrap();
    let data = node.dir.path().to_path_buf();

    // While the node runs: keys and config only, and it says so.
    let live = root.path().join("live");
    let said = stdout(&run(&data, &["backup", live.to_str().unwrap()]).await);
    assert!(said.contains("The node is running"), "{said}");
    assert!(live.join("teacher.key").is_file() && live.join("store/staffroom.state").is_file());
    assert!(
        !live.join("store/db").exists(),
        "no store copied from a running node"
    );
    let refused = run(&data, &["--json", "restore", live.to_str().unwrap()]).await;
    assert!(!refused.status.success());
    let error = json(&String::from_utf8_lossy(&refused.stderr));
    assert_eq!(error["code"], "node_running", "{error}");

    // Stopped: everything.
    let dir = node.stop().await;
    let full = root.path().join("full");
    let said = json(&stdout(
        &run(dir.path(), &["--json", "backup", full.to_str().unwrap()]).await,
    ));
    assert_eq!(said["with_data"], true, "{said}");

    // Restored into a fresh data directory: the same node, teacher and entries.
    let fresh = tempfile::tempdir().unwrap();
    let said = stdout(&run(fresh.path(), &["restore", full.to_str().unwrap()]).await);
    assert!(said.contains("each checked against the backup"), "{said}");
    assert_eq!(
        std::fs::read(fresh.path().join("teacher.key")).unwrap(),
        std::fs::read(dir.path().join("teacher.key")).unwrap()
    );
    let restored = TestNode::start_in(fresh, &[], |_| {}).await;
    assert_eq!(restored.node.peer_id, peer_id, "the same node identity");
    for post in &posts {
        restored.wait_for_entry(&post.id()).await;
    }
    let found = json(&stdout(
        &run(restored.dir.path(), &["--json", "search", "kept", "safe"]).await,
    ));
    assert_eq!(found["total"], 5, "{found}");

    // A damaged backup restores nothing, and says which file.
    let blob = std::fs::read_dir(full.join("store"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().is_file())
        .expect("a store file")
        .path();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes.push(0);
    std::fs::write(&blob, bytes).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run(elsewhere.path(), &["restore", full.to_str().unwrap()]).await;
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("does not match its hash") && said.contains("nothing was restored"),
        "{said}"
    );
    assert!(!elsewhere.path().join("teacher.key").exists());
    let _ = restored.stop().await;
}
