//! `staffroom delete`, `hide`, `node purge` and `network leave --purge`, as teachers and a
//! school's admin use them across two school nodes.

use std::path::Path;

use staffroom_tests::cli_process::{staffroom, staffroom_ok};

use super::cli::{json, wait_for};
use super::cli_files::two_schools;

/// Whether `dir`'s node lists the entry `id`.
fn lists(dir: &Path, id: &str) -> bool {
    let out = staffroom_ok(dir, &["list", "--json"], None);
    let listed = json(&out);
    listed.as_array().unwrap().iter().any(|e| e["id"] == id)
}

/// Names in a node's file store, complete and partial.
fn stored_files(dir: &Path) -> Vec<String> {
    ["complete", "partial"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.join("files").join(sub)).unwrap())
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn post(dir: &Path, title: &str) -> String {
    let args = ["--json", "post", "--title", title, "--text", "A body."];
    json(&staffroom_ok(dir, &args, None))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn teachers_delete_and_hide_and_an_admin_purges_locally() {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let (a, b, work) = (dirs[0].path(), dirs[1].path(), dirs[2].path());
    let (node_a, node_b, _) = two_schools(a, b);

    // B's teacher deletes their own post, with a reason code: gone from both nodes.
    let mistake = post(b, "Names a pupil");
    wait_for(a, &["list", "--json"], "the post on A", |_| {
        lists(a, &mistake)
    });
    let deleted = staffroom_ok(b, &["delete", &mistake, "--reason", "personal-data"], None);
    assert!(deleted.contains("Deleted"), "{deleted}");
    wait_for(a, &["list", "--json"], "the post gone from A", |_| {
        !lists(a, &mistake)
    });
    assert!(!staffroom(a, &["show", &mistake], None).status.success());
    assert!(!lists(b, &mistake));

    // B's teacher is not a facilitator: they may not hide A's post; A's founder may hide B's.
    let a_post = post(a, "Kept");
    wait_for(b, &["list", "--json"], "A's post on B", |_| {
        lists(b, &a_post)
    });
    let refused = staffroom(b, &["hide", &a_post], None);
    assert!(!refused.status.success());
    let b_post = post(b, "Off topic");
    wait_for(a, &["list", "--json"], "B's post on A", |_| {
        lists(a, &b_post)
    });
    staffroom_ok(a, &["hide", &b_post], None);
    wait_for(b, &["list", "--json"], "B's post hidden on B", |_| {
        !lists(b, &b_post)
    });
    assert!(
        staffroom(b, &["show", &b_post], None).status.success(),
        "kept"
    );

    // A's admin purges a resource and its file from node A only; B keeps both.
    std::fs::write(work.join("sheet.pdf"), vec![7u8; 200_000]).unwrap();
    let file = work.join("sheet.pdf");
    let args = [
        "--json", "resource", "add", "--title", "Sheet", "--ages", "7-9",
    ];
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["--text", "A sheet.", "--file", file.to_str().unwrap()]);
    let sheet = json(&staffroom_ok(a, &args, None))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(
        b,
        &["--json", "resource", "files", &sheet],
        "the file on B",
        |f| f["files"][0]["progress"]["state"] == "complete",
    );
    let purged = staffroom_ok(a, &["node", "purge", &sheet], None);
    assert!(purged.contains("Other nodes keep it"), "{purged}");
    assert!(!staffroom(a, &["show", &sheet], None).status.success());
    wait_for(a, &["status", "--json"], "the file gone from A", |_| {
        stored_files(a).is_empty()
    });
    assert!(lists(b, &sheet));
    assert!(!stored_files(b).is_empty());

    // B's admin leaves the network and deletes its data from node B.
    let left = json(&staffroom_ok(
        b,
        &["--json", "network", "leave", "Maths hub", "--purge"],
        None,
    ));
    assert!(left["purged_entries"].as_u64().unwrap() > 0, "{left}");
    assert!(!lists(b, &a_post));
    wait_for(b, &["status", "--json"], "B's files gone", |_| {
        stored_files(b).is_empty()
    });
    let status = json(&staffroom_ok(b, &["status", "--json"], None));
    assert_eq!(status["entries"], 0, "{status}");
    node_a.stop();
    node_b.stop();
}
