//! Staffroom nodes in this process, each a whole node (sled store, search index, client API)
//! on 127.0.0.1, joined to one network over the benchmark's edges. Posts go in through the
//! origin node's API; delivery is timed when another node has stored the entry durably.

use std::collections::HashMap;

use libp2p::Multiaddr;
use staffroom_protocol::fixtures::key;
use staffroom_protocol::{BlogPost, Body, Entry, EntryId, NetworkId};
use staffroom_tests::{config, now_ms, TestNetwork, TestNode};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Delivery;

pub struct StaffroomNet {
    pub nodes: Vec<TestNode>,
    /// The origin's client, kept: a new one would first ask the node who it is.
    origin: staffroom_node::api::ApiClient,
    pub network: NetworkId,
    collectors: Vec<tokio::task::JoinHandle<()>>,
    /// The sequence number of each post by its entry id, read by the collectors.
    ids: std::sync::Arc<std::sync::Mutex<HashMap<EntryId, u64>>>,
}

impl StaffroomNet {
    /// Starts `n` nodes, the later node of each edge dialling the earlier one, and has each
    /// follow the benchmark's network. Returns once every node has started; the mesh may not
    /// have formed yet.
    pub async fn start(
        n: usize,
        edges: &[(usize, usize)],
        deliveries: mpsc::UnboundedSender<Delivery>,
    ) -> StaffroomNet {
        let network = TestNetwork::open("propagation");
        let mut nodes: Vec<TestNode> = Vec::new();
        for i in 0..n {
            let peers: Vec<Multiaddr> = edges
                .iter()
                .filter(|(later, _)| *later == i)
                .map(|(_, earlier)| nodes[*earlier].addr())
                .collect();
            let dir = tempfile::tempdir().expect("temp dir");
            let mut config = config(dir.path(), &peers);
            // The benchmark's edges only: no peers found through the DHT.
            config.dht = false;
            let node = staffroom_node::start(config).await.expect("node starts");
            let node = TestNode { node, dir };
            node.adopt(&network).await;
            nodes.push(node);
        }
        let ids = std::sync::Arc::default();
        let collectors = nodes
            .iter()
            .enumerate()
            .skip(1)
            .map(|(index, node)| collect(index, node, &ids, deliveries.clone()))
            .collect();
        StaffroomNet {
            origin: nodes[0].api(),
            nodes,
            network: network.id,
            collectors,
            ids,
        }
    }

    /// Waits until every node sees its neighbours subscribed to the network.
    pub async fn wait_for_mesh(&self, degrees: &[usize]) {
        for (node, degree) in self.nodes.iter().zip(degrees) {
            node.wait_for_network_peers(self.network, *degree).await;
        }
    }

    /// A post of about `size` encoded bytes, numbered `seq`.
    pub fn post(&self, seq: u64, size: usize) -> Entry {
        let entry = |text: String| {
            let body = Body::BlogPost(BlogPost {
                title: format!("Propagation {seq}"),
                body_md: text,
                tags: vec![],
            });
            staffroom_protocol::fixtures::signed(
                &key(7),
                self.network,
                now_ms() - 1_000,
                vec![],
                body,
            )
        };
        let overhead = entry(String::new()).encode().len();
        let filler = format!("Post {seq}. ")
            .chars()
            .cycle()
            .take(size.saturating_sub(overhead))
            .collect();
        entry(filler)
    }

    /// The origin's API client.
    pub fn origin(&self) -> &staffroom_node::api::ApiClient {
        &self.origin
    }

    /// Submits `entry` through the origin's API, noting its number for the collectors.
    pub async fn submit(&self, seq: u64, entry: &Entry) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(entry.id(), seq);
        self.origin
            .submit(entry.encode())
            .await
            .expect("post accepted");
    }

    /// Gossip copies received by every node but the origin so far.
    pub async fn copies(&self) -> u64 {
        let mut total = 0;
        for node in &self.nodes[1..] {
            total += node
                .node
                .net
                .status()
                .await
                .expect("status")
                .gossip_copies_received;
        }
        total
    }

    pub async fn stop(self) {
        for collector in self.collectors {
            collector.abort();
        }
        for node in self.nodes {
            node.stop().await;
        }
    }
}

/// Reports each numbered post `node` stores.
fn collect(
    index: usize,
    node: &TestNode,
    ids: &std::sync::Arc<std::sync::Mutex<HashMap<EntryId, u64>>>,
    deliveries: mpsc::UnboundedSender<Delivery>,
) -> tokio::task::JoinHandle<()> {
    let mut stored = node.node.watch_stored();
    let ids = ids.clone();
    tokio::spawn(async move {
        loop {
            match stored.recv().await {
                Ok(ingested) => {
                    let at = Instant::now();
                    let seq = ids
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&ingested.id)
                        .copied();
                    if let Some(seq) = seq {
                        let _ = deliveries.send(Delivery {
                            node: index,
                            seq,
                            at,
                        });
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    eprintln!("node {index}: the collector missed {missed} stored events");
                }
                Err(_) => return,
            }
        }
    })
}
