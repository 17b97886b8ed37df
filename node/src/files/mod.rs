//! The files that resources carry: stored content-addressed beside the sled store, served to
//! member nodes and fetched from them over `/staffroom/files/1`, verified one chunk group at
//! a time as they arrive.
//!
//! - [`blobs`]: the files on disk (complete, partial with their verified groups, uploads).
//! - [`serve`]: answering other nodes' `have` and `get` requests.
//! - [`transfer`]: asking one peer: which files it has, and a range of groups, verified.
//! - [`download`]: one file from every source that has it, split by the protocol's
//!   [`Planner`](staffroom_protocol::files::plan::Planner), resumable.
//! - [`fetcher`]: which files to fetch, when, within the node's limits; their progress;
//!   `attempt`: one try at one file — its holders, its true size, the download.

mod attempt;
pub mod blobs;
pub mod download;
pub mod fetcher;
mod pace;
pub mod serve;
mod slice;
pub mod transfer;

use std::path::Path;

use serde::{Deserialize, Serialize};
use staffroom_protocol::FileRoot;

pub use blobs::Blobs;
pub use fetcher::{FetchHandle, FileProgress};

/// The per-file limit by default: larger files are never fetched (checked against the signed
/// size before any byte moves).
pub const FILE_BYTES_MAX_DEFAULT: u64 = 256 * 1024 * 1024;
/// The bytes of files one network may bring in by eager fetching, by default.
pub const NETWORK_QUOTA_BYTES_DEFAULT: u64 = 4 * 1024 * 1024 * 1024;

/// When files are fetched, and how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Fetch a resource's files as soon as its entry arrives (within `network_quota_bytes`);
    /// otherwise only when a teacher asks (`staffroom resource get`).
    pub eager: bool,
    /// No file larger than this is fetched, eagerly or on demand.
    pub file_bytes_max: u64,
    /// Eager fetching stops once a network's files here reach this many bytes.
    pub network_quota_bytes: u64,
    /// Files are served to other nodes at most this fast, in all (0: no limit).
    pub serve_bytes_per_sec: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            eager: true,
            file_bytes_max: FILE_BYTES_MAX_DEFAULT,
            network_quota_bytes: NETWORK_QUOTA_BYTES_DEFAULT,
            serve_bytes_per_sec: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("file store: {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the bytes hash to {actual}, not to the file's root {expected}")]
    WrongRoot {
        expected: FileRoot,
        actual: FileRoot,
    },
    #[error("the file is {size} bytes, more than this node's limit of {max} bytes (files.file_bytes_max)")]
    TooLarge { size: u64, max: u64 },
}

impl FilesError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FilesError {
        let path = path.display().to_string();
        move |source| FilesError::Io { path, source }
    }
}

impl From<std::io::Error> for FilesError {
    fn from(source: std::io::Error) -> Self {
        FilesError::Io {
            path: "(none)".into(),
            source,
        }
    }
}

/// Bytes in the unit a teacher reads easily: `512 B`, `1.5 MiB`. The CLI and the web pages
/// both say sizes this way.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
