//! Six schools on one "internet", all in one network and all connected to each other, split
//! in two by a partition (each side's hosts drop every packet to and from the other side,
//! silently) while both sides post; then healed. Each side keeps working on its own, and once
//! the partition heals every node ends with every post.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{init, ok_in, start, wait_in, Lab, ONE_LAB};

const NODES: usize = 6;
const POSTS_PER_SIDE: usize = 10;
/// After the heal, every node has every post within this.
const CONVERGE: Duration = Duration::from_secs(180);

fn ip(i: usize) -> String {
    format!("10.99.0.{}", 21 + i)
}

fn nft(ns: &str, command: &str) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "nft", command])
        .output()
        .expect("nft runs");
    assert!(
        out.status.success(),
        "nft {command} in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drops every packet between the host in `ns` and `others`, both ways, in a table of its own.
fn cut_off(ns: &str, others: &[String]) {
    let set = others.join(", ");
    nft(ns, "add table inet partition");
    nft(
        ns,
        "add chain inet partition input { type filter hook input priority 0; }",
    );
    nft(
        ns,
        "add chain inet partition output { type filter hook output priority 0; }",
    );
    nft(
        ns,
        &format!("add rule inet partition input ip saddr {{ {set} }} drop"),
    );
    nft(
        ns,
        &format!("add rule inet partition output ip daddr {{ {set} }} drop"),
    );
}

fn heal(ns: &str) {
    nft(ns, "delete table inet partition");
}

/// The ids listed by a `list --json` answer.
fn listed(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn six_schools_split_by_a_partition_both_posting_converge_once_it_heals() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let dirs: Vec<_> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    for dir in &dirs {
        init(dir.path());
    }
    let mut lab = Lab::open();
    lab.internet();
    let hosts: Vec<String> = (0..NODES)
        .map(|i| lab.public_host(&format!("h{i}"), &ip(i)))
        .collect();
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let listen = format!("/ip4/{}/tcp/4040", ip(i));
        nodes.push(start(&hosts[i], dirs[i].path(), &listen, &[]));
    }
    let at = |i: usize| (hosts[i].as_str(), dirs[i].path());

    // One network, founded on node 0; every node connected to every other.
    ok_in(at(0).0, at(0).1, &["--json", "network", "create", "Split"]);
    let uses = (NODES - 1).to_string();
    let invite = ok_in(
        at(0).0,
        at(0).1,
        &["--json", "network", "invite", "Split", "--uses", &uses],
    );
    let token = invite["token"].as_str().unwrap().to_owned();
    for i in 1..NODES {
        ok_in(at(i).0, at(i).1, &["--json", "network", "join", &token]);
    }
    let ids: Vec<String> = (0..NODES)
        .map(|i| {
            ok_in(at(i).0, at(i).1, &["status", "--json"])["peer_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for i in 0..NODES {
        for (j, id) in ids.iter().enumerate().skip(i + 1) {
            let addr = format!("/ip4/{}/tcp/4040/p2p/{id}", ip(j));
            ok_in(at(i).0, at(i).1, &["--json", "dial", &addr]);
        }
    }

    // The partition: {0, 1, 2} | {3, 4, 5}.
    let left: Vec<String> = (0..3).map(ip).collect();
    let right: Vec<String> = (3..NODES).map(ip).collect();
    for (i, host) in hosts.iter().enumerate() {
        cut_off(host, if i < 3 { &right } else { &left });
    }
    let post = |i: usize, n: usize| -> String {
        let title = format!("Side of node {i}, post {n}");
        let args = [
            "--json",
            "post",
            "--network",
            "Split",
            "--title",
            &title,
            "--text",
            "During the split.",
        ];
        ok_in(at(i).0, at(i).1, &args)["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let from_left: Vec<String> = (0..POSTS_PER_SIDE).map(|n| post(0, n)).collect();
    let from_right: Vec<String> = (0..POSTS_PER_SIDE).map(|n| post(3, n)).collect();
    let list = ["--json", "list", "--network", "Split", "--limit", "1000"];
    let has = |ids: &[String]| {
        let ids = ids.to_vec();
        move |l: &Value| ids.iter().all(|id| listed(l).contains(id))
    };
    let side = Duration::from_secs(60);
    wait_in(
        at(2),
        &list,
        "left posts on the left",
        side,
        has(&from_left),
    );
    wait_in(
        at(5),
        &list,
        "right posts on the right",
        side,
        has(&from_right),
    );
    let across = ok_in(at(4).0, at(4).1, &list);
    assert!(
        from_left.iter().all(|id| !listed(&across).contains(id)),
        "the partition let posts through"
    );

    // Heal: everything everywhere.
    for host in &hosts {
        heal(host);
    }
    let healed = Instant::now();
    let all: Vec<String> = from_left.iter().chain(&from_right).cloned().collect();
    for i in 0..NODES {
        wait_in(
            at(i),
            &list,
            "every post on every node",
            CONVERGE,
            has(&all),
        );
    }
    println!(
        "partition of {NODES} nodes healed: {} posts on every node {:.1} s after the heal",
        all.len(),
        healed.elapsed().as_secs_f64()
    );
    for node in nodes {
        node.stop();
    }
    drop(lab);
}
