//! The node's clock: the system clock, optionally shifted. Everything in the node that reads
//! the time reads it here, so tests can run nodes whose clocks disagree, as schools' do.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in milliseconds since the Unix epoch, plus a fixed offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset_ms: i64,
}

impl Clock {
    /// The system clock as it is.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The system clock shifted by `offset_ms` (negative: behind).
    pub fn offset_by(offset_ms: i64) -> Clock {
        Clock { offset_ms }
    }

    pub fn now_ms(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        system.saturating_add_signed(self.offset_ms)
    }
}

/// The system clock's time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    Clock::system().now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_shift_the_system_clock() {
        let (behind, ahead) = (Clock::offset_by(-5_000), Clock::offset_by(5_000));
        // The two reads are apart by however long this thread was descheduled between them.
        let started = std::time::Instant::now();
        let gap = ahead.now_ms() - behind.now_ms();
        let apart_ms = started.elapsed().as_millis() as u64 + 2;
        assert!(
            (10_000 - apart_ms..=10_000 + apart_ms).contains(&gap),
            "{gap}"
        );
        assert_eq!(
            Clock::offset_by(i64::MIN).now_ms(),
            0,
            "saturates, never wraps"
        );
    }
}
