//! One file from every source that has it: a worker per source asks the shared plan for
//! groups, fetches them verified, writes them in place and reports them; the plan splits and
//! rebalances. Which groups are on disk is persisted every [`PERSIST_INTERVAL`] (data synced
//! first), so a node killed mid-transfer resumes from there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::BaoTree;
use libp2p::PeerId;
use libp2p_stream::Control;
use staffroom_protocol::files::plan::{Failure, Next, Planner};
use staffroom_protocol::{FileRef, NetworkId};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::blobs::{groups_bytes, Blobs, Partial, PartialWriter, BLOCK_SIZE};
use super::transfer::{self, TransferError};
use super::FilesError;
use crate::net::NetClient;

/// Groups one request asks for (4 MiB): large enough that opening a stream costs little,
/// small enough to rebalance (a free source takes half of a slow one's request).
pub const REQUEST_GROUPS: u64 = 256;
/// Requests in flight to one source at once: while one reply streams, the next is asked for,
/// so a link's round trip is not idle time.
pub const LANES_PER_SOURCE: u8 = 2;
/// How often the groups on disk are made durable during a transfer.
pub const PERSIST_INTERVAL: Duration = Duration::from_millis(250);
/// How long a worker with nothing to fetch, or whose source is busy, waits before asking
/// the plan again.
const WAIT_INTERVAL: Duration = Duration::from_millis(500);
/// The largest outboard kept in memory while fetching (that of a 4 GiB file); a larger file's
/// is computed from its bytes at the end instead.
const OUTBOARD_KEPT_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// What a download did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadReport {
    pub complete: bool,
    /// Bytes received and verified in this run (not those already here).
    pub bytes_received: u64,
    /// Of those, how many from each peer.
    pub received_from: BTreeMap<PeerId, u64>,
    /// Peers cut off for sending bytes that did not match the root.
    pub corrupt: Vec<PeerId>,
    /// Bytes of the file here when the run ended.
    pub bytes_here: u64,
}

/// One of a peer's request lanes.
type Lane = (PeerId, u8);

/// Shared by the workers of one download.
struct Shared {
    /// Sources are (peer, lane): a peer gets [`LANES_PER_SOURCE`] requests in flight.
    plan: Mutex<Planner<Lane>>,
    /// The file's outboard, filled from the verified parents as they arrive, when the download
    /// started from nothing (every parent then passes by); `None` when it resumed.
    parents: Mutex<Option<PreOrderOutboard<Vec<u8>>>>,
    report: Mutex<DownloadReport>,
    changed: Notify,
    writer: PartialWriter,
    net: NetClient,
    file: FileRef,
    network: NetworkId,
}

/// Fetches `file` from `sources`; `progress` hears the bytes here as they grow.
pub async fn download(
    blobs: &Blobs,
    control: Control,
    net: NetClient,
    network: NetworkId,
    file: FileRef,
    sources: Vec<PeerId>,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<DownloadReport, FilesError> {
    let mut partial = open_partial(blobs, &file).await?;
    let mut plan = Planner::new(partial.persisted().clone(), REQUEST_GROUPS);
    for peer in &sources {
        for lane in 0..LANES_PER_SOURCE {
            plan.add_source((*peer, lane));
        }
    }
    let tree = BaoTree::new(file.size_bytes, BLOCK_SIZE);
    let keep_parents =
        partial.persisted().is_empty() && tree.outboard_size() <= OUTBOARD_KEPT_BYTES_MAX;
    let parents = keep_parents.then(|| PreOrderOutboard {
        root: blake3::Hash::from_bytes(file.root.0),
        tree,
        data: vec![0u8; usize::try_from(tree.outboard_size()).unwrap_or(0)],
    });
    let shared = Arc::new(Shared {
        plan: Mutex::new(plan),
        parents: Mutex::new(parents),
        report: Mutex::default(),
        changed: Notify::new(),
        writer: partial.writer()?,
        net,
        file: file.clone(),
        network,
    });
    let progress = Arc::new(progress);
    let mut workers = JoinSet::new();
    for peer in sources {
        for lane in 0..LANES_PER_SOURCE {
            let (shared, control, progress) = (shared.clone(), control.clone(), progress.clone());
            workers.spawn(work(shared, control, (peer, lane), progress));
        }
    }
    let mut persist = tokio::time::interval(PERSIST_INTERVAL);
    let mut local_error = None;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => break,
                Some(Ok(Err(e))) => {
                    local_error.get_or_insert(e);
                }
                Some(_) => {}
            },
            _ = persist.tick() => {
                let have = lock(&shared.plan).have().clone();
                partial = persist_groups(partial, have).await?;
            }
        };
    }
    let (have, complete) = {
        let plan = lock(&shared.plan);
        (plan.have().clone(), plan.is_complete())
    };
    let mut report = lock(&shared.report).clone();
    report.bytes_here = groups_bytes(&have, file.size_bytes);
    if complete {
        let (blobs, outboard) = (blobs.clone(), lock(&shared.parents).take().map(|o| o.data));
        let finish = tokio::task::spawn_blocking(move || partial.finish(&blobs, outboard));
        finish
            .await
            .map_err(|e| FilesError::from(std::io::Error::other(e)))??;
        report.complete = true;
    } else {
        persist_groups(partial, have).await?;
    }
    match local_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

async fn open_partial(blobs: &Blobs, file: &FileRef) -> Result<Partial, FilesError> {
    let (blobs, root, size) = (blobs.clone(), file.root, file.size_bytes);
    tokio::task::spawn_blocking(move || blobs.partial(&root, size))
        .await
        .map_err(|e| FilesError::from(std::io::Error::other(e)))?
}

async fn persist_groups(
    mut partial: Partial,
    have: staffroom_protocol::files::groups::Groups,
) -> Result<Partial, FilesError> {
    tokio::task::spawn_blocking(move || partial.persist(&have).map(|()| partial))
        .await
        .map_err(|e| FilesError::from(std::io::Error::other(e)))?
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One source's worker: fetches what the plan gives it until the file is done or the source
/// is dropped. Returns an error only for this node's own failure (its disk).
async fn work(
    shared: Arc<Shared>,
    mut control: Control,
    lane: Lane,
    progress: Arc<impl Fn(u64) + Send + Sync>,
) -> Result<(), FilesError> {
    loop {
        let peer = lane.0;
        let next = lock(&shared.plan).next(&lane);
        let groups = match next {
            Next::Fetch(groups) => groups,
            Next::Wait => {
                let _ = tokio::time::timeout(WAIT_INTERVAL, shared.changed.notified()).await;
                continue;
            }
            Next::Done | Next::Stop => return Ok(()),
        };
        let keep = |group: u64, offset: u64, bytes: &[u8]| {
            shared
                .writer
                .write_at(offset, bytes)
                .map_err(|e| e.to_string())?;
            let (step, here) = {
                let mut plan = lock(&shared.plan);
                let step = plan.received(&lane, group);
                (step, groups_bytes(plan.have(), shared.file.size_bytes))
            };
            let mut report = lock(&shared.report);
            report.bytes_received += bytes.len() as u64;
            *report.received_from.entry(peer).or_default() += bytes.len() as u64;
            drop(report);
            progress(here);
            Ok(step)
        };
        let parent = |node, pair: &transfer::ParentPair| {
            if let Some(outboard) = lock(&shared.parents).as_mut() {
                // Cannot fail: a vector of the outboard's size, written in place.
                let _ = bao_tree::io::sync::OutboardMut::save(outboard, node, pair);
            }
        };
        let (network, file) = (shared.network, &shared.file);
        let result = transfer::get(&mut control, peer, network, file, groups, parent, keep).await;
        match result {
            Ok(()) => lock(&shared.plan).ended(&lane),
            Err(TransferError::Local(e)) => {
                lock(&shared.plan).failed(&lane, Failure::Transient);
                shared.changed.notify_waiters();
                return Err(FilesError::from(std::io::Error::other(e)));
            }
            Err(e) => {
                tracing::info!(%peer, file = %shared.file.root.short(), error = %e, "file source failed");
                {
                    let mut plan = lock(&shared.plan);
                    if matches!(e, TransferError::Corrupt(_)) {
                        // A liar on one lane is a liar on all of them.
                        lock(&shared.report).corrupt.push(peer);
                        for other in 0..LANES_PER_SOURCE {
                            plan.failed(&(peer, other), Failure::Corrupt);
                        }
                    }
                    plan.failed(&lane, e.failure());
                }
                match e {
                    // At once: it may be serving this node's other downloads too.
                    TransferError::Corrupt(_) => {
                        let reason = "sent file bytes that do not match their root";
                        shared.net.cut_off(peer, reason.into()).await;
                    }
                    TransferError::Busy => tokio::time::sleep(WAIT_INTERVAL).await,
                    _ => {}
                }
            }
        }
        shared.changed.notify_waiters();
    }
}
