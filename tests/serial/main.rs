//! Tests that measure latency or load the whole machine (a dozen node processes), so they run
//! one at a time, in a test binary of their own: cargo runs test binaries one after another,
//! and [`one_at_a_time`] keeps this binary's tests from overlapping.

mod hostile_peers;
mod soak;

use tokio::sync::{Mutex, MutexGuard};

/// Held for the whole of each test here (each test has its own runtime; tokio's lock works
/// across them and is not poisoned by a test that fails).
pub async fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::const_new(());
    SERIAL.lock().await
}
