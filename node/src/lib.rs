//! A Staffroom school node: stores verified entries, gossips them to peer nodes over libp2p,
//! fetches and serves the files resources carry, and serves teachers' `staffroom` CLIs
//! through an API of signed requests (TLS when it leaves the machine).
//!
//! See `docs/ARCHITECTURE.md` for the map of modules and the path of a post.

pub mod admission;
pub mod api;
pub mod backup;
pub mod clock;
pub mod config;
pub mod fd_limit;
pub mod files;
pub mod hold;
pub mod identity;
pub mod ingest;
mod memory;
pub mod net;
mod node;
pub mod peer_book;
pub mod private;
pub mod roster;
pub mod search;
pub mod secret_file;
pub mod store;
pub mod sync;
pub mod teacher_key;
pub mod thread;
pub mod web;

pub use libp2p::{multiaddr, Multiaddr, PeerId};
pub use node::{ports_in_use, run, start, NodeError, RunningNode};
