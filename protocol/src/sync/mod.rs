//! Catch-up sync, sans-IO: the per-network index of (time, id) items with incremental range
//! fingerprints, the reconciliation messages, the reconciliation itself, and the request and
//! response frames nodes exchange. Nothing here touches a socket or a clock.

mod answer;
mod bytes;
mod fingerprint;
mod index;
mod message;
mod reconcile;
mod size;
mod wire;

pub use fingerprint::{Accumulator, Fingerprint, LowSum, FINGERPRINT_BYTES, SUM_BYTES};
pub use index::{Item, SyncIndex, Tag};
pub use message::{
    prefix, Bound, IdPrefix, Message, MessageError, Mode, Range, ID_PREFIX_BYTES, MESSAGE_BYTES_MAX,
};
pub use reconcile::{
    respond, Diff, Initiator, Params, ReconcileError, IDLE_ROUNDS_MAX, OUTPUT_BYTES_BUDGET,
    ROUNDS_MAX,
};
pub use wire::{
    SyncRequest, SyncResponse, WireError, ENTRIES_PER_FRAME_MAX, FETCH_IDS_MAX, FRAME_BYTES_MAX,
    PUSH_BYTES_MAX,
};

#[cfg(test)]
mod tests;
