//! The libp2p side of a node: one event loop owns the `Swarm`; everything else talks to it
//! through a cloneable [`NetClient`] whose commands carry `oneshot` replies.

mod behaviour;
mod client;
mod event_loop;
pub mod gossip;
pub mod sync_codec;

pub use behaviour::{Behaviour, BehaviourEvent};
pub use client::{NetClient, NetError, NetStatus, PeerInfo, PublishReport};
pub use event_loop::{spawn, NetConfig, NetHandle};

/// The libp2p protocol version that `identify` announces.
pub const PROTOCOL_VERSION: &str = "/staffroom/1.0.0";
