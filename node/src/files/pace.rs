//! An upper bound on the bytes per second this node serves files at, shared by every stream:
//! a school on a thin uplink keeps its connection usable for teaching.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// The bucket holds this fraction of a second's bytes: a short burst, then the rate.
const BURSTS_PER_SEC: f64 = 10.0;

/// A token bucket: `rate` bytes per second, with bursts of a tenth of a second.
#[derive(Clone)]
pub struct Pace {
    rate_bytes_per_sec: u64,
    bucket: Arc<Mutex<Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Pace {
    /// `0` means no limit.
    pub fn new(rate_bytes_per_sec: u64) -> Pace {
        Pace {
            rate_bytes_per_sec,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: rate_bytes_per_sec as f64 / BURSTS_PER_SEC,
                at: Instant::now(),
            })),
        }
    }

    /// How long to wait before sending `len` more bytes (taken from the bucket now).
    fn take(&self, len: usize) -> Duration {
        if self.rate_bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let rate = self.rate_bytes_per_sec as f64;
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let burst = rate / BURSTS_PER_SEC;
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        b.tokens -= len as f64;
        match b.tokens < 0.0 {
            true => Duration::from_secs_f64(-b.tokens / rate),
            false => Duration::ZERO,
        }
    }
}

/// How long one write may wait for the peer to take the bytes: a peer that asks and never
/// reads gives its serving slot back after this.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A stream writer that waits its turn under a [`Pace`], and gives up on a write the peer
/// does not take within [`WRITE_TIMEOUT`].
pub struct Paced<W> {
    pub inner: W,
    pub pace: Pace,
}

async fn deadline(
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(written) => written,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Even a zero sleep waits for the timer's next tick (1 ms): sleep only when a wait is due.
async fn sleep_if_due(wait: Duration) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

impl<W: iroh_io::AsyncStreamWriter> iroh_io::AsyncStreamWriter for Paced<W> {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        sleep_if_due(self.pace.take(data.len())).await;
        deadline(self.inner.write(data)).await
    }

    async fn write_bytes(&mut self, data: Bytes) -> std::io::Result<()> {
        sleep_if_due(self.pace.take(data.len())).await;
        deadline(self.inner.write_bytes(data)).await
    }

    async fn sync(&mut self) -> std::io::Result<()> {
        self.inner.sync().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paced_writer_keeps_to_its_rate() {
        let pace = Pace::new(100_000);
        let mut sent = Vec::new();
        let mut w = Paced {
            inner: iroh_io::TokioStreamWriter(&mut sent),
            pace,
        };
        let start = Instant::now();
        for _ in 0..30 {
            iroh_io::AsyncStreamWriter::write(&mut w, &[0u8; 10_000])
                .await
                .unwrap();
        }
        // 300 kB at 100 kB/s, the first tenth of a second's worth free: 2.9 seconds.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(2800) && took <= Duration::from_millis(3000),
            "{took:?}"
        );
        assert_eq!(sent.len(), 300_000);
        assert_eq!(Pace::new(0).take(usize::MAX), Duration::ZERO);
    }
}
