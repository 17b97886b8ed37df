//! Catch-up sync between two nodes of a network, over the `/staffroom/sync/2` request-response
//! protocol: reconcile the (time, id) sets, then fetch what this node lacks and push what the
//! peer lacks, in bounded batches that are verified exactly as gossip is.
//!
//! - [`session`]: one session with one peer for one network, as a state machine.
//! - [`scheduler`]: when sessions run — a peer joining a shared network, anti-entropy, and
//!   `staffroom sync` — as a state machine with a session limit and one session per pair.
//! - [`driver`]: the async loops that run those two machines against the network and store.
//! - [`serve`]: answers a peer's requests (stateless).

pub mod driver;
pub mod scheduler;
pub mod serve;
pub mod session;

#[cfg(test)]
mod tests;

use staffroom_protocol::sync::Params;

pub use driver::{run_session, SyncHandle, SyncNet, SyncNowReport};
pub use scheduler::{SyncConfig, SyncTrigger};
pub use session::{SyncError, SyncReport};

/// The reconciliation parameters every node uses (they only need to be sensible, not equal).
pub const PARAMS: Params = Params {
    branches: 4,
    leaf_items_max: 16,
    sum_items_max: 256,
    output_bytes_budget: staffroom_protocol::sync::OUTPUT_BYTES_BUDGET,
};
