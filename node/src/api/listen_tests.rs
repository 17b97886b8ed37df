//! The accept loop against raw sockets: header deadlines, idle connections, a full table and
//! shutdown, with short limits.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{serve, ListenLimits};
use crate::api::conns::ConnLimits;

struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn start(connections_max: usize, idle: Duration, headers: Duration) -> Server {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "ok" }));
    let limits = ListenLimits {
        conns: ConnLimits {
            connections_max,
            idle_timeout: idle,
        },
        header_timeout: headers,
        ..ListenLimits::default()
    };
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(tcp, None, router, limits, stopped));
    Server { addr, stop, task }
}

/// A whole GET on a new connection; how long it took.
async fn get_ok(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply))
        .await
        .expect("the server answers")
        .unwrap();
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(reply.ends_with(b"ok"));
    started.elapsed()
}

/// Whether the server closes `stream` within `within` (anything it sends is skipped).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read_until_closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_until_closed)
        .await
        .is_ok()
}

#[tokio::test]
async fn headers_that_never_finish_are_cut_off() {
    let server = start(16, Duration::from_secs(60), Duration::from_millis(300)).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut partial, Duration::from_secs(3)).await);
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    get_ok(server.addr).await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let server = start(16, Duration::from_millis(500), Duration::from_secs(60)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while !reply.ends_with(b"ok") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server answers")
            .unwrap();
        assert!(n > 0, "closed before answering");
        reply.extend_from_slice(&buf[..n]);
    }
    let idle_from = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    assert!(
        idle_from.elapsed() >= Duration::from_millis(400),
        "closed before it was idle"
    );
}

#[tokio::test]
async fn a_full_table_closes_the_idlest_connections_to_let_a_client_in() {
    let server = start(8, Duration::from_secs(60), Duration::from_secs(60)).await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The server has accepted them all once a request after them is answered.
    assert!(get_ok(server.addr).await < Duration::from_secs(1));
    let mut closed = 0;
    for stream in &mut idle {
        if closed_within(stream, Duration::from_millis(20)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 50 - 8,
        "only {closed} of 50 idle connections were closed"
    );
}

#[tokio::test]
async fn shutdown_ends_the_server_despite_idle_connections() {
    let server = start(16, Duration::from_secs(60), Duration::from_secs(60)).await;
    let _idle = TcpStream::connect(server.addr).await.unwrap();
    get_ok(server.addr).await;
    server.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(8), server.task)
        .await
        .expect("the server stops within its grace period")
        .unwrap();
}
