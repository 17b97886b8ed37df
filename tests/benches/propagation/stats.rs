//! What one phase of a run measured, and how it prints.

use std::time::Duration;

/// One phase: publish `messages` from the first node and wait for every other node.
#[derive(Debug, Default)]
pub struct Phase {
    pub latencies: Vec<Duration>,
    /// Deliveries expected: messages × (nodes − 1).
    pub expected: usize,
    /// Gossip copies the receiving nodes got in the phase, duplicates included.
    pub copies: u64,
    /// Cores this process kept busy on average during the phase.
    pub cores: f64,
}

/// CPU time this process has used (user and system), from `/proc/self/stat`.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after its closing ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here, in ticks of
    // 1/100 s (Linux's USER_HZ).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Measures the cores busy between `start` and now.
pub struct CpuMeter {
    cpu: Duration,
    wall: std::time::Instant,
}

impl CpuMeter {
    pub fn start() -> CpuMeter {
        CpuMeter {
            cpu: cpu_time(),
            wall: std::time::Instant::now(),
        }
    }

    pub fn cores(&self) -> f64 {
        (cpu_time() - self.cpu).as_secs_f64() / self.wall.elapsed().as_secs_f64()
    }
}

impl Phase {
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return f64::NAN;
        }
        let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
        sorted[at - 1].as_secs_f64() * 1e3
    }

    /// Deliveries that happened, as a percentage of those expected.
    pub fn delivery_percent(&self) -> f64 {
        100.0 * self.latencies.len() as f64 / self.expected.max(1) as f64
    }

    /// Copies beyond the first each receiving node got, per node and message.
    pub fn duplicates(&self) -> f64 {
        let delivered = self.latencies.len() as f64;
        (self.copies as f64 - delivered).max(0.0) / delivered.max(1.0)
    }

    pub fn row(&self) -> String {
        format!(
            "{:>8.1} {:>8.1} {:>8.1} {:>8.2}% {:>6.2} {:>6.2}",
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0),
            self.delivery_percent(),
            self.duplicates(),
            self.cores
        )
    }
}
