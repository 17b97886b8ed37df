//! Churn: six nodes in one network, posts flowing while nodes stop and come back at random
//! (on new ports, finding the others again from what they are given and their peer books).
//! Once the churn ends, every node holds every post.
//!
//! `STAFFROOM_CHURN_ROUNDS` sets the rounds (default 30); see `docs/reliability.md`.

use std::time::Duration;

use staffroom_protocol::fixtures::key;
use staffroom_tests::*;

const NODES: usize = 6;

fn rounds() -> u64 {
    std::env::var("STAFFROOM_CHURN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// A small reproducible generator (xorshift64*), so a failing run can be replayed.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// A node of the churn: running, or stopped with its data kept.
enum Slot {
    Up(Box<TestNode>),
    Down(tempfile::TempDir),
    /// Only while a node changes state.
    Moving,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_leaving_and_rejoining_while_posts_flow_all_end_with_every_post() {
    let net = TestNetwork::open("churn");
    let first = TestNode::start(&[]).await;
    let mut slots = vec![Slot::Up(Box::new(first))];
    for _ in 1..NODES {
        let peers = up_addrs(&slots);
        slots.push(Slot::Up(Box::new(TestNode::start(&peers).await)));
    }
    for slot in &slots {
        if let Slot::Up(node) = slot {
            node.adopt(&net).await;
        }
    }
    let mut dice = Dice(0x5eed_0000 + rounds());
    let (mut posted, mut stops, mut restarts) = (0u64, 0, 0);
    for round in 0..rounds() {
        // A post on a running node.
        let up: Vec<usize> = (0..NODES)
            .filter(|i| matches!(slots[*i], Slot::Up(_)))
            .collect();
        if let Slot::Up(node) = &slots[up[dice.below(up.len())]] {
            node.post_many(&key((round % 7 + 1) as u8), net.id, 2).await;
            posted += 2;
        }
        // Then a node leaves (keeping at least two up) or one comes back.
        let i = dice.below(NODES);
        let peers = up_addrs(&slots);
        slots[i] = match std::mem::replace(&mut slots[i], Slot::Moving) {
            Slot::Up(node) if up.len() > 2 => {
                stops += 1;
                Slot::Down(node.stop().await)
            }
            Slot::Down(dir) => {
                restarts += 1;
                Slot::Up(Box::new(TestNode::restart(dir, &peers).await))
            }
            unchanged => unchanged,
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Everyone back.
    for i in 0..NODES {
        let peers = up_addrs(&slots);
        slots[i] = match std::mem::replace(&mut slots[i], Slot::Moving) {
            Slot::Down(dir) => Slot::Up(Box::new(TestNode::restart(dir, &peers).await)),
            unchanged => unchanged,
        };
    }
    let total = net.entry_count() + posted;
    for slot in &slots {
        if let Slot::Up(node) = slot {
            node.wait_for_count(total).await;
        }
    }
    println!(
        "{} rounds: {posted} posts, {stops} stops, {restarts} restarts; all on every node",
        rounds()
    );
    assert!(stops > 0 && restarts > 0, "the dice never churned");
}

fn up_addrs(slots: &[Slot]) -> Vec<libp2p::Multiaddr> {
    slots
        .iter()
        .filter_map(|s| match s {
            Slot::Up(node) => Some(node.addr()),
            _ => None,
        })
        .collect()
}
