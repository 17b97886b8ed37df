//! Catch-up sync between two real nodes (libp2p over loopback TCP, sled stores) holding
//! `n` = 100,000 entries each and differing by `d` entries (half only on each side), spread at
//! random through the history or all recent (a school that was offline). Prints wall time,
//! round trips, bytes each way, and wire bytes against the bytes of the missing entries;
//! beside it, in the same run, a naive baseline that exchanges the full id lists.
//!
//! Run: `cargo bench -p staffroom-node --bench sync [-- n [d ...]]` (d: the differences to run).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use staffroom_node::config::NodeConfig;
use staffroom_node::store::{NetworkRecord, Store};
use staffroom_node::sync::SyncConfig;
use staffroom_protocol::fixtures::{key, numbered_post, open_network_of};
use staffroom_protocol::NetworkId;
use staffroom_protocol::{verify_entry, VerifiedEntry};

fn config(dir: &std::path::Path, peers: Vec<libp2p::Multiaddr>) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        mdns: false,
        dht: true,
        api_tls: false,
        sync: SyncConfig {
            on_connect: false,
            interval_secs: 0,
            ..SyncConfig::default()
        },
        files: staffroom_node::files::FilesConfig::default(),
        relay: Default::default(),
        store: Default::default(),
        web: staffroom_node::web::WebConfig {
            enabled: false,
            ..Default::default()
        },
        clock: staffroom_node::clock::Clock::system(),
    }
}

/// The network of the benchmark, with its 50 authors as members.
fn membership() -> Vec<VerifiedEntry> {
    open_network_of(1..=50)
        .iter()
        .map(|e| verify_entry(&e.encode(), u64::MAX / 2).unwrap())
        .collect()
}

fn network() -> NetworkId {
    membership()[0].header().network
}

async fn fill(dir: &std::path::Path, entries: Vec<VerifiedEntry>) {
    let store = Store::open(&dir.join("store")).unwrap();
    let record = NetworkRecord {
        id: network(),
        name: "bench".into(),
        joined_at_ms: 0,
    };
    store.join_network(record).await.unwrap();
    store.insert(membership()).await.unwrap();
    for chunk in entries.chunks(4096) {
        store.insert(chunk.to_vec()).await.unwrap();
    }
}

fn main() {
    // `-- n [d ...]`: entries per node, then which differences to run (all four by default;
    // at a million each case refills two stores, ~2 minutes).
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = numbers.first().copied().unwrap_or(100_000);
    let differences = match numbers.get(1..) {
        Some(ds) if !ds.is_empty() => ds.to_vec(),
        _ => vec![0, 10, 1_000, 10_000],
    };
    let max_d = 10_000u64;
    assert!(
        differences.iter().all(|&d| d <= max_d),
        "differences up to {max_d}"
    );
    let total = n + max_d / 2;
    let authors: Vec<_> = (1..=50).map(key).collect();
    let net = network();
    println!("sync benchmark: n = {n} entries per node; preparing {total} signed entries…");
    let entries: Vec<VerifiedEntry> = {
        let chunks: Vec<Vec<u64>> = (0..total)
            .collect::<Vec<_>>()
            .chunks(10_000)
            .map(<[u64]>::to_vec)
            .collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|c| {
                    let authors = &authors;
                    s.spawn(move || {
                        c.into_iter()
                            .map(|i| {
                                // About one entry a minute, oldest first.
                                let mut e = numbered_post(&authors[(i % 50) as usize], net, i);
                                e.created_at_ms = 1_600_000_000_000 + i * 60_000;
                                let e = staffroom_protocol::Draft {
                                    network: e.network,
                                    created_at_ms: e.created_at_ms,
                                    refs: vec![],
                                    body: e.body,
                                }
                                .sign(&authors[(i % 50) as usize]);
                                verify_entry(&e.encode(), u64::MAX / 2).unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        })
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{:>6} {:>7} {:>9} {:>6} {:>9} {:>11} {:>11} {:>11} {:>9} {:>10} {:>11}",
        "d",
        "spread",
        "wall ms",
        "rounds",
        "requests",
        "B->A bytes",
        "A->B bytes",
        "missing B",
        "wire/miss",
        "recon B",
        "recon/ids"
    );
    for d in differences {
        for spread in ["random", "recent"] {
            if d == 0 && spread == "recent" {
                continue;
            }
            runtime.block_on(run_case(&entries, n, d, spread));
        }
    }
    let ids = 2 * n * 32;
    println!("naive baseline: both full id lists = {ids} bytes, plus the missing entries (d = 1,000: {:.1}x the differing ids' bytes)", ids as f64 / (1_000.0 * 32.0));
}

async fn run_case(all: &[VerifiedEntry], n: u64, d: u64, spread: &str) {
    let total = n + d / 2;
    let pick = |k: u64| match spread {
        "random" => (k * 7_919 + 13) % total,
        _ => total - 1 - k,
    };
    let a_lacks: HashSet<u64> = (0..d / 2).map(|k| pick(2 * k)).collect();
    let b_lacks: HashSet<u64> = (0..d / 2).map(|k| pick(2 * k + 1)).collect();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let side = |lacks: &HashSet<u64>| -> Vec<VerifiedEntry> {
        (0..total)
            .filter(|i| !lacks.contains(i))
            .map(|i| all[i as usize].clone())
            .collect()
    };
    fill(dir_a.path(), side(&a_lacks)).await;
    fill(dir_b.path(), side(&b_lacks)).await;
    let missing_bytes: usize = a_lacks
        .union(&b_lacks)
        .map(|&i| all[i as usize].bytes().len())
        .sum();

    let a = staffroom_node::start(config(dir_a.path(), vec![]))
        .await
        .unwrap();
    let b = staffroom_node::start(config(dir_b.path(), vec![a.loopback_addr().unwrap()]))
        .await
        .unwrap();
    let api = b.api();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !api
        .peers()
        .await
        .unwrap()
        .iter()
        .any(|p| p.networks.contains(&network()))
    {
        assert!(Instant::now() < deadline, "peers never met");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let reports = api.sync(Some(network())).await.unwrap().sessions;
    let wall = started.elapsed();
    let r = &reports[0];
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(
        r.entries_received + r.entries_sent,
        d,
        "exactly the difference moved: {r:?}"
    );
    // Each store also holds the network's membership entries, which both sides start with.
    let stored = total + membership().len() as u64;
    assert_eq!(api.status().await.unwrap().entries, stored, "B converged");
    assert_eq!(
        a.api().status().await.unwrap().entries,
        stored,
        "A converged"
    );
    let wire = r.bytes_sent + r.bytes_received;
    let recon = r.reconcile_bytes_sent + r.reconcile_bytes_received;
    let ratio = |x: u64, y: u64| {
        if y == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", x as f64 / y as f64)
        }
    };
    println!(
        "{d:>6} {spread:>7} {:>9.1} {:>6} {:>9} {:>11} {:>11} {:>11} {:>9} {:>10} {:>11}",
        wall.as_secs_f64() * 1e3,
        r.rounds,
        r.requests,
        r.bytes_sent,
        r.bytes_received,
        missing_bytes,
        ratio(wire, missing_bytes as u64),
        recon,
        ratio(recon, d * 32),
    );
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}
