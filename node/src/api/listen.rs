//! The API's accept loop and connections: TLS handshakes on each connection's own task (one
//! stalled client cannot hold up the next), HTTP/1.1 with a deadline on request headers, and
//! the connection table (`conns`) that closes idle connections and makes room for new ones.
//! Bytes moving either way count as activity, so a long download that flows is never idle.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::conns::{Activity, ConnLimits, Conns};

/// The limits on the API's connections.
#[derive(Debug, Clone, Copy)]
pub struct ListenLimits {
    pub conns: ConnLimits,
    /// A request's headers must arrive in full within this (from when the connection waits
    /// for them).
    pub header_timeout: Duration,
    /// A TLS handshake must end within this.
    pub handshake_timeout: Duration,
    /// Request headers (the read buffer) at most this many bytes.
    pub header_bytes_max: usize,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            // Far below the descriptors a node has, far above what a school's teachers use.
            conns: ConnLimits {
                connections_max: 256,
                idle_timeout: Duration::from_secs(30),
            },
            header_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            header_bytes_max: 64 * 1024,
        }
    }
}

/// How often idle connections are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// At shutdown, requests in progress get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// After a failed accept (out of descriptors, say), wait this long rather than spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The connection a request came on, put in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnHandle(pub Arc<Activity>);

/// Serves `router` on `tcp` (through `tls` if given) until `shutdown` turns true.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ListenLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let clock = Clock(Instant::now());
    let conns = Arc::new(Mutex::new(Conns::new(limits.conns)));
    let mut tasks = JoinSet::new();
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    let stopping = shutdown.clone();
    loop {
        tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok((stream, addr)) => {
                    let (id, activity) = lock(&conns).open(clock.now_ms());
                    let conn = Conn { activity, clock, limits, shutdown: stopping.clone() };
                    let (tls, router, conns) = (tls.clone(), router.clone(), conns.clone());
                    tasks.spawn(async move {
                        conn.run(stream, tls, router).await;
                        lock(&conns).close(id);
                        tracing::trace!(%addr, "API connection closed");
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            _ = sweep.tick() => {
                let closed = lock(&conns).close_idle(clock.now_ms());
                if closed > 0 {
                    tracing::debug!(closed, "closed idle API connections");
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    drop(tcp);
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        lock(&conns).close_all();
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn lock(conns: &Mutex<Conns>) -> std::sync::MutexGuard<'_, Conns> {
    conns.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds since the accept loop started: the table's time.
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_ms(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// One accepted connection.
struct Conn {
    activity: Arc<Activity>,
    clock: Clock,
    limits: ListenLimits,
    shutdown: watch::Receiver<bool>,
}

impl Conn {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>, router: Router) {
        let _ = stream.set_nodelay(true);
        let io = Tracked {
            inner: stream,
            activity: self.activity.clone(),
            clock: self.clock,
        };
        let Some(acceptor) = tls else {
            return self.http(io, router).await;
        };
        let handshake = tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(io));
        let tls = tokio::select! {
            done = handshake => done,
            _ = self.activity.close.cancelled() => return,
        };
        match tls {
            Ok(Ok(tls)) => self.http(tls, router).await,
            Ok(Err(e)) => tracing::debug!(error = %e, "API TLS handshake failed"),
            Err(_) => tracing::debug!("API TLS handshake timed out"),
        }
    }

    async fn http<IO>(mut self, io: IO, router: Router)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handle = ConnHandle(self.activity.clone());
        let service = router.map_request(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(handle.clone());
            request
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(self.limits.header_bytes_max)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        tokio::pin!(conn);
        let close = self.activity.close.clone();
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "API connection ended");
                }
                return;
            }
            _ = close.cancelled() => return,
            _ = stopped(&mut self.shutdown) => {}
        }
        // Shutting down: requests in progress finish (until the accept loop closes us).
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = conn => {}
            _ = close.cancelled() => {}
        }
    }
}

/// A connection's byte stream, recording when bytes move.
struct Tracked<IO> {
    inner: IO,
    activity: Arc<Activity>,
    clock: Clock,
}

impl<IO> Tracked<IO> {
    fn moved(&self) {
        self.activity.io(self.clock.now_ms());
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.moved();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "listen_tests.rs"]
mod tests;
