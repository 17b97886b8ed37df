//! Durable storage of verified entries and the indexes that listing needs.
//!
//! This module is the only code that touches sled. Writes go through one writer thread
//! ([`writer`]) that commits in groups: it applies every insert waiting in its bounded queue,
//! flushes once, and only then acknowledges them all. Reads run on the caller's thread against
//! sled's lock-free trees and check each entry's bytes against its id, so a corrupted record is
//! reported, never served.

pub mod changes;
mod content_keys;
pub(crate) mod dir_lock;
pub use content_keys::KeyIndex;
mod durable;
pub use durable::Durability;
mod health;
mod ledger;
pub use health::Problem;
mod repair;
mod sources;
pub use sources::SOURCES_LOOKED_MAX;
mod space;
mod state_copy;
mod time_order;
pub use space::{StoreConfig, StoreConfigError};
mod erased;
mod files;
mod keys;
mod list;
mod listing_index;
pub use list::ListFilter;
mod migrate;
mod open;
mod prefix;
mod record;
mod versions;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use staffroom_protocol::sync::SyncIndex;
use staffroom_protocol::{
    AuthorId, Entry, EntryError, EntryId, EntryKind, Header, NetworkId, VerifiedEntry,
};

pub use files::FilePolicy;
pub use versions::Versions;
pub use writer::InsertOutcome;

/// Queued write commands at most; senders wait (backpressure) beyond this.
const WRITE_QUEUE_MAX: usize = 1024;
/// The most entries a listing returns in one call.
pub const LIST_LIMIT_MAX: usize = 1000;
/// Index keys looked at per version when listing what is about an entry.
const ABOUT_SCAN_MAX: usize = 10_000;
/// Teachers one node registers at most.
pub const TEACHERS_MAX: usize = 1024;
/// How long opening waits for the file lock of a store that was just closed.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the sled database in `dir`. sled releases its file lock from a background thread
/// shortly after the last handle of a closed store drops, so a store reopened at once (a node
/// restarting in the same process) may find it still held: that is retried, briefly. A store
/// really held by another process still fails, after [`LOCK_WAIT`].
///
/// `dir` exists: `Store::open_with` made it private and locked it first.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.to_string().contains("acquire lock") && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(sled::Error::Io(e)) if e.to_string().contains("acquire lock") => {
                return Err(StoreError::Locked)
            }
            other => return Ok(other?),
        }
    }
}

/// Membership entries loaded for one network at most.
pub const MEMBERSHIP_ENTRIES_MAX: usize = 2 * staffroom_protocol::membership::OPS_MAX;
/// sled's page cache. Its default (1 GiB) would balloon an idle school node's memory.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored entry {0} is corrupt: its bytes no longer hash to its id")]
    Corrupt(EntryId),
    #[error("the store has shut down")]
    Closed,
    #[error("it is locked by another Staffroom node using the same data directory")]
    Locked,
    #[error(
        "the store's disk is full: {} MiB free, {} MiB kept in reserve",
        free_bytes / (1024 * 1024),
        reserve_bytes / (1024 * 1024)
    )]
    DiskFull { free_bytes: u64, reserve_bytes: u64 },
}

/// A network this node has joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: NetworkId,
    /// A local, human name; not part of the protocol.
    pub name: String,
    pub joined_at_ms: u64,
}

/// A teacher registered on this node: allowed to use its API with their own key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherRecord {
    pub key: AuthorId,
    pub name: String,
    /// The school's admin: may register and remove teachers.
    pub admin: bool,
    pub added_at_ms: u64,
}

/// A stored entry with its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    pub id: EntryId,
    #[serde(flatten)]
    pub entry: Entry,
    /// A sealed entry's content, opened for a reader who is a member (never stored: the
    /// store holds only the sealed bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<staffroom_protocol::Body>,
}

/// What the store holds under an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// An entry this node understands.
    Entry(Box<StoredEntry>),
    /// An entry of a kind or version this node does not understand: stored and relayed for
    /// the nodes that do, never listed.
    Opaque(Header),
}

pub(crate) struct Trees {
    db: sled::Db,
    entries: sled::Tree,
    by_ref: sled::Tree,
    /// The files each network's resources list, with their signed sizes.
    files_by_network: sled::Tree,
    /// Ids of stored entries this node does not understand, looked at again at every open in
    /// case a newer version of the node now does.
    opaque: sled::Tree,
    /// Entries the present rules refuse that an older node stored: kept, never served.
    quarantine: sled::Tree,
    /// What the store knows of itself (the rules its entries were last checked against).
    meta: sled::Tree,
    networks: sled::Tree,
    /// Teachers registered on this node: author key → `TeacherRecord` (JSON).
    teachers: sled::Tree,
    /// How each network's files are fetched here, where set: network → `FilePolicy` (JSON).
    file_policies: sled::Tree,
    /// Erasures by what they name: network ‖ target ‖ its author ‖ its time ‖ action → the
    /// first erasure's id (see `erased.rs`).
    erased: sled::Tree,
    /// Roots of files that purged resources listed, to be deleted here (see `erased.rs`).
    files_erased: sled::Tree,
    /// Private networks' content keys this node has opened: network ‖ key id → key.
    content_keys: sled::Tree,
    /// Who knows each content key: network ‖ key id ‖ node → grant id ‖ how (see
    /// `content_keys.rs`).
    key_rows: sled::Tree,
    /// Each content key's first grant: network ‖ key id → time ‖ grant id.
    key_intro: sled::Tree,
    entry_count: AtomicU64,
    /// Per network, the (time, id) set that catch-up sync reconciles, kept in memory with its
    /// range fingerprints and updated by the writer as entries are stored. Each item's tag
    /// places it in the author and kind listings (`listing_index.rs`).
    sync: RwLock<HashMap<NetworkId, SyncIndex>>,
    /// The authors of understood entries, numbered for the sync indexes' listing tags.
    authors: RwLock<listing_index::Authors>,
    /// What is wrong with the store right now.
    health: health::Health,
    /// What was recovered, when this store was rebuilt from a damaged one at open.
    salvaged: Option<repair::Salvaged>,
    /// The ids of the entries acknowledged, to notice entries lost to damage.
    ledger: std::sync::Mutex<ledger::Ledger>,
    /// The free space on the store's disk, against the reserve.
    space: space::Space,
    /// What changed lately, for the search index to follow.
    changes: changes::Changes,
}

/// How a store is opened.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub durability: Durability,
    pub config: StoreConfig,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::PowerCut,
            config: StoreConfig::default(),
        }
    }
}

/// A handle to the store; cheap to clone. Dropping the last handle stops the writer thread
/// after it has flushed everything it acknowledged.
#[derive(Clone)]
pub struct Store {
    trees: Arc<Trees>,
    writer: writer::WriterHandle,
    /// Dropped last: released once the writer has closed sled.
    _dir_lock: Arc<dir_lock::DirLock>,
}

impl Store {
    /// Stores verified entries durably. Returns once they are flushed to disk, with whether each
    /// was new. Storing an entry that is already present changes nothing.
    pub async fn insert(
        &self,
        entries: Vec<VerifiedEntry>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        self.writer.insert(entries).await
    }

    /// Records a network as joined, durably.
    pub async fn join_network(&self, record: NetworkRecord) -> Result<bool, StoreError> {
        self.writer.join_network(record).await
    }

    /// Deletes `author`'s entries in `network` made at or after `from_ms` (joins excepted),
    /// durably: what a node already held when it learnt that their membership ended then.
    pub async fn purge(
        &self,
        network: NetworkId,
        author: AuthorId,
        from_ms: u64,
    ) -> Result<usize, StoreError> {
        self.writer.purge(network, author, from_ms).await
    }

    /// An admin's purge of one entry from this node alone: it and its files go, and it is
    /// not stored here again. Returns whether it was here.
    pub async fn purge_entry(&self, id: EntryId) -> Result<bool, StoreError> {
        self.writer.purge_entry(id).await
    }

    /// Deletes every entry of `network` here (and so, through the fetcher, its files), in
    /// bounded steps. Returns how many went.
    pub async fn purge_network(&self, id: NetworkId) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let step = self.writer.purge_network(id).await?;
            total = total.saturating_add(step as u64);
            if step == 0 {
                return Ok(total);
            }
        }
    }

    /// Registers (or replaces) a teacher, durably.
    pub async fn put_teacher(&self, record: TeacherRecord) -> Result<(), StoreError> {
        self.writer.put_teacher(record).await
    }

    /// Removes a teacher's registration, durably; false if there was none.
    pub async fn remove_teacher(&self, key: AuthorId) -> Result<bool, StoreError> {
        self.writer.remove_teacher(key).await
    }

    pub fn teacher(&self, key: &AuthorId) -> Result<Option<TeacherRecord>, StoreError> {
        Ok(self
            .trees
            .teachers
            .get(key.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Every registered teacher (at most [`TEACHERS_MAX`]).
    pub fn teachers(&self) -> Result<Vec<TeacherRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.teachers.iter().take(TEACHERS_MAX) {
            let (_, value) = item?;
            if let Ok(record) = serde_json::from_slice(&value) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Replaces a network's record (its local name), durably.
    pub async fn rename_network(&self, record: NetworkRecord) -> Result<bool, StoreError> {
        self.writer.rename_network(record).await
    }

    /// Stops following a network, durably. Its stored entries stay (erasure is separate).
    pub async fn leave_network(&self, id: NetworkId) -> Result<bool, StoreError> {
        self.writer.leave_network(id).await
    }

    /// A network's founding entry and membership operations, oldest first: at most
    /// [`MEMBERSHIP_ENTRIES_MAX`] (past which the resolver would not evaluate them anyway).
    pub fn membership_entries(&self, network: &NetworkId) -> Result<Vec<StoredEntry>, StoreError> {
        let mut out = Vec::new();
        for kind in [EntryKind::Network, EntryKind::Membership] {
            let want = listing_index::Want {
                kind: Some(kind.tag()),
                author: None,
            };
            let oldest = time_order::Direction::OldestFirst { from: (0, [0; 32]) };
            for id in self.trees.listed(network, oldest, want) {
                if out.len() >= MEMBERSHIP_ENTRIES_MAX {
                    return Ok(out);
                }
                if let Some(stored) = self.get(&EntryId(id))? {
                    out.push(stored);
                }
            }
        }
        Ok(out)
    }

    /// Flushes everything and waits for it: used at shutdown.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.writer.flush().await
    }

    pub fn networks(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.networks.iter() {
            let (_, value) = item?;
            if let Ok(record) = serde_json::from_slice::<NetworkRecord>(&value) {
                out.push(record);
            }
        }
        Ok(out)
    }

    pub fn network(&self, id: &NetworkId) -> Result<Option<NetworkRecord>, StoreError> {
        Ok(self
            .trees
            .networks
            .get(id.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// The canonical bytes of an entry, checked against its id.
    pub fn get_bytes(&self, id: &EntryId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(bytes) = self.trees.record(id)? else {
            return Ok(None);
        };
        if blake3::hash(&bytes).as_bytes() != id.as_bytes() {
            return Err(StoreError::Corrupt(*id));
        }
        Ok(Some(bytes))
    }

    /// The canonical bytes of up to `limit` entries whose ids start with `prefix`, each checked
    /// against its id. Sync fetches by 8-byte prefix; two ids sharing one are a rare accident.
    pub fn get_by_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.entries.scan_prefix(prefix).take(limit) {
            let (key, record) = item?;
            let id = keys::id_suffix(&key);
            let bytes = record::unpack(&record).map_err(|_| StoreError::Corrupt(id))?;
            if blake3::hash(&bytes).as_bytes()[..] != key[..] {
                return Err(StoreError::Corrupt(id));
            }
            out.push(bytes);
        }
        Ok(out)
    }

    /// Whether an entry is stored (understood or not), without reading it.
    pub fn contains(&self, id: &EntryId) -> Result<bool, StoreError> {
        Ok(self.trees.entries.contains_key(id.as_bytes())?)
    }

    /// An entry this node understands; `None` if absent or opaque here.
    pub fn get(&self, id: &EntryId) -> Result<Option<StoredEntry>, StoreError> {
        Ok(match self.lookup(id)? {
            Some(Lookup::Entry(stored)) => Some(*stored),
            Some(Lookup::Opaque(_)) | None => None,
        })
    }

    /// Whatever the store holds under `id`, understood or not.
    pub fn lookup(&self, id: &EntryId) -> Result<Option<Lookup>, StoreError> {
        let Some(bytes) = self.get_bytes(id)? else {
            return Ok(None);
        };
        // The bytes were verified before they were stored and still hash to their id.
        match Entry::decode(&bytes) {
            Ok(entry) => Ok(Some(Lookup::Entry(Box::new(StoredEntry {
                id: *id,
                entry,
                opened: None,
            })))),
            Err(EntryError::UnknownKind(_) | EntryError::UnknownVersion(_)) => {
                let header = Header::parse(&bytes).map_err(|_| StoreError::Corrupt(*id))?;
                Ok(Some(Lookup::Opaque(header)))
            }
            Err(_) => Err(StoreError::Corrupt(*id)),
        }
    }

    /// The networks this store holds entries of (joined or not).
    pub(crate) fn stored_networks(&self) -> Vec<NetworkId> {
        let indexes = self.trees.sync.read().unwrap_or_else(|e| e.into_inner());
        indexes.keys().copied().collect()
    }

    /// Runs `f` on the sync index of `network` (empty if nothing is stored for it yet).
    pub fn with_sync_index<R>(&self, network: &NetworkId, f: impl FnOnce(&SyncIndex) -> R) -> R {
        // A poisoned lock means a writer panicked mid-insert; the index is still a valid set.
        let indexes = self.trees.sync.read().unwrap_or_else(|e| e.into_inner());
        match indexes.get(network) {
            Some(index) => f(index),
            None => f(&SyncIndex::new()),
        }
    }

    /// Whether `bytes` more (a file being uploaded, say) would still leave the store's disk
    /// its reserve; a full disk is reported in the store's health.
    pub fn room_for(&self, bytes: u64) -> Result<(), StoreError> {
        let room = self.trees.space.check(bytes);
        if let Err(e) = &room {
            self.trees
                .health
                .set("disk_full", space::disk_full_message(e));
        }
        room
    }

    /// What is wrong with the store right now (nothing, normally). A full disk is looked at
    /// again, so freed space shows at once.
    pub fn problems(&self) -> Vec<Problem> {
        let health = &self.trees.health;
        if health.has("disk_full") && self.trees.space.check(0).is_ok() {
            health.clear("disk_full");
        }
        health.problems()
    }

    /// Number of entries stored (kept in memory; sled's own `len` is a full scan).
    pub fn entry_count(&self) -> u64 {
        self.trees.entry_count.load(Ordering::Relaxed)
    }

    /// Whether an erasure stored here covers this entry: it is then never stored or relayed.
    pub fn is_erased(&self, id: &EntryId, header: &Header) -> Result<bool, StoreError> {
        erased::covered(&self.trees, id, header)
    }

    /// Whether a facilitator has hidden this entry from listings.
    pub fn is_hidden(&self, stored: &StoredEntry) -> Result<bool, StoreError> {
        let e = &stored.entry;
        erased::hidden(
            &self.trees,
            &stored.id,
            &e.network,
            &e.author,
            e.created_at_ms,
        )
    }
}

#[cfg(test)]
mod tests;

/// Entry points for the fuzz targets (`fuzz/`, built with `--cfg fuzzing`): the store's own
/// files, parsed from bytes as they are read at open.
#[cfg(fuzzing)]
pub mod fuzzing {
    /// The ledger's records: (records read, records damaged, ids expected).
    pub fn ledger(bytes: &[u8]) -> (usize, usize, usize) {
        super::ledger::read(bytes)
            .map_or((0, 0, 0), |e| (e.records, e.damaged_records, e.ids.len()))
    }

    /// A record of the `entries` tree, as read from disk: the length of the entry it holds,
    /// if it unpacks (never more than the largest entry).
    pub fn record(bytes: &[u8]) -> Option<usize> {
        super::record::unpack(bytes).ok().map(|b| b.len())
    }

    /// The state copy: its sequence number and how many records it holds, if intact.
    pub fn state_copy(bytes: &[u8]) -> Option<(u64, usize)> {
        super::state_copy::parse(bytes).map(|copy| (copy.seq, copy.records.len()))
    }
}
