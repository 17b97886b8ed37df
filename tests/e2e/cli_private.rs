//! `staffroom network create --private` as teachers use it: the name reaches the invited
//! through the token, members write, read and share files as usual, and what is stored is
//! sealed.

use std::path::Path;
use std::time::{Duration, Instant};

use staffroom_tests::cli_process::{staffroom, staffroom_ok};
use staffroom_tests::DEADLINE;

use super::cli::{json, wait_for};

/// Posts, retrying while the node has no content key yet (the founder's node makes one
/// within seconds of founding).
fn post(dir: &Path, title: &str) -> String {
    let start = Instant::now();
    loop {
        let args = [
            "--json",
            "post",
            "--title",
            title,
            "--text",
            "What we tried.",
        ];
        let out = staffroom(dir, &args, None);
        if out.status.success() {
            let posted = json(&String::from_utf8_lossy(&out.stdout));
            return posted["id"].as_str().unwrap().to_owned();
        }
        let error = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(error.contains("no content key"), "{error}");
        assert!(
            start.elapsed() < DEADLINE,
            "no content key in time: {error}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_private_network_is_named_by_its_invite_and_read_by_members() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let (a, b) = (dirs[0].path(), dirs[1].path());
    let (node_a, node_b, _) = super::cli_files::two_nodes(a, b);
    let created = json(&staffroom_ok(
        a,
        &["--json", "network", "create", "Y6 writers", "--private"],
        None,
    ));
    assert_eq!(created["name"], "Y6 writers");
    let invited = json(&staffroom_ok(
        a,
        &["--json", "network", "invite", "Y6 writers"],
        None,
    ));
    staffroom_ok(
        b,
        &["network", "join", invited["token"].as_str().unwrap()],
        None,
    );
    let networks = json(&staffroom_ok(b, &["--json", "network", "list"], None));
    assert_eq!(networks[0]["name"], "Y6 writers", "named by the token");

    let id = post(a, "Writing frames");
    let listed = wait_for(b, &["--json", "list"], "the post opened on B", |l| {
        l.as_array().is_some_and(|l| {
            l.iter()
                .any(|e| e["id"] == id.as_str() && e["opened"]["title"] == "Writing frames")
        })
    });
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap();
    assert_eq!(entry["body"]["kind"], "sealed", "stored and relayed sealed");
    let shown = staffroom_ok(b, &["show", &id], None);
    assert!(shown.contains("blog_post (private)"), "{shown}");
    assert!(shown.contains("# Writing frames"), "{shown}");
    let posts = json(&staffroom_ok(
        b,
        &["--json", "list", "--kind", "blog_post"],
        None,
    ));
    let posts = posts.as_array().unwrap();
    assert!(
        posts.iter().any(|e| e["id"] == id.as_str()),
        "listed by its sealed kind"
    );
    // B's teacher replies in kind: read on A.
    let reply = post(b, "Our version");
    wait_for(a, &["--json", "list"], "B's post opened on A", |l| {
        l.as_array().is_some_and(|l| {
            l.iter()
                .any(|e| e["id"] == reply.as_str() && e["opened"]["title"] == "Our version")
        })
    });

    // A resource with a file: sealed as it is uploaded, fetched sealed, saved opened.
    let work = tempfile::tempdir().unwrap();
    let sheet: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let file = work.path().join("frames.pdf");
    std::fs::write(&file, &sheet).unwrap();
    let args = [
        "--json",
        "resource",
        "add",
        "--title",
        "Frames",
        "--ages",
        "10-11",
        "--file",
        file.to_str().unwrap(),
    ];
    let shared = json(&staffroom_ok(a, &args, None))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(b, &["--json", "list"], "the resource on B", |l| {
        l.as_array()
            .is_some_and(|l| l.iter().any(|e| e["id"] == shared.as_str()))
    });
    let out = work.path().join("saved");
    let got = staffroom(
        b,
        &["resource", "get", &shared, "-o", out.to_str().unwrap()],
        None,
    );
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(std::fs::read(out.join("frames.pdf")).unwrap() == sheet);
    // Again: the same bytes are there already, so nothing is refused.
    let again = staffroom(
        b,
        &["resource", "get", &shared, "-o", out.to_str().unwrap()],
        None,
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    node_a.stop();
    node_b.stop();
}
