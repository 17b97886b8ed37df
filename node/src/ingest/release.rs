//! The two pens and their release: entries dated ahead of this node's clock (`HoldPen`) and
//! entries whose author's admission has not arrived (`AwaitPen`) are held, bounded, and
//! offered to ingest again — when due, or when a network's roster changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use staffroom_protocol::{EntryId, NetworkId};
use tokio::sync::watch;

use super::{Ingest, IngestError};
use crate::admission::AwaitPen;
use crate::hold::{Held, HoldOutcome, HoldPen};

/// The longest the release task sleeps before looking at the pens again.
const RELEASE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl Ingest {
    /// Entries held for this node's clock to catch up, or for their author's membership
    /// (including those released and being offered to ingest again).
    pub fn held_count(&self) -> usize {
        let moving = self.ready().len() + self.releasing.load(Ordering::Acquire);
        self.pen().len() + self.awaiting().len() + moving
    }

    pub(super) fn pen(&self) -> std::sync::MutexGuard<'_, HoldPen> {
        // The pen is a plain data structure: a panic elsewhere cannot leave it half-updated.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers the entries waiting for membership in `networks` to ingest again.
    pub(super) fn release_awaiting(&self, networks: &BTreeSet<NetworkId>) {
        let mut released = Vec::new();
        for network in networks {
            released.extend(self.awaiting().take(network));
        }
        if released.is_empty() {
            return;
        }
        self.ready().extend(released);
        self.held_changed.notify_one();
    }

    pub(super) fn awaiting(&self) -> std::sync::MutexGuard<'_, AwaitPen> {
        self.awaiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn ready(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn hold(
        &self,
        bytes: Vec<u8>,
        created_at_ms: u64,
        channel: Option<NetworkId>,
    ) -> IngestError {
        let id = EntryId(*blake3::hash(&bytes).as_bytes());
        let now = self.clock.now_ms();
        let outcome = self
            .pen()
            .hold(id, created_at_ms, Held { bytes, channel }, now);
        let held = !matches!(outcome, HoldOutcome::Dropped);
        if let HoldOutcome::Held { due_ms } = outcome {
            tracing::debug!(entry = %id.short(), due_ms, "holding an entry from the future");
            self.held_changed.notify_one();
        }
        IngestError::TooEarly {
            created_at_ms,
            held,
        }
    }

    /// Offers held entries to ingest again as they fall due, until `shutdown`.
    pub async fn release_held(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = match self.pen().next_due_ms() {
                Some(due) => Duration::from_millis(due.saturating_sub(self.clock.now_ms())),
                None => RELEASE_CHECK_INTERVAL,
            };
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = self.held_changed.notified() => {}
                _ = tokio::time::sleep(wait.min(RELEASE_CHECK_INTERVAL)) => {}
            }
            let mut released = {
                let mut ready = self.ready();
                self.releasing.fetch_add(ready.len(), Ordering::AcqRel);
                std::mem::take(&mut *ready)
            };
            let due = self.pen().take_due(self.clock.now_ms());
            self.releasing.fetch_add(due.len(), Ordering::AcqRel);
            released.extend(due);
            let count = released.len();
            // One durable group per channel; whatever still cannot enter is held again.
            let mut by_channel: BTreeMap<Option<NetworkId>, Vec<Vec<u8>>> = BTreeMap::new();
            for held in released {
                by_channel.entry(held.channel).or_default().push(held.bytes);
            }
            for (channel, batch) in by_channel {
                match self.ingest_many(batch, channel).await {
                    Ok(results) => {
                        let stored = results.iter().filter(|r| r.is_ok()).count();
                        tracing::debug!(stored, of = results.len(), "offered held entries again");
                    }
                    Err(e) => tracing::warn!(error = %e, "held entries could not be stored"),
                }
            }
            self.releasing.fetch_sub(count, Ordering::AcqRel);
        }
    }
}
