//! The `staffroom` command, as a teacher uses it: init, run two nodes, create and join a
//! network, post on one school's node and read it on the other's.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use staffroom_tests::cli_process::{staffroom, staffroom_ok, NodeProcess};
use staffroom_tests::DEADLINE;

pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Polls a CLI command until `check` accepts its JSON output.
pub(crate) fn wait_for(
    dir: &Path,
    args: &[&str],
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let start = std::time::Instant::now();
    while start.elapsed() < DEADLINE {
        let out = staffroom(dir, args, None);
        if out.status.success() {
            let value = json(&String::from_utf8_lossy(&out.stdout));
            if check(&value) {
                return value;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn init_post_on_one_node_and_read_on_another() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (a_dir.path(), b_dir.path());
    let init = json(&staffroom_ok(a, &["--json", "init"], None));
    let author_a = init["author"].as_str().expect("author id").to_owned();
    staffroom_ok(b, &["init"], None);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.join("teacher.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "teacher key is private");
    }
    let again = staffroom(a, &["init"], None);
    assert!(!again.status.success(), "init never replaces a key");

    let node_a = NodeProcess::start(a, &[]);
    let status = wait_for(a, &["status", "--json"], "node A's API", |_| true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.join("teacher.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the teacher key is private");
        assert!(!a.join("api.token").exists(), "no shared API secret");
    }
    let peer_a = status["peer_id"].as_str().unwrap();
    let listen = status["listen_addrs"][0].as_str().unwrap();
    let addr_a = format!("{listen}/p2p/{peer_a}");
    let node_b = NodeProcess::start(b, &["--peer", &addr_a]);
    wait_for(b, &["status", "--json"], "node B's API", |_| true);

    let created = json(&staffroom_ok(
        a,
        &["--json", "network", "create", "Maths hub"],
        None,
    ));
    let network = created["id"].as_str().unwrap().to_owned();
    // A name must be given, and not one this node already uses (names pick networks).
    let blank = staffroom(a, &["network", "create", "  "], None);
    let said = String::from_utf8_lossy(&blank.stderr);
    assert!(said.contains("a network needs a name"), "{said}");
    let again = staffroom(a, &["network", "create", "Maths hub"], None);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("already follows a network named \"Maths hub\""),
        "{said}"
    );
    let invited = json(&staffroom_ok(
        a,
        &["--json", "network", "invite", "Maths hub", "--uses", "1"],
        None,
    ));
    let token = invited["token"].as_str().unwrap().to_owned();
    // The token alone is enough: it carries the network and A's address.
    staffroom_ok(b, &["network", "join", &token], None);
    wait_for(a, &["peers", "--json"], "B in the network", |peers| {
        peers
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["networks"][0] == network.as_str()))
    });

    let body = "# Retrieval practice\n\nLow-stakes quizzes at the start of each lesson.\n";
    let posted = staffroom_ok(
        a,
        &[
            "post",
            "--network",
            "Maths hub",
            "--title",
            "Quizzes in Year 8",
            "--tag",
            "retrieval",
        ],
        Some(body),
    );
    let id = posted
        .lines()
        .next()
        .expect("the post's id first")
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "printed id: {posted}");

    let listed = wait_for(
        b,
        &["list", "--json", "--kind", "blog_post"],
        "the post on B",
        |list| {
            list.as_array()
                .is_some_and(|l| l.iter().any(|e| e["id"] == id.as_str()))
        },
    );
    assert_eq!(
        listed[0]["author"],
        author_a.as_str(),
        "authored by A's teacher, not B's"
    );
    let shown = staffroom_ok(b, &["show", &id], None);
    assert!(shown.contains("# Quizzes in Year 8"), "{shown}");
    assert!(shown.contains("Low-stakes quizzes"), "{shown}");
    assert!(shown.contains("signature: valid"), "{shown}");
    let human = staffroom_ok(b, &["list"], None);
    assert!(
        human.contains("Quizzes in Year 8") && human.contains(&id[..8]),
        "{human}"
    );

    // A's teacher sets a profile: B's node shows their name and school, not hex digits.
    staffroom_ok(
        a,
        &[
            "profile",
            "set",
            "--name",
            "Ms Ada Lovelace",
            "--school",
            "Hillside",
        ],
        None,
    );
    wait_for(
        b,
        &["network", "members", "--json"],
        "A's profile on B",
        |m| m["profiles"][author_a.as_str()]["display_name"] == "Ms Ada Lovelace",
    );
    let named = staffroom_ok(b, &["list"], None);
    assert!(named.contains("Ms Ada Lovelace (Hillside)"), "{named}");
    let shown = staffroom_ok(b, &["show", &id], None);
    assert!(
        shown.contains("author:    Ms Ada Lovelace (Hillside)"),
        "{shown}"
    );
    let members = staffroom_ok(b, &["network", "members"], None);
    assert!(
        members.contains("founder") && members.contains("Ms Ada Lovelace"),
        "{members}"
    );

    // Enquiry, note and comment through the CLI too; the note lands in the enquiry's listing.
    let enquiry = staffroom_ok(
        a,
        &["enquiry", "start", "--question", "Do quizzes help recall?"],
        None,
    );
    let enquiry_id = enquiry.lines().next().unwrap().trim().to_owned();
    wait_for(
        b,
        &["list", "--json", "--kind", "enquiry"],
        "the enquiry on B",
        |l| {
            l.as_array()
                .is_some_and(|l| l.iter().any(|e| e["id"] == enquiry_id.as_str()))
        },
    );
    staffroom_ok(
        b,
        &[
            "enquiry",
            "note",
            &enquiry_id,
            "--stage",
            "evidence",
            "--text",
            "+9% recall",
        ],
        None,
    );
    staffroom_ok(b, &["comment", &id, "--text", "We saw this too"], None);
    wait_for(
        a,
        &["list", "--json", "--enquiry", &enquiry_id],
        "B's note on A",
        |l| l.as_array().is_some_and(|l| l.len() == 1),
    );

    // An edit replaces the post in listings on the other node; the original says so.
    let edit = staffroom_ok(
        a,
        &[
            "post",
            "--edits",
            &id,
            "--title",
            "Quizzes in Year 8 (revised)",
            "--text",
            "Revised.",
        ],
        None,
    );
    let edit_id = edit.lines().next().unwrap().trim().to_owned();
    let posts = wait_for(
        b,
        &["list", "--json", "--kind", "blog_post"],
        "the edit on B",
        |l| {
            l.as_array()
                .is_some_and(|l| l.iter().any(|e| e["id"] == edit_id.as_str()))
        },
    );
    assert!(
        posts
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"] != id.as_str()),
        "old version hidden"
    );
    let old = staffroom_ok(b, &["show", &id], None);
    assert!(
        old.contains(&format!("edited:    a newer version is {edit_id}")),
        "{old}"
    );
    let not_mine = staffroom(
        b,
        &[
            "post", "--edits", &edit_id, "--title", "Hijack", "--text", "x",
        ],
        None,
    );
    assert_eq!(not_mine.status.code(), Some(1), "only the author may edit");

    // On-demand sync reports what moved: the nodes already agree, so nothing does.
    let synced = json(&staffroom_ok(
        b,
        &["sync", "--json", "--network", "Maths hub"],
        None,
    ));
    let report = &synced["sessions"].as_array().expect("one report per peer")[0];
    assert_eq!(report["peer"], peer_a, "{synced}");
    assert_eq!(report["error"], Value::Null, "{synced}");
    assert_eq!(
        (
            report["entries_received"].as_u64(),
            report["entries_sent"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let text = staffroom_ok(b, &["sync"], None);
    assert!(text.contains("received 0, sent 0 entries"), "{text}");

    // Clear one-line errors, and exit code 1.
    let bad = staffroom(
        a,
        &[
            "resource",
            "add",
            "--title",
            "X",
            "--ages",
            "11-14",
            "--licence",
            "CC BY",
            "--text",
            "x",
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(
        err.trim(),
        "error: licence is invalid: must be an SPDX licence identifier such as CC-BY-4.0"
    );

    assert!(
        node_a.interrupt(),
        "node A exits cleanly on Ctrl-C (SIGINT)"
    );
    let down = staffroom(a, &["status"], None);
    assert_eq!(down.status.code(), Some(1));
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        err.starts_with("error: node not running at 127.0.0.1:")
            && err
                .trim_end()
                .ends_with("start it with `staffroom node run`"),
        "{err}"
    );
    // B alone: `sync` says why nothing moved, and fails.
    let start = std::time::Instant::now();
    let alone = loop {
        let out = staffroom(b, &["sync"], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("No peers are connected") || start.elapsed() > DEADLINE {
            break (out, text);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, text) = alone;
    assert!(text.contains("No peers are connected"), "{text}");
    assert!(
        text.contains("Dialling /ip4/127.0.0.1/"),
        "the peer it keeps dialling: {text}"
    );
    assert_eq!(out.status.code(), Some(1), "nothing synced is a failure");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was synced"), "{err}");
    assert!(node_b.stop(), "node B exits cleanly on SIGTERM");
}

#[test]
fn help_is_everywhere() {
    for args in [
        &["--help"][..],
        &["node", "run", "--help"],
        &["enquiry", "note", "--help"],
        &["list", "--help"],
    ] {
        let out = staffroom(Path::new("/nonexistent"), args, None);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}
