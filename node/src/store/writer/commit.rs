//! The writer thread's loop: take every queued command (up to a bound), apply them, commit
//! once (sled's flush, the syncs, the ledger), then acknowledge each; with the full-disk check
//! before and the state copy after. After a failed commit nothing more is written.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::*;

/// Where the copy of the node's state is kept, and the state's sequence number.
pub(crate) struct StateCopy {
    pub dir: std::path::PathBuf,
    pub seq: u64,
}

pub(super) fn run(
    trees: Arc<Trees>,
    durable: Option<Durable>,
    state: StateCopy,
    mut rx: mpsc::Receiver<Command>,
) {
    let mut committer = Committer {
        trees,
        durable,
        state,
        failed: None,
    };
    let mut group = Vec::with_capacity(GROUP_COMMANDS_MAX);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < GROUP_COMMANDS_MAX {
            match rx.try_recv() {
                Ok(cmd) => group.push(cmd),
                Err(_) => break,
            }
        }
        committer.group(&mut group);
    }
    if committer.failed.is_none() {
        match committer.commit() {
            Ok(_) => committer.write_ledger(),
            Err(e) => tracing::error!(error = %e, "final store flush failed"),
        }
    }
}

/// The writer thread's state from group to group.
struct Committer {
    trees: Arc<Trees>,
    durable: Option<Durable>,
    state: StateCopy,
    /// The first failed commit. Neither sled (which fails every write after an I/O error)
    /// nor the kernel (which may call pages clean after a failed fsync) can be trusted with
    /// what was written since, so every later write is refused until the node restarts.
    failed: Option<sled::Error>,
}

impl Committer {
    /// Applies `group`, commits it and acknowledges each command.
    fn group(&mut self, group: &mut Vec<Command>) {
        if let Some(failed) = &self.failed {
            for cmd in group.drain(..) {
                refuse(cmd, StoreError::Sled(failed.clone())).acknowledge(&Err(failed.clone()));
            }
            return;
        }
        let trees = self.trees.clone();
        let room = room_for(&trees, group);
        let state_changed = group
            .iter()
            .any(|c| c.changes_state() && (room.is_ok() || !c.grows()));
        if state_changed {
            self.state.seq += 1;
            if let Err(e) = super::super::state_copy::bump(&trees, self.state.seq) {
                tracing::warn!(error = %e, "cannot note the state's sequence number");
            }
        }
        let applied: Vec<_> = group
            .drain(..)
            .map(|cmd| match (&room, cmd.grows()) {
                (Err(full), true) => refuse(cmd, full.clone()),
                _ => apply(&trees, cmd),
            })
            .collect();
        let flushed = self.commit();
        if let Err(e) = &flushed {
            trees.health.set(
                "write_failed",
                format!(
                    "the store cannot write to disk: {e}; nothing more is stored until the \
                     node is restarted"
                ),
            );
            self.failed = Some(e.clone());
        }
        if state_changed && flushed.is_ok() {
            copy_state(&trees, &self.state);
        }
        for pending in applied {
            pending.acknowledge(&flushed);
        }
        // After the acknowledgements: the ledger's own sync is not on their path. A crash in
        // between leaves durable entries out of the ledger, which only means their loss to
        // later damage would go unnoticed; an id in the ledger is still always durable.
        if flushed.is_ok() {
            self.write_ledger();
        }
    }

    /// Makes what the group applied durable: sled's flush, then the syncs it leaves out.
    fn commit(&mut self) -> sled::Result<usize> {
        let flushed = self.trees.db.flush()?;
        if let Some(durable) = self.durable.as_mut() {
            durable.sync().map_err(sled::Error::Io)?;
        }
        Ok(flushed)
    }

    /// Appends the ids a durable commit added to the ledger (a failure there is reported, not
    /// fatal: the entries are stored, and the ledger is rewritten at the next open).
    fn write_ledger(&mut self) {
        let written = self.trees.ledger().write(self.durable.is_some());
        match written {
            Ok(()) => self.trees.health.clear("ledger_failed"),
            Err(e) => self.trees.health.set(
                "ledger_failed",
                format!("cannot append to the store's ledger: {e}; losses to damage may go unnoticed until the next start"),
            ),
        }
    }
}

/// Replaces the copy of the node's state (see `state_copy`), noting a failure in the store's
/// health: the state is stored, only its spare copy is behind.
fn copy_state(trees: &Trees, state: &StateCopy) {
    match super::super::state_copy::write(trees, &state.dir, state.seq) {
        Ok(()) => trees.health.clear("state_copy_failed"),
        Err(e) => trees.health.set(
            "state_copy_failed",
            format!("cannot keep the copy of this node's state beside the store: {e}"),
        ),
    }
}

/// Whether the disk has room for `group`'s additions (see `space`), noting a full disk in
/// the store's health while it lasts.
fn room_for(trees: &Trees, group: &[Command]) -> Result<(), StoreError> {
    if !group.iter().any(Command::grows) {
        return Ok(());
    }
    // What the group adds, twice over for sled's own overhead.
    let adding: u64 = group.iter().map(Command::bytes_added).sum();
    let room = trees.space.check(adding.saturating_mul(2));
    match &room {
        Ok(()) => trees.health.clear("disk_full"),
        Err(e) => trees
            .health
            .set("disk_full", super::super::space::disk_full_message(e)),
    }
    room
}

/// A command that would add to the store, refused with `full`.
fn refuse(cmd: Command, full: StoreError) -> Pending {
    match cmd {
        Command::Insert { reply, .. } => Pending::Insert(reply, Err(full)),
        Command::JoinNetwork { reply, .. }
        | Command::PutTeacher { reply, .. }
        | Command::PutFilePolicy { reply, .. }
        | Command::PutContentKey { reply, .. } => Pending::Join(reply, Err(full)),
        Command::LeaveNetwork { reply, .. }
        | Command::RemoveTeacher { reply, .. }
        | Command::PurgeEntry { reply, .. }
        | Command::ForgetErasedFile { reply, .. } => Pending::Join(reply, Err(full)),
        Command::Purge { reply, .. } | Command::PurgeNetwork { reply, .. } => {
            Pending::Count(reply, Err(full))
        }
        Command::Flush { reply } => Pending::Flush(reply),
    }
}
