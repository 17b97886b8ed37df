//! Signature checks off the async threads, at most one batch per core at a time.
//!
//! Entries that come one at a time (the API, entries offered again from a pen) wait in a
//! queue while every core is busy, and the next caller to get a core verifies a share of the
//! queue as one batch: a blocking-pool hop and a wake-up per entry cost more than the check
//! itself (issue 14: ingest one by one ran at 0.63x one core's verify rate, in batches 1.22x).

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use staffroom_protocol::{verify_entry_cached, KeyCache};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::{Refusal, Verdict};
use crate::clock::Clock;

thread_local! {
    /// Each blocking thread keeps the authors' keys it has decompressed.
    static KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

/// Entries of the queue one caller verifies at most in one go, so others' waits stay short.
const QUEUE_BATCH_MAX: usize = 64;

/// One entry waiting in the queue, and where its verdict goes.
struct Waiting {
    bytes: Vec<u8>,
    reply: oneshot::Sender<Verdict>,
}

#[derive(Clone)]
pub(super) struct Verifier {
    clock: Clock,
    /// Batches being verified at most: one per core, so verification uses every core but
    /// cannot starve the runtime's blocking pool.
    slots: Arc<Semaphore>,
    cores: usize,
    /// Single entries waiting for a core. The caller of each entry still queued is itself
    /// trying for a core, so the queue is never left without a drainer, and holds at most
    /// one entry per caller in flight (plus those of callers that gave up, skipped unchecked
    /// by whoever drains them).
    queue: Arc<Mutex<Vec<Waiting>>>,
    /// Blocking hops taken for queued entries, to show that they are batched.
    #[cfg(test)]
    queue_hops: Arc<std::sync::atomic::AtomicUsize>,
}

impl Verifier {
    pub(super) fn new(clock: Clock) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Verifier {
            clock,
            slots: Arc::new(Semaphore::new(cores)),
            cores,
            queue: Arc::default(),
            #[cfg(test)]
            queue_hops: Arc::default(),
        }
    }

    /// Verdicts for `batch`, in order, its chunks spread over the free cores. A single entry
    /// joins the queue.
    pub(super) async fn verify(&self, mut batch: Vec<Vec<u8>>) -> Vec<Verdict> {
        if batch.len() == 1 {
            if let Some(bytes) = batch.pop() {
                return vec![self.verify_one(bytes).await];
            }
        }
        let free = self.slots.available_permits().max(1);
        let chunk = batch.len().div_ceil(free).max(1);
        let mut chunks = Vec::new();
        let mut rest = batch;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk.min(rest.len()));
            chunks.push(std::mem::replace(&mut rest, tail));
        }
        let verifying: Vec<_> = chunks.into_iter().map(|c| self.verify_chunk(c)).collect();
        futures::future::join_all(verifying)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Verifies one chunk on a blocking thread once a core is free.
    async fn verify_chunk(&self, batch: Vec<Vec<u8>>) -> Vec<Verdict> {
        let len = batch.len();
        let slot = match self.slots.clone().acquire_owned().await {
            Ok(slot) => slot,
            Err(e) => return worker_failed(len, e.to_string()),
        };
        let now = self.clock.now_ms();
        let verified = tokio::task::spawn_blocking(move || {
            // Given back by the thread as it finishes, not once this task is next polled:
            // with the async threads busy, that wait left a core idle (ingest one by one
            // kept 1.47 of two cores busy).
            let _slot = slot;
            KEYS.with_borrow_mut(|keys| batch.into_iter().map(|b| check(b, now, keys)).collect())
        })
        .await;
        verified.unwrap_or_else(|e| worker_failed(len, e.to_string()))
    }

    /// Queues one entry; until its verdict comes, whenever this caller gets a core it
    /// verifies a share of the queue (its own entry, or others').
    async fn verify_one(&self, bytes: Vec<u8>) -> Verdict {
        let (reply, mut verdict) = oneshot::channel();
        self.lock_queue().push(Waiting { bytes, reply });
        loop {
            tokio::select! {
                biased;
                done = &mut verdict => {
                    // A dropped reply: the worker thread verifying it panicked.
                    return done.unwrap_or_else(|_| Err(Refusal::Worker("verification worker failed".into())));
                }
                slot = self.slots.clone().acquire_owned() => {
                    let slot = match slot {
                        Ok(slot) => slot,
                        Err(e) => return Err(Refusal::Worker(e.to_string())),
                    };
                    if !self.verify_queued(slot).await {
                        // Nothing was queued: this caller's entry is in a batch being
                        // verified, whose thread sends its verdict. Trying for a core again
                        // would only spin until then.
                        return verdict.await.unwrap_or_else(|_| {
                            Err(Refusal::Worker("verification worker failed".into()))
                        });
                    }
                }
            }
        }
    }

    /// Takes a fair share of the queue (so every core gets some when many wait) and
    /// verifies it on a blocking thread holding `slot`, each verdict sent from there: a
    /// caller dropped meanwhile loses nobody else's. False when the queue was empty.
    async fn verify_queued(&self, slot: OwnedSemaphorePermit) -> bool {
        let share: Vec<Waiting> = {
            let mut queue = self.lock_queue();
            let n = queue.len().div_ceil(self.cores).min(QUEUE_BATCH_MAX);
            queue.drain(..n).collect()
        };
        if share.is_empty() {
            return false;
        }
        #[cfg(test)]
        self.queue_hops
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = self.clock.now_ms();
        let verifying = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            KEYS.with_borrow_mut(|keys| {
                for Waiting { bytes, reply } in share {
                    // Its caller gave up: no check for nobody.
                    if reply.is_closed() {
                        continue;
                    }
                    let verdict = check(bytes, now, keys);
                    // Its caller may have gone: nothing to tell.
                    let _ = reply.send(verdict);
                }
            })
        });
        if let Err(e) = verifying.await {
            tracing::error!(error = %e, "verification worker failed");
        }
        true
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One entry's verdict; a refused entry keeps its bytes (one from the future may be held).
fn check(bytes: Vec<u8>, now_ms: u64, keys: &mut KeyCache) -> Verdict {
    verify_entry_cached(&bytes, now_ms, keys).map_err(|e| Refusal::Entry(e, bytes))
}

fn worker_failed(len: usize, reason: String) -> Vec<Verdict> {
    tracing::error!(error = %reason, "verification worker failed");
    (0..len)
        .map(|_| Err(Refusal::Worker(reason.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use staffroom_protocol::fixtures::{key, network, numbered_post};
    use staffroom_protocol::EntryError;

    use super::*;

    /// Entries `0..n`, every third with its last byte (in the signature) changed.
    fn entries(n: u64) -> Vec<(Vec<u8>, bool)> {
        (0..n)
            .map(|i| {
                let mut bytes = numbered_post(&key(1), network(1), i).encode();
                let valid = i % 3 != 0;
                if !valid {
                    if let Some(last) = bytes.last_mut() {
                        *last ^= 1;
                    }
                }
                (bytes, valid)
            })
            .collect()
    }

    /// Many single entries at once: each caller gets its own entry's verdict, and they are
    /// verified in far fewer blocking hops than entries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_entries_at_once_each_get_their_own_verdict() {
        let verifier = Verifier::new(Clock::system());
        let calls: Vec<_> = entries(300)
            .into_iter()
            .map(|(bytes, valid)| {
                let verifier = verifier.clone();
                let expected = staffroom_protocol::Entry::decode(&bytes).map(|e| e.id());
                tokio::spawn(async move {
                    let verdict = verifier.verify(vec![bytes]).await.pop();
                    (verdict, valid, expected)
                })
            })
            .collect();
        for call in calls {
            let (verdict, valid, expected) = call.await.unwrap();
            match verdict {
                Some(Ok(v)) => {
                    assert!(valid);
                    assert_eq!(Ok(v.id()), expected);
                }
                Some(Err(Refusal::Entry(EntryError::BadSignature, _))) => assert!(!valid),
                Some(Err(Refusal::Entry(e, _))) => panic!("unexpected refusal {e}"),
                Some(Err(Refusal::Worker(w))) => panic!("worker failed: {w}"),
                None => panic!("no verdict"),
            }
        }
        assert!(verifier.lock_queue().is_empty());
        let hops = verifier
            .queue_hops
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(hops < 300 / 2, "{hops} blocking hops for 300 entries");
    }

    /// A caller that gives up while its entry waits, or while it verifies others', leaves
    /// every other caller its verdict.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_that_give_up_lose_nobody_elses_verdict() {
        let verifier = Verifier::new(Clock::system());
        let mut kept = Vec::new();
        for (n, (bytes, valid)) in entries(200).into_iter().enumerate() {
            let v = verifier.clone();
            let call = tokio::spawn(async move { (v.verify(vec![bytes]).await, valid) });
            if n % 4 == 0 {
                call.abort();
            } else {
                kept.push(call);
            }
        }
        for call in kept {
            let (mut verdicts, valid) = call.await.unwrap();
            assert_eq!(verdicts.pop().map(|v| v.is_ok()), Some(valid));
        }
    }
}
