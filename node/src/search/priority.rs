//! Where the index's work runs: tantivy's threads in the background (`SCHED_IDLE` on Linux),
//! so that relaying, verifying and storing entries go first on busy cores.

use super::SearchError;

/// The nice value of the index's threads where `SCHED_IDLE` is refused.
const INDEX_NICE: i32 = 10;

/// Runs `work` on a short-lived thread in the background (see [`background_priority`]), so
/// that the threads tantivy starts meanwhile inherit that priority: its indexing worker (at
/// every commit), and its merge and segment threads (when a writer is made, which a
/// rollback does too). Errs if the thread cannot be made or `work` panicked.
pub(crate) fn in_background<T: Send>(work: impl FnOnce() -> T + Send) -> Result<T, SearchError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("search-background".into())
            .spawn_scoped(scope, || {
                background_priority();
                work()
            })
            .map_err(|e| SearchError::Unavailable(format!("no thread for the index: {e}")))?;
        thread
            .join()
            .map_err(|_| SearchError::Unavailable("the index's background thread panicked".into()))
    })
}

/// Puts the calling thread (and the threads it starts, which inherit it) in the background.
/// Indexing is background work: while the cores are busy, relaying, verifying and storing
/// entries go first, and the index catches up after (searches meanwhile say it is behind).
///
/// On Linux that is the `SCHED_IDLE` policy: a weight of 3 against 1,024 for a normal
/// thread (110 at nice 10), and a core given up as soon as a normal thread wakes on it. A
/// nice value was not enough: it is a weight per thread, and many index threads (several
/// nodes in one process, as in the propagation benchmark) added up against the few threads
/// that relay. Where the policy is refused, the thread takes [`INDEX_NICE`]. An unprivileged
/// thread cannot leave the policy again; threads made from it inherit it.
///
/// Only for threads that take no lock the node's other threads take: one stalled while
/// holding it (which at this weight may last while the cores stay busy) would stall them
/// too. So the indexer's own thread, which reads the store's change log and sled, keeps the
/// default priority; tantivy's threads share only tantivy's state (its document queue, its
/// meta lock) with the indexer, which may therefore wait for them on a busy machine — as
/// searches do, up to [`FRESH_WAIT`](super::FRESH_WAIT), and a node's stop, until its last commit is made.
fn background_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param` that outlives the call; pid 0 is the
        // calling thread, and SCHED_IDLE takes priority 0. Lowering one's own policy needs no
        // privilege.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
            return;
        }
    }
    if let Err(e) = rustix::process::setpriority_process(None, INDEX_NICE) {
        tracing::debug!(error = %e, "search index: cannot lower its threads' priority");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::super::tests::{find, insert, post, store_in, T};
    use super::super::SearchIndex;

    /// The scheduling policy of each of this process's threads whose name starts with `prefix`
    /// (field 41 of `/proc/self/task/<tid>/stat`; 0 is SCHED_OTHER, 5 SCHED_IDLE).
    fn policies_of(prefix: &str) -> Vec<u32> {
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with(prefix) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue; // ended meanwhile
            };
            // The name, in parentheses, may hold spaces: fields are counted after its end.
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            let policy = after_name.split(' ').nth(41 - 3).unwrap().parse().unwrap();
            policies.push(policy);
        }
        policies
    }

    /// Regression (propagation at 50 nodes, issue 14): tantivy's tokenising and merging run in
    /// the background, so relaying goes first; the indexer's own thread, which takes locks the
    /// store's writer takes too, does not (a background thread stalled holding one would stall
    /// the writer).
    #[tokio::test]
    async fn tantivy_works_in_the_background_and_the_indexer_does_not() {
        const SCHED_OTHER: u32 = 0;
        const SCHED_IDLE: u32 = 5;
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path(), &[1]).await;
        let index = SearchIndex::open(&dir.path().join("search"), store.clone()).unwrap();
        // A commit (which a search asks for) starts tantivy's next indexing thread.
        insert(
            &store,
            &[&post(1, T, "Phonics", "Sounds and letters.", &[])],
        )
        .await;
        assert_eq!(find(&index, "phonics").len(), 1);
        let workers = policies_of("thrd-tantivy");
        assert!(
            !workers.is_empty(),
            "tantivy's indexing threads are running"
        );
        let others = [policies_of("merge_thread"), policies_of("segment_updater")].concat();
        assert!(
            !others.is_empty(),
            "tantivy's merge and segment threads are running"
        );
        for policy in workers.iter().chain(&others) {
            assert_eq!(*policy, SCHED_IDLE, "tantivy threads: {workers:?}");
        }
        let indexers = policies_of("search-indexer");
        assert!(!indexers.is_empty());
        assert!(indexers.iter().all(|p| *p == SCHED_OTHER), "{indexers:?}");
    }
}
