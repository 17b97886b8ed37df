//! The search index's writer: one thread that follows the store's changes and keeps one
//! document per shown entry. Searches never wait on it for long: they read the last commit.
//!
//! A stored entry replaces its family's document (its original and every edit share one);
//! anything wider (a removal, an erasure or hide, a key grant, a network joined or left)
//! reindexes that network from the store. An index that does not match the store at open is
//! rebuilt at once. A catch-up (changes far faster than live posting) is indexed once the
//! store is quiet: from the change log if it still holds them, else by rebuilding
//! everything. The index is a view: losing it loses nothing.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use staffroom_protocol::sync::Item;
use staffroom_protocol::{Body, EntryId, NetworkId};
use tantivy::schema::Term;
use tantivy::{IndexReader, IndexWriter};

use super::rebuild_gate::{CatchUpWatch, Decision, QuietGate, QUIET_WINDOW};
use super::schema::Fields;
use super::{Payload, SearchError, Shared};
use crate::store::changes::{Change, Since};
use crate::store::{Store, StoredEntry};

/// A commit at most this long after the first change it holds (searches that want newer
/// results ask for a commit at once). Each commit starts a new segment writer, whose memory
/// the allocator kept (glibc's, then): at one commit a second the soak saw a node's RSS double in a
/// minute (117 → 229 MiB); at 30 s it stayed flat.
const COMMIT_INTERVAL: Duration = Duration::from_secs(30);
/// A commit at least every this many changes, so a rebuild shows progress.
const COMMIT_CHANGES_MAX: usize = 20_000;
/// Entries read from the store at a time when a network is reindexed.
const REINDEX_CHUNK: usize = 4_096;
/// After a failure, the wait before trying again (a full disk, say).
const RETRY_AFTER: Duration = Duration::from_secs(5);

pub(super) struct Indexer {
    pub store: Store,
    pub writer: IndexWriter,
    pub reader: IndexReader,
    pub fields: Fields,
    pub shared: Arc<Shared>,
    /// The store's change sequence this index has applied.
    pub applied: u64,
    /// The store's pokes (a stop, a search wanting a commit) this indexer has seen.
    pub pokes_seen: u64,
    /// Changes applied and not yet committed, and since when.
    pub uncommitted: usize,
    pub first_uncommitted: Option<Instant>,
    /// Documents were deleted since the last merge: erased words must leave the disk.
    pub deleted: bool,
    /// The index must be rebuilt before anything else (at open, after a failure, or after
    /// falling behind the store's change log).
    pub rebuild: bool,
    /// While changes (or a rebuild after a lag) wait for the store to go quiet.
    pub gate: Option<QuietGate>,
    /// Whether the changes coming in are a catch-up, to hold until the store is quiet.
    pub watch: CatchUpWatch,
    /// Failures in a row, for the wait before the next try.
    pub failures: u32,
}

impl Indexer {
    pub fn run(mut self) {
        // This thread keeps the default priority: it takes locks the store's writer takes too
        // (the change log's, sled's), and a background thread stalled while holding one
        // would stall the writer with it. The CPU-heavy work (tokenising, merging) runs on
        // tantivy's threads, which are started in the background: see `in_background`.
        while !self.shared.stop.load(Ordering::Acquire) {
            if let Err(e) = self.step() {
                if matches!(e, SearchError::Stopping) {
                    // Half-done work is dropped; the last commit was not a clean one, so the
                    // next start rebuilds.
                    self.rollback();
                    self.rebuild = true;
                    break;
                }
                tracing::error!(error = %e, "search index: cannot keep up with the store");
                self.shared.set_failed(Some(e.to_string()));
                self.rebuild = true;
                self.shared.rebuilding.store(true, Ordering::Release);
                self.rollback();
                self.uncommitted = 0;
                self.first_uncommitted = None;
                self.pause_after_failure();
            }
        }
        // The node has stopped writing: a last commit that says what it holds, so the next
        // start need not rebuild.
        if let Err(e) = self.close_commit() {
            tracing::warn!(error = %e, "search index: not closed cleanly; rebuilt at next start");
        }
        if let Err(e) = self.writer.wait_merging_threads() {
            tracing::warn!(error = %e, "search index: a merge failed at shutdown");
        }
    }

    /// Drops what was not committed (tantivy starts its indexing threads again: in the
    /// background).
    fn rollback(&mut self) {
        let writer = &mut self.writer;
        match super::in_background(|| writer.rollback()) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "search index: rollback failed"),
            Err(e) => tracing::warn!(error = %e, "search index: rollback failed"),
        }
    }

    /// Waits before trying again, longer after each failure in a row (a full disk would
    /// otherwise mean a full rebuild every few seconds), waking at once to stop.
    fn pause_after_failure(&mut self) {
        let wait = RETRY_AFTER.saturating_mul(1 << self.failures.min(6));
        self.failures = self.failures.saturating_add(1);
        let until = Instant::now() + wait;
        while Instant::now() < until && !self.shared.stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn step(&mut self) -> Result<(), SearchError> {
        if self.gate.is_some() {
            return self.hold_until_quiet();
        }
        if self.rebuild {
            // Read before the store is: a change made meanwhile is applied again, harmlessly.
            self.applied = self.store.changes().latest();
            return self.rebuild_all();
        }
        // Until the next change, or the commit falls due; a search that wants a commit, and
        // a stop, poke the change log and wake this at once. (It woke every 20 ms while
        // anything was uncommitted: 100 idle nodes in one process spent 0.08 cores on it.)
        let wait = match self.first_uncommitted {
            Some(first) => COMMIT_INTERVAL.saturating_sub(first.elapsed()),
            None => COMMIT_INTERVAL,
        };
        match self
            .store
            .changes()
            .wait_since(self.applied, &mut self.pokes_seen, wait)
        {
            Since::Lagged { latest } => {
                tracing::info!("search index: fell behind the store; rebuilding once it is quiet");
                self.rebuild = true;
                self.shared.rebuilding.store(true, Ordering::Release);
                return self.hold(latest);
            }
            Since::Changes { changes, latest } => {
                if self.watch.observe(Instant::now(), latest) {
                    tracing::debug!("search index: a catch-up is under way; indexing it after");
                    return self.hold(latest);
                }
                self.take_in(&changes, latest)?;
            }
        }
        if self.commit_due() {
            self.commit(None)?;
        }
        Ok(())
    }

    /// Leaves the changes after `applied` (and any rebuild due) until the store is quiet,
    /// committing what was applied before (a hold may last minutes). Searches meanwhile
    /// answer at once from what the index holds, saying it is behind.
    fn hold(&mut self, latest: u64) -> Result<(), SearchError> {
        self.gate = Some(QuietGate::new(Instant::now(), latest));
        self.shared.set_holding(true);
        if self.uncommitted > 0 && !self.rebuild {
            self.commit(None)?;
        }
        Ok(())
    }

    /// Waits for the store to go quiet (see `rebuild_gate.rs`), then applies what was held
    /// in one commit, or marks a rebuild due if the change log no longer holds it all.
    fn hold_until_quiet(&mut self) -> Result<(), SearchError> {
        let changes = self.store.changes();
        let latest = changes.latest();
        let catching_up = changes.catching_up();
        if let Some(gate) = self.gate.as_mut() {
            if gate.observe(Instant::now(), latest, catching_up) == Decision::Wait {
                changes.wait_poke(&mut self.pokes_seen, QUIET_WINDOW / 5);
                return Ok(());
            }
        }
        tracing::debug!(
            held_from = self.applied,
            latest,
            "search index: the store is quiet; indexing what was held"
        );
        self.gate = None;
        self.watch = CatchUpWatch::new(Instant::now(), latest);
        self.shared.set_holding(false);
        if self.rebuild {
            return Ok(());
        }
        match changes.since(self.applied) {
            Since::Lagged { .. } => {
                tracing::info!("search index: the catch-up overran the change log; rebuilding");
                self.rebuild = true;
                self.shared.rebuilding.store(true, Ordering::Release);
            }
            Since::Changes { changes, latest } => {
                self.take_in(&changes, latest)?;
                self.commit(None)?;
            }
        }
        Ok(())
    }

    /// Applies `changes`, the store's up to sequence `latest`, to the uncommitted index.
    fn take_in(&mut self, changes: &[Change], latest: u64) -> Result<(), SearchError> {
        self.apply(changes)?;
        self.uncommitted = self.uncommitted.saturating_add(changes.len());
        if !changes.is_empty() && self.first_uncommitted.is_none() {
            self.first_uncommitted = Some(Instant::now());
        }
        self.applied = latest;
        Ok(())
    }

    fn commit_due(&self) -> bool {
        let wanted = self.shared.wanted.load(Ordering::Acquire) > self.shared.visible_seq();
        let behind = self.applied.saturating_add(1) > self.shared.visible_seq();
        let old = self
            .first_uncommitted
            .is_some_and(|t| t.elapsed() >= COMMIT_INTERVAL);
        (behind && wanted) || old || self.uncommitted >= COMMIT_CHANGES_MAX
    }

    /// Applies a batch: networks that changed as a whole are reindexed once; entries stored
    /// in them need nothing more.
    fn apply(&mut self, changes: &[Change]) -> Result<(), SearchError> {
        let wide: HashSet<NetworkId> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Network(n) => Some(*n),
                Change::Stored { .. } => None,
            })
            .collect();
        for network in &wide {
            self.reindex_network(network)?;
        }
        for change in changes {
            if let Change::Stored { id, network } = change {
                if !wide.contains(network) {
                    self.refresh_family(id)?;
                }
            }
        }
        Ok(())
    }

    /// Replaces the document of the family `id` belongs to with its current version's.
    fn refresh_family(&mut self, id: &EntryId) -> Result<(), SearchError> {
        let Some(stored) = self.store.get(id)? else {
            // Removed since; its removal reindexes its network.
            return Ok(());
        };
        let versions = self.store.versions(&stored)?;
        let original = versions.original;
        self.writer.delete_term(Term::from_field_text(
            self.fields.original,
            &original.to_string(),
        ));
        // An edit stored before its original was its own family's original then.
        for version in &versions.all {
            let id = Term::from_field_text(self.fields.id, &version.to_string());
            self.writer.delete_term(id);
        }
        let current = match versions.current == stored.id {
            true => Some(stored),
            false => self.store.get(&versions.current)?,
        };
        if let Some(current) = current {
            self.add_if_shown(&current, &original)?;
        }
        Ok(())
    }

    /// Adds the document of `stored` (the current version of `original`), unless hidden or of
    /// a network no longer joined.
    fn add_if_shown(
        &mut self,
        stored: &StoredEntry,
        original: &EntryId,
    ) -> Result<(), SearchError> {
        if !stored.entry.kind().is_content()
            || self.store.network(&stored.entry.network)?.is_none()
            || self.store.is_hidden(stored)?
        {
            return Ok(());
        }
        let opened = self.opened(stored)?;
        let body = match &stored.entry.body {
            Body::Sealed(_) => opened.as_ref(),
            body => Some(body),
        };
        let doc = self.fields.document(stored, body, original);
        self.writer.add_document(doc)?;
        Ok(())
    }

    /// A sealed entry's content, where this node holds its network's key.
    fn opened(&self, stored: &StoredEntry) -> Result<Option<Body>, SearchError> {
        let Body::Sealed(sealed) = &stored.entry.body else {
            return Ok(None);
        };
        let keys = self.store.content_keys(&stored.entry.network)?;
        Ok(keys.get(&sealed.key_id).and_then(|key| {
            staffroom_protocol::private::crypto::open_body(&stored.entry, key).ok()
        }))
    }

    /// Drops a network's documents and adds back its shown entries, from the store.
    fn reindex_network(&mut self, network: &NetworkId) -> Result<(), SearchError> {
        self.writer.delete_term(Term::from_field_text(
            self.fields.network,
            &network.to_string(),
        ));
        self.deleted = true;
        if self.store.network(network)?.is_none() {
            return Ok(());
        }
        // Read in chunks after the last item read, not by position: entries stored or removed
        // meanwhile shift positions (and come as changes of their own).
        let mut after: Option<Item> = None;
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                return Err(SearchError::Stopping);
            }
            let items: Vec<Item> = self.store.with_sync_index(network, |index| {
                let from = after.map_or(0, |last| {
                    let at = index.lower_bound(&last);
                    at + usize::from(index.item_at(at) == Some(&last))
                });
                let to = index.len().min(from.saturating_add(REINDEX_CHUNK));
                index.items(from.min(to), to).copied().collect()
            });
            let Some(last) = items.last().copied() else {
                return Ok(());
            };
            after = Some(last);
            for (_, id) in items {
                self.add_if_current(&EntryId(id))?;
            }
        }
    }

    /// Adds `id`'s document if it is the current version of its family.
    fn add_if_current(&mut self, id: &EntryId) -> Result<(), SearchError> {
        let Some(stored) = self.store.get(id)? else {
            return Ok(());
        };
        if !stored.entry.kind().is_content() {
            return Ok(());
        }
        let versions = self.store.versions(&stored)?;
        if versions.current == stored.id {
            self.add_if_shown(&stored, &versions.original)?;
        }
        Ok(())
    }

    /// Builds the index afresh from the store, in one commit: searches meanwhile see the
    /// index as it was, never a half-built one.
    fn rebuild_all(&mut self) -> Result<(), SearchError> {
        let started = Instant::now();
        self.rebuild = true;
        self.shared.rebuilding.store(true, Ordering::Release);
        self.writer.delete_all_documents()?;
        self.deleted = true;
        for record in self.store.networks()? {
            self.reindex_network(&record.id)?;
        }
        // Cleared before the commit publishes, so a search woken by it is not told the index
        // is still being rebuilt (a failed commit sets it again).
        self.shared.rebuilding.store(false, Ordering::Release);
        self.shared.rebuilds.fetch_add(1, Ordering::AcqRel);
        self.commit(None)?;
        self.rebuild = false;
        tracing::info!(
            entries = self.reader.searcher().num_docs(),
            took_ms = started.elapsed().as_millis() as u64,
            "search index rebuilt"
        );
        // Tokenising every entry freed far more than an idle node needs (~200 MiB at 100,000).
        crate::memory::give_back_freed();
        Ok(())
    }

    /// Commits what was applied and makes it searchable. Deleted documents are merged away,
    /// so an erased entry's words leave the disk with the commit that dropped it.
    fn commit(&mut self, payload: Option<Payload>) -> Result<(), SearchError> {
        let payload = payload.unwrap_or_default().to_json();
        let writer = &mut self.writer;
        super::in_background(|| -> Result<(), SearchError> {
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared.commit()?;
            Ok(())
        })??;
        if std::mem::take(&mut self.deleted) {
            self.merge_deleted()?;
        }
        self.reader.reload()?;
        self.uncommitted = 0;
        self.first_uncommitted = None;
        self.shared.set_failed(None);
        self.failures = 0;
        self.shared.publish(self.applied.saturating_add(1));
        Ok(())
    }

    /// Rewrites every segment that holds deleted documents without them.
    fn merge_deleted(&mut self) -> Result<(), SearchError> {
        let index = self.writer.index().clone();
        for meta in index.searchable_segment_metas()? {
            if !meta.has_deletes() {
                continue;
            }
            // tantivy's own merge policy may have started on this segment and win the race:
            // then it is merged again after the next commit (not an error of the index).
            if let Err(e) = self.writer.merge(&[meta.id()]).wait() {
                tracing::debug!(error = %e, "search index: merge raced; retried later");
                self.deleted = true;
            }
        }
        if let Err(e) = self.writer.garbage_collect_files().wait() {
            tracing::debug!(error = %e, "search index: old files not collected yet");
        }
        Ok(())
    }

    /// The last commit, once the node stopped writing: with the digest of the store it
    /// matches.
    fn close_commit(&mut self) -> Result<(), SearchError> {
        if self.rebuild {
            return Ok(());
        }
        let Since::Changes { changes, latest } = self.store.changes().since(self.applied) else {
            return Ok(());
        };
        self.take_in(&changes, latest)?;
        let digest = self.store.contents_digest()?;
        if self.store.changes().latest() != self.applied {
            return Ok(());
        }
        self.commit(Some(Payload::clean(digest)))
    }
}
