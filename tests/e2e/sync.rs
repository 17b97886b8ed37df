//! Catch-up sync: an offline node converges exactly without new gossip; a joining node gets
//! the full history; an interrupted sync resumes without loss or duplication; hostile peers
//! neither corrupt nor stall an honest node.

use std::time::Duration;

use staffroom_node::config::NodeConfig;
use staffroom_node::sync::SyncConfig;
use staffroom_protocol::fixtures::{self, key};
use staffroom_tests::hostile::{Hostile, Seen, SyncLie};
use staffroom_tests::*;

/// Membership entries every node of a [`TestNetwork`] holds.
const M: u64 = TEST_NETWORK_ENTRIES;

/// No sync when peers meet; anti-entropy every `interval_secs` (0: never, so only when asked,
/// and a test sees exactly what one session did); requests time out after `timeout_secs`.
fn triggered_only_by(interval_secs: u64, timeout_secs: u64) -> impl Fn(&mut NodeConfig) + Copy {
    move |config| {
        config.sync = SyncConfig {
            on_connect: false,
            interval_secs,
            request_timeout_secs: timeout_secs,
        };
    }
}

fn on_demand_only(config: &mut NodeConfig) {
    triggered_only_by(0, 30)(config)
}

/// A node that joins `network` and writes `count` posts while connected to no one, then dials
/// `peer`: gossip never saw those posts, so only sync can carry them.
async fn written_apart_then_dialling(
    peer: &TestNode,
    network_net: &TestNetwork,
    count: u64,
    adjust: impl FnOnce(&mut NodeConfig),
) -> TestNode {
    let node = TestNode::start_with(&[], adjust).await;
    node.adopt(network_net).await;
    node.post_many(&key(60), network_net.id, count).await;
    assert_eq!(peer.entry_count().await, M, "nothing reached the peer yet");
    node.api().dial(&peer.addr().to_string()).await.unwrap();
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_node_catches_up_exactly_without_new_gossip() {
    let (mut nodes, network) = super::replication::three_nodes().await;
    let c = nodes.pop().expect("three nodes");
    let c_dir = c.stop().await;
    let (a, b) = (&nodes[0], &nodes[1]);
    // While C is away, A and B exchange 500 posts.
    let mut ids = a.post_many(&key(51), network, 250).await;
    ids.extend(b.post_many(&key(52), network, 250).await);
    a.wait_for_count(M + 500).await;
    b.wait_for_count(M + 500).await;
    // Gossip keeps messages for five heartbeats; after that only sync can deliver them.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let c = TestNode::restart(c_dir, &[a.addr(), b.addr()]).await;
    c.wait_for_count(M + 500).await;
    for id in [ids[0], ids[249], ids[250], ids[499]] {
        c.api().get(&id).await.expect("caught up");
    }
    // Converged: a further sync finds nothing to move, in either direction.
    for report in c.api().sync(Some(network)).await.unwrap().sessions {
        assert_eq!(report.error, None, "{report:?}");
        assert_eq!(
            (report.entries_received, report.entries_sent),
            (0, 0),
            "{report:?}"
        );
        assert_eq!(
            report.rounds, 1,
            "equal sets settle in one round: {report:?}"
        );
        assert!(
            report.bytes_sent + report.bytes_received < 200,
            "{report:?}"
        );
    }
    assert_eq!(c.entry_count().await, M + 500);
    for node in nodes.into_iter().chain([c]) {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_syncs_periodically_without_any_trigger() {
    init_tracing();
    // No sync on connect: only the periodic round can move what B wrote before meeting A.
    let periodic = triggered_only_by(1, 30);
    let a = TestNode::start_with(&[], periodic).await;
    let network_net = TestNetwork::open("Periodic");
    a.adopt(&network_net).await;
    let b = written_apart_then_dialling(&a, &network_net, 25, periodic).await;
    a.wait_for_count(M + 25).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_node_receives_the_full_history_and_nothing_else() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let network_net = TestNetwork::open("History");
    a.adopt(&network_net).await;
    let network = network_net.id;
    let private_net = TestNetwork::open("Private");
    a.adopt(&private_net).await;
    let private = private_net.id;
    a.post_many(&key(53), network, 300).await;
    let secret = a.post_many(&key(53), private, 5).await;

    let d = TestNode::start(&[a.addr()]).await;
    eventually("D connected to A", || async {
        !d.api().peers().await.unwrap().is_empty()
    })
    .await;
    d.adopt(&network_net).await;
    d.wait_for_count(M + 300).await;
    assert_eq!(
        d.api().get(&secret[0]).await.unwrap_err().code(),
        Some("not_found"),
        "entries of a network D did not join never reach it"
    );
    d.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_sync_resumes_without_loss_or_duplication() {
    init_tracing();
    let a = TestNode::start_with(&[], on_demand_only).await;
    let network_net = TestNetwork::open("Resume");
    a.adopt(&network_net).await;
    let network = network_net.id;
    let teacher = key(54);
    let entries: Vec<_> = (0..400)
        .map(|n| {
            fixtures::signed(
                &teacher,
                network,
                now_ms() - 500_000 + n,
                vec![],
                fixtures::blog_body(&format!("E{n}")),
            )
        })
        .collect();
    for e in &entries {
        a.api().submit(e.encode()).await.unwrap();
    }
    // C holds what an interrupted session had already stored: every other entry, and one
    // entry of its own that A lacks (written while not connected, so gossip cannot carry it).
    let c = TestNode::start_with(&[], on_demand_only).await;
    c.adopt(&network_net).await;
    for e in entries.iter().step_by(2) {
        c.api().submit(e.encode()).await.unwrap();
    }
    let own = fixtures::signed(
        &key(55),
        network,
        now_ms(),
        vec![],
        fixtures::blog_body("C's own"),
    );
    c.api().submit(own.encode()).await.unwrap();
    c.api().dial(&a.addr().to_string()).await.unwrap();
    c.wait_for_network_peers(network, 1).await;

    let reports = c.api().sync(Some(network)).await.unwrap().sessions;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report.error, None);
    assert_eq!(
        report.entries_received, 200,
        "only what was missing is fetched"
    );
    assert_eq!(report.entries_sent, 1, "and what A lacked is pushed");
    assert_eq!(report.entries_undelivered, 0);
    assert_eq!(c.entry_count().await, M + 401);
    assert_eq!(a.entry_count().await, M + 401);
    // Reconciliation bytes stay small beside the entries moved (~200 ids of 32 bytes differ).
    let reconcile = report.reconcile_bytes_sent + report.reconcile_bytes_received;
    assert!(reconcile < 200 * 32 * 4, "{reconcile} reconciliation bytes");
    c.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_claiming_ids_it_cannot_produce_does_not_stall_sync() {
    init_tracing();
    let a = TestNode::start_with(&[], on_demand_only).await;
    let network_net = TestNetwork::open("Liars");
    a.adopt(&network_net).await;
    let network = network_net.id;
    a.post_many(&key(56), network, 40).await;
    let b = TestNode::start_with(&[a.addr()], on_demand_only).await;
    b.adopt(&network_net).await;
    let claims: Vec<[u8; 32]> = (0u8..20).map(|i| [i; 32]).collect();
    let mut liar = Hostile::connect_lying(a.addr(), network, SyncLie::Claims(claims)).await;
    liar.wait_for("A's subscription", |s| matches!(s, Seen::Subscribed(_)))
        .await;
    a.wait_for_network_peers(network, 2).await;

    let started = std::time::Instant::now();
    let reports = a.api().sync(Some(network)).await.unwrap().sessions;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "sync did not stall"
    );
    let liar_report = reports
        .iter()
        .find(|r| r.peer == liar.peer_id)
        .expect("synced with liar");
    assert_eq!(liar_report.entries_undelivered, 20, "{liar_report:?}");
    assert_eq!(liar_report.entries_received, 0);
    let honest = reports
        .iter()
        .find(|r| r.peer == b.node.peer_id)
        .expect("synced with B");
    assert_eq!(honest.error, None);
    assert_eq!(honest.entries_sent, 40, "the honest peer still catches up");
    assert_eq!(
        a.entry_count().await,
        M + 40,
        "nothing claimed was invented"
    );
    liar.stop().await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_forged_entries_is_cut_off_and_nothing_is_stored() {
    init_tracing();
    let a = TestNode::start_with(&[], on_demand_only).await;
    let network_net = TestNetwork::open("Forgers");
    a.adopt(&network_net).await;
    let network = network_net.id;
    a.post_many(&key(57), network, 30).await;
    let forged: Vec<Vec<u8>> = (0..5)
        .map(|n| {
            let mut e = fixtures::signed(
                &key(58),
                network,
                now_ms(),
                vec![],
                fixtures::blog_body(&format!("F{n}")),
            );
            e.author = staffroom_protocol::AuthorId(key(59).verifying_key().to_bytes());
            e.encode()
        })
        .collect();
    let mut forger = Hostile::connect_lying(a.addr(), network, SyncLie::Serves(forged)).await;
    forger
        .wait_for("A's subscription", |s| matches!(s, Seen::Subscribed(_)))
        .await;
    a.wait_for_network_peers(network, 1).await;

    let reports = a.api().sync(Some(network)).await.unwrap().sessions;
    let report = &reports[0];
    let error = report.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("misbehaved") && error.contains("bad signature"),
        "{report:?}"
    );
    assert_eq!(report.entries_received, 0);
    forger
        .wait_for("A cutting it off", |s| matches!(s, Seen::Disconnected(_)))
        .await;
    assert_eq!(a.entry_count().await, M + 30, "no forged entry stored");
    // The forger may see the close before A's event loop has processed its own side of it.
    eventually("A dropping the forger", || async {
        a.api().peers().await.unwrap().is_empty()
    })
    .await;
    forger.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stalls_times_out_and_the_others_still_sync() {
    init_tracing();
    let impatient = triggered_only_by(0, 1);
    let a = TestNode::start_with(&[], impatient).await;
    let network_net = TestNetwork::open("Stalls");
    a.adopt(&network_net).await;
    let network = network_net.id;
    let b = written_apart_then_dialling(&a, &network_net, 10, on_demand_only).await;
    let mut silent = Hostile::connect_lying(a.addr(), network, SyncLie::Silent).await;
    silent
        .wait_for("A's subscription", |s| matches!(s, Seen::Subscribed(_)))
        .await;
    a.wait_for_network_peers(network, 2).await;

    let started = std::time::Instant::now();
    let reports = a.api().sync(Some(network)).await.unwrap().sessions;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let stalled = reports
        .iter()
        .find(|r| r.peer == silent.peer_id)
        .expect("tried the silent peer");
    let error = stalled.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("request to peer") && error.to_lowercase().contains("timeout"),
        "{stalled:?}"
    );
    let honest = reports
        .iter()
        .find(|r| r.peer == b.node.peer_id)
        .expect("synced with B");
    assert_eq!(
        (honest.error.as_deref(), honest.entries_received),
        (None, 10)
    );
    assert_eq!(a.entry_count().await, M + 10);
    silent.stop().await;
    b.stop().await;
    a.stop().await;
}
