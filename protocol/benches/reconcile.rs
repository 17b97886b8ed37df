//! Reconciliation cost without a network: two sets of `n` items differing by `d` (half only on
//! each side), run through encoded messages. Prints rounds, bytes each way, time, and bytes per
//! differing id, beside a naive baseline that sends every id (32 bytes each) both ways.
//!
//! Run: `cargo bench -p staffroom-protocol --bench reconcile [-- branches leaf sum]`.

use std::time::Instant;

use staffroom_protocol::sync::{respond, Initiator, Item, Message, Params, SyncIndex};

fn item(n: u64) -> Item {
    // About one entry a minute: times spread like a real network's history.
    (
        1_700_000_000_000 + n * 60_000 + n % 7,
        *blake3::hash(&n.to_le_bytes()).as_bytes(),
    )
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let params = Params {
        branches: args.first().copied().unwrap_or(Params::default().branches),
        leaf_items_max: args
            .get(1)
            .copied()
            .unwrap_or(Params::default().leaf_items_max),
        sum_items_max: args
            .get(2)
            .copied()
            .unwrap_or(Params::default().sum_items_max),
        ..Params::default()
    };
    let n = 100_000u64;
    println!("reconcile: n = {n} per side, {params:?}; differences spread at random or all recent");
    println!(
        "{:>6} {:>7} {:>6} {:>10} {:>10} {:>8} {:>9} {:>10}",
        "d", "spread", "rounds", "A->B B", "B->A B", "ms", "B/diff", "x id bytes"
    );
    for d in [0u64, 10, 1_000, 10_000] {
        for spread in ["random", "recent"] {
            if d == 0 && spread == "recent" {
                continue;
            }
            let (mut a, mut b) = (SyncIndex::new(), SyncIndex::new());
            // Items 0..n+d/2 exist; A lacks d/2 of them and B lacks another d/2.
            let total = n + d / 2;
            let missing = |k: u64| -> u64 {
                match spread {
                    "random" => (k * 7_919 + 13) % total,
                    _ => total - 1 - k,
                }
            };
            let a_lacks: std::collections::HashSet<u64> =
                (0..d / 2).map(|k| missing(2 * k)).collect();
            let b_lacks: std::collections::HashSet<u64> =
                (0..d / 2).map(|k| missing(2 * k + 1)).collect();
            for i in 0..total {
                if !a_lacks.contains(&i) {
                    a.insert(item(i));
                }
                if !b_lacks.contains(&i) {
                    b.insert(item(i));
                }
            }
            let start = Instant::now();
            let (mut initiator, mut message) = Initiator::start(&a, params);
            let (mut rounds, mut up, mut down, mut found) = (0, 0, 0, 0);
            loop {
                rounds += 1;
                let request = message.encode().unwrap();
                up += request.len() + 33;
                let response = respond(&b, &Message::decode(&request).unwrap(), params).unwrap();
                let response = response.encode().unwrap();
                down += response.len() + 1;
                let (diff, next) = initiator
                    .handle(&a, &Message::decode(&response).unwrap())
                    .unwrap();
                found += diff.have.len() + diff.need.len();
                match next {
                    Some(m) => message = m,
                    None => break,
                }
            }
            let ms = start.elapsed().as_secs_f64() * 1e3;
            assert_eq!(
                found as u64,
                a_lacks.len() as u64 + b_lacks.len() as u64,
                "exact difference"
            );
            let per = if d == 0 {
                0.0
            } else {
                (up + down) as f64 / d as f64
            };
            println!(
                "{d:>6} {spread:>7} {rounds:>6} {up:>10} {down:>10} {ms:>8.1} {per:>9.1} {:>10.2}",
                per / 32.0
            );
        }
    }
    println!("naive baseline (every id both ways): {} bytes", 2 * n * 32);
}
