//! Catch-up sync between two nodes of a network, over the `/staffroom/sync/1` request-response
//! protocol: reconcile the (time, id) sets, then fetch what this node lacks and push what the
//! peer lacks, in bounded batches that are verified exactly as gossip is.
//!
//! - [`serve`]: answers a peer's requests (stateless).
//! - [`session`]: one reconciliation with one peer for one network, as initiator.
//! - [`scheduler`]: when sessions run — on a peer joining a shared network, periodically as
//!   anti-entropy, and on demand (`staffroom sync`).

pub mod scheduler;
pub mod serve;
pub mod session;

use staffroom_protocol::sync::Params;

pub use scheduler::{SyncConfig, SyncTrigger};
pub use session::{SyncError, SyncReport};

/// The reconciliation parameters every node uses (they only need to be sensible, not equal).
pub const PARAMS: Params = Params {
    branches: 4,
    leaf_items_max: 16,
    sum_items_max: 256,
};
