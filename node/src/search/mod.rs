//! Full-text search and faceted filtering over the entries a node holds (tantivy, on disk
//! beside the store). The index is a view of the store, kept by one thread that follows the
//! store's change log (`indexer.rs`); it holds one document per shown entry and stores only
//! ids, so results are always read back from the store. Deleting the index directory loses
//! nothing: it is rebuilt at the next start.
//!
//! Searches are read-your-writes outside a catch-up: one first asks for a commit of every
//! change the store had when it began, and waits for it up to [`FRESH_WAIT`]. While the
//! index holds a catch-up (see `rebuild_gate.rs`) searches answer at once, saying they are
//! behind.

mod indexer;
mod priority;
pub mod query;
mod rebuild_gate;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};

use crate::store::{Store, StoreError};
use priority::in_background;
pub use query::{FacetCount, Facets, SearchHits, SearchRequest};
use schema::{Fields, SCHEMA_VERSION};

/// The indexer's memory for documents not yet written to disk (tantivy's least: 15 MB).
pub const WRITER_MEMORY_BYTES: usize = 15_000_000;
/// How long a search waits for the index to catch up with the store before it answers from
/// what is committed (and says the index is behind).
pub const FRESH_WAIT: Duration = Duration::from_secs(2);
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("search index unavailable: {0}")]
    Unavailable(String),
    /// The node is stopping: work in hand is dropped (and redone at the next start).
    #[error("search index: stopping")]
    Stopping,
}

/// What a commit says of the index, in tantivy's commit payload.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Payload {
    schema: u32,
    /// The store's contents digest the index matched at a clean shutdown, hex; empty for any
    /// other commit (the store may be ahead of it).
    digest: String,
}

impl Payload {
    fn clean(digest: [u8; 32]) -> Payload {
        Payload {
            schema: SCHEMA_VERSION,
            digest: hex::encode(digest),
        }
    }

    fn to_json(&self) -> String {
        let payload = Payload {
            schema: SCHEMA_VERSION,
            ..self.clone()
        };
        serde_json::to_string(&payload).unwrap_or_default()
    }
}

/// What the indexer and the searches share.
#[derive(Default)]
pub(crate) struct Shared {
    /// One past the store's change sequence the committed index reflects (0: nothing yet,
    /// as before the first commit of a rebuild).
    visible: Mutex<u64>,
    published: Condvar,
    /// One past the highest change sequence a search waits for. Whoever raises it pokes the
    /// change log after, which wakes the indexer (it sleeps until its commit falls due).
    wanted: AtomicU64,
    stop: AtomicBool,
    rebuilding: AtomicBool,
    /// A catch-up's changes (or a rebuild) wait for the store to go quiet: searches need not
    /// wait for a commit.
    waiting_for_quiet: AtomicBool,
    /// Rebuilds finished since open.
    rebuilds: AtomicU64,
    /// Why the indexer is failing, if it is.
    failed: Mutex<Option<String>>,
}

impl Shared {
    fn visible_seq(&self) -> u64 {
        *self.visible.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, seq: u64) {
        *self.visible.lock().unwrap_or_else(|e| e.into_inner()) = seq;
        self.published.notify_all();
    }

    fn set_failed(&self, why: Option<String>) {
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// Waits until the index shows sequence `seq`, for at most `wait`, or until a hold
    /// starts (nothing is committed before it ends); whether it shows `seq`.
    fn wait_visible(&self, seq: u64, wait: Duration) -> bool {
        let visible = self.visible.lock().unwrap_or_else(|e| e.into_inner());
        let (visible, _) = self
            .published
            .wait_timeout_while(visible, wait, |v| {
                *v < seq && !self.waiting_for_quiet.load(Ordering::Acquire)
            })
            .unwrap_or_else(|e| e.into_inner());
        *visible >= seq
    }

    /// Marks a hold begun or ended. Set under the lock searches wait with, so a search that
    /// has just checked the flag is already waiting when it is told.
    fn set_holding(&self, holding: bool) {
        let visible = self.visible.lock().unwrap_or_else(|e| e.into_inner());
        self.waiting_for_quiet.store(holding, Ordering::Release);
        drop(visible);
        self.published.notify_all();
    }
}

/// A node's search index: cloneable; searches run on the caller's thread.
#[derive(Clone)]
pub struct SearchIndex {
    store: Store,
    reader: IndexReader,
    fields: Fields,
    shared: Arc<Shared>,
    /// Stops the indexer when the last handle goes (a node that failed to start, say).
    thread: Arc<Closer>,
}

struct Closer {
    store: Store,
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Closer {
    fn close(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.store.changes().poke();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("search indexer panicked");
            }
        }
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.close();
    }
}

impl SearchIndex {
    /// Opens the index in `dir` for `store` (creating it, or starting it afresh if it is
    /// damaged or of another schema) and starts its indexer. An index that does not match the
    /// store is rebuilt in the background; searches meanwhile see what it holds so far.
    pub fn open(dir: &Path, store: Store) -> Result<SearchIndex, SearchError> {
        // Read before the digest: a change made meanwhile is applied again, which is harmless.
        let latest = store.changes().latest();
        let (fields, writer, reader, current) = match open_parts(dir, &store, Start::AsItIs) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "search index unreadable; rebuilding it");
                // A node must start even on a full disk: then the index lives in memory.
                open_parts(dir, &store, Start::Afresh).or_else(|e| {
                    tracing::warn!(error = %e, "search index kept in memory until the next start");
                    open_parts(dir, &store, Start::InMemory)
                })?
            }
        };
        let shared = Arc::new(Shared::default());
        shared.publish(if current { latest.saturating_add(1) } else { 0 });
        let indexer = indexer::Indexer {
            store: store.clone(),
            writer,
            reader: reader.clone(),
            fields,
            shared: shared.clone(),
            applied: latest,
            pokes_seen: 0,
            uncommitted: 0,
            first_uncommitted: None,
            deleted: false,
            rebuild: !current,
            gate: None,
            watch: rebuild_gate::CatchUpWatch::new(std::time::Instant::now(), latest),
            failures: 0,
        };
        shared.rebuilding.store(!current, Ordering::Release);
        let thread = std::thread::Builder::new()
            .name("search-indexer".into())
            .spawn(move || indexer.run())
            .map_err(|source| SearchError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        let closer = Closer {
            store: store.clone(),
            shared: shared.clone(),
            thread: Mutex::new(Some(thread)),
        };
        Ok(SearchIndex {
            store,
            reader,
            fields,
            shared,
            thread: Arc::new(closer),
        })
    }

    /// Runs `request` against the index once it has caught up with the store (or after
    /// [`FRESH_WAIT`]; at once, saying it is behind, while the index holds a catch-up or a
    /// rebuild until the store is quiet). Documents opened from sealed entries match only
    /// in `readable`: the private networks the reader is a member of now.
    pub fn search(
        &self,
        request: &SearchRequest,
        readable: &[staffroom_protocol::NetworkId],
    ) -> Result<SearchHits, SearchError> {
        let wanted = self.store.changes().latest().saturating_add(1);
        self.shared.wanted.fetch_max(wanted, Ordering::AcqRel);
        self.store.changes().poke();
        // During a hold nothing is committed before the store is quiet: `wait_visible` then
        // answers at once, and the search from what the index holds.
        let fresh = self.shared.wait_visible(wanted, FRESH_WAIT);
        let mut hits = query::run(&self.reader.searcher(), &self.fields, request, readable)?;
        hits.behind = !fresh || self.shared.rebuilding.load(Ordering::Acquire);
        if let Some(why) = self
            .shared
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            hits.behind = true;
            tracing::warn!(error = %why, "search answered from a stale index");
        }
        Ok(hits)
    }

    /// Rebuilds finished since the index was opened.
    pub fn rebuilds(&self) -> u64 {
        self.shared.rebuilds.load(Ordering::Acquire)
    }

    /// Whether the index holds off until the store is quiet (a catch-up is under way).
    pub fn holding_for_quiet(&self) -> bool {
        self.shared.waiting_for_quiet.load(Ordering::Acquire)
    }

    /// Whether the index is being rebuilt from the store.
    pub fn rebuilding(&self) -> bool {
        self.shared.rebuilding.load(Ordering::Acquire)
    }

    /// Stops the indexer after a last commit (call once the node no longer writes to the
    /// store) and waits for it.
    pub fn close(&self) {
        self.thread.close();
    }
}

/// How an index is opened: as found, afresh on disk, or in memory (no room on the disk).
#[derive(Clone, Copy)]
enum Start {
    AsItIs,
    Afresh,
    InMemory,
}

/// The index in `dir` (or in memory), its writer and reader, and whether it matches the
/// store. Any failure, a damaged segment included, is for the caller to answer by
/// starting afresh.
fn open_parts(
    dir: &Path,
    store: &Store,
    start: Start,
) -> Result<(Fields, IndexWriter, IndexReader, bool), SearchError> {
    let (index, current) = match start {
        Start::AsItIs => open_existing(dir, store)?,
        Start::Afresh => (create_fresh(dir)?, false),
        Start::InMemory => (Index::create_in_ram(Fields::schema().0), false),
    };
    let fields = Fields::of(&index)
        .ok_or_else(|| SearchError::Unavailable("the index has another schema".into()))?;
    let options = IndexWriterOptions::builder()
        .memory_budget_per_thread(WRITER_MEMORY_BYTES)
        .num_worker_threads(1)
        .num_merge_threads(1)
        .build();
    // Made in the background, whose scheduling tantivy's own threads inherit.
    let writer = in_background(|| index.writer_with_options(options))??;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    Ok((fields, writer, reader, current))
}

/// The index in `dir` and whether it matches the store (a clean shutdown's commit of this
/// schema whose digest is the store's). A fresh index is created where there is none.
fn open_existing(dir: &Path, store: &Store) -> Result<(Index, bool), SearchError> {
    let io = |source| SearchError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let directory =
        MmapDirectory::open(dir).map_err(|e| SearchError::Unavailable(e.to_string()))?;
    if !Index::exists(&directory).map_err(|e| SearchError::Unavailable(e.to_string()))? {
        return Ok((create_fresh(dir)?, false));
    }
    let index = Index::open(directory)?;
    if Fields::of(&index).is_none() {
        drop(index);
        return Ok((create_fresh(dir)?, false));
    }
    let payload: Payload = index
        .load_metas()?
        .payload
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or_default();
    let current = payload.schema == SCHEMA_VERSION
        && !payload.digest.is_empty()
        && payload.digest == hex::encode(store.contents_digest()?);
    Ok((index, current))
}

/// Empties `dir` and creates an index there.
fn create_fresh(dir: &Path) -> Result<Index, SearchError> {
    let io = |source| SearchError::Io {
        path: dir.display().to_string(),
        source,
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let (schema, _) = Fields::schema();
    Ok(Index::create_in_dir(dir, schema)?)
}

/// The index's directory in a node's data directory.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("search")
}

#[cfg(test)]
mod rebuild_tests;
#[cfg(test)]
mod tests;
