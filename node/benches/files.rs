//! File transfer between real nodes on loopback, beside two baselines measured in the same
//! run on the same bytes:
//!
//! - plain TCP: one tokio task writes the file to another over a loopback socket;
//! - bare libp2p request-response (TCP + Noise + Yamux), 256 KiB chunks, one request in
//!   flight, with a raw length-prefixed codec (no serialisation cost);
//! - Staffroom, one source: node B fetches a file from node A — verified per 16 KiB group,
//!   written in place, persisted, checked whole and moved into the store;
//! - Staffroom, two sources: node C fetches the same file from A and B at once.
//!
//! All nodes share this machine's cores, so the two-source run measures the CPU more than the
//! splitting. A last pair of runs gives each source an uplink of 128 MiB/s (the node's
//! `files.serve_bytes_per_sec`), as separate schools' links would be, and compares one source
//! with two there.
//!
//! Run: `cargo bench -p staffroom-node --bench files [-- MiB]` (default 256).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, StreamProtocol, Swarm};
use staffroom_node::api::ApiClient;
use staffroom_node::config::NodeConfig;
use staffroom_node::files::fetcher::FileState;
use staffroom_protocol::fixtures::{key, open_network_of};
use staffroom_protocol::{Body, FileRef, NetworkId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const MIB: usize = 1024 * 1024;
const CHUNK_BYTES: usize = 256 * 1024;

fn main() {
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(256);
    let bytes = file_bytes(mib * MIB);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("file transfer benchmark: {mib} MiB on loopback, best of 3 runs each");
    let tcp = best_of(3, || runtime.block_on(plain_tcp(&bytes)));
    let rr = best_of(3, || runtime.block_on(bare_request_response(&bytes)));
    let (one, two) = runtime.block_on(staffroom(&bytes, 0, 3));
    let cap = 128 * MIB as u64;
    let (one_capped, two_capped) = runtime.block_on(staffroom(&bytes, cap, 1));
    let rate = |d: Duration| bytes.len() as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{:<44} {:>9} {:>12} {:>10}",
        "transfer", "MB/s", "vs bare r-r", "vs TCP"
    );
    for (name, took) in [
        ("plain TCP (tokio, loopback)", tcp),
        ("bare libp2p request-response (256 KiB, 1)", rr),
        ("Staffroom, verified, one source", one),
        ("Staffroom, verified, two sources", two),
    ] {
        println!(
            "{name:<44} {:>9.0} {:>11.2}x {:>9.2}x",
            rate(took),
            rr.as_secs_f64() / took.as_secs_f64(),
            tcp.as_secs_f64() / took.as_secs_f64()
        );
    }
    println!(
        "two sources / one source: {:.2}x",
        one.as_secs_f64() / two.as_secs_f64()
    );
    println!(
        "each source's uplink capped at {} MiB/s: one source {:.0} MB/s, two sources {:.0} MB/s: {:.2}x",
        cap / MIB as u64,
        rate(one_capped),
        rate(two_capped),
        one_capped.as_secs_f64() / two_capped.as_secs_f64()
    );
}

fn best_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap()
}

fn file_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"benchmark file")
        .finalize_xof()
        .fill(&mut out);
    out
}

async fn plain_tcp(bytes: &[u8]) -> Duration {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let len = bytes.len();
    let reader = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut got = 0;
        while got < len {
            got += socket.read(&mut buf).await.unwrap();
        }
    });
    let start = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    for chunk in bytes.chunks(CHUNK_BYTES) {
        socket.write_all(chunk).await.unwrap();
    }
    reader.await.unwrap();
    start.elapsed()
}

/// Requests are a chunk index; responses are raw bytes, length-prefixed.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = u64;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<u64>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut b = [0u8; 8];
        io.read_exact(&mut b).await?;
        Ok(u64::from_be_bytes(b))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut b = [0u8; 4];
        io.read_exact(&mut b).await?;
        let mut out = vec![0u8; u32::from_be_bytes(b) as usize];
        io.read_exact(&mut out).await?;
        Ok(out)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: u64,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&r.to_be_bytes()).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&(r.len() as u32).to_be_bytes()).await?;
        io.write_all(&r).await
    }
}

type RawBehaviour = request_response::Behaviour<RawCodec>;

fn raw_swarm() -> Swarm<RawBehaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(StreamProtocol::new("/bench/raw/1"), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(60)),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

async fn bare_request_response(bytes: &[u8]) -> Duration {
    let mut server = raw_swarm();
    server
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let data: Arc<Vec<u8>> = Arc::new(bytes.to_vec());
    let served = data.clone();
    let server_task = tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) = server.select_next_some().await
            {
                let from = request as usize * CHUNK_BYTES;
                let chunk = served[from..(from + CHUNK_BYTES).min(served.len())].to_vec();
                let _ = server.behaviour_mut().send_response(channel, chunk);
            }
        }
    });
    let mut client = raw_swarm();
    client.dial(addr).unwrap();
    let peer = loop {
        if let SwarmEvent::ConnectionEstablished { peer_id, .. } = client.select_next_some().await {
            break peer_id;
        }
    };
    let chunks = bytes.len().div_ceil(CHUNK_BYTES) as u64;
    let start = Instant::now();
    let mut got = 0usize;
    for n in 0..chunks {
        client.behaviour_mut().send_request(&peer, n);
        loop {
            match client.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                }) => {
                    got += response.len();
                    break;
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    error, ..
                }) => {
                    panic!("request failed: {error}")
                }
                _ => {}
            }
        }
    }
    let took = start.elapsed();
    assert_eq!(got, data.len());
    server_task.abort();
    took
}

fn config(dir: &std::path::Path, peers: Vec<Multiaddr>, serve_cap: u64) -> NodeConfig {
    let mut config = NodeConfig {
        data_dir: dir.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers,
        api_listen: "127.0.0.1:0".parse().unwrap(),
        mdns: false,
        dht: true,
        web: staffroom_node::web::WebConfig {
            enabled: false,
            ..Default::default()
        },
        ..NodeConfig::default()
    };
    // Fetch only when the benchmark asks, so the clock starts then.
    config.files.eager = false;
    config.files.file_bytes_max = 1 << 40;
    config.files.serve_bytes_per_sec = serve_cap;
    config
}

struct Node {
    node: staffroom_node::RunningNode,
    _dir: tempfile::TempDir,
}

async fn start(peers: Vec<Multiaddr>, serve_cap: u64) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let node = staffroom_node::start(config(dir.path(), peers, serve_cap))
        .await
        .unwrap();
    Node { node, _dir: dir }
}

async fn follow(api: &ApiClient) -> NetworkId {
    let entries: Vec<Vec<u8>> = open_network_of(1..=2).iter().map(|e| e.encode()).collect();
    api.adopt_network(&entries).await.unwrap().id
}

async fn upload(api: &ApiClient, path: &std::path::Path) -> FileRef {
    let up = api.upload_file(path, Arc::new(|_| {})).await.unwrap();
    FileRef {
        name: "lesson.bin".into(),
        media_type: "application/octet-stream".into(),
        size_bytes: up.size_bytes,
        root: up.root,
    }
}

/// CPU time this process has used (user + system), from `/proc/self/stat` (Linux; in clock
/// ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Times one fetch of `entry`'s file by `api`'s node, from the ask to the file complete.
async fn fetch(api: &ApiClient, entry: &staffroom_protocol::Entry) -> Duration {
    let (start, cpu) = (Instant::now(), cpu_time());
    api.fetch_resource_files(&entry.id()).await.unwrap();
    loop {
        let files = api.resource_files(&entry.id(), false).await.unwrap();
        if files.files[0].progress.state == FileState::Complete {
            let sources = files.files[0].progress.received_from.len();
            if sources == 0 {
                println!("  (no sources recorded: {:?})", files.files[0].progress);
            }
            let busy = (cpu_time() - cpu).as_secs_f64() / start.elapsed().as_secs_f64();
            println!(
                "  fetched from {sources} source(s) in {:?}, {busy:.1} cores busy (all nodes)",
                start.elapsed()
            );
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_entry(api: &ApiClient, id: &staffroom_protocol::EntryId) {
    for _ in 0..2000 {
        if api.get(id).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("entry never arrived");
}

/// One source (A to B), then two (A and A2 to C), best of `runs`; each run starts from an
/// empty receiver. Sources serve at most `serve_cap` bytes/s each (0: no cap).
async fn staffroom(bytes: &[u8], serve_cap: u64, runs: usize) -> (Duration, Duration) {
    let file_dir = tempfile::tempdir().unwrap();
    let path = file_dir.path().join("lesson.bin");
    std::fs::write(&path, bytes).unwrap();
    let a = start(vec![], serve_cap).await;
    let a2 = start(vec![], serve_cap).await;
    let (api_a, api_a2) = (a.node.api(), a2.node.api());
    let network = follow(&api_a).await;
    follow(&api_a2).await;
    let file = upload(&api_a, &path).await;
    upload(&api_a2, &path).await;
    let mut body = staffroom_protocol::fixtures::resource_body("Benchmark video");
    if let Body::Resource(r) = &mut body {
        r.files = vec![file];
    }
    let entry = staffroom_protocol::fixtures::signed(
        &key(1),
        network,
        staffroom_node::ingest::now_ms(),
        vec![],
        body,
    );
    api_a.submit(entry.encode()).await.unwrap();
    api_a2.submit(entry.encode()).await.unwrap();
    let addrs = vec![
        a.node.loopback_addr().unwrap(),
        a2.node.loopback_addr().unwrap(),
    ];
    let (mut one, mut two) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let b = start(addrs[..1].to_vec(), 0).await;
        let api_b = b.node.api();
        follow(&api_b).await;
        wait_entry(&api_b, &entry.id()).await;
        wait_peers(&api_b, network, 1).await;
        one = one.min(fetch(&api_b, &entry).await);
        b.node.stop().await.unwrap();
        let c = start(addrs.clone(), 0).await;
        let api_c = c.node.api();
        follow(&api_c).await;
        wait_entry(&api_c, &entry.id()).await;
        wait_peers(&api_c, network, 2).await;
        two = two.min(fetch(&api_c, &entry).await);
        c.node.stop().await.unwrap();
    }
    a.node.stop().await.unwrap();
    a2.node.stop().await.unwrap();
    (one, two)
}

async fn wait_peers(api: &ApiClient, network: NetworkId, count: usize) {
    for _ in 0..2000 {
        let peers = api.peers().await.unwrap_or_default();
        if peers
            .iter()
            .filter(|p| p.networks.contains(&network))
            .count()
            >= count
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("peers never subscribed");
}
