//! Node configuration: defaults, an optional TOML file, and the files of the data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

/// The default libp2p port for school nodes.
pub const DEFAULT_P2P_PORT: u16 = 4040;
/// The default port of the local client API (always loopback unless configured otherwise).
pub const DEFAULT_API_PORT: u16 = 4041;
/// A config file larger than this is refused rather than parsed.
const CONFIG_BYTES_MAX: u64 = 64 * 1024;
/// Explicit peers in a config at most.
pub const PEERS_COUNT_MAX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is {len} bytes, more than the {max}-byte limit")]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("config file {path}, {place}: {message}")]
    Parse {
        path: PathBuf,
        /// Where: `line N, at `value``, or `whole file`.
        place: String,
        message: String,
    },
    #[error("too many peers configured ({count}; at most {max})")]
    TooManyPeers { count: usize, max: usize },
    #[error(transparent)]
    Relay(#[from] crate::net::relay::RelayConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreConfigError),
    #[error(transparent)]
    Web(#[from] crate::web::WebConfigError),
    #[error("no data directory: set --data-dir or STAFFROOM_DATA_DIR (no home directory found)")]
    NoDataDir,
}

/// Everything a node needs to run. Build it with [`NodeConfig::load`] or by hand in tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where the node keeps its key, store, API token and address.
    pub data_dir: PathBuf,
    /// libp2p listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and to redial whenever they drop.
    pub peers: Vec<Multiaddr>,
    /// The client API's address. Loopback by default: the API is for this machine's CLI.
    pub api_listen: SocketAddr,
    /// Find peers on the local network by mDNS (not on loopback: tests dial explicitly).
    pub mdns: bool,
    /// Find networks' other member nodes through the Staffroom DHT (and answer others'
    /// lookups). Off, a node reaches only the peers it is given or finds by mDNS.
    pub dht: bool,
    /// Serve the API over TLS with the node's own certificate. Always on when `api_listen`
    /// is not a loopback address: nothing leaves this machine in clear.
    pub api_tls: bool,
    /// When catch-up sync runs.
    pub sync: crate::sync::SyncConfig,
    /// Which files resources carry are fetched, and the limits on them.
    pub files: crate::files::FilesConfig,
    /// Serving as a relay once reachable, reserving on relays while not, and the limits.
    pub relay: crate::net::relay::RelayConfig,
    /// The store's reserve of free disk space.
    pub store: crate::store::StoreConfig,
    /// The web pages: where, for whom, sign-in lifetimes.
    pub web: crate::web::WebConfig,
    /// The node's clock (tests shift it; a config file cannot).
    #[serde(skip)]
    pub clock: crate::clock::Clock,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::new(),
            listen: vec![format!("/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}")
                .parse()
                .expect("the default listen address parses")],
            peers: Vec::new(),
            api_listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_API_PORT)),
            mdns: true,
            dht: true,
            api_tls: false,
            sync: crate::sync::SyncConfig::default(),
            files: crate::files::FilesConfig::default(),
            relay: crate::net::relay::RelayConfig::default(),
            store: crate::store::StoreConfig::default(),
            web: crate::web::WebConfig::default(),
            clock: crate::clock::Clock::system(),
        }
    }
}

impl NodeConfig {
    /// Defaults, overlaid by `<data_dir>/config.toml` if it exists (or by `file` if given).
    pub fn load(data_dir: &Path, file: Option<&Path>) -> Result<NodeConfig, ConfigError> {
        let default_path = DataDir::new(data_dir).config_file();
        let (path, required) = match file {
            Some(p) => (p.to_path_buf(), true),
            None => (default_path, false),
        };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > CONFIG_BYTES_MAX => Err(ConfigError::TooLarge {
                path,
                len: meta.len(),
                max: CONFIG_BYTES_MAX,
            }),
            Ok(_) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                NodeConfig::parse(&text, &path, data_dir)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                NodeConfig::parse("", &path, data_dir)
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// The config in `text` (TOML, read from `path`) over the defaults, checked; the data
    /// directory is `data_dir` unless the text names one.
    pub fn parse(text: &str, path: &Path, data_dir: &Path) -> Result<NodeConfig, ConfigError> {
        let mut config = toml::from_str::<NodeConfig>(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            place: place_of(text, e.span()),
            message: e.message().trim().to_owned(),
        })?;
        if config.data_dir.as_os_str().is_empty() {
            config.data_dir = data_dir.to_path_buf();
        }
        config.check()?;
        Ok(config)
    }

    /// Whether the API is served over TLS: when asked, and whenever it is reachable beyond
    /// this machine.
    pub fn api_tls_required(&self) -> bool {
        self.api_tls || !self.api_listen.ip().is_loopback()
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        self.relay.check()?;
        self.store.check()?;
        self.web.check()?;
        if self.peers.len() > PEERS_COUNT_MAX {
            return Err(ConfigError::TooManyPeers {
                count: self.peers.len(),
                max: PEERS_COUNT_MAX,
            });
        }
        Ok(())
    }
}

/// The default data directory: `$XDG_DATA_HOME/staffroom` (e.g. `~/.local/share/staffroom`).
pub fn default_data_dir() -> Result<PathBuf, ConfigError> {
    directories::ProjectDirs::from("org", "Staffroom", "staffroom")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or(ConfigError::NoDataDir)
}

/// The files of a data directory, named in one place.
#[derive(Debug, Clone)]
pub struct DataDir(PathBuf);

impl DataDir {
    pub fn new(path: &Path) -> Self {
        DataDir(path.to_path_buf())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn config_file(&self) -> PathBuf {
        self.0.join("config.toml")
    }
    /// The teacher's signing key, written by `staffroom init`.
    pub fn teacher_key(&self) -> PathBuf {
        self.0.join("teacher.key")
    }
    /// The node's libp2p identity.
    pub fn node_key(&self) -> PathBuf {
        self.0.join("node.key")
    }
    pub fn store(&self) -> PathBuf {
        self.0.join("store")
    }
    /// The files resources carry, content-addressed (see `files::blobs`).
    pub fn files(&self) -> PathBuf {
        self.0.join("files")
    }
    /// The peer book: peers this node has reached, redialled at start (see `peer_book.rs`).
    pub fn peer_book(&self) -> PathBuf {
        self.0.join("peers")
    }
    /// The running node's peer id (public): what API requests are signed for.
    pub fn node_id(&self) -> PathBuf {
        self.0.join("node.id")
    }
    /// The pin of the API's TLS certificate (public), when the API is served over TLS.
    pub fn api_pin(&self) -> PathBuf {
        self.0.join("api.pin")
    }
    /// A teacher's CLI configuration for a school node elsewhere (`staffroom connect`).
    pub fn client_config(&self) -> PathBuf {
        self.0.join("client.toml")
    }
    /// The address the running node's API is bound to, for the CLI to find it.
    pub fn api_addr(&self) -> PathBuf {
        self.0.join("api.addr")
    }
}

/// Config values quoted in an error at most, in characters.
const QUOTED_CHARS_MAX: usize = 60;

/// Where in `text` the byte range `span` is, for a person: its line and the value there.
pub(crate) fn place_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span.filter(|s| s.start <= text.len()) else {
        return "whole file".into();
    };
    let line = text.get(..span.start).unwrap_or("").matches('\n').count() + 1;
    let end = span.end.clamp(span.start, text.len());
    let value: String = text
        .get(span.start..end)
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(QUOTED_CHARS_MAX)
        .collect();
    match value.is_empty() {
        true => format!("line {line}"),
        false => format!("line {line}, at `{value}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults_and_file_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig::load(dir.path(), None).unwrap();
        assert_eq!(config.data_dir, dir.path());
        assert!(config.api_listen.ip().is_loopback());
        assert!(config.mdns);

        std::fs::write(
            dir.path().join("config.toml"),
            "mdns = false\napi_listen = \"127.0.0.1:0\"\npeers = [\"/ip4/127.0.0.1/tcp/4040\"]\n\n[sync]\ninterval_secs = 5\n",
        )
        .unwrap();
        let config = NodeConfig::load(dir.path(), None).unwrap();
        assert!(!config.mdns);
        assert_eq!(config.sync.interval_secs, 5);
        assert!(config.sync.on_connect, "unset fields keep their defaults");
        assert_eq!(config.peers.len(), 1);
        assert_eq!(config.api_listen.port(), 0);
    }

    #[test]
    fn the_api_is_encrypted_whenever_it_leaves_this_machine() {
        let mut config = NodeConfig::default();
        assert!(!config.api_tls_required(), "loopback: plain unless asked");
        config.api_tls = true;
        assert!(config.api_tls_required());
        config.api_tls = false;
        for addr in ["0.0.0.0:4041", "192.168.1.20:4041", "[::]:4041"] {
            config.api_listen = addr.parse().unwrap();
            assert!(config.api_tls_required(), "{addr}");
        }
        config.api_listen = "[::1]:4041".parse().unwrap();
        assert!(!config.api_tls_required());
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "mdsn = false\n").unwrap();
        let err = NodeConfig::load(dir.path(), Some(&path)).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("mdsn"), "{err}");
        assert!(err.to_string().contains("line 1, at `mdsn`"), "{err}");
        // The file, the line and the value, for a wrong value deeper in.
        std::fs::write(&path, "# mine\n[store]\nreserve_mib = \"lots\"\n").unwrap();
        let err = NodeConfig::load(dir.path(), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("line 3, at `\"lots\"`"), "{err}");
        let err = NodeConfig::load(dir.path(), Some(&dir.path().join("none.toml"))).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        std::fs::write(&path, "x".repeat(70_000)).unwrap();
        assert!(matches!(
            NodeConfig::load(dir.path(), Some(&path)),
            Err(ConfigError::TooLarge { .. })
        ));
    }
}
