//! The store's single writer: a thread that commits inserts in groups.
//!
//! A flush costs about as much as a hundred inserts on this class of machine, so the writer
//! drains every command already queued (up to a bound), applies them, flushes once, and only
//! then acknowledges each one. An acknowledged entry is therefore always on disk: with
//! [`super::Durability::PowerCut`] (the default) synced to stable storage (`durable`).
//!
//! Within one entry, index keys are written before the entry record itself. The record's
//! presence is what marks the entry as stored, so a crash between the two leaves only index
//! keys that readers skip and a later insert rewrites.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use staffroom_protocol::{AuthorId, EntryId, NetworkId, VerifiedEntry};
use tokio::sync::{mpsc, oneshot};

use super::changes::Change;
use super::durable::Durable;

mod apply;
mod commit;
use super::{FilePolicy, NetworkRecord, StoreError, TeacherRecord, Trees};
pub(super) use apply::{index_understood, insert_one, remove_entry, remove_unreadable, unindex};
use apply::{join, purge};
use commit::run;
pub(crate) use commit::StateCopy;

/// Commands applied in one group before the flush that acknowledges them.
const GROUP_COMMANDS_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsertOutcome {
    Inserted,
    AlreadyStored,
    /// An erasure this node holds covers it: not stored.
    Erased,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Insert {
        entries: Vec<VerifiedEntry>,
        reply: Reply<Vec<InsertOutcome>>,
    },
    JoinNetwork {
        record: NetworkRecord,
        /// Replace the record if there is one (a rename), rather than keep it.
        replace: bool,
        reply: Reply<bool>,
    },
    LeaveNetwork {
        id: NetworkId,
        reply: Reply<bool>,
    },
    PutTeacher {
        record: TeacherRecord,
        reply: Reply<bool>,
    },
    Purge {
        network: NetworkId,
        author: AuthorId,
        from_ms: u64,
        reply: Reply<usize>,
    },
    RemoveTeacher {
        key: AuthorId,
        reply: Reply<bool>,
    },
    PutFilePolicy {
        network: NetworkId,
        policy: FilePolicy,
        reply: Reply<bool>,
    },
    PutContentKey {
        network: NetworkId,
        key: [u8; 32],
        reply: Reply<bool>,
    },
    PurgeEntry {
        id: EntryId,
        reply: Reply<bool>,
    },
    PurgeNetwork {
        id: NetworkId,
        reply: Reply<usize>,
    },
    ForgetErasedFile {
        root: staffroom_protocol::FileRoot,
        reply: Reply<bool>,
    },
    Flush {
        reply: Reply<()>,
    },
}

#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Command>,
    _thread: Arc<JoinOnDrop>,
}

/// Joins the writer thread when the last handle goes, so the database is flushed and closed
/// (its file lock released) before the store's owner moves on. Each handle drops its sender
/// before its share of this guard, so by the time the last guard drops, every sender is gone
/// and the thread's receive loop has ended.
struct JoinOnDrop {
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.thread.lock().ok().and_then(|mut h| h.take()) {
            if handle.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

/// Starts the writer; with `durable`, every group commit is synced to stable storage before
/// it is acknowledged.
pub(crate) fn spawn(
    trees: Arc<Trees>,
    durable: Option<Durable>,
    state: StateCopy,
    queue_max: usize,
) -> Result<WriterHandle, StoreError> {
    let (tx, rx) = mpsc::channel(queue_max);
    let thread = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(trees, durable, state, rx))
        .map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
    let guard = JoinOnDrop {
        thread: Mutex::new(Some(thread)),
    };
    Ok(WriterHandle {
        tx,
        _thread: Arc::new(guard),
    })
}

impl WriterHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn insert(
        &self,
        entries: Vec<VerifiedEntry>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        self.call(|reply| Command::Insert { entries, reply }).await
    }

    pub async fn join_network(&self, record: NetworkRecord) -> Result<bool, StoreError> {
        self.call(|reply| Command::JoinNetwork {
            record,
            replace: false,
            reply,
        })
        .await
    }

    pub async fn rename_network(&self, record: NetworkRecord) -> Result<bool, StoreError> {
        self.call(|reply| Command::JoinNetwork {
            record,
            replace: true,
            reply,
        })
        .await
    }

    pub async fn leave_network(&self, id: NetworkId) -> Result<bool, StoreError> {
        self.call(|reply| Command::LeaveNetwork { id, reply }).await
    }

    pub async fn put_teacher(&self, record: TeacherRecord) -> Result<(), StoreError> {
        self.call(|reply| Command::PutTeacher { record, reply })
            .await
            .map(|_| ())
    }

    pub async fn remove_teacher(&self, key: AuthorId) -> Result<bool, StoreError> {
        self.call(|reply| Command::RemoveTeacher { key, reply })
            .await
    }

    pub async fn put_content_key(
        &self,
        network: NetworkId,
        key: [u8; 32],
    ) -> Result<bool, StoreError> {
        self.call(|reply| Command::PutContentKey {
            network,
            key,
            reply,
        })
        .await
    }

    pub async fn purge_entry(&self, id: EntryId) -> Result<bool, StoreError> {
        self.call(|reply| Command::PurgeEntry { id, reply }).await
    }

    pub async fn purge_network(&self, id: NetworkId) -> Result<usize, StoreError> {
        self.call(|reply| Command::PurgeNetwork { id, reply }).await
    }

    pub async fn forget_erased_file(
        &self,
        root: staffroom_protocol::FileRoot,
    ) -> Result<(), StoreError> {
        self.call(|reply| Command::ForgetErasedFile { root, reply })
            .await
            .map(|_| ())
    }

    pub async fn put_file_policy(
        &self,
        network: NetworkId,
        policy: FilePolicy,
    ) -> Result<bool, StoreError> {
        self.call(|reply| Command::PutFilePolicy {
            network,
            policy,
            reply,
        })
        .await
    }

    pub async fn purge(
        &self,
        network: NetworkId,
        author: AuthorId,
        from_ms: u64,
    ) -> Result<usize, StoreError> {
        self.call(|reply| Command::Purge {
            network,
            author,
            from_ms,
            reply,
        })
        .await
    }

    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(|reply| Command::Flush { reply }).await
    }
}

impl Command {
    /// The bytes the command adds, roughly (entries' bytes; small records count nothing).
    fn bytes_added(&self) -> u64 {
        match self {
            Command::Insert { entries, .. } => entries.iter().map(|e| e.bytes().len() as u64).sum(),
            _ => 0,
        }
    }

    /// Whether the command changes the node's own state (what `state_copy` keeps).
    fn changes_state(&self) -> bool {
        matches!(
            self,
            Command::JoinNetwork { .. }
                | Command::LeaveNetwork { .. }
                | Command::PutTeacher { .. }
                | Command::RemoveTeacher { .. }
                | Command::PutFilePolicy { .. }
                | Command::PutContentKey { .. }
                | Command::PurgeEntry { .. }
                | Command::PurgeNetwork { .. }
        )
    }

    /// Whether the command adds to the store. Removals and flushes go ahead on a full disk:
    /// they write little (the reserve is there for them), and the admin may need them.
    fn grows(&self) -> bool {
        matches!(
            self,
            Command::Insert { .. }
                | Command::JoinNetwork { .. }
                | Command::PutTeacher { .. }
                | Command::PutFilePolicy { .. }
                | Command::PutContentKey { .. }
        )
    }
}

/// A command applied but not yet acknowledged: it waits for the group's flush.
enum Pending {
    Insert(
        Reply<Vec<InsertOutcome>>,
        Result<Vec<InsertOutcome>, StoreError>,
    ),
    Join(Reply<bool>, Result<bool, StoreError>),
    Count(Reply<usize>, Result<usize, StoreError>),
    Flush(Reply<()>),
}

impl Pending {
    fn acknowledge(self, flushed: &sled::Result<usize>) {
        let flush_err = || match flushed {
            Ok(_) => None,
            Err(e) => Some(StoreError::Sled(e.clone())),
        };
        // A receiver that gave up waiting is not an error for the store.
        match self {
            Pending::Insert(reply, result) => {
                let _ = reply.send(flush_err().map_or(result, Err));
            }
            Pending::Join(reply, result) => {
                let _ = reply.send(flush_err().map_or(result, Err));
            }
            Pending::Count(reply, result) => {
                let _ = reply.send(flush_err().map_or(result, Err));
            }
            Pending::Flush(reply) => {
                let _ = reply.send(flush_err().map_or(Ok(()), Err));
            }
        }
    }
}

fn apply(trees: &Trees, cmd: Command) -> Pending {
    match cmd {
        Command::Insert { entries, reply } => {
            let result = entries.iter().map(|e| insert_one(trees, e)).collect();
            Pending::Insert(reply, result)
        }
        Command::JoinNetwork {
            record,
            replace,
            reply,
        } => {
            let result = join(trees, &record, replace);
            Pending::Join(reply, result)
        }
        Command::LeaveNetwork { id, reply } => {
            let result = trees
                .networks
                .remove(id.as_bytes())
                .map(|old| old.is_some())
                .map_err(StoreError::from);
            trees.changes.push(Change::Network(id));
            Pending::Join(reply, result)
        }
        Command::PutTeacher { record, reply } => {
            let value = serde_json::to_vec(&record).expect("a teacher record always serializes");
            let result = trees
                .teachers
                .insert(record.key.as_bytes(), value)
                .map(|old| old.is_none())
                .map_err(StoreError::from);
            Pending::Join(reply, result)
        }
        Command::PutFilePolicy {
            network,
            policy,
            reply,
        } => {
            let value = serde_json::to_vec(&policy).expect("a file policy always serializes");
            let result = trees
                .file_policies
                .insert(network.as_bytes(), value)
                .map(|old| old.is_none())
                .map_err(StoreError::from);
            Pending::Join(reply, result)
        }
        Command::RemoveTeacher { key, reply } => {
            let result = trees
                .teachers
                .remove(key.as_bytes())
                .map(|old| old.is_some())
                .map_err(StoreError::from);
            Pending::Join(reply, result)
        }
        Command::Purge {
            network,
            author,
            from_ms,
            reply,
        } => Pending::Count(reply, purge(trees, &network, &author, from_ms)),
        Command::PutContentKey {
            network,
            key,
            reply,
        } => Pending::Join(reply, super::content_keys::put(trees, &network, &key)),
        Command::PurgeEntry { id, reply } => {
            Pending::Join(reply, super::erased::purge_local(trees, &id))
        }
        Command::PurgeNetwork { id, reply } => {
            Pending::Count(reply, super::erased::purge_network(trees, &id))
        }
        Command::ForgetErasedFile { root, reply } => {
            let result = trees
                .files_erased
                .remove(root.0)
                .map(|old| old.is_some())
                .map_err(StoreError::from);
            Pending::Join(reply, result)
        }
        Command::Flush { reply } => Pending::Flush(reply),
    }
}
