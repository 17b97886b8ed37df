//! One attempt at one wanted file: ask the network's connected peers which hold it (and of
//! what size), settle which signed size is true, and download from every holder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::join_all;
use libp2p::PeerId;
use libp2p_stream::Control;
use staffroom_protocol::{FileRef, FileRoot, NetworkId};

use super::download::{download, DownloadReport};
use super::fetcher::{lock, Done, FileProgress, SOURCES_MAX};
use super::{transfer, Blobs};
use crate::net::NetClient;

/// One attempt at one file: find the peers that have it, then download from all of them.
pub(super) struct FetchTask {
    pub store: crate::store::Store,
    pub file_bytes_max: u64,
    pub blobs: Blobs,
    pub control: Control,
    pub net: NetClient,
    pub network: NetworkId,
    pub file: FileRef,
    pub progress: Arc<Mutex<HashMap<FileRoot, FileProgress>>>,
}

impl FetchTask {
    pub async fn run(self) -> Done {
        let root = self.file.root;
        let result = self.attempt().await;
        (root, result)
    }

    async fn attempt(mut self) -> Result<DownloadReport, String> {
        let held = sources(&self.net, &self.control, self.network, self.file.root).await;
        self.file = self.true_size(&held)?;
        // The store's disk keeps its reserve: a file that would eat into it waits (and is
        // tried again with the others) until there is room.
        self.store
            .room_for(self.file.size_bytes)
            .map_err(|e| e.to_string())?;
        let sources: Vec<PeerId> = held
            .iter()
            .filter(|(_, size)| *size == self.file.size_bytes)
            .map(|(peer, _)| *peer)
            .collect();
        let (progress, root) = (self.progress.clone(), self.file.root);
        let on_progress = move |here: u64| {
            if let Some(p) = lock(&progress).get_mut(&root) {
                p.bytes_here = p.bytes_here.max(here);
            }
        };
        let report = download(
            &self.blobs,
            self.control,
            self.net,
            self.network,
            self.file,
            sources,
            on_progress,
        )
        .await
        .map_err(|e| e.to_string())?;
        if let Some(p) = lock(&self.progress).get_mut(&root) {
            for (peer, bytes) in &report.received_from {
                *p.received_from.entry(peer.to_string()).or_default() += bytes;
            }
        }
        Ok(report)
    }
}

impl FetchTask {
    /// The listing of the file to fetch: the one wanted if some source holds that size;
    /// otherwise the one whose size most sources hold, if the network lists it and it is
    /// within the limit. (A member may sign a false size for a root; the holders' bytes, which
    /// hash to the root, tell the true one.)
    fn true_size(&self, held: &[(PeerId, u64)]) -> Result<FileRef, String> {
        if held.is_empty() {
            return Err("no connected member node has this file yet".into());
        }
        if held.iter().any(|(_, size)| *size == self.file.size_bytes) {
            return Ok(self.file.clone());
        }
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for (_, size) in held {
            *counts.entry(*size).or_default() += 1;
        }
        let mut sizes: Vec<(u64, usize)> = counts.into_iter().collect();
        sizes.sort_by_key(|(size, count)| (std::cmp::Reverse(*count), *size));
        for (size, _) in sizes {
            if size > self.file_bytes_max {
                continue;
            }
            if let Ok(Some(file)) = self.store.file_ref(&self.network, &self.file.root, size) {
                return Ok(file);
            }
        }
        Err("the nodes that have this file hold a size no resource here lists".into())
    }
}

/// The connected peers of `network` that hold `root` complete, with the size they hold (at
/// most [`SOURCES_MAX`]).
pub async fn sources(
    net: &NetClient,
    control: &Control,
    network: NetworkId,
    root: FileRoot,
) -> Vec<(PeerId, u64)> {
    let Ok(peers) = net.peers().await else {
        return Vec::new();
    };
    let asks = peers
        .into_iter()
        .filter(|p| p.networks.contains(&network) && !p.blocked)
        .map(|p| {
            let mut control = control.clone();
            async move {
                let has = transfer::have(&mut control, p.peer_id, network, vec![root]).await;
                (
                    p.peer_id,
                    has.ok().and_then(|h| h.first().copied().flatten()),
                )
            }
        });
    join_all(asks)
        .await
        .into_iter()
        .filter_map(|(peer, size)| Some((peer, size?)))
        .take(SOURCES_MAX)
        .collect()
}
