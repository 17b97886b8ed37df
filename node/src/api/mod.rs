//! The local client API: JSON over HTTP/1.1 on 127.0.0.1, guarded by a bearer token that the
//! node writes (mode 0600) into its data directory. The CLI and tests use [`ApiClient`].
//!
//! Entries are submitted as their canonical bytes (`application/octet-stream`), signed by the
//! teacher on the client side; the node verifies them exactly as it verifies gossip.

pub mod auth;
mod client;
mod join;
mod networks;
mod server;
mod teachers;
pub mod tls;
pub mod types;

pub use client::{ApiClient, ClientConfig, ClientError, Transport};
pub use server::{serve, ApiState};
