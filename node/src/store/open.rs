//! Opening the store: sled's trees, migration, the repair of a damaged store, the state
//! copy and the ledger checked against what is stored, then the writer started. What went
//! wrong on the way is put in the store's health.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::dir_lock::DirLock;
use super::*;

/// What a store holds besides sled's handles, carried across a reopen of sled.
pub(super) struct Carried {
    pub entry_count: AtomicU64,
    pub sync: RwLock<HashMap<NetworkId, SyncIndex>>,
    pub authors: RwLock<listing_index::Authors>,
    pub health: health::Health,
    pub salvaged: Option<repair::Salvaged>,
    pub ledger: std::sync::Mutex<ledger::Ledger>,
    pub space: space::Space,
    pub changes: changes::Changes,
}

impl Trees {
    /// The store's trees in `db`, with what is `carried`.
    fn assemble(db: sled::Db, carried: Carried) -> Result<Trees, StoreError> {
        let Carried {
            entry_count,
            sync,
            authors,
            health,
            salvaged,
            ledger,
            space,
            changes,
        } = carried;
        Ok(Trees {
            entries: db.open_tree("entries")?,
            by_ref: db.open_tree("by_reference")?,
            files_by_network: db.open_tree("files_by_network")?,
            opaque: db.open_tree("opaque")?,
            quarantine: db.open_tree("quarantine")?,
            meta: db.open_tree("meta")?,
            networks: db.open_tree("networks")?,
            teachers: db.open_tree("teachers")?,
            file_policies: db.open_tree("file_policies")?,
            erased: db.open_tree("erased")?,
            files_erased: db.open_tree("files_erased")?,
            content_keys: db.open_tree("content_keys")?,
            key_rows: db.open_tree("key_rows")?,
            key_intro: db.open_tree("key_intro")?,
            entry_count,
            sync,
            authors,
            health,
            salvaged,
            ledger,
            space,
            changes,
            db,
        })
    }

    /// Flushes sled, closes it (every handle) and opens it again in `dir`, keeping the rest.
    fn reopened(self, dir: &Path) -> Result<Trees, StoreError> {
        self.db.flush()?;
        // Every sled handle left in `trees` (all but the carried state) is dropped at the end
        // of this block, releasing sled's lock before it is opened again.
        let carried = {
            let trees = self;
            let Trees {
                entry_count,
                sync,
                authors,
                health,
                salvaged,
                ledger,
                space,
                changes,
                ..
            } = trees;
            Carried {
                entry_count,
                sync,
                authors,
                health,
                salvaged,
                ledger,
                space,
                changes,
            }
        };
        Trees::assemble(open_db(dir)?, carried)
    }

    pub(crate) fn ledger(&self) -> std::sync::MutexGuard<'_, ledger::Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes in the ledger that `id` is about to be removed (before it is).
    pub(crate) fn note_removal(&self, id: &EntryId) {
        if let Err(e) = self.ledger().removed(&id.0) {
            tracing::warn!(error = %e, entry = %id.short(), "cannot note a removal in the ledger");
        }
    }

    /// Counts the entries the ledger expects that are neither stored (`stored`: every stored
    /// id, sorted) nor quarantined, and rewrites the ledger to what is stored when it has
    /// drifted from it (damage, removals, a store older than the ledger).
    fn check_ledger(
        &self,
        expected: &ledger::Expected,
        stored: &[[u8; 32]],
    ) -> Result<usize, StoreError> {
        let mut lost = 0;
        for id in &expected.ids {
            if stored.binary_search(id).is_err() && !self.quarantine.contains_key(id)? {
                lost += 1;
            }
        }
        if expected.damaged_records > 0 {
            tracing::warn!(
                records = expected.damaged_records,
                "the store's ledger had damaged records"
            );
        }
        let drifted = lost > 0
            || expected.damaged_records > 0
            || expected.ids.len() != stored.len()
            || expected.records > 2 * expected.ids.len() + 1024;
        // Not fatal (the node must start on a full disk): the old ledger stays, and this is
        // tried again at the next open.
        if drifted {
            if let Err(e) = self.ledger().rewrite(stored.iter()) {
                self.health.set(
                    "ledger_failed",
                    format!(
                        "cannot rewrite the store's ledger: {e}; losses to damage may go unnoticed"
                    ),
                );
            }
        }
        Ok(lost)
    }

    /// The tree named `name` when the store was opened (one of `repair::STATE_TREES`).
    pub(super) fn named(&self, name: &str) -> &sled::Tree {
        match name {
            "networks" => &self.networks,
            "teachers" => &self.teachers,
            "file_policies" => &self.file_policies,
            "content_keys" => &self.content_keys,
            "erased" => &self.erased,
            "files_erased" => &self.files_erased,
            _ => &self.meta,
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` with the default options: acknowledged writes
    /// survive a power cut.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// Opens the store with `options`. A damaged store is moved aside and rebuilt from what
    /// can still be read (see `repair`); its problem is then in [`Store::problems`].
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        // Made private before sled makes it with the umask's mode (the store holds content keys).
        crate::secret_file::private_dir(dir).map_err(sled::Error::Io)?;
        let lock = Arc::new(DirLock::take(dir)?);
        let first = lock.clone();
        let cause = match repair::guarded(|| Store::open_salvaging(dir, options, None, first)) {
            Ok(store) => return Ok(store),
            Err(repair::Failure::Other(e)) => return Err(e),
            Err(repair::Failure::Damaged(cause)) => cause,
        };
        tracing::error!(dir = %dir.display(), %cause, "the store is damaged: rebuilding it");
        let aside = repair::move_aside(dir)?;
        // The held lock went aside with the damaged store; the new one is locked before
        // anything is written into it.
        crate::secret_file::private_dir(dir).map_err(sled::Error::Io)?;
        let lock = Arc::new(DirLock::take(dir)?);
        repair::carry_records(&aside, dir)?;
        match repair::guarded(|| Store::open_salvaging(dir, options, Some(&aside), lock.clone())) {
            Ok(store) => {
                store.report_repair(&cause, &aside);
                Ok(store)
            }
            Err(repair::Failure::Other(e)) => Err(e),
            Err(repair::Failure::Damaged(again)) => {
                Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                    format!("a fresh store in {} failed too: {again}", dir.display()),
                ))))
            }
        }
    }

    /// Opens the store in `dir`, first copying into it what can be read of the damaged store
    /// at `salvage_from`.
    pub(super) fn open_salvaging(
        dir: &Path,
        options: StoreOptions,
        salvage_from: Option<&Path>,
        dir_lock: Arc<DirLock>,
    ) -> Result<Store, StoreError> {
        let started = std::time::Instant::now();
        let db = open_db(dir)?;
        let sled_ms = started.elapsed().as_millis() as u64;
        let (ledger, expected) = ledger::Ledger::open(dir).map_err(sled::Error::Io)?;
        let carried = Carried {
            entry_count: AtomicU64::new(0),
            sync: RwLock::default(),
            authors: RwLock::default(),
            health: health::Health::default(),
            salvaged: None,
            ledger: std::sync::Mutex::new(ledger),
            space: space::Space::new(dir, options.config),
            changes: Default::default(),
        };
        let mut trees = Trees::assemble(db, carried)?;
        // Before anything reads the indexes, and before the writer starts.
        let migrated = migrate::run(&trees)?;
        if migrated != migrate::Migrated::default() {
            tracing::info!(?migrated, "store brought up to date with this node's rules");
        }
        if let Some(from) = salvage_from {
            trees.salvaged = Some(repair::salvage(from, &trees));
            trees.db.flush()?;
        }
        let (restored, copy_failed) = state_copy::reconcile(&trees, dir)?;
        if let Some(e) = copy_failed {
            trees.health.set(
                "state_copy_failed",
                format!("cannot keep the copy of this node's state beside the store: {e}"),
            );
        }
        // One pass over the records serves the count, the ledger's check, the sync indexes
        // and the listings (three passes of lookups took 2.3 s at 100,000 entries; this
        // takes ~0.2 s).
        let keys::Scanned {
            ids,
            sync,
            authors,
            unreadable,
        } = keys::scan_records(&trees.entries, &trees.opaque)?;
        let scanned_ms = started.elapsed().as_millis() as u64;
        trees.entry_count = AtomicU64::new(ids.len() as u64);
        let lost = trees.check_ledger(&expected, &ids)?;
        drop(ids);
        trees.sync = RwLock::new(sync);
        trees.authors = RwLock::new(authors);
        if unreadable > 0 {
            tracing::warn!(records = unreadable, "stored records without a header");
        }
        drop_trees_now_in_memory(&trees.db)?;
        // The scan paged every record into sled's cache, which keeps what iterators page in
        // (sled 0.34 bounds it by on-disk sizes, loosely): ~110 MiB at 100,000 entries of
        // 1 KB, whatever the capacity. Opening sled again leaves an idle node holding only
        // what it reads, and the freed memory goes back to the system.
        let trees = trees.reopened(dir)?;
        crate::memory::give_back_freed();
        tracing::info!(
            entries = trees.entry_count.load(Ordering::Relaxed),
            sled_ms,
            scanned_ms,
            took_ms = started.elapsed().as_millis() as u64,
            "store opened"
        );
        let trees = Arc::new(trees);
        let durable = match options.durability {
            Durability::PowerCut => Some(durable::Durable::open(dir).map_err(sled::Error::Io)?),
            Durability::ProcessCrash => None,
        };
        let state = writer::StateCopy {
            dir: dir.to_owned(),
            seq: state_copy::seq(&trees)?,
        };
        let writer = writer::spawn(trees.clone(), durable, state, WRITE_QUEUE_MAX)?;
        if restored > 0 {
            trees.health.set(
                "state_restored",
                format!(
                    "{restored} records of this node's own state (networks, teachers, file \
                     policies, keys, purges) were lost to damage and have been restored from \
                     the copy kept beside the store"
                ),
            );
        }
        if lost > 0 {
            trees.health.set(
                "entries_lost",
                format!(
                    "{lost} acknowledged entries were missing from the store when it opened (its \
                     files were damaged); they are fetched again from peers by catch-up sync"
                ),
            );
        }
        Ok(Store {
            trees,
            writer,
            _dir_lock: dir_lock,
        })
    }

    /// Tells the admin (log and status) that the store was rebuilt, and what it recovered.
    fn report_repair(&self, cause: &str, aside: &Path) {
        let salvaged = self.trees.salvaged.clone().unwrap_or_default();
        let unreadable = match salvaged.unreadable.is_empty() {
            true => String::new(),
            false => format!(" (unreadable: {})", salvaged.unreadable.join(", ")),
        };
        let message = format!(
            "the store was damaged ({cause}) and has been rebuilt: {} entries and {} records of \
             this node's settings recovered{unreadable}; entries it lacks are fetched again from \
             peers by catch-up sync. The damaged copy is kept in {} for inspection",
            salvaged.entries,
            salvaged.records,
            aside.display()
        );
        self.trees.health.set("store_repaired", message);
    }
}

/// Trees of stores written before issue 14 that are now held in memory, rebuilt at open:
/// each network's time order (its sync index) and the author and kind listings
/// (`listing_index.rs`). Dropping them gives their disk space back (the time tree cost about
/// the entries' own bytes again; each listing tree ~0.3x). A node older than this one opening
/// the store afterwards would find nothing to sync or list: downgrading is not supported
/// (`docs/deploy.md`).
const TREES_NOW_IN_MEMORY: [&str; 3] =
    ["by_network_time", "by_author_time", "by_network_kind_time"];

fn drop_trees_now_in_memory(db: &sled::Db) -> Result<(), StoreError> {
    let names = db.tree_names();
    for old in TREES_NOW_IN_MEMORY {
        if names.iter().any(|n| n == old.as_bytes()) {
            let started = std::time::Instant::now();
            db.drop_tree(old)?;
            tracing::info!(
                tree = old,
                took_ms = started.elapsed().as_millis() as u64,
                "dropped an older store's index tree (now kept in memory)"
            );
        }
    }
    Ok(())
}
