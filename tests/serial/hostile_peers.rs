//! Hostile peers against a line of honest nodes while a teacher posts: forgers coming back
//! under new identities, malformed and oversize messages, a flood of well-signed entries by a
//! stranger, replays, junk subscriptions and idle connections. The honest nodes must keep
//! their propagation latency (p99 within 2x of the same run without the attackers), block the
//! peers that break shared rules and only those, and store nothing but the teacher's posts.
//! Entries dated at the edge of the clock-skew bound are judged by each node's own clock.
//!
//! `STAFFROOM_HOSTILE_POSTS` sets the posts per phase (default 60, at 20 per second).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use staffroom_node::config::NodeConfig;
use staffroom_protocol::fixtures::{self, key};
use staffroom_protocol::limits::CLOCK_SKEW_MS_MAX;
use staffroom_protocol::{Entry, EntryId, NetworkId};
use staffroom_tests::hostile::{forged, Hostile, HostileOptions, Seen, SyncLie};
use staffroom_tests::*;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const POSTS_DEFAULT: usize = 60;
const POST_INTERVAL: Duration = Duration::from_millis(50);
/// Identities a forger burns through, each blocked after its third forgery.
const SYBILS_MAX: usize = 12;
/// Messages per second of the stranger's flood of well-signed entries.
const STRANGER_RATE_PER_S: u64 = 1_000;
/// Below this, a p99 is timer and scheduling noise on a loaded two-core machine; the 2x
/// bound applies to the larger of the baseline's p99 and this.
const P99_NOISE_FLOOR: Duration = Duration::from_millis(25);

fn posts_per_phase() -> usize {
    std::env::var("STAFFROOM_HOSTILE_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(POSTS_DEFAULT)
}

/// Honest nodes in a line, each dialling the one before: posts from the first cross every
/// node in between.
async fn honest_line(
    count: usize,
    network: &TestNetwork,
    adjust: impl Fn(&mut NodeConfig) + Copy,
) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    for _ in 0..count {
        let peers: Vec<Multiaddr> = nodes.last().map(|n| vec![n.addr()]).unwrap_or_default();
        let node = TestNode::start_with(&peers, adjust).await;
        node.adopt(network).await;
        nodes.push(node);
    }
    for (i, node) in nodes.iter().enumerate() {
        let neighbours = if i == 0 || i == count - 1 { 1 } else { 2 };
        node.wait_for_network_peers(network.id, neighbours).await;
    }
    nodes
}

/// Delivery latencies, from just before the first node's API accepted each post to the
/// moment each other node stored it.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
        sorted[at - 1]
    }

    fn describe(&self) -> String {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} deliveries",
            self.quantile(0.5).as_secs_f64() * 1e3,
            self.quantile(0.99).as_secs_f64() * 1e3,
            self.quantile(1.0).as_secs_f64() * 1e3,
            self.0.len()
        )
    }
}

/// Posts `count` entries on the first node at 20 per second and times their arrival at every
/// other node. Every post must reach every node.
async fn propagation(nodes: &[TestNode], network: NetworkId, tag: &str, count: usize) -> Latencies {
    let author = key(7);
    let entries: Vec<Entry> = (0..count)
        .map(|n| {
            let body = fixtures::blog_body(&format!("{tag} post {n}"));
            fixtures::signed(&author, network, now_ms() - 1_000, vec![], body)
        })
        .collect();
    let ids: HashSet<EntryId> = entries.iter().map(Entry::id).collect();
    let window = DEADLINE + POST_INTERVAL * count as u32;
    let collectors: Vec<_> = nodes[1..]
        .iter()
        .map(|node| {
            let mut stored = node.node.watch_stored();
            let ids = ids.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + window;
                let mut seen = HashMap::new();
                while seen.len() < ids.len() {
                    match tokio::time::timeout_at(deadline, stored.recv()).await {
                        Ok(Ok(i)) if ids.contains(&i.id) => {
                            seen.insert(i.id, Instant::now());
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => panic!("watching stored entries: {e}"),
                        Err(_) => break,
                    }
                }
                seen
            })
        })
        .collect();
    let api = nodes[0].api();
    // The client's first call sets up its connection: not part of any post's latency.
    api.status().await.expect("status");
    let mut sent = HashMap::new();
    let mut tick = tokio::time::interval(POST_INTERVAL);
    for entry in entries {
        tick.tick().await;
        let at = Instant::now();
        api.submit(entry.encode()).await.expect("post accepted");
        sent.insert(entry.id(), at);
    }
    let mut latencies = Vec::new();
    for (n, collector) in collectors.into_iter().enumerate() {
        let seen = collector.await.expect("collector");
        for (id, at) in &sent {
            let arrived = seen.get(id).unwrap_or_else(|| {
                panic!("{tag}: post {} never reached node {}", id.short(), n + 1)
            });
            latencies.push(arrived.duration_since(*at));
        }
    }
    Latencies(latencies)
}

/// Connects a hostile peer to `target` and waits until `target` has subscribed it.
async fn hostile_at(target: &TestNode, network: NetworkId, options: HostileOptions) -> Hostile {
    let mut hostile =
        Hostile::connect_with(target.addr(), network, SyncLie::Claims(vec![]), options).await;
    let target_peer = target.node.peer_id;
    hostile
        .wait_for(
            "the target's subscription",
            |s| matches!(s, Seen::Subscribed(p) if *p == target_peer),
        )
        .await;
    hostile
}

/// Forges under one identity after another until stopped: each must be blocked (disconnected)
/// after its third forgery. Returns how many identities were blocked.
async fn forger(target: &TestNode, network: NetworkId, stop: CancellationToken) -> usize {
    let target_peer = target.node.peer_id;
    let mut blocked = 0;
    for sybil in 0..SYBILS_MAX {
        if stop.is_cancelled() {
            break;
        }
        let mut hostile = hostile_at(target, network, HostileOptions::default()).await;
        for n in 0..3 {
            let forgery = forged(network, &format!("Forgery {sybil}.{n}"));
            hostile.publish(forgery.encode()).await.expect("published");
        }
        hostile
            .wait_for(
                "being blocked",
                |s| matches!(s, Seen::Disconnected(p) if *p == target_peer),
            )
            .await;
        blocked += 1;
        hostile.stop().await;
    }
    blocked
}

/// Sends oversize messages (refused by the frame codec, unbuffered), then bytes that are no
/// entry at all: blocked for those (the wait fails the test otherwise).
async fn garbler(target: &TestNode, network: NetworkId) {
    let target_peer = target.node.peer_id;
    let options = HostileOptions {
        transmit_bytes_max: 4 * 1024 * 1024,
        ..HostileOptions::default()
    };
    let oversize = hostile_at(target, network, options.clone()).await;
    for n in 0..8u8 {
        // Four times the honest limit: refused by the frame codec before it is buffered.
        let big = vec![n; 4 * staffroom_node::net::gossip::TRANSMIT_BYTES_MAX];
        let _ = oversize.publish(big).await;
    }
    let mut malformed = hostile_at(target, network, options).await;
    for n in 0..3u8 {
        malformed.publish(vec![n; 300]).await.expect("published");
    }
    malformed
        .wait_for(
            "being blocked",
            |s| matches!(s, Seen::Disconnected(p) if *p == target_peer),
        )
        .await;
    malformed.stop().await;
    oversize.stop().await;
}

/// Floods well-signed entries by a teacher who is no member of the network: not the peer's
/// fault as far as any node can tell (membership may not have reached it yet), so it is not
/// blocked; but it must not crowd out the honest posts. Returns the hostile peer and the
/// number of entries sent.
async fn stranger(
    target: &TestNode,
    network: NetworkId,
    posts: usize,
    stop: CancellationToken,
) -> (Hostile, u64) {
    // Signed beforehand, so that signing (the attacker's own work, on this same machine)
    // does not load the cores the honest nodes run on while they are measured.
    let flood_for = POST_INTERVAL * posts as u32 + Duration::from_secs(3);
    let count = STRANGER_RATE_PER_S * flood_for.as_secs();
    let pool = tokio::task::spawn_blocking(move || {
        let stranger = key(200);
        (0..count)
            .map(|n| {
                let body = fixtures::blog_body(&format!("Stranger {n}"));
                fixtures::signed(&stranger, network, now_ms(), vec![], body).encode()
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("signing");
    let hostile = hostile_at(target, network, HostileOptions::default()).await;
    let mut sent = 0u64;
    let mut pool = pool.into_iter();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while !stop.is_cancelled() {
        tick.tick().await;
        for bytes in pool.by_ref().take((STRANGER_RATE_PER_S / 100) as usize) {
            if hostile.publish(bytes).await.is_ok() {
                sent += 1;
            }
        }
    }
    (hostile, sent)
}

/// Replays the network's membership entries (stored by every node, never gossiped) over and
/// over, forgetting that it sent them. Returns the hostile peer and the replays sent.
async fn replayer(target: &TestNode, net: &TestNetwork, stop: CancellationToken) -> (Hostile, u64) {
    let options = HostileOptions {
        duplicate_cache: Duration::from_millis(1),
        ..HostileOptions::default()
    };
    let hostile = hostile_at(target, net.id, options).await;
    let mut sent = 0;
    while !stop.is_cancelled() {
        for bytes in net.encoded() {
            if hostile.publish(bytes).await.is_ok() {
                sent += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (hostile, sent)
}

fn tcp_port(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("a TCP address")
}

/// Whether `node` lists `peer` as connected, and the invalid messages it counted against it.
async fn peer_state(node: &TestNode, peer: PeerId) -> Option<u32> {
    let peers = node.api().peers().await.expect("peers");
    peers
        .iter()
        .find(|p| p.peer_id == peer)
        .map(|p| p.invalid_messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_nodes_keep_their_latency_and_store_nothing_invalid_under_attack() {
    let _serial = super::one_at_a_time().await;
    init_tracing();
    let net = TestNetwork::open("Hostile");
    let nodes = honest_line(4, &net, |_| {}).await;
    let posts = posts_per_phase();
    let baseline = propagation(&nodes, net.id, "Quiet", posts).await;
    println!("without attackers: {}", baseline.describe());

    let stop = CancellationToken::new();
    let (b, c, d) = (&nodes[1], &nodes[2], &nodes[3]);
    // Idle TCP connections that never finish a handshake, against the last node: they take
    // its slots for connections being set up, and must not disturb the ones it has.
    let mut idle = Vec::new();
    for _ in 0..100 {
        let addr = format!("127.0.0.1:{}", tcp_port(&d.addr()));
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
            idle.push(stream);
        }
    }
    let junk = hostile_at(b, net.id, HostileOptions::default()).await;
    let junk_topics = junk.subscribe_junk(1_000).await;
    let attack = async {
        let measured = async {
            // Let the floods build up before the teacher starts posting.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let latencies = propagation(&nodes, net.id, "Attacked", posts).await;
            stop.cancel();
            latencies
        };
        tokio::join!(
            measured,
            forger(b, net.id, stop.clone()),
            forger(c, net.id, stop.clone()),
            garbler(b, net.id),
            stranger(b, net.id, posts, stop.clone()),
            replayer(c, &net, stop.clone()),
        )
    };
    let (attacked, blocked_b, blocked_c, (), (stranger, strangers), (replayer, replays)) =
        attack.await;
    println!("with attackers:    {}", attacked.describe());
    println!(
        "attackers: {blocked_b} + {blocked_c} forging identities blocked, {strangers} entries \
         by a stranger, {replays} replays, {junk_topics} junk subscriptions, {} idle sockets",
        idle.len()
    );

    let (base_p99, attacked_p99) = (baseline.quantile(0.99), attacked.quantile(0.99));
    println!(
        "p99 ratio (attacked / quiet): {:.2}",
        attacked_p99.as_secs_f64() / base_p99.as_secs_f64()
    );
    assert!(
        attacked_p99 <= 2 * base_p99.max(P99_NOISE_FLOOR),
        "p99 {attacked_p99:?} under attack against {base_p99:?} without"
    );
    // Each forging identity was blocked (`forger` waits for it to be).
    assert!(blocked_b >= 1 && blocked_c >= 1, "forgers were blocked");
    // Breaking no shared rule, the stranger and the replayer stay connected and unblamed.
    assert_eq!(
        peer_state(b, stranger.peer_id).await,
        Some(0),
        "stranger unblamed"
    );
    assert_eq!(
        peer_state(c, replayer.peer_id).await,
        Some(0),
        "replayer unblamed"
    );
    // Honest nodes kept each other, and stored exactly the posts.
    for (i, node) in nodes.iter().enumerate() {
        for neighbour in [i.checked_sub(1), Some(i + 1)].into_iter().flatten() {
            if let Some(other) = nodes.get(neighbour) {
                assert_eq!(peer_state(node, other.node.peer_id).await, Some(0));
            }
        }
        let entries = node.api().status().await.expect("status").entries;
        assert_eq!(
            entries,
            net.entry_count() + 2 * posts as u64,
            "node {i} stored only posts"
        );
    }
    drop(idle);
    for hostile in [junk, stranger, replayer] {
        hostile.stop().await;
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_at_the_clock_edge_are_judged_by_each_nodes_clock_and_blame_nobody() {
    let _serial = super::one_at_a_time().await;
    init_tracing();
    let net = TestNetwork::open("Clock edge");
    // A held entry is stored when due but not gossiped again (gossipsub still remembers its
    // id), so the second node gets it by anti-entropy sync, made frequent here.
    let frequent_sync = |config: &mut NodeConfig| config.sync.interval_secs = 2;
    let nodes = honest_line(2, &net, frequent_sync).await;
    let hostile = hostile_at(&nodes[0], net.id, HostileOptions::default()).await;
    let author = key(9);
    let dated = |ahead_ms: u64, title: &str| {
        let body = fixtures::blog_body(title);
        fixtures::signed(&author, net.id, now_ms() + ahead_ms, vec![], body)
    };
    // Just inside the bound: stored and relayed at once.
    let inside = dated(CLOCK_SKEW_MS_MAX - 2_000, "Just inside the bound");
    // Just beyond it: held until this node's clock catches up, then stored.
    let beyond = dated(CLOCK_SKEW_MS_MAX + 10_000, "Just beyond the bound");
    // Far beyond: neither stored nor held, and still nobody's fault.
    let far = dated(CLOCK_SKEW_MS_MAX + 3_600_000, "An hour beyond");
    for entry in [&inside, &beyond, &far] {
        hostile.publish(entry.encode()).await.expect("published");
    }
    for node in &nodes {
        node.wait_for_entry(&inside.id()).await;
        assert!(node.api().get(&beyond.id()).await.is_err(), "not yet due");
    }
    for node in &nodes {
        node.wait_for_entry(&beyond.id()).await;
        assert!(node.api().get(&far.id()).await.is_err(), "far beyond");
        // The one far beyond is not held either. (The pen counts a released batch until its
        // durable group returns, a moment after the entry shows, so this waits briefly.)
        eventually("the pen empties", || async {
            node.api().status().await.is_ok_and(|s| s.held_entries == 0)
        })
        .await;
    }
    assert_eq!(
        peer_state(&nodes[0], hostile.peer_id).await,
        Some(0),
        "the sender is not blamed for this node's clock"
    );
    assert_eq!(peer_state(&nodes[1], nodes[0].node.peer_id).await, Some(0));
    hostile.stop().await;
    for node in nodes {
        node.stop().await;
    }
}
