//! The libp2p side of a node: one event loop owns the `Swarm`; everything else talks to it
//! through a cloneable [`NetClient`] whose commands carry `oneshot` replies.
//!
//! - [`swarm`]: building the swarm and its listeners; [`behaviour`]: what it runs, bounded.
//! - [`event_loop`]: routes commands and swarm events, local completions first.
//! - [`peers`]: the peer book; [`discovery`]: the DHT that finds networks' member nodes;
//!   [`gossip`]: settings every node must share;
//!   [`gossip_in`]: verifying incoming gossip, [`gossip_queue`]: each sender in turn; [`sync_route`]: sync requests both ways.
//! - [`reach`]: whether this node is reachable, relays it serves or reserves on (a state
//!   machine); [`relay`]: the relay's limits; [`time_probe`]: peers' clock offsets.

mod behaviour;
mod client;
pub mod discovery;
mod event_loop;
pub mod gossip;
mod gossip_in;
mod gossip_queue;
mod peers;
pub mod reach;
pub mod relay;
mod swarm;
pub mod sync_codec;
mod sync_route;
pub mod time_probe;

pub use behaviour::{Behaviour, BehaviourEvent};
pub use client::{
    ConnKind, ExplicitPeerInfo, NetClient, NetError, NetStatus, PeerInfo, PublishReport,
};
pub use event_loop::{spawn, NetConfig, NetHandle};

/// The libp2p protocol version that `identify` announces.
pub const PROTOCOL_VERSION: &str = "/staffroom/1.0.0";

/// The multiaddr component naming a peer (`/p2p/<id>`), for addresses handed to others.
pub fn p2p(peer: libp2p::PeerId) -> libp2p::multiaddr::Protocol<'static> {
    libp2p::multiaddr::Protocol::P2p(peer)
}
