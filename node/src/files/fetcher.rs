//! Which files this node fetches, and when: every few seconds it looks at the files its
//! networks' resources list, and wants those not yet here — all of them when fetching is
//! eager (within each network's quota), otherwise only those a teacher asked for. Wanted files
//! are fetched a few at a time from the peers that answer `have`, and tried again with backoff
//! while no peer has them. A restarted node finds its unfinished files the same way and
//! resumes them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use libp2p_stream::Control;
use serde::{Deserialize, Serialize};
use staffroom_protocol::{FileRef, FileRoot, NetworkId};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::attempt::{sources, FetchTask};
use super::download::DownloadReport;
use super::{Blobs, FilesConfig, FilesError};
use crate::ingest::Ingest;
use crate::net::NetClient;

/// Files fetched at once.
pub const DOWNLOADS_MAX: usize = 4;
/// Files wanted (waiting or fetching) at most; past this, eager wants wait for the next scan.
pub const WANTS_MAX: usize = 4096;
/// Files whose progress is kept at most (those wanted, and recently finished).
const PROGRESS_MAX: usize = 2 * WANTS_MAX;
/// Sources one file is fetched from at once at most.
pub const SOURCES_MAX: usize = 8;
/// How often the networks' files are looked at.
/// Erased files deleted per scan, at most.
const ERASED_PER_SCAN_MAX: usize = 256;
const SCAN_INTERVAL: Duration = Duration::from_secs(3);
/// Files looked at per network per scan.
const SCAN_FILES_MAX: usize = 10_000;
/// The longest wait before trying a file again.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Requests from the API queued at most.
const QUEUE_MAX: usize = 256;

/// How one file stands on this node, for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    pub root: FileRoot,
    pub network: NetworkId,
    pub size_bytes: u64,
    pub bytes_here: u64,
    pub state: FileState,
    /// Bytes received in this node's current run, by peer.
    #[serde(default)]
    pub received_from: BTreeMap<String, u64>,
    /// Why the last attempt did not finish.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    Complete,
    Fetching,
    /// Wanted; waiting for a source or a free slot.
    Waiting,
    /// Not fetched: fetching is on demand here, or the network's quota is used up.
    NotWanted,
    /// Larger than this node's per-file limit: never fetched.
    TooLarge,
}

struct Want {
    network: NetworkId,
    file: FileRef,
    asked: bool,
    attempts: u32,
    due: Instant,
    running: bool,
}

#[derive(Clone)]
pub struct FetchHandle {
    tx: mpsc::Sender<(NetworkId, FileRef)>,
    progress: Arc<Mutex<HashMap<FileRoot, FileProgress>>>,
    config: FilesConfig,
    blobs: Blobs,
    control: Control,
    net: NetClient,
}

impl FetchHandle {
    /// The connected member nodes that hold `file` complete, asked now.
    pub async fn holders(&self, network: NetworkId, file: &FileRef) -> Vec<PeerId> {
        let held = sources(&self.net, &self.control, network, file.root).await;
        let same = held
            .into_iter()
            .filter(|(_, size)| *size == file.size_bytes);
        same.map(|(peer, _)| peer).collect()
    }

    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    /// A teacher asks for `file`: fetched whatever the fetch policy and quota, unless it is
    /// larger than the per-file limit (refused before any byte moves).
    pub fn ask(&self, network: NetworkId, file: FileRef) -> Result<FileProgress, FilesError> {
        if file.size_bytes > self.config.file_bytes_max {
            return Err(FilesError::TooLarge {
                size: file.size_bytes,
                max: self.config.file_bytes_max,
            });
        }
        let progress = self.progress(&network, &file);
        if progress.state != FileState::Complete {
            self.tx.try_send((network, file)).map_err(|_| {
                FilesError::from(std::io::Error::other("too many files asked for; try again"))
            })?;
        }
        Ok(progress)
    }

    /// How `file` stands here.
    pub fn progress(&self, network: &NetworkId, file: &FileRef) -> FileProgress {
        let here = self.blobs.bytes_here(&file.root, file.size_bytes);
        let known = lock(&self.progress).get(&file.root).cloned();
        let mut p = known.unwrap_or_else(|| FileProgress {
            root: file.root,
            network: *network,
            size_bytes: file.size_bytes,
            bytes_here: here,
            state: FileState::NotWanted,
            received_from: BTreeMap::new(),
            note: None,
        });
        p.bytes_here = p.bytes_here.max(here);
        // A fetch that is finishing reports itself, with where the bytes came from.
        let finishing = p.state == FileState::Fetching;
        let complete = self.blobs.complete_size(&file.root) == Some(file.size_bytes);
        if complete && !finishing {
            p.state = FileState::Complete;
        } else if file.size_bytes > self.config.file_bytes_max {
            p.state = FileState::TooLarge;
        }
        p
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }
}

/// What the fetcher needs.
pub struct Fetcher {
    pub blobs: Blobs,
    pub control: Control,
    pub net: NetClient,
    pub ingest: Ingest,
    pub config: FilesConfig,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) type Done = (FileRoot, Result<DownloadReport, String>);

impl Fetcher {
    pub fn handle(&self) -> (FetchHandle, mpsc::Receiver<(NetworkId, FileRef)>) {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        let handle = FetchHandle {
            tx,
            progress: Arc::default(),
            config: self.config.clone(),
            blobs: self.blobs.clone(),
            control: self.control.clone(),
            net: self.net.clone(),
        };
        (handle, rx)
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(
        self,
        handle: FetchHandle,
        mut asked: mpsc::Receiver<(NetworkId, FileRef)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut wants: HashMap<FileRoot, Want> = HashMap::new();
        let mut running: JoinSet<Done> = JoinSet::new();
        let mut ids: HashMap<tokio::task::Id, FileRoot> = HashMap::new();
        let mut aborts: HashMap<FileRoot, tokio::task::AbortHandle> = HashMap::new();
        let mut scan = tokio::time::interval(SCAN_INTERVAL);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            let mut scan_due = false;
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                Some(joined) = running.join_next_with_id(), if !running.is_empty() => {
                    let done = match joined {
                        Ok((id, done)) => { ids.remove(&id); Some(done) }
                        // A fetch that panicked (tried again later) or was cut short because
                        // its file was erased.
                        Err(e) => ids.remove(&e.id()).map(|root| (root, Err(e.to_string()))),
                    };
                    if let Some((root, _)) = &done {
                        aborts.remove(root);
                    }
                    if let Some(done) = done {
                        self.finished(&handle, &mut wants, done);
                    }
                }
                Some((network, file)) = asked.recv() => {
                    self.want(&handle, &mut wants, network, file, true);
                    // A teacher is waiting: start now rather than at the next tick.
                    self.start_due(&handle, &mut wants, &mut running, &mut ids, &mut aborts);
                }
                // Scanned below, outside `select!`, whose branches hold a borrow of
                // `shutdown` that must not live across an await.
                _ = scan.tick() => scan_due = true,
                _ = tick.tick() => {
                    self.start_due(&handle, &mut wants, &mut running, &mut ids, &mut aborts);
                }
            }
            if scan_due {
                self.delete_erased(&handle, &mut wants, &aborts).await;
                self.scan(&handle, &mut wants);
            }
        }
        running.shutdown().await;
    }

    fn want(
        &self,
        handle: &FetchHandle,
        wants: &mut HashMap<FileRoot, Want>,
        network: NetworkId,
        file: FileRef,
        asked: bool,
    ) {
        if let Some(want) = wants.get_mut(&file.root) {
            want.asked |= asked;
            if asked && !want.running {
                want.due = Instant::now();
            }
            return;
        }
        {
            // Progress is kept for wanted files and recent ones; beyond a bound, only for
            // wanted ones.
            let mut progress = lock(&handle.progress);
            if progress.len() >= PROGRESS_MAX {
                progress.retain(|root, _| wants.contains_key(root));
            }
        }
        if wants.len() >= WANTS_MAX {
            // A teacher's request goes before files wanted only eagerly.
            let evict = wants
                .iter()
                .find(|(_, w)| !w.asked && !w.running)
                .map(|(root, _)| *root);
            match (asked, evict) {
                (true, Some(root)) => {
                    wants.remove(&root);
                    lock(&handle.progress).remove(&root);
                }
                _ => return,
            }
        }
        let mut progress = handle.progress(&network, &file);
        if progress.state == FileState::Complete {
            lock(&handle.progress).insert(file.root, progress);
            return;
        }
        progress.state = FileState::Waiting;
        lock(&handle.progress).insert(file.root, progress);
        wants.insert(
            file.root,
            Want {
                network,
                file,
                asked,
                attempts: 0,
                due: Instant::now(),
                running: false,
            },
        );
    }

    /// Wants every file of every followed network that is missing here and allowed: within the
    /// per-file limit, and when eager, within the network's quota (counting in full the files
    /// already wanted). A file already partly here is resumed whatever the policy: someone
    /// wanted it, and a restart must not lose that.
    fn scan(&self, handle: &FetchHandle, wants: &mut HashMap<FileRoot, Want>) {
        let store = self.ingest.store();
        let Ok(networks) = store.networks() else {
            return;
        };
        for network in networks {
            let Ok(files) = store.network_files(&network.id, SCAN_FILES_MAX) else {
                continue;
            };
            let policy = store.file_policy(&network.id).unwrap_or_default();
            let eager = policy.eager.unwrap_or(self.config.eager);
            let quota = policy
                .quota_bytes
                .unwrap_or(self.config.network_quota_bytes);
            let mut counted = std::collections::HashSet::new();
            let mut used = 0u64;
            for (root, size) in &files {
                if counted.insert(*root) {
                    let bytes = match wants.contains_key(root) {
                        true => *size,
                        false => self.blobs.bytes_here(root, *size),
                    };
                    used = used.saturating_add(bytes);
                }
            }
            for (root, size) in files {
                let here = self.blobs.complete_size(&root) == Some(size);
                if wants.contains_key(&root) || here || size > self.config.file_bytes_max {
                    continue;
                }
                let started = self.blobs.bytes_here(&root, size) > 0;
                let within_quota = eager && used.saturating_add(size) <= quota;
                if !(started || within_quota) {
                    continue;
                }
                let Ok(Some(file)) = store.file_ref(&network.id, &root, size) else {
                    continue;
                };
                if !started {
                    used = used.saturating_add(size);
                }
                self.want(handle, wants, network.id, file, false);
            }
        }
    }

    /// Deletes the bytes of files that purged resources listed and no stored resource lists
    /// any more, partial transfers included. A transfer still running is stopped first and
    /// its file deleted at a later scan, once the task is gone (so it cannot write again).
    async fn delete_erased(
        &self,
        handle: &FetchHandle,
        wants: &mut HashMap<FileRoot, Want>,
        aborts: &HashMap<FileRoot, tokio::task::AbortHandle>,
    ) {
        let store = self.ingest.store();
        let Ok(roots) = store.erased_files(ERASED_PER_SCAN_MAX) else {
            return;
        };
        for root in roots {
            match store.file_listed_anywhere(&root) {
                // Listed by another entry, which keeps it: no longer a candidate.
                Ok(true) => {
                    let _ = store.forget_erased_file(root).await;
                    continue;
                }
                Ok(false) => {}
                // Tried again at the next scan.
                Err(_) => continue,
            }
            if let Some(abort) = aborts.get(&root) {
                abort.abort();
                continue;
            }
            wants.remove(&root);
            lock(&handle.progress).remove(&root);
            // Uploaded again since the list was read: wanted after all.
            if !store.is_erased_file(&root).unwrap_or(false) {
                continue;
            }
            match self.blobs.discard(&root) {
                Ok(found) => {
                    if found {
                        tracing::info!(root = %root.short(), "erased file deleted");
                    }
                    let _ = store.forget_erased_file(root).await;
                }
                Err(e) => {
                    tracing::warn!(root = %root.short(), error = %e, "cannot delete erased file")
                }
            }
        }
    }

    fn start_due(
        &self,
        handle: &FetchHandle,
        wants: &mut HashMap<FileRoot, Want>,
        running: &mut JoinSet<Done>,
        ids: &mut HashMap<tokio::task::Id, FileRoot>,
        aborts: &mut HashMap<FileRoot, tokio::task::AbortHandle>,
    ) {
        let now = Instant::now();
        for want in wants.values_mut() {
            if running.len() >= DOWNLOADS_MAX {
                return;
            }
            if want.running || want.due > now {
                continue;
            }
            want.running = true;
            if let Some(p) = lock(&handle.progress).get_mut(&want.file.root) {
                p.state = FileState::Fetching;
            }
            let task = FetchTask {
                store: self.ingest.store().clone(),
                file_bytes_max: self.config.file_bytes_max,
                blobs: self.blobs.clone(),
                control: self.control.clone(),
                net: self.net.clone(),
                network: want.network,
                file: want.file.clone(),
                progress: handle.progress.clone(),
            };
            let root = want.file.root;
            let abort = running.spawn(task.run());
            ids.insert(abort.id(), root);
            aborts.insert(root, abort);
        }
    }

    fn finished(
        &self,
        handle: &FetchHandle,
        wants: &mut HashMap<FileRoot, Want>,
        (root, result): Done,
    ) {
        let Some(want) = wants.get_mut(&root) else {
            return;
        };
        want.running = false;
        let mut all = lock(&handle.progress);
        let progress = all.entry(root).or_insert_with(|| FileProgress {
            root,
            network: want.network,
            size_bytes: want.file.size_bytes,
            bytes_here: 0,
            state: FileState::Waiting,
            received_from: BTreeMap::new(),
            note: None,
        });
        match result {
            Ok(report) if report.complete => {
                progress.state = FileState::Complete;
                progress.bytes_here = want.file.size_bytes;
                progress.note = None;
                tracing::info!(file = %root.short(), bytes = report.bytes_received, sources = report.received_from.len(), "file fetched");
                drop(all);
                wants.remove(&root);
            }
            outcome => {
                progress.state = FileState::Waiting;
                progress.note = Some(match outcome {
                    Ok(_) => "no source has sent it all yet".into(),
                    Err(e) => e,
                });
                want.attempts = want.attempts.saturating_add(1);
                let backoff = Duration::from_secs(1 << want.attempts.min(6)).min(RETRY_MAX);
                want.due = Instant::now() + backoff;
            }
        }
    }
}
