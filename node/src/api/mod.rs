//! The client API: JSON over HTTP/1.1, every call signed by a registered teacher's key
//! ([`auth`]), over TLS when it is reachable beyond this machine ([`tls`]). The CLI and tests
//! use [`ApiClient`].
//!
//! Entries are submitted as their canonical bytes (`application/octet-stream`), signed by the
//! teacher on the client side; the node verifies them exactly as it verifies gossip. Files are
//! uploaded before the resource that lists them ([`files`]).

pub mod auth;
mod client;
mod conns;
pub(crate) mod files;
mod guard;
mod join;
pub(crate) mod listen;
mod networks;
pub(crate) mod private;
pub mod resolve;
pub mod search;
pub(crate) mod server;
mod teachers;
pub mod tls;
pub mod types;
mod web_sign_in;

pub use client::{hash_file, ApiClient, ClientConfig, ClientError, Transport};
pub use listen::ListenLimits;
pub use server::{serve, serve_with, ApiState};
