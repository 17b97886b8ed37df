//! Schools behind NAT routers, in Linux network namespaces (see `tests/netns.rs`): a public
//! node R, and schools A and B each behind its own router doing source NAT and dropping
//! unsolicited inbound traffic. A and B know only R, through an invite token. Run with
//! `cargo test -p staffroom-tests --features netns --test netns` as root.
//!
//! `STAFFROOM_PUNCH_RUNS=N` repeats the hole-punching scenario N times and prints the success
//! rate and times (the dedicated run recorded in `docs/performance.md`).

mod partition;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use staffroom_tests::cli_process::NodeProcess;
use staffroom_tests::netns::{staffroom_in, Lab, Nat};

const DEADLINE: Duration = Duration::from_secs(60);
/// Labs run one at a time: their timings are the point, and this machine has two cores.
static ONE_LAB: Mutex<()> = Mutex::new(());

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

/// Polls a `--json` command inside `ns` until `check` accepts it, for at most `deadline`.
fn wait_in(
    at: (&str, &Path),
    args: &[&str],
    what: &str,
    deadline: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    poll_in(at, args, deadline, check)
        .unwrap_or_else(|last| panic!("timed out waiting for {what}; last answer: {last:?}"))
}

/// [`wait_in`] that gives the last answer back instead of failing.
fn poll_in(
    (ns, dir): (&str, &Path),
    args: &[&str],
    deadline: Duration,
    check: impl Fn(&Value) -> bool,
) -> Result<Value, Option<Value>> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Some(v) = json_in(ns, dir, args).filter(|v| check(v)) {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(json_in(ns, dir, args))
}

fn start(ns: &str, dir: &Path, listen: &str, peers: &[&str]) -> NodeProcess {
    let mut args = vec![
        "--listen",
        listen,
        "--api",
        "127.0.0.1:4041",
        "--web",
        "127.0.0.1:4042",
        "--no-mdns",
    ];
    for p in peers {
        args.extend(["--peer", p]);
    }
    let node = NodeProcess::start_in_namespace(ns, dir, &args);
    wait_in(
        (ns, dir),
        &["status", "--json"],
        "the node's API",
        DEADLINE,
        |_| true,
    );
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

/// How `peers` (a `peers --json` answer) says this node is connected to `peer`.
fn connection_to(peers: &Value, peer: &str) -> Option<String> {
    peers
        .as_array()?
        .iter()
        .find(|p| p["peer_id"] == peer)
        .and_then(|p| p["connection"].as_str().map(str::to_owned))
}

/// A data directory for a lab node: the lab's "internet" is 10.99.0.0/24, a private range,
/// so its addresses count as public only on a private WAN.
fn init(dir: &Path) {
    let out = std::process::Command::new(staffroom_tests::cli_process::staffroom_bin())
        .arg("--data-dir")
        .arg(dir)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success());
    let config = dir.join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[relay]\nprivate_wan = true\n");
    std::fs::write(&config, text).unwrap();
}

/// The lab and its three nodes, A and B behind routers of the given kind.
struct World {
    lab: Lab,
    dirs: [tempfile::TempDir; 3],
    nodes: Vec<NodeProcess>,
    r: String,
    a: String,
    b: String,
}

impl World {
    fn open(nat: Nat) -> World {
        let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
        for d in &dirs {
            init(d.path());
        }
        let mut lab = Lab::open();
        lab.internet();
        let r = lab.public_host("r", "10.99.0.10");
        let a = lab.school("a", "10.99.0.2", 1, nat);
        let b = lab.school("b", "10.99.0.3", 2, nat);
        let nodes = vec![
            start(&r, dirs[0].path(), "/ip4/10.99.0.10/tcp/4040", &[]),
            start(&a, dirs[1].path(), "/ip4/10.99.1.2/tcp/4040", &[]),
            start(&b, dirs[2].path(), "/ip4/10.99.2.2/tcp/4040", &[]),
        ];
        World {
            lab,
            dirs,
            nodes,
            r,
            a,
            b,
        }
    }

    fn r(&self) -> (&str, &Path) {
        (&self.r, self.dirs[0].path())
    }
    fn a(&self) -> (&str, &Path) {
        (&self.a, self.dirs[1].path())
    }
    fn b(&self) -> (&str, &Path) {
        (&self.b, self.dirs[2].path())
    }

    fn ok(&self, (ns, dir): (&str, &Path), args: &[&str]) -> Value {
        ok_in(ns, dir, args)
    }

    /// The doctor's findings at `at`, and the one named `check`.
    fn doctor(&self, at: (&str, &Path), check: &str) -> (Value, Value) {
        let doctor = self.ok(at, &["--json", "node", "doctor"]);
        let found = doctor
            .as_array()
            .and_then(|f| f.iter().find(|f| f["check"] == check))
            .cloned()
            .unwrap_or_default();
        (doctor, found)
    }

    fn peer_id(&self, at: (&str, &Path)) -> String {
        self.ok(at, &["status", "--json"])["peer_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A network founded at `host`, joined by `joiners` with a token it printed.
    fn share_network(&self, host: (&str, &Path), name: &str, joiners: &[(&str, &Path)]) {
        self.ok(host, &["--json", "network", "create", name]);
        let uses = joiners.len().to_string();
        let invite = self.ok(
            host,
            &["--json", "network", "invite", name, "--uses", &uses],
        );
        let token = invite["token"].as_str().unwrap().to_owned();
        for j in joiners {
            self.ok(*j, &["--json", "network", "join", &token]);
        }
    }

    fn stop(mut self) {
        for node in self.nodes.drain(..) {
            node.stop();
        }
        drop(self.lab);
    }
}

/// What one run of the scenario saw.
struct Outcome {
    /// How A ended up connected to B: `punched`, `relayed` or `direct`.
    connection: String,
    /// From the joins to A and B connected (through the relay, at first).
    connected: Duration,
    /// From the joins to the connection turning direct, when it did.
    punched: Option<Duration>,
    /// From posting on A to the post listed on B, in a network R does not follow.
    entry: Duration,
}

/// A and B join R's network by token, find each other through the DHT, connect through R's
/// relay, and (when the routers keep ports) punch a direct connection; then a network only
/// A and B follow carries a post from A to B over whatever connection they have.
fn reach_each_other(world: &World, expect_punch: bool) -> Outcome {
    let b_id = world.peer_id(world.b());
    world.share_network(world.r(), "Lab", &[world.a(), world.b()]);
    let joined = Instant::now();
    let to_b = |p: &Value| connection_to(p, &b_id);
    let found = Duration::from_secs(120);
    let peers = wait_in(
        world.a(),
        &["peers", "--json"],
        "A connected to B",
        found,
        |p| to_b(p).is_some(),
    );
    let connected = joined.elapsed();
    let mut punched = None;
    if expect_punch {
        // The measurement counts a punch that never comes; the test then fails on it.
        let wait = Duration::from_secs(60);
        let punch = poll_in(world.a(), &["peers", "--json"], wait, |p| {
            to_b(p).as_deref() == Some("punched")
        });
        punched = punch.is_ok().then(|| joined.elapsed());
    } else {
        // DCUtR tries three times, within seconds; then the relay carries everything.
        assert_eq!(to_b(&peers).as_deref(), Some("relayed"), "{peers}");
        std::thread::sleep(Duration::from_secs(10));
    }
    let peers = world.ok(world.a(), &["peers", "--json"]);
    let connection = to_b(&peers).expect("still connected");

    // A network R does not follow: what A posts there reaches B only through A and B's own
    // connection (punched, or relayed by R without R reading it).
    world.share_network(world.a(), "Pair", &[world.b()]);
    let posted = Instant::now();
    let post = world.ok(
        world.a(),
        &[
            "--json",
            "post",
            "--network",
            "Pair",
            "--title",
            "From A",
            "--text",
            "Hello.",
        ],
    );
    let id = post["id"].as_str().unwrap().to_owned();
    let listed = |l: &Value| {
        l.as_array()
            .is_some_and(|l| l.iter().any(|e| e["id"] == id.as_str()))
    };
    wait_in(
        world.b(),
        &["--json", "list"],
        "A's post on B",
        DEADLINE,
        listed,
    );
    Outcome {
        connection,
        connected,
        punched,
        entry: posted.elapsed(),
    }
}

fn report(outcome: &Outcome) {
    println!(
        "A-B {} ; connected {:.1} s after the joins; {}; post synced in {:.2} s",
        outcome.connection,
        outcome.connected.as_secs_f64(),
        match outcome.punched {
            Some(t) => format!("punched {:.1} s after the joins", t.as_secs_f64()),
            None => "not punched".into(),
        },
        outcome.entry.as_secs_f64()
    );
}

#[test]
fn schools_behind_nat_punch_through_sync_and_find_their_peers_again_after_a_restart() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let runs: usize = std::env::var("STAFFROOM_PUNCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .clamp(1, 100);
    let mut punched_times = Vec::new();
    for run in 1..=runs {
        let mut world = World::open(Nat::KeepsPorts);
        let outcome = reach_each_other(&world, true);
        print!("run {run}/{runs}: ");
        report(&outcome);
        if let Some(t) = outcome.punched {
            punched_times.push(t.as_secs_f64());
        }
        // R saw A and B through their routers: their addresses are the routers' WAN sides.
        let seen = world.ok(world.r(), &["peers", "--json"]).to_string();
        assert!(
            seen.contains("10.99.0.2") && seen.contains("10.99.0.3"),
            "{seen}"
        );
        assert!(
            !seen.contains("10.99.1.2") && !seen.contains("10.99.2.2"),
            "{seen}"
        );
        if run == runs {
            restart_from_the_peer_book(&mut world);
        }
        world.stop();
    }
    punched_times.sort_by(f64::total_cmp);
    let punched = punched_times.len();
    println!(
        "hole punching: {punched}/{runs} punched; time from joins to punched: min {:.1} s, \
         median {:.1} s, max {:.1} s",
        punched_times.first().unwrap_or(&0.0),
        punched_times.get(punched / 2).unwrap_or(&0.0),
        punched_times.last().unwrap_or(&0.0)
    );
    assert_eq!(
        punched, runs,
        "every run punches through routers that keep ports"
    );
}

/// A restarts with no --peer: its peer book brings it back to R, and its doctor says how it
/// is reached.
fn restart_from_the_peer_book(world: &mut World) {
    let r_id = world.peer_id(world.r());
    let (doctor, reach) = world.doctor(world.a(), "reachability");
    assert!(
        reach["detail"]
            .as_str()
            .unwrap_or("")
            .contains("through relay"),
        "{doctor}"
    );
    let node_a = world.nodes.remove(1);
    assert!(node_a.stop(), "A stops cleanly");
    let restarted = Instant::now();
    let (ns, dir) = (world.a.clone(), world.dirs[1].path().to_path_buf());
    world
        .nodes
        .push(start(&ns, &dir, "/ip4/10.99.1.2/tcp/4040", &[]));
    let back = |p: &Value| peer_ids(p).contains(&r_id);
    let wait = Duration::from_secs(60);
    wait_in(
        (&ns, &dir),
        &["peers", "--json"],
        "A back with R",
        wait,
        back,
    );
    println!(
        "A reconnected to R {:.1} s after its restart",
        restarted.elapsed().as_secs_f64()
    );
}

#[test]
fn behind_nats_that_change_ports_schools_sync_through_the_relay() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let world = World::open(Nat::RandomPorts);
    let outcome = reach_each_other(&world, false);
    report(&outcome);
    assert_eq!(outcome.connection, "relayed");
    let (doctor, connections) = world.doctor(world.a(), "connections");
    assert_eq!(connections["ok"], false, "{doctor}");
    assert!(connections["advice"]
        .as_str()
        .unwrap_or("")
        .contains("port"));
    world.stop();
}
