//! Soak: twelve node processes in one network for a long run, a post and a search every second
//! on rotating nodes and one node restarted every so often. Each node's resident memory, open descriptors,
//! threads and runtime tasks are sampled throughout. It passes when the nodes that are never
//! restarted stay flat from the end of the warm-up to the end of the run, and every post is on
//! every node at the end.
//!
//! `STAFFROOM_SOAK_SECS` (default 60) and `STAFFROOM_SOAK_NODES` (default 12); the dedicated
//! run is 30 minutes: see `docs/reliability.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use staffroom_node::api::ApiClient;
use staffroom_protocol::fixtures::{blog_body, key, signed};
use staffroom_tests::cli_process::{pinned_staffroom_bin, staffroom_ok, NodeProcess};
use staffroom_tests::{now_ms, TestNetwork, DEADLINE};
use tokio::time::Instant;

/// Nodes never restarted: the ones whose figures must stay flat.
const ANCHORS: usize = 2;
/// A node is stopped this often, and started again after [`DOWN_FOR`].
const CHURN_EVERY: Duration = Duration::from_secs(20);
const DOWN_FOR: Duration = Duration::from_secs(5);
const POST_EVERY: Duration = Duration::from_secs(1);
/// How many samples the run is cut into; the first quarter is warm-up.
const SAMPLES: u32 = 12;
/// How much an anchor may grow from the end of the warm-up to the end of the run.
const RSS_GROWTH_MAX: f64 = 0.25;
const FDS_GROWTH_MAX: u64 = 16;
const TASKS_GROWTH_MAX: u64 = 32;
/// Threads come and go with the blocking pool (idle ones live 10 s); a leak grows past this.
const THREADS_GROWTH_MAX: u64 = 16;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One reading of a node process.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rss_kib: u64,
    fds: u64,
    threads: u64,
    tasks: u64,
}

fn read_proc(pid: u32) -> Option<(u64, u64, u64)> {
    let status = staffroom_tests::proc_status(&pid.to_string())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((*status.get("VmRSS:")?, fds, *status.get("Threads:")?))
}

struct SoakNode {
    dir: tempfile::TempDir,
    process: Option<NodeProcess>,
}

impl SoakNode {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    async fn sample(&self) -> Option<Sample> {
        let pid = self.process.as_ref()?.pid()?;
        let (rss_kib, fds, threads) = read_proc(pid)?;
        let status = ApiClient::from_data_dir(self.path())
            .ok()?
            .status()
            .await
            .ok()?;
        Some(Sample {
            rss_kib,
            fds,
            threads,
            tasks: status.runtime_tasks,
        })
    }
}

/// The API of the node on `dir` once it answers, with its dialable loopback address.
async fn started(dir: &Path) -> (ApiClient, String) {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if let Ok(api) = ApiClient::from_data_dir(dir) {
            if let Ok(status) = api.status().await {
                let addr = status
                    .listen_addrs
                    .iter()
                    .find(|a| a.to_string().starts_with("/ip4/127.0.0.1/"))
                    .map(|a| format!("{a}/p2p/{}", status.peer_id));
                if let Some(addr) = addr {
                    return (api, addr);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the node on {} did not start", dir.display());
}

fn start(bin: &Path, dir: &Path, peers: &[String]) -> NodeProcess {
    let mut args = Vec::new();
    for peer in peers {
        args.extend(["--peer", peer.as_str()]);
    }
    NodeProcess::start_bin(bin, dir, &args)
}

/// Median of each figure over `samples` (of one node).
fn median(samples: &[Sample]) -> Sample {
    let mid = |f: fn(&Sample) -> u64| {
        let mut v: Vec<u64> = samples.iter().map(f).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    Sample {
        rss_kib: mid(|s| s.rss_kib),
        fds: mid(|s| s.fds),
        threads: mid(|s| s.threads),
        tasks: mid(|s| s.tasks),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_nodes_posting_and_churning_stay_flat_and_converge() {
    let _serial = super::one_at_a_time().await;
    let run_for = Duration::from_secs(setting("STAFFROOM_SOAK_SECS", 60));
    let count = setting("STAFFROOM_SOAK_NODES", 12) as usize;
    assert!(count > ANCHORS + 1, "at least one node to churn");
    let bin_dir = tempfile::tempdir().expect("temp dir");
    let bin: PathBuf = pinned_staffroom_bin(bin_dir.path());
    let net = TestNetwork::open("soak");
    // Keys made at once; the first two nodes (the anchors) started, then the rest at once,
    // each given both anchors: the DHT and peer books do the rest.
    let dirs: Vec<tempfile::TempDir> = std::thread::scope(|s| {
        let inits: Vec<_> = (0..count)
            .map(|_| {
                s.spawn(|| {
                    let dir = tempfile::tempdir().expect("temp dir");
                    staffroom_ok(dir.path(), &["init"], None);
                    dir
                })
            })
            .collect();
        inits.into_iter().map(|i| i.join().expect("init")).collect()
    });
    let mut addrs: Vec<String> = Vec::new();
    let mut processes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        processes.push(start(&bin, dir.path(), &addrs[..i.min(ANCHORS)]));
        if i < ANCHORS {
            addrs.push(started(dir.path()).await.1);
        }
    }
    for dir in &dirs[ANCHORS..] {
        addrs.push(started(dir.path()).await.1);
    }
    let adopting = dirs.iter().map(|dir| async {
        let (api, _) = started(dir.path()).await;
        api.adopt_network(&net.encoded()).await.expect("adopt");
    });
    futures::future::join_all(adopting).await;
    let mut nodes: Vec<SoakNode> = dirs
        .into_iter()
        .zip(processes)
        .map(|(dir, process)| SoakNode {
            dir,
            process: Some(process),
        })
        .collect();

    let began = Instant::now();
    let sample_every = run_for / SAMPLES;
    let (mut next_post, mut next_sample) = (began, began + sample_every);
    let mut next_churn = began + CHURN_EVERY;
    let mut down: Option<(usize, Instant)> = None;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); count];
    let (mut posted, mut restarts, mut round) = (0u64, 0u64, 0u64);
    while began.elapsed() < run_for {
        let now = Instant::now();
        if now >= next_post {
            let up: Vec<usize> = (0..count)
                .filter(|i| Some(*i) != down.map(|d| d.0))
                .collect();
            let target = up[(posted as usize * 7 + 3) % up.len()];
            let api = ApiClient::from_data_dir(nodes[target].path()).expect("api");
            let body = blog_body(&format!("Soak post {posted}"));
            let entry = signed(
                &key((posted % 9 + 1) as u8),
                net.id,
                now_ms() - 1_000,
                vec![],
                body,
            );
            api.submit(entry.encode()).await.expect("post accepted");
            // Teachers search too: a node searched is a node whose index commits while the
            // run is young, so its index's memory is part of the warm-up, not growth.
            let searched = up[(posted as usize * 5 + 1) % up.len()];
            let api = ApiClient::from_data_dir(nodes[searched].path()).expect("api");
            let query = staffroom_node::api::search::SearchQuery {
                q: "soak post".into(),
                limit: Some(5),
                ..Default::default()
            };
            api.search(&query).await.expect("search answered");
            posted += 1;
            next_post += POST_EVERY;
        }
        if let Some((i, since)) = down {
            if now >= since + DOWN_FOR {
                let peers = [addrs[0].clone(), addrs[1].clone()];
                nodes[i].process = Some(start(&bin, nodes[i].path(), &peers));
                let (_, addr) = started(nodes[i].path()).await;
                addrs[i] = addr;
                restarts += 1;
                down = None;
            }
        } else if now >= next_churn {
            round += 1;
            let i = ANCHORS + round as usize % (count - ANCHORS);
            let process = nodes[i].process.take().expect("running");
            assert!(process.stop(), "node {i} stopped cleanly");
            down = Some((i, now));
            next_churn += CHURN_EVERY;
        }
        if now >= next_sample {
            let mut line = format!("{:>5} s:", began.elapsed().as_secs());
            for (i, node) in nodes.iter().enumerate() {
                if let Some(sample) = node.sample().await {
                    samples[i].push(sample);
                    if i < ANCHORS {
                        line += &format!(
                            "  node {i}: {} MiB, {} fds, {} threads, {} tasks;",
                            sample.rss_kib / 1024,
                            sample.fds,
                            sample.threads,
                            sample.tasks
                        );
                    }
                }
            }
            let rss_max = samples
                .iter()
                .filter_map(|s| s.last())
                .map(|s| s.rss_kib)
                .max();
            println!("{line}  largest node {} MiB", rss_max.unwrap_or(0) / 1024);
            next_sample += sample_every;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Everyone back, then every post everywhere.
    if let Some((i, _)) = down.take() {
        let peers = [addrs[0].clone(), addrs[1].clone()];
        nodes[i].process = Some(start(&bin, nodes[i].path(), &peers));
        restarts += 1;
    }
    let total = net.entry_count() + posted;
    let deadline = Instant::now() + Duration::from_secs(120);
    for (i, node) in nodes.iter().enumerate() {
        let (api, _) = started(node.path()).await;
        loop {
            let entries = api.status().await.map(|s| s.entries).unwrap_or(0);
            if entries == total {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} holds {entries} of {total}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!(
        "{} s, {count} nodes: {posted} posts, {restarts} restarts; every post on every node",
        run_for.as_secs()
    );
    for (i, series) in samples.iter().take(ANCHORS).enumerate() {
        let warm = SAMPLES as usize / 4;
        assert!(
            series.len() > warm + 3,
            "node {i}: {} samples",
            series.len()
        );
        let (early, late) = (
            median(&series[warm..warm + 3]),
            median(&series[series.len() - 3..]),
        );
        println!("node {i}: after warm-up {early:?}, at the end {late:?}");
        assert!(
            late.rss_kib as f64 <= early.rss_kib as f64 * (1.0 + RSS_GROWTH_MAX),
            "node {i}: resident memory grew from {} to {} KiB",
            early.rss_kib,
            late.rss_kib
        );
        assert!(
            late.fds <= early.fds + FDS_GROWTH_MAX,
            "node {i}: descriptors {early:?} -> {late:?}"
        );
        assert!(
            late.tasks <= early.tasks + TASKS_GROWTH_MAX,
            "node {i}: tasks {early:?} -> {late:?}"
        );
        assert!(
            late.threads <= early.threads + THREADS_GROWTH_MAX,
            "node {i}: threads {early:?} -> {late:?}"
        );
    }
    for node in nodes {
        if let Some(process) = node.process {
            assert!(process.stop(), "stopped cleanly");
        }
    }
}
