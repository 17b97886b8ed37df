//! SIGKILL at random moments, as the OOM killer or a crash would (the page cache survives
//! it, unlike a power cut: `store/durable.rs` is what covers that): while teachers post
//! (every acknowledged entry must be there after the restart, and the store's ledger must
//! report no loss) and while a fresh node catches up from a large one (it must converge).
//!
//! `STAFFROOM_KILL_RUNS` sets the number of runs (default 8, half of each kind); the full
//! count (>= 100) is a dedicated run: see `docs/reliability.md`.

use std::path::Path;
use std::time::{Duration, Instant};

use staffroom_node::api::ApiClient;
use staffroom_protocol::fixtures::{blog_body, key, signed};
use staffroom_protocol::EntryId;
use staffroom_tests::cli_process::{staffroom_ok, NodeProcess};
use staffroom_tests::{fill_store, now_ms, TestNetwork, DEADLINE};

/// Entries in the large node a fresh one catches up from.
const LARGE_ENTRIES: u64 = 20_000;
/// Teachers posting at once.
const POSTERS: u64 = 8;

fn runs() -> u64 {
    std::env::var("STAFFROOM_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// A pseudo-random delay for run `run` (reproducible from the run number).
fn kill_after(run: u64, max_ms: u64) -> Duration {
    let mixed = run.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    Duration::from_millis(20 + mixed % max_ms)
}

/// The API of the node running on `dir`, once it answers.
async fn api_of(dir: &Path) -> ApiClient {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if let Ok(api) = ApiClient::from_data_dir(dir) {
            if api.status().await.is_ok() {
                return api;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node on {} did not answer", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_posting_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    staffroom_ok(dir.path(), &["init"], None);
    let net = TestNetwork::open("killed while posting");
    let mut node = NodeProcess::start(dir.path(), &[]);
    api_of(dir.path())
        .await
        .adopt_network(&net.encoded())
        .await
        .unwrap();
    let mut acknowledged: Vec<EntryId> = Vec::new();
    for run in 0..runs().div_ceil(2) {
        let api = api_of(dir.path()).await;
        let status = api.status().await.unwrap();
        assert!(
            status.problems.is_empty(),
            "run {run}: {:?}",
            status.problems
        );
        let posting = (0..POSTERS).map(|poster| {
            let api = api.clone();
            tokio::spawn(post_until_refused(
                api,
                net.id,
                run * 1_000_000 + poster * 10_000,
            ))
        });
        let posting: Vec<_> = posting.collect();
        tokio::time::sleep(kill_after(run, 400)).await;
        node.kill();
        for task in posting {
            acknowledged.extend(task.await.unwrap());
        }
        node = NodeProcess::start(dir.path(), &[]);
        let api = api_of(dir.path()).await;
        for id in &acknowledged {
            assert!(
                api.get(id).await.is_ok(),
                "run {run}: acknowledged {id} is lost"
            );
        }
    }
    let status = api_of(dir.path()).await.status().await.unwrap();
    assert!(status.problems.is_empty(), "{:?}", status.problems);
    println!(
        "{} runs, {} acknowledged entries, none lost",
        runs().div_ceil(2),
        acknowledged.len()
    );
    assert!(node.stop());
}

/// Posts until the node stops answering; returns what it acknowledged.
async fn post_until_refused(
    api: ApiClient,
    network: staffroom_protocol::NetworkId,
    from: u64,
) -> Vec<EntryId> {
    let mut acknowledged = Vec::new();
    for n in from.. {
        let author = key((n % 7 + 1) as u8);
        let title = format!("Post {n}");
        let entry = signed(
            &author,
            network,
            now_ms() - 5_000,
            vec![],
            blog_body(&title),
        );
        match api.submit(entry.encode()).await {
            Ok(reply) => acknowledged.push(reply.id),
            Err(_) => break,
        }
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_catch_up_converges_after_restart() {
    let (large_dir, fresh_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    staffroom_ok(large_dir.path(), &["init"], None);
    let net = TestNetwork::open("killed while catching up");
    fill_store(large_dir.path(), &net, LARGE_ENTRIES, 11).await;
    let total = net.entry_count() + LARGE_ENTRIES;
    let large = NodeProcess::start(large_dir.path(), &[]);
    let status = api_of(large_dir.path()).await.status().await.unwrap();
    assert_eq!(status.entries, total);
    let peer = format!("{}/p2p/{}", status.listen_addrs[0], status.peer_id);
    let mut killed_midway = 0;
    for run in 0..runs() / 2 {
        let dir = fresh_dir.path().join(format!("run-{run}"));
        staffroom_ok(&dir, &["init"], None);
        let fresh = NodeProcess::start(&dir, &["--peer", &peer]);
        let api = api_of(&dir).await;
        api.adopt_network(&net.encoded()).await.unwrap();
        tokio::time::sleep(kill_after(run, 1_500)).await;
        let at = api.status().await.map_or(0, |s| s.entries);
        fresh.kill();
        if at > net.entry_count() && at < total {
            killed_midway += 1;
        }
        let fresh = NodeProcess::start(&dir, &["--peer", &peer]);
        let api = api_of(&dir).await;
        let started = Instant::now();
        loop {
            let status = api.status().await.unwrap();
            assert!(
                status.problems.is_empty(),
                "run {run}: {:?}",
                status.problems
            );
            if status.entries == total {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE * 3,
                "run {run}: stuck at {}",
                status.entries
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(fresh.stop());
    }
    println!(
        "{} catch-ups killed, {killed_midway} of them half-way",
        runs() / 2
    );
    assert!(
        killed_midway > 0 || runs() < 4,
        "no kill fell during a catch-up"
    );
    assert!(large.stop());
}
