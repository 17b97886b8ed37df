//! The API under abuse by a local user: stalled request bodies and idle sockets beyond the
//! node's descriptor limit must not keep a teacher out (`/v1/status` within 100 ms).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use staffroom_node::api::ApiClient;
use staffroom_tests::cli_process::{staffroom_ok, NodeProcess};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::cli::wait_for;

/// More stalled bodies than the API has slots (64).
const STALLED_POSTS: usize = 100;
/// More idle sockets than the node has descriptors.
const IDLE_SOCKETS: usize = 1_100;
const NODE_OPEN_FILES_MAX: u32 = 1_024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_and_idle_sockets_leave_status_answering_within_100_ms() {
    let dir = tempfile::tempdir().unwrap();
    staffroom_ok(dir.path(), &["init"], None);
    let node = NodeProcess::start_with_open_files_max(dir.path(), NODE_OPEN_FILES_MAX, &[]);
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        wait_for(&path, &["status", "--json"], "the API", |_| true)
    })
    .await
    .unwrap();
    let api = ApiClient::from_data_dir(dir.path()).unwrap();
    let addr: SocketAddr = api.addr().parse().unwrap();
    staffroom_node::fd_limit::raise();

    let mut held = Vec::new();
    for _ in 0..STALLED_POSTS {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"POST /v1/entries HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nten bytes.",
            )
            .await
            .unwrap();
        held.push(stream);
    }
    let slowest = time_status_calls(&api, 20).await;
    assert!(
        slowest < Duration::from_millis(100),
        "status took {slowest:?} with stalled bodies"
    );
    for _ in 0..IDLE_SOCKETS {
        held.push(
            TcpStream::connect(addr)
                .await
                .expect("the node keeps accepting"),
        );
    }
    let slowest = time_status_calls(&api, 20).await;
    assert!(
        slowest < Duration::from_millis(100),
        "status took {slowest:?} with idle sockets too"
    );

    let pid = node.pid().unwrap();
    let descriptors = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert!(
        descriptors < 512,
        "the node holds {descriptors} descriptors: its API connections are not capped"
    );
    drop(held);
    assert!(node.stop(), "the node stops cleanly after the abuse");
}

/// The slowest of `calls` status calls.
async fn time_status_calls(api: &ApiClient, calls: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..calls {
        let started = Instant::now();
        api.status().await.expect("status answers");
        slowest = slowest.max(started.elapsed());
    }
    slowest
}
