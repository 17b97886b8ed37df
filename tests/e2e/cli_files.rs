//! `staffroom resource add --file`, `resource get` and `resource files`, as a teacher uses
//! them across two school nodes.

use staffroom_tests::cli_process::{staffroom, staffroom_ok, NodeProcess};

use super::cli::{json, wait_for};

/// Nodes A and B started on `a` and `b` (each with a teacher key), B dialling A; with A's
/// peer id.
pub(crate) fn two_nodes(
    a: &std::path::Path,
    b: &std::path::Path,
) -> (NodeProcess, NodeProcess, String) {
    staffroom_ok(a, &["init"], None);
    staffroom_ok(b, &["init"], None);
    let node_a = NodeProcess::start(a, &[]);
    let status = wait_for(a, &["status", "--json"], "node A's API", |_| true);
    let peer_a = status["peer_id"].as_str().unwrap().to_owned();
    let addr_a = format!(
        "{}/p2p/{peer_a}",
        status["listen_addrs"][0].as_str().unwrap()
    );
    let node_b = NodeProcess::start(b, &["--peer", &addr_a]);
    wait_for(b, &["status", "--json"], "node B's API", |_| true);
    (node_a, node_b, peer_a)
}

/// Two nodes A and B in the network "Maths hub" (A founded it, B joined by token).
pub(crate) fn two_schools(
    a: &std::path::Path,
    b: &std::path::Path,
) -> (NodeProcess, NodeProcess, String) {
    let (node_a, node_b, peer_a) = two_nodes(a, b);
    staffroom_ok(a, &["network", "create", "Maths hub"], None);
    let invited = json(&staffroom_ok(
        a,
        &["--json", "network", "invite", "Maths hub"],
        None,
    ));
    staffroom_ok(
        b,
        &["network", "join", invited["token"].as_str().unwrap()],
        None,
    );
    (node_a, node_b, peer_a)
}

#[test]
fn a_resource_with_files_is_shared_fetched_and_saved() {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let (a, b, work) = (dirs[0].path(), dirs[1].path(), dirs[2].path());
    let (node_a, node_b, peer_a) = two_schools(a, b);
    let worksheet: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(work.join("fractions.pdf"), &worksheet).unwrap();
    std::fs::write(work.join("notes.md"), "# Teacher notes\n").unwrap();
    let added = json(&staffroom_ok(
        a,
        &[
            "--json",
            "resource",
            "add",
            "--title",
            "Fractions pack",
            "--ages",
            "11-14",
            "--text",
            "Worksheet and notes.",
            "--file",
            work.join("fractions.pdf").to_str().unwrap(),
            "--file",
            work.join("notes.md").to_str().unwrap(),
        ],
        None,
    ));
    let id = added["id"].as_str().unwrap().to_owned();
    // Listed as a resource on B, with its files shown.
    wait_for(
        b,
        &["list", "--json", "--kind", "resource"],
        "the resource on B",
        |l| {
            l.as_array()
                .is_some_and(|l| l.iter().any(|e| e["id"] == id.as_str()))
        },
    );
    let shown = staffroom_ok(b, &["show", &id], None);
    assert!(
        shown.contains("file:     fractions.pdf  2.9 MiB  application/pdf"),
        "{shown}"
    );

    let out = work.join("saved");
    let got = staffroom(
        b,
        &["resource", "get", &id, "-o", out.to_str().unwrap()],
        None,
    );
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(
        got.stderr.is_empty(),
        "no progress bar when piped: {:?}",
        got.stderr
    );
    assert!(String::from_utf8_lossy(&got.stdout).contains("saved "));
    assert!(std::fs::read(out.join("fractions.pdf")).unwrap() == worksheet);
    assert_eq!(
        std::fs::read_to_string(out.join("notes.md")).unwrap(),
        "# Teacher notes\n"
    );
    // Again: the same files are there already, so nothing is overwritten or refused.
    let again = json(&staffroom_ok(
        b,
        &[
            "--json",
            "resource",
            "get",
            &id,
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(again["files"].as_array().unwrap().len(), 2);
    // A different file of the same name is never overwritten.
    std::fs::write(out.join("notes.md"), "mine").unwrap();
    let clash = staffroom(
        b,
        &["resource", "get", &id, "-o", out.to_str().unwrap()],
        None,
    );
    assert!(!clash.status.success());
    assert!(String::from_utf8_lossy(&clash.stderr).contains("is a different file"));

    let files = json(&staffroom_ok(
        b,
        &["--json", "resource", "files", &id],
        None,
    ));
    for f in files["files"].as_array().unwrap() {
        assert_eq!(f["progress"]["state"], "complete");
        let holders = f["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "A holds it: {holders:?}");
        assert_eq!(holders[0], peer_a.as_str());
    }
    let text = staffroom_ok(b, &["resource", "files", &id], None);
    assert!(
        text.contains("fractions.pdf  2.9 MiB  application/pdf  here; 1 other node(s) have it"),
        "{text}"
    );
    // The school's admin chooses how B fetches this network's files.
    let policy = json(&staffroom_ok(
        b,
        &[
            "--json",
            "network",
            "files",
            "--on-demand",
            "--quota",
            "1GiB",
        ],
        None,
    ));
    assert_eq!(policy["eager"], false);
    assert_eq!(policy["quota_bytes"], 1u64 << 30);
    assert_eq!(policy["files"], 2);
    let shown = staffroom_ok(b, &["network", "files"], None);
    assert!(shown.contains("only when a teacher asks"), "{shown}");
    assert!(node_b.stop() && node_a.stop(), "both nodes stop cleanly");
}
