//! Schools behind NAT routers, in Linux network namespaces (see `tests/netns.rs`): a public
//! node R, and schools A and B each behind its own router doing source NAT and dropping
//! unsolicited inbound traffic. Run with
//! `cargo test -p staffroom-tests --features netns --test netns` as root.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use staffroom_tests::cli_process::NodeProcess;
use staffroom_tests::netns::{staffroom_in, Lab, Nat};

const DEADLINE: Duration = Duration::from_secs(60);

fn json_in(ns: &str, dir: &Path, args: &[&str]) -> Option<Value> {
    let out = staffroom_in(ns, dir, args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn ok_in(ns: &str, dir: &Path, args: &[&str]) -> Value {
    let out = staffroom_in(ns, dir, args);
    assert!(
        out.status.success(),
        "staffroom {args:?} in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Polls a `--json` command inside `ns` until `check` accepts it.
fn wait_in(
    ns: &str,
    dir: &Path,
    args: &[&str],
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    wait_in_for(ns, dir, args, what, DEADLINE, check)
}

/// [`wait_in`] with a deadline of its own.
fn wait_in_for(
    ns: &str,
    dir: &Path,
    args: &[&str],
    what: &str,
    deadline: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Some(v) = json_in(ns, dir, args).filter(|v| check(v)) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out waiting for {what}");
}

fn start(ns: &str, dir: &Path, listen: &str, peers: &[&str]) -> NodeProcess {
    let mut args = vec!["--listen", listen, "--api", "127.0.0.1:4041", "--no-mdns"];
    for p in peers {
        args.extend(["--peer", p]);
    }
    let node = NodeProcess::start_in_namespace(ns, dir, &args);
    wait_in(ns, dir, &["status", "--json"], "the node's API", |_| true);
    node
}

fn peer_ids(peers: &Value) -> Vec<String> {
    peers
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|p| p["peer_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn schools_behind_nat_reach_a_public_node_and_find_it_again_after_a_restart() {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let (r_dir, a_dir, b_dir) = (dirs[0].path(), dirs[1].path(), dirs[2].path());
    for dir in [r_dir, a_dir, b_dir] {
        let out = std::process::Command::new(staffroom_tests::cli_process::staffroom_bin())
            .arg("--data-dir")
            .arg(dir)
            .arg("init")
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let mut lab = Lab::open();
    lab.internet();
    let r = lab.public_host("r", "10.99.0.10");
    let a = lab.school("a", "10.99.0.2", 1, Nat::KeepsPorts);
    let b = lab.school("b", "10.99.0.3", 2, Nat::KeepsPorts);

    let node_r = start(&r, r_dir, "/ip4/10.99.0.10/tcp/4040", &[]);
    let r_id = ok_in(&r, r_dir, &["status", "--json"])["peer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r_addr = format!("/ip4/10.99.0.10/tcp/4040/p2p/{r_id}");
    let node_a = start(&a, a_dir, "/ip4/10.99.1.2/tcp/4040", &[&r_addr]);
    let node_b = start(&b, b_dir, "/ip4/10.99.2.2/tcp/4040", &[&r_addr]);

    // R sees A and B through their routers: their addresses are the routers' WAN sides.
    let seen = wait_in(&r, r_dir, &["peers", "--json"], "A and B on R", |p| {
        peer_ids(p).len() >= 2
    });
    let addrs = seen.to_string();
    assert!(
        addrs.contains("10.99.0.2") && addrs.contains("10.99.0.3"),
        "NAT in effect: {addrs}"
    );
    assert!(
        !addrs.contains("10.99.1.2") && !addrs.contains("10.99.2.2"),
        "{addrs}"
    );

    // A network founded on R, joined by A and B by token; A's post reaches B through R.
    ok_in(&r, r_dir, &["--json", "network", "create", "Lab"]);
    let invite = ok_in(
        &r,
        r_dir,
        &["--json", "network", "invite", "Lab", "--uses", "2"],
    );
    let token = invite["token"].as_str().unwrap().to_owned();
    ok_in(&a, a_dir, &["--json", "network", "join", &token]);
    ok_in(&b, b_dir, &["--json", "network", "join", &token]);
    let started = Instant::now();
    let posted = ok_in(
        &a,
        a_dir,
        &["--json", "post", "--title", "From A", "--text", "Hello."],
    );
    let id = posted["id"].as_str().unwrap().to_owned();
    wait_in(&b, b_dir, &["--json", "list"], "A's post on B", |l| {
        l.as_array()
            .is_some_and(|l| l.iter().any(|e| e["id"] == id.as_str()))
    });
    let a_peers = peer_ids(&ok_in(&a, a_dir, &["peers", "--json"]));
    let b_id = ok_in(&b, b_dir, &["status", "--json"])["peer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    println!(
        "A's post reached B in {:.1} s; A and B {}",
        started.elapsed().as_secs_f64(),
        match a_peers.contains(&b_id) {
            true => "are connected directly",
            false => "are not connected: it went through R's node",
        }
    );

    // A restarts with no --peer: its peer book brings it back to R. When A closed the old
    // connection first, its dials from the same port to R wait out TCP's TIME_WAIT (60 s on
    // Linux) and the redial backoff: allow for both.
    assert!(node_a.stop(), "A stops cleanly");
    let restarted = Instant::now();
    let node_a = start(&a, a_dir, "/ip4/10.99.1.2/tcp/4040", &[]);
    let back = |p: &Value| peer_ids(p).contains(&r_id);
    let wait = Duration::from_secs(150);
    wait_in_for(&a, a_dir, &["peers", "--json"], "A back with R", wait, back);
    println!(
        "A reconnected to R {:.1} s after its restart",
        restarted.elapsed().as_secs_f64()
    );
    for node in [node_a, node_b, node_r] {
        node.stop();
    }
}
