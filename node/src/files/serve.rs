//! Answering other nodes' file requests: `have` and `get`, for the files the resources of a
//! network list, to peers that network lets this node share with. Bytes are re-verified
//! against the outboard as they are read, so a damaged disk here never sends a wrong byte
//! (the request fails instead, and nobody is blamed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bao_tree::io::fsm::encode_ranges_validated;
use bao_tree::io::EncodeError;
use futures::StreamExt;
use libp2p::PeerId;
use libp2p_stream::IncomingStreams;
use staffroom_protocol::files::wire::{
    FileRequest, GetStatus, HAVE_ANSWER_BYTES, REQUEST_BYTES_MAX,
};
use staffroom_protocol::{FileRoot, NetworkId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::compat::FuturesAsyncReadCompatExt;
use tracing::Instrument;

use super::blobs::{Blobs, Complete};
use super::pace::{Pace, Paced};
use super::slice::SliceFile;
use super::transfer::chunk_ranges;
use crate::ingest::Ingest;
use crate::net::NetClient;

/// `get`s served at once; more are answered `busy` (the peer retries, or asks another node).
pub const SERVING_MAX: usize = 16;
/// Of those, at most this many for one peer.
pub const SERVING_PER_PEER_MAX: usize = 4;
/// Streams open at once, being read or answered; more are closed unread.
pub const STREAMS_OPEN_MAX: usize = 64;
/// Of those, at most this many from one peer, so one peer cannot crowd out the others.
pub const STREAMS_PER_PEER_MAX: usize = 8;
/// How long a peer has to send its request once the stream is open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Open complete files kept (with their outboards) between requests.
const OPEN_FILES_MAX: usize = 16;

/// What serving needs; cheap to clone.
#[derive(Clone)]
pub struct FileServer {
    pub blobs: Blobs,
    pub ingest: Ingest,
    pub net: NetClient,
    open: Arc<Mutex<HashMap<FileRoot, Arc<Complete>>>>,
    per_peer: Arc<Mutex<HashMap<PeerId, usize>>>,
    pace: Pace,
}

impl FileServer {
    /// `serve_bytes_per_sec` bounds the bytes served per second, in all (0: no bound).
    pub fn new(
        blobs: Blobs,
        ingest: Ingest,
        net: NetClient,
        serve_bytes_per_sec: u64,
    ) -> FileServer {
        FileServer {
            blobs,
            ingest,
            net,
            open: Arc::default(),
            per_peer: Arc::default(),
            pace: Pace::new(serve_bytes_per_sec),
        }
    }

    /// Serves incoming streams until `shutdown` turns true.
    pub async fn run(self, mut incoming: IncomingStreams, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(SERVING_MAX));
        let mut tasks: JoinSet<PeerId> = JoinSet::new();
        let mut open: HashMap<PeerId, usize> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(peer) = done {
                        close_one(&mut open, peer);
                    }
                }
                next = incoming.next() => {
                    let Some((peer, stream)) = next else { break };
                    let from_peer = open.get(&peer).copied().unwrap_or(0);
                    if tasks.len() >= STREAMS_OPEN_MAX || from_peer >= STREAMS_PER_PEER_MAX {
                        tracing::debug!(%peer, "file stream closed unread: too many open");
                        continue;
                    }
                    *open.entry(peer).or_default() += 1;
                    let (server, slots) = (self.clone(), slots.clone());
                    let span = tracing::debug_span!("file_serve", %peer);
                    tasks.spawn(async move {
                        server.answer(peer, stream, slots).await;
                        peer
                    }.instrument(span));
                }
            }
        }
        tasks.shutdown().await;
    }

    fn admit(
        &self,
        slots: &Arc<Semaphore>,
        peer: PeerId,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut per_peer = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_peer.entry(peer).or_default();
        if *count >= SERVING_PER_PEER_MAX {
            return None;
        }
        let permit = slots.clone().try_acquire_owned().ok()?;
        *count += 1;
        Some(permit)
    }

    fn release(&self, peer: PeerId) {
        let mut per_peer = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_peer.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                per_peer.remove(&peer);
            }
        }
    }

    async fn answer(self, peer: PeerId, stream: libp2p::Stream, slots: Arc<Semaphore>) {
        let mut stream = stream.compat();
        let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
            Ok(Ok(request)) => request,
            Ok(Err(RequestError::Malformed(reason))) => {
                // A rule every node shares: the peer is at fault.
                self.net
                    .cut_off(peer, format!("malformed file request: {reason}"))
                    .await;
                return;
            }
            Ok(Err(RequestError::Broken(reason))) => {
                tracing::debug!(reason, "file request not read");
                return;
            }
            Err(_) => return,
        };
        let result = match request {
            FileRequest::Have { network, roots } => {
                let answer = self.have(peer, network, &roots);
                stream.write_all(&answer).await
            }
            FileRequest::Get {
                network,
                root,
                size_bytes,
                groups,
            } => match self.admit(&slots, peer) {
                Some(permit) => {
                    let sent = self
                        .get(peer, network, root, size_bytes, &groups, &mut stream)
                        .await;
                    drop(permit);
                    self.release(peer);
                    sent
                }
                None => stream.write_u8(GetStatus::Busy as u8).await,
            },
        };
        match result {
            Ok(()) => {
                let _ = stream.shutdown().await;
            }
            Err(e) => tracing::debug!(error = %e, "file request not answered"),
        }
    }

    /// Whether this node follows `network` and may share it with `peer`. What it does not know
    /// yet (membership, the network itself) is a refusal, never the peer's fault.
    fn may_serve(&self, peer: PeerId, network: &NetworkId) -> bool {
        let followed = matches!(self.ingest.store().network(network), Ok(Some(_)));
        followed && matches!(self.ingest.rosters().may_share(network, &peer), Ok(true))
    }

    /// The size of `root` if this node holds it complete, `network` lists it with that size,
    /// and this node may share `network` with `peer`.
    fn servable(&self, peer: PeerId, network: &NetworkId, root: &FileRoot) -> Option<u64> {
        if !self.may_serve(peer, network) {
            return None;
        }
        let size = self.blobs.complete_size(root)?;
        let store = self.ingest.store();
        matches!(store.network_lists_file(network, root, size), Ok(true)).then_some(size)
    }

    fn have(&self, peer: PeerId, network: NetworkId, roots: &[FileRoot]) -> Vec<u8> {
        let mut answer = Vec::with_capacity(1 + roots.len() * HAVE_ANSWER_BYTES);
        answer.push(roots.len() as u8);
        for root in roots {
            let held = self.servable(peer, &network, root);
            answer.push(u8::from(held.is_some()));
            answer.extend_from_slice(&held.unwrap_or(0).to_be_bytes());
        }
        answer
    }

    async fn get(
        &self,
        peer: PeerId,
        network: NetworkId,
        root: FileRoot,
        size_bytes: u64,
        groups: &[std::ops::Range<u64>],
        stream: &mut tokio_util::compat::Compat<libp2p::Stream>,
    ) -> std::io::Result<()> {
        let complete = match self.servable(peer, &network, &root) {
            Some(size) if size == size_bytes => self.open_complete(&root),
            _ => None,
        };
        let Some(complete) = complete else {
            return stream.write_u8(GetStatus::NotHere as u8).await;
        };
        stream.write_u8(GetStatus::Ok as u8).await?;
        let mut ranges = bao_tree::ChunkRanges::empty();
        for range in groups {
            ranges |= chunk_ranges(range, size_bytes);
        }
        let data = SliceFile::new(self.blobs.open_data(&root)?, complete.size);
        // Unbuffered here: Noise already gathers writes into frames of up to 64 KiB.
        let mut writer = Paced {
            inner: iroh_io::TokioStreamWriter(stream),
            pace: self.pace.clone(),
        };
        let sent = encode_ranges_validated(data, complete.outboard(), &ranges, &mut writer).await;
        writer.inner.0.flush().await?;
        match sent {
            Ok(()) => Ok(()),
            Err(
                e @ (EncodeError::ParentHashMismatch(_)
                | EncodeError::LeafHashMismatch(_)
                | EncodeError::SizeMismatch),
            ) => {
                // Our bytes no longer match their root: stop serving them, blame nobody.
                tracing::error!(file = %root.short(), error = %e, "stored file is damaged; discarding it to fetch again");
                self.forget(&root);
                self.blobs.discard_complete(&root);
                Err(std::io::Error::other(e.to_string()))
            }
            // The peer went away, or stalled past the write deadline.
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    fn open_complete(&self, root: &FileRoot) -> Option<Arc<Complete>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(complete) = open.get(root) {
            return Some(complete.clone());
        }
        let complete = Arc::new(self.blobs.open_complete(root).ok()?);
        if open.len() >= OPEN_FILES_MAX {
            open.clear();
        }
        open.insert(*root, complete.clone());
        Some(complete)
    }

    fn forget(&self, root: &FileRoot) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(root);
    }
}

fn close_one(open: &mut HashMap<PeerId, usize>, peer: PeerId) {
    if let Some(count) = open.get_mut(&peer) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            open.remove(&peer);
        }
    }
}

enum RequestError {
    /// The stream failed or stalled: nobody's fault we can tell.
    Broken(String),
    /// The bytes break the protocol's rules.
    Malformed(String),
}

/// A request: a `u16` length, then that many bytes (at most [`REQUEST_BYTES_MAX`]).
async fn read_request(
    stream: &mut tokio_util::compat::Compat<libp2p::Stream>,
) -> Result<FileRequest, RequestError> {
    let broken = |e: std::io::Error| RequestError::Broken(e.to_string());
    let len = usize::from(stream.read_u16().await.map_err(broken)?);
    if len > REQUEST_BYTES_MAX {
        return Err(RequestError::Malformed(format!(
            "a request of {len} bytes (at most {REQUEST_BYTES_MAX})"
        )));
    }
    let mut bytes = vec![0u8; len];
    stream.read_exact(&mut bytes).await.map_err(broken)?;
    FileRequest::decode(&bytes).map_err(|e| RequestError::Malformed(e.to_string()))
}
