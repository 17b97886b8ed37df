//! Helpers for end-to-end tests: real nodes on 127.0.0.1 with ephemeral ports and their own
//! temporary data directories, and polling with deadlines instead of sleeps.

pub mod cli_process;
pub mod hostile;
pub mod hostile_files;
#[cfg(feature = "netns")]
pub mod netns;

use std::future::Future;
use std::time::Duration;

use libp2p::Multiaddr;
use staffroom_node::api::ApiClient;
use staffroom_node::config::NodeConfig;
use staffroom_node::RunningNode;
use staffroom_protocol::{EntryId, NetworkId};

/// How long any one expectation may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A node under test, with the temporary directory that holds its data.
pub struct TestNode {
    pub node: RunningNode,
    pub dir: tempfile::TempDir,
}

impl TestNode {
    /// Starts a node in a fresh temporary directory, dialling `peers`.
    pub async fn start(peers: &[Multiaddr]) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = staffroom_node::start(config(dir.path(), peers))
            .await
            .expect("node starts");
        TestNode { node, dir }
    }

    /// Starts a node in a fresh temporary directory, with `adjust` applied to its config.
    pub async fn start_with(peers: &[Multiaddr], adjust: impl FnOnce(&mut NodeConfig)) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(dir.path(), peers);
        adjust(&mut config);
        let node = staffroom_node::start(config).await.expect("node starts");
        TestNode { node, dir }
    }

    /// Posts `count` blog posts by `key` through the API; returns their ids.
    pub async fn post_many(
        &self,
        key: &staffroom_protocol::SigningKey,
        network: NetworkId,
        count: u64,
    ) -> Vec<EntryId> {
        let api = self.api();
        let mut ids = Vec::new();
        for n in 0..count {
            let entry = staffroom_protocol::fixtures::signed(
                key,
                network,
                now_ms() - 1_000_000 + n,
                vec![],
                staffroom_protocol::fixtures::blog_body(&format!(
                    "Post {n} by {}",
                    self.node.peer_id
                )),
            );
            ids.push(api.submit(entry.encode()).await.expect("accepted").id);
        }
        ids
    }

    /// Follows `network`, storing its membership entries.
    pub async fn adopt(&self, network: &TestNetwork) {
        self.api()
            .adopt_network(&network.encoded())
            .await
            .expect("network adopted");
    }

    /// Entries this node stores.
    pub async fn entry_count(&self) -> u64 {
        self.api().status().await.expect("status").entries
    }

    /// Waits until this node stores exactly `count` entries.
    pub async fn wait_for_count(&self, count: u64) {
        let api = self.api();
        eventually(&format!("{count} entries on {}", self.node.peer_id), || {
            let api = api.clone();
            async move { api.status().await.is_ok_and(|s| s.entries == count) }
        })
        .await;
    }

    /// Starts a node on an existing data directory (filled by [`fill_store`], say), with
    /// `adjust` applied to its config.
    pub async fn start_in(
        dir: tempfile::TempDir,
        peers: &[Multiaddr],
        adjust: impl FnOnce(&mut NodeConfig),
    ) -> TestNode {
        let mut config = config(dir.path(), peers);
        adjust(&mut config);
        let node = staffroom_node::start(config).await.expect("node starts");
        TestNode { node, dir }
    }

    /// Stops the node, keeping its data directory.
    pub async fn stop(self) -> tempfile::TempDir {
        self.node.stop().await.expect("node stops cleanly");
        self.dir
    }

    /// Starts a node again on an existing data directory.
    pub async fn restart(dir: tempfile::TempDir, peers: &[Multiaddr]) -> TestNode {
        let node = staffroom_node::start(config(dir.path(), peers))
            .await
            .expect("node restarts");
        TestNode { node, dir }
    }

    pub fn api(&self) -> ApiClient {
        self.node.api()
    }

    pub fn addr(&self) -> Multiaddr {
        self.node.loopback_addr().expect("listens on 127.0.0.1")
    }

    /// Waits until this node stores `id`.
    pub async fn wait_for_entry(&self, id: &EntryId) {
        let api = self.api();
        let id = *id;
        eventually(
            &format!("entry {} on {}", id.short(), self.node.peer_id),
            || {
                let api = api.clone();
                async move { api.get(&id).await.is_ok() }
            },
        )
        .await;
    }

    /// Waits until the node's search index has caught up with its store (a node started on
    /// a store written directly builds it first), for at most `deadline`.
    pub async fn wait_for_search_index(&self, deadline: Duration) {
        let api = self.api();
        let query = staffroom_node::api::search::SearchQuery {
            limit: Some(1),
            ..Default::default()
        };
        eventually_within("the search index", deadline, || {
            let (api, query) = (api.clone(), query.clone());
            async move { api.search(&query).await.is_ok_and(|view| !view.behind) }
        })
        .await;
    }

    /// Waits until at least `count` connected peers are subscribed to `network`.
    pub async fn wait_for_network_peers(&self, network: NetworkId, count: usize) {
        let api = self.api();
        eventually(
            &format!("{count} peers in network on {}", self.node.peer_id),
            || {
                let api = api.clone();
                async move {
                    let peers = api.peers().await.unwrap_or_default();
                    peers
                        .iter()
                        .filter(|p| p.networks.contains(&network))
                        .count()
                        >= count
                }
            },
        )
        .await;
    }
}

/// Teachers `key(1)` to `key(MEMBER_SEEDS_MAX)` are members of every [`TestNetwork`].
pub const MEMBER_SEEDS_MAX: u8 = 80;
/// Entries of every [`TestNetwork`]: its founding entry and one addition per member.
pub const TEST_NETWORK_ENTRIES: u64 = 1 + MEMBER_SEEDS_MAX as u64;

/// A network for tests that are not about membership: open (any node may sync it), founded
/// by `key(250)`, with the teachers `key(1)` to `key(80)` as members. Nodes follow it with
/// [`TestNode::adopt`]; its membership entries count among a node's stored entries.
pub struct TestNetwork {
    pub id: NetworkId,
    pub entries: Vec<staffroom_protocol::Entry>,
}

impl TestNetwork {
    pub fn open(name: &str) -> TestNetwork {
        use staffroom_protocol::fixtures::{key, network_with_policy};
        let members: Vec<_> = (1..=MEMBER_SEEDS_MAX).map(key).collect();
        let members: Vec<_> = members.iter().collect();
        // A fixed time (2026-01-01) with the name in it: one name, one network, in any test.
        let spread = name
            .bytes()
            .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b.into()));
        let t = 1_767_225_600_000 + spread % 1_000_000;
        let policy = staffroom_protocol::membership::Policy::Open;
        let entries = network_with_policy(&key(250), policy, &members, &[], t);
        TestNetwork {
            id: entries[0].network,
            entries,
        }
    }

    /// Membership entries: what a node holds for the network before any post.
    pub fn entry_count(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn encoded(&self) -> Vec<Vec<u8>> {
        self.entries.iter().map(|e| e.encode()).collect()
    }
}

/// A node config for tests: loopback only, ephemeral ports, no mDNS.
pub fn config(dir: &std::path::Path, peers: &[Multiaddr]) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
        peers: peers.to_vec(),
        api_listen: "127.0.0.1:0".parse().expect("valid socket address"),
        mdns: false,
        dht: true,
        api_tls: false,
        sync: staffroom_node::sync::SyncConfig::default(),
        files: staffroom_node::files::FilesConfig::default(),
        relay: staffroom_node::net::relay::RelayConfig::default(),
        store: staffroom_node::store::StoreConfig::default(),
        web: staffroom_node::web::WebConfig {
            listen: "127.0.0.1:0".parse().expect("valid socket address"),
            ..staffroom_node::web::WebConfig::default()
        },
        clock: staffroom_node::clock::Clock::system(),
    }
}

/// Polls `check` until it is true, failing the test after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, DEADLINE, check).await
}

/// [`eventually`] with a deadline of its own (a file transfer, a discovery round).
pub async fn eventually_within<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while start.elapsed() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {deadline:?} waiting for {what}");
}

/// The numeric fields of `/proc/PROCESS/status` (`process`: a pid, or `self`), by name with
/// its colon (`VmRSS:`): each line's first number (sizes are in KiB). None if unreadable.
pub fn proc_status(process: &str) -> Option<std::collections::HashMap<String, u64>> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let fields = status.lines().filter_map(|line| {
        let (name, value) = line.split_once(char::is_whitespace)?;
        let value = value.split_whitespace().next()?.parse().ok()?;
        Some((name.to_owned(), value))
    });
    Some(fields.collect())
}

/// Milliseconds since the Unix epoch, for entries created now.
pub fn now_ms() -> u64 {
    staffroom_node::ingest::now_ms()
}

/// Writes `net`'s membership and `count` signed posts by teacher `seed` into the store of the
/// data directory `dir`, as a node that had received them would hold them. Signing and
/// verifying run on every core; the store is flushed and closed before this returns.
pub async fn fill_store(dir: &std::path::Path, net: &TestNetwork, count: u64, seed: u8) {
    fill_store_with(dir, net, count, seed, |n| {
        staffroom_protocol::fixtures::blog_body(&format!("Post {n} of a large network"))
    })
    .await;
}

/// [`fill_store`] with post `n`'s body made by `body`. Returns the entries' encoded bytes
/// in all (membership included).
pub async fn fill_store_with(
    dir: &std::path::Path,
    net: &TestNetwork,
    count: u64,
    seed: u8,
    body: impl Fn(u64) -> staffroom_protocol::Body + Sync,
) -> u64 {
    use staffroom_node::store::{NetworkRecord, Store};
    let network = net.id;
    let store = Store::open(&staffroom_node::config::DataDir::new(dir).store()).expect("store");
    let record = NetworkRecord {
        id: network,
        name: "Large".into(),
        joined_at_ms: 0,
    };
    store.join_network(record).await.expect("join");
    let membership: Vec<_> = net
        .encoded()
        .iter()
        .map(|e| staffroom_protocol::verify_entry(e, now_ms()).expect("valid"))
        .collect();
    let mut bytes: u64 = membership.iter().map(|v| v.bytes().len() as u64).sum();
    store.insert(membership).await.expect("membership stored");
    let key = staffroom_protocol::fixtures::key(seed);
    let body = &body;
    let t0 = now_ms() - count - 1_000_000;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    const BATCH: u64 = 10_000;
    for start in (0..count).step_by(BATCH as usize) {
        let end = (start + BATCH).min(count);
        let per = (end - start).div_ceil(threads);
        let verified: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let key = &key;
                    s.spawn(move || {
                        let from = start + t * per;
                        (from..(from + per).min(end))
                            .map(|n| {
                                let e = staffroom_protocol::fixtures::signed(
                                    key,
                                    network,
                                    t0 + n,
                                    vec![],
                                    body(n),
                                );
                                staffroom_protocol::verify_entry(&e.encode(), now_ms())
                                    .expect("valid")
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("signer"))
                .collect()
        });
        bytes += verified.iter().map(|v| v.bytes().len() as u64).sum::<u64>();
        store.insert(verified).await.expect("stored");
    }
    store.flush().await.expect("flushed");
    bytes
}
