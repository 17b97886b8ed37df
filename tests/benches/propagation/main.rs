//! Live propagation: N Staffroom nodes in this process against, in the same run, N bare
//! rust-libp2p gossipsub nodes on the same graph (a ring plus a random 3-regular graph), the
//! same message sizes and rate. From the origin's publish (Staffroom: just before its API
//! accepts the post) to the message's arrival at each other node (Staffroom: the entry stored
//! durably). Prints p50 / p99 / max, delivery and duplicate copies per node and message, for a
//! cold phase (published as soon as the nodes are up, before the mesh forms) and a warm one.
//!
//! Run: `cargo bench -p staffroom-tests --bench propagation [-- N:bytes ...]` (default: 12,
//! 50 and 100 nodes at 1 KiB and 16 KiB). `STAFFROOM_PROP_MESSAGES` sets the warm phase's
//! messages (default 200, at 20 per second).

mod bare;
mod staffroom;
mod stats;
mod topology;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use bare::BareNode;
use staffroom::StaffroomNet;
use stats::Phase;

/// One message reaching one node.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub node: usize,
    pub seq: u64,
    pub at: Instant,
}

const PUBLISH_INTERVAL: Duration = Duration::from_millis(50);
const COLD_MESSAGES: u64 = 20;
const WARM_MESSAGES_DEFAULT: u64 = 200;
/// Time for gossipsub's heartbeats to build the mesh once every node sees its neighbours.
const WARM_UP: Duration = Duration::from_secs(3);
/// How long after the last publish deliveries are still awaited.
const DRAIN: Duration = Duration::from_secs(10);
/// Longer for the cold phase: Staffroom catches up what gossip missed by sync.
const COLD_DRAIN: Duration = Duration::from_secs(30);
const GRAPH_SEED: u64 = 0x5EED;

/// The sequence number a bare message starts with.
pub fn sequence_of(data: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(..8)?.try_into().ok()?))
}

fn bare_payload(seq: u64, size: usize) -> Vec<u8> {
    let mut data = seq.to_be_bytes().to_vec();
    data.resize(size.max(8), b'.');
    data
}

/// Deliveries of the messages in `sent` to `receivers` nodes, until all have arrived or
/// `drain` has passed since the last was sent: the latency of each, each (node, message) once.
async fn gather(
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    sent: &HashMap<u64, Instant>,
    receivers: usize,
    drain: Duration,
) -> Vec<Duration> {
    let deadline = Instant::now() + drain;
    let expected = sent.len() * receivers;
    let mut seen = HashSet::new();
    let mut latencies = Vec::with_capacity(expected);
    while latencies.len() < expected {
        let Ok(Some(d)) = tokio::time::timeout_at(deadline, deliveries.recv()).await else {
            break;
        };
        if let Some(at) = sent.get(&d.seq) {
            if seen.insert((d.node, d.seq)) {
                latencies.push(d.at.saturating_duration_since(*at));
            }
        }
    }
    latencies
}

async fn bare_phase(
    nodes: &[BareNode],
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    seqs: std::ops::Range<u64>,
    size: usize,
    drain: Duration,
) -> Phase {
    let copies = || nodes[1..].iter().map(|n| n.counter.received()).sum::<u64>();
    let before = copies();
    let cpu = stats::CpuMeter::start();
    let mut sent = HashMap::new();
    let mut tick = tokio::time::interval(PUBLISH_INTERVAL);
    for seq in seqs {
        tick.tick().await;
        sent.insert(seq, Instant::now());
        nodes[0].publish(bare_payload(seq, size));
    }
    let latencies = gather(deliveries, &sent, nodes.len() - 1, drain).await;
    Phase {
        expected: sent.len() * (nodes.len() - 1),
        latencies,
        copies: copies() - before,
        cores: cpu.cores(),
    }
}

async fn staffroom_phase(
    net: &StaffroomNet,
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    seqs: std::ops::Range<u64>,
    size: usize,
    drain: Duration,
) -> Phase {
    let before = net.copies().await;
    let cpu = stats::CpuMeter::start();
    // The client's first call sets up its connection: not part of any post's latency.
    net.origin().status().await.expect("status");
    let mut sent = HashMap::new();
    let mut submits = Vec::new();
    let mut tick = tokio::time::interval(PUBLISH_INTERVAL);
    for seq in seqs {
        let entry = net.post(seq, size);
        tick.tick().await;
        let at = Instant::now();
        sent.insert(seq, at);
        net.submit(seq, &entry).await;
        submits.push(at.elapsed());
    }
    submits.sort();
    println!(
        "     (staffroom: the origin's API answered in {:.1} ms at the median: verified, stored durably, published)",
        submits[submits.len() / 2].as_secs_f64() * 1e3
    );
    let latencies = gather(deliveries, &sent, net.nodes.len() - 1, drain).await;
    let cores = cpu.cores();
    Phase {
        expected: sent.len() * (net.nodes.len() - 1),
        latencies,
        copies: net.copies().await - before,
        cores,
    }
}

async fn run_bare(n: usize, size: usize, warm: u64) -> (Phase, Phase) {
    let edges = topology::edges(n, GRAPH_SEED);
    let degrees = topology::degrees(n, &edges);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(BareNode::start(i, tx.clone()).await);
    }
    for &(later, earlier) in &edges {
        nodes[later].dial(nodes[earlier].addr.clone());
    }
    let cold = bare_phase(&nodes, &mut rx, 0..COLD_MESSAGES, size, COLD_DRAIN).await;
    for (node, degree) in nodes.iter().zip(&degrees) {
        let start = Instant::now();
        while *node.subscribed.lock().await < *degree && start.elapsed() < COLD_DRAIN {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    idle_cores("bare", n, WARM_UP).await;
    let range = COLD_MESSAGES..COLD_MESSAGES + warm;
    let warm = bare_phase(&nodes, &mut rx, range, size, DRAIN).await;
    for node in nodes {
        node.stop();
    }
    (cold, warm)
}

async fn run_staffroom(n: usize, size: usize, warm: u64) -> (Phase, Phase) {
    let edges = topology::edges(n, GRAPH_SEED);
    let degrees = topology::degrees(n, &edges);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let net = StaffroomNet::start(n, &edges, tx).await;
    let cold = staffroom_phase(&net, &mut rx, 0..COLD_MESSAGES, size, COLD_DRAIN).await;
    net.wait_for_mesh(&degrees).await;
    idle_cores("staffroom", n, WARM_UP).await;
    let range = COLD_MESSAGES..COLD_MESSAGES + warm;
    let warm = staffroom_phase(&net, &mut rx, range, size, DRAIN).await;
    net.stop().await;
    (cold, warm)
}

/// Waits `wait` with nothing published, printing the cores the `n` nodes keep busy
/// meanwhile: the load the warm phase's messages come on top of (for Staffroom, the tail of
/// the cold phase's catch-up included).
async fn idle_cores(engine: &str, n: usize, wait: Duration) {
    let cpu = stats::CpuMeter::start();
    tokio::time::sleep(wait).await;
    println!(
        "     ({engine}: {n} nodes kept {:.2} cores busy in the {} s before the warm phase, nothing published)",
        cpu.cores(),
        wait.as_secs()
    );
}

fn cases() -> Vec<(usize, usize)> {
    let asked: Vec<(usize, usize)> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            let (n, size) = a.split_once(':')?;
            Some((n.parse().ok()?, size.parse().ok()?))
        })
        .collect();
    if !asked.is_empty() {
        return asked;
    }
    [12, 50, 100]
        .into_iter()
        .flat_map(|n| [(n, 1024), (n, 16 * 1024)])
        .collect()
}

#[tokio::main]
async fn main() {
    // `RUST_LOG` shows the nodes' logs, to follow one message through them.
    staffroom_tests::init_tracing();
    let warm: u64 = std::env::var("STAFFROOM_PROP_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WARM_MESSAGES_DEFAULT);
    println!(
        "propagation: {warm} messages at {}/s after a warm-up ({COLD_MESSAGES} cold ones first)",
        1000 / PUBLISH_INTERVAL.as_millis()
    );
    println!(
        "{:>4} {:>6} {:<10} {:<5} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6}",
        "N", "bytes", "engine", "phase", "p50 ms", "p99 ms", "max ms", "delivery", "dups", "cores"
    );
    let mut summary = Vec::new();
    for (n, size) in cases() {
        let (bare_cold, bare_warm) = run_bare(n, size, warm).await;
        let (ours_cold, ours_warm) = run_staffroom(n, size, warm).await;
        for (engine, phase, p) in [
            ("bare", "cold", &bare_cold),
            ("bare", "warm", &bare_warm),
            ("staffroom", "cold", &ours_cold),
            ("staffroom", "warm", &ours_warm),
        ] {
            println!("{n:>4} {size:>6} {engine:<10} {phase:<5} {}", p.row());
        }
        let ratio = ours_warm.quantile_ms(0.99) / bare_warm.quantile_ms(0.99);
        println!("{n:>4} {size:>6} warm p99 ratio (staffroom / bare): {ratio:.2}x");
        summary.push((n, size, ratio));
    }
    println!("summary, warm p99 ratios:");
    for (n, size, ratio) in summary {
        println!("  N = {n:>3}, {size:>5} bytes: {ratio:.2}x");
    }
}
