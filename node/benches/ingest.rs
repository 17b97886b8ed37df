//! Ingest throughput: entries per second verified *and* durably stored, beside the raw
//! single-core ed25519 `verify_strict` rate measured in the same run on the same entries.
//!
//! Run: `cargo bench -p staffroom-node --bench ingest` (release). Optional args: entry count.
//!
//! Two ingest paths are measured:
//! - batch: `Ingest::ingest_many` in batches of 512, 4 batches in flight (sync's path);
//! - single: one `Ingest::ingest` call per entry, 256 in flight (gossip's and the API's path).
//!
//! and, to show where time goes, the store alone on entries verified beforehand. Both ingest
//! paths run twice: power-cut safe (an `fdatasync` at every group commit, the node's
//! default) and crash-safe only (sled's flush alone), to show what the sync costs.

use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use staffroom_node::ingest::Ingest;
use staffroom_node::store::{Durability, NetworkRecord, Store, StoreOptions};
use staffroom_protocol::fixtures::{key, numbered_post, open_network_of};
use staffroom_protocol::Entry;

const AUTHORS: u8 = 50;

/// The network the entries are posted in, with the authors as members.
fn membership() -> Vec<Entry> {
    open_network_of(1..=AUTHORS)
}
const BATCH: usize = 512;
const BATCHES_IN_FLIGHT: usize = 4;
const SINGLES_IN_FLIGHT: usize = 256;

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let net = membership()[0].network;
    let keys: Vec<_> = (1..=AUTHORS).map(key).collect();
    let entries: Vec<Entry> = (0..count)
        .map(|n| numbered_post(&keys[n % keys.len()], net, n as u64))
        .collect();
    let encoded: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    let mean_bytes = encoded.iter().map(Vec::len).sum::<usize>() / count;
    println!(
        "ingest benchmark: {count} entries of {mean_bytes} bytes on average, {AUTHORS} authors"
    );

    let verify_rate = raw_verify_rate(&entries);
    println!("raw verify_strict, one core:     {verify_rate:>9.0} entries/s");

    let start = Instant::now();
    let mut keys = staffroom_protocol::KeyCache::default();
    for bytes in &encoded {
        staffroom_protocol::verify_entry_cached(bytes, u64::MAX / 2, &mut keys).expect("valid");
    }
    let full_rate = count as f64 / start.elapsed().as_secs_f64();
    println!(
        "verify_entry, one core:          {full_rate:>9.0} entries/s  = {:.2}x raw verify (decode, rules, key, hash)",
        full_rate / verify_rate
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let batch_rate = on_a_worker(
        &runtime,
        ingest_batches(encoded.clone(), Durability::PowerCut),
    );
    println!(
        "ingest, batches (verify+fsync):  {batch_rate:>9.0} entries/s  = {:.2}x raw verify",
        batch_rate / verify_rate
    );
    let unsynced = on_a_worker(
        &runtime,
        ingest_batches(encoded.clone(), Durability::ProcessCrash),
    );
    println!(
        "  the same, crash-safe only:     {unsynced:>9.0} entries/s  (fsync costs {:.0}%)",
        cost_percent(batch_rate, unsynced)
    );
    let store_rate = on_a_worker(&runtime, store_only(encoded.clone()));
    println!(
        "store only (pre-verified):       {store_rate:>9.0} entries/s  = {:.2}x raw verify",
        store_rate / verify_rate
    );
    let single_rate = on_a_worker(
        &runtime,
        ingest_singles(encoded.clone(), Durability::PowerCut),
    );
    println!(
        "ingest, one by one (gossip/API): {single_rate:>9.0} entries/s  = {:.2}x raw verify",
        single_rate / verify_rate
    );
    let unsynced = on_a_worker(&runtime, ingest_singles(encoded, Durability::ProcessCrash));
    println!(
        "  the same, crash-safe only:     {unsynced:>9.0} entries/s  (fsync costs {:.0}%)",
        cost_percent(single_rate, unsynced)
    );
}

/// Runs one case's load as a task on the runtime's worker threads, as a node's API handlers
/// run: driven from the main thread instead (`block_on`), every completion crossed threads to
/// reach it, and the one-by-one case measured that hand-off (0.84x against 1.08x).
fn on_a_worker(
    runtime: &tokio::runtime::Runtime,
    case: impl std::future::Future<Output = f64> + Send + 'static,
) -> f64 {
    runtime.block_on(async { tokio::spawn(case).await.expect("the case ran") })
}

/// How much slower `synced` is than `unsynced`, in percent of the unsynced rate.
fn cost_percent(synced: f64, unsynced: f64) -> f64 {
    (1.0 - synced / unsynced) * 100.0
}

/// `verify_strict` on one thread, keys parsed and messages built up front: the bare cost of
/// the signature check.
fn raw_verify_rate(entries: &[Entry]) -> f64 {
    let prepared: Vec<_> = entries
        .iter()
        .map(|e| {
            let key = VerifyingKey::from_bytes(e.author.as_bytes()).unwrap();
            (key, e.signed_message(), Signature::from_bytes(&e.signature))
        })
        .collect();
    let start = Instant::now();
    for (key, message, signature) in &prepared {
        key.verify_strict(message, signature).expect("valid");
    }
    prepared.len() as f64 / start.elapsed().as_secs_f64()
}

async fn fresh_ingest(durability: Durability) -> (tempfile::TempDir, Ingest) {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        durability,
        ..StoreOptions::default()
    };
    let store = Store::open_with(dir.path(), options).unwrap();
    let membership = membership();
    let record = NetworkRecord {
        id: membership[0].network,
        name: "bench".into(),
        joined_at_ms: 0,
    };
    store.join_network(record).await.unwrap();
    let ingest = Ingest::new(store, staffroom_node::clock::Clock::system());
    let encoded = membership.iter().map(Entry::encode).collect();
    let admitted = ingest.ingest_many(encoded, None).await.unwrap();
    assert!(
        admitted.iter().all(Result::is_ok),
        "the authors are members"
    );
    (dir, ingest)
}

/// The store's own cost: durable inserts of entries verified beforehand.
async fn store_only(encoded: Vec<Vec<u8>>) -> f64 {
    let (_dir, ingest) = fresh_ingest(Durability::PowerCut).await;
    let verified: Vec<_> = encoded
        .iter()
        .map(|b| staffroom_protocol::verify_entry(b, u64::MAX / 2).unwrap())
        .collect();
    let start = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    for batch in verified.chunks(BATCH) {
        if in_flight.len() >= BATCHES_IN_FLIGHT {
            check(in_flight.join_next().await);
        }
        let store = ingest.store().clone();
        let batch = batch.to_vec();
        in_flight.spawn(async move { store.insert(batch).await.map(|r| r.len()) });
    }
    while let Some(done) = in_flight.join_next().await {
        check(Some(done));
    }
    finish(&ingest, encoded.len(), start.elapsed())
}

async fn ingest_batches(encoded: Vec<Vec<u8>>, durability: Durability) -> f64 {
    let (_dir, ingest) = fresh_ingest(durability).await;
    let count = encoded.len();
    let start = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    for batch in encoded.chunks(BATCH) {
        if in_flight.len() >= BATCHES_IN_FLIGHT {
            check(in_flight.join_next().await);
        }
        let ingest = ingest.clone();
        let batch = batch.to_vec();
        in_flight.spawn(async move { ingest.ingest_many(batch, None).await.map(|r| r.len()) });
    }
    while let Some(done) = in_flight.join_next().await {
        check(Some(done));
    }
    finish(&ingest, count, start.elapsed())
}

async fn ingest_singles(encoded: Vec<Vec<u8>>, durability: Durability) -> f64 {
    let (_dir, ingest) = fresh_ingest(durability).await;
    let count = encoded.len();
    let start = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    for bytes in encoded {
        if in_flight.len() >= SINGLES_IN_FLIGHT {
            check(in_flight.join_next().await);
        }
        let ingest = ingest.clone();
        in_flight.spawn(async move { ingest.ingest(bytes, None).await.map(|_| 1) });
    }
    while let Some(done) = in_flight.join_next().await {
        check(Some(done));
    }
    finish(&ingest, count, start.elapsed())
}

fn check<E: std::fmt::Debug>(done: Option<Result<Result<usize, E>, tokio::task::JoinError>>) {
    done.expect("a task")
        .expect("task ran")
        .expect("ingest succeeded");
}

fn finish(ingest: &Ingest, count: usize, elapsed: Duration) -> f64 {
    assert_eq!(
        ingest.store().entry_count(),
        (count + membership().len()) as u64,
        "every entry stored, beside the network's membership"
    );
    count as f64 / elapsed.as_secs_f64()
}
