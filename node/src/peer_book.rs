//! The peer book on disk (`<data dir>/peers`): the addresses of peers this node has reached —
//! configured, dialled, or learnt from invites — one multiaddr per line, so a node restarted
//! without `--peer` finds its networks again. Bounded in lines and bytes; a line that is not a
//! multiaddr is skipped, never fatal. Written atomically (temporary file, then rename).

use std::path::Path;
use std::time::Duration;

use libp2p::Multiaddr;
use tokio::sync::watch;

use crate::config::PEERS_COUNT_MAX;
use crate::net::NetClient;

/// Bytes of the file read at most.
pub const PEER_BOOK_BYTES_MAX: u64 = 64 * 1024;
/// How often the book is brought up to date on disk (when it changed).
pub const SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// The addresses in the book at `path` (none if there is no book yet).
pub fn load(path: &Path) -> Vec<Multiaddr> {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut text = String::new();
    if file
        .take(PEER_BOOK_BYTES_MAX)
        .read_to_string(&mut text)
        .is_err()
    {
        tracing::warn!(path = %path.display(), "peer book unreadable: starting without it");
        return Vec::new();
    }
    parse(&text)
}

/// The addresses in a book's text: one per line; comments and lines that are not addresses
/// are skipped, and at most [`PEERS_COUNT_MAX`] are taken.
pub fn parse(text: &str) -> Vec<Multiaddr> {
    text.lines()
        .filter_map(|line| line.trim().parse().ok())
        .take(PEERS_COUNT_MAX)
        .collect()
}

/// Writes `addrs` to `path`, replacing the book whole.
pub fn save(path: &Path, addrs: &[Multiaddr]) -> std::io::Result<()> {
    let mut text = String::from("# Peers this node has reached; redialled at start.\n");
    for addr in addrs.iter().take(PEERS_COUNT_MAX) {
        text.push_str(&addr.to_string());
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Keeps the book on disk up to date with the peers the network side has reached, until
/// `shutdown` turns true. What was in the book at start stays in it.
pub async fn keep(
    net: NetClient,
    path: std::path::PathBuf,
    mut known: Vec<Multiaddr>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SAVE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tick.tick() => {}
        }
        let Ok(status) = net.status().await else {
            continue;
        };
        let before = known.len();
        for addr in status.reached_peers {
            if !known.contains(&addr) && known.len() < PEERS_COUNT_MAX {
                known.push(addr);
            }
        }
        if known.len() == before {
            continue;
        }
        let (path, addrs) = (path.clone(), known.clone());
        match tokio::task::spawn_blocking(move || save(&path, &addrs)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the peer book"),
            Err(e) => tracing::warn!(error = %e, "cannot write the peer book"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_round_trips_and_skips_what_is_not_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers");
        assert!(load(&path).is_empty(), "no book yet");
        let addrs: Vec<Multiaddr> = vec![
            "/ip4/127.0.0.1/tcp/4040".parse().unwrap(),
            "/ip4/192.0.2.1/tcp/4050".parse().unwrap(),
        ];
        save(&path, &addrs).unwrap();
        assert_eq!(load(&path), addrs);
        std::fs::write(&path, "not an address\n/ip4/127.0.0.1/tcp/1\n").unwrap();
        assert_eq!(load(&path).len(), 1);
    }
}
