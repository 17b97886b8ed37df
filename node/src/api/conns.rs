//! Which API connections to close, and when: the table of open connections and its two rules.
//! A connection with no bytes moving and no request in a handler for `idle_timeout` is
//! closed; and when a new connection would pass `connections_max`, the connection idle the
//! longest makes room for it (never one whose request is in a handler). So stalled or idle
//! sockets, however many, can neither exhaust the node's descriptors nor keep a teacher out.
//!
//! Pure bookkeeping: the accept loop (`listen`) feeds it times and does the closing; the
//! connection's I/O and the request guard update its [`Activity`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The limits on the API's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections at most; the idlest one is closed to admit one more.
    pub connections_max: usize,
    /// A connection with no bytes moving and no request in a handler this long is closed.
    pub idle_timeout: Duration,
}

/// What one connection is doing, shared by its I/O, its requests and the table.
#[derive(Debug)]
pub struct Activity {
    /// When bytes last moved either way, in ms since the table's start.
    last_io_ms: AtomicU64,
    /// Requests of this connection inside a handler (holding one of the API's slots).
    in_handler: AtomicU32,
    /// Cancelled when the table closes the connection.
    pub close: CancellationToken,
}

impl Activity {
    fn new(now_ms: u64) -> Self {
        Activity {
            last_io_ms: AtomicU64::new(now_ms),
            in_handler: AtomicU32::new(0),
            close: CancellationToken::new(),
        }
    }

    /// Bytes moved at `now_ms`.
    pub fn io(&self, now_ms: u64) {
        self.last_io_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// A request entered a handler; it counts until the returned guard drops.
    pub fn enter_handler(self: &Arc<Self>) -> InHandler {
        self.in_handler.fetch_add(1, Ordering::Relaxed);
        InHandler(self.clone())
    }

    fn busy(&self) -> bool {
        self.in_handler.load(Ordering::Relaxed) > 0
    }

    fn idle_since_ms(&self) -> u64 {
        self.last_io_ms.load(Ordering::Relaxed)
    }
}

/// Marks a request as inside a handler while it lives.
#[derive(Debug)]
pub struct InHandler(Arc<Activity>);

impl Drop for InHandler {
    fn drop(&mut self) {
        self.0.in_handler.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The open connections.
#[derive(Debug)]
pub struct Conns {
    limits: ConnLimits,
    open: HashMap<u64, Arc<Activity>>,
    next_id: u64,
}

impl Conns {
    pub fn new(limits: ConnLimits) -> Self {
        Conns {
            limits,
            open: HashMap::new(),
            next_id: 0,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.len()
    }

    /// Admits a new connection at `now_ms`, first closing the idlest ones if the table is
    /// full. Returns its id and activity. When every open connection has a request in a
    /// handler the table may pass its limit: the API's slots bound those.
    pub fn open(&mut self, now_ms: u64) -> (u64, Arc<Activity>) {
        while self.open.len() >= self.limits.connections_max {
            let idlest = self
                .open
                .iter()
                .filter(|(_, a)| !a.busy())
                .min_by_key(|(id, a)| (a.idle_since_ms(), **id))
                .map(|(id, _)| *id);
            match idlest {
                Some(id) => self.close(id),
                None => break,
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let activity = Arc::new(Activity::new(now_ms));
        self.open.insert(id, activity.clone());
        (id, activity)
    }

    /// Closes the connections idle for `idle_timeout` at `now_ms`; returns how many.
    pub fn close_idle(&mut self, now_ms: u64) -> usize {
        let timeout_ms = u64::try_from(self.limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let idle: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, a)| !a.busy() && now_ms.saturating_sub(a.idle_since_ms()) >= timeout_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in &idle {
            self.close(*id);
        }
        idle.len()
    }

    /// Closes connection `id` (its task ends), or forgets it once its task has ended.
    pub fn close(&mut self, id: u64) {
        if let Some(activity) = self.open.remove(&id) {
            activity.close.cancel();
        }
    }

    /// Closes every connection.
    pub fn close_all(&mut self) {
        for (_, activity) in self.open.drain() {
            activity.close.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize) -> Conns {
        Conns::new(ConnLimits {
            connections_max: max,
            idle_timeout: Duration::from_secs(30),
        })
    }

    #[test]
    fn a_full_table_closes_the_idlest_connection_to_admit_a_new_one() {
        let mut conns = table(3);
        let (_, a) = conns.open(0);
        let (_, b) = conns.open(0);
        let (_, c) = conns.open(0);
        a.io(500);
        c.io(900);
        let (_, d) = conns.open(1_000);
        assert!(b.close.is_cancelled(), "b moved no bytes since it opened");
        assert!(!a.close.is_cancelled() && !c.close.is_cancelled());
        assert!(!d.close.is_cancelled());
        assert_eq!(conns.len(), 3);
    }

    #[test]
    fn a_request_in_a_handler_is_never_closed_to_make_room_or_for_idleness() {
        let mut conns = table(2);
        let (_, a) = conns.open(0);
        let (_, b) = conns.open(0);
        let in_a = a.enter_handler();
        let in_b = b.enter_handler();
        let (_, c) = conns.open(100_000);
        assert_eq!(
            conns.len(),
            3,
            "all busy: the slots bound them, not this table"
        );
        assert_eq!(
            conns.close_idle(130_000),
            1,
            "c is idle; a and b are in handlers"
        );
        assert!(c.close.is_cancelled());
        assert!(!a.close.is_cancelled() && !b.close.is_cancelled());
        drop(in_a);
        drop(in_b);
        assert_eq!(
            conns.close_idle(130_000),
            2,
            "out of their handlers, a and b are idle"
        );
    }

    #[test]
    fn only_connections_idle_for_the_timeout_are_closed() {
        let mut conns = table(10);
        let (_, a) = conns.open(0);
        let (_, b) = conns.open(0);
        b.io(10_000);
        assert_eq!(conns.close_idle(29_999), 0);
        assert_eq!(conns.close_idle(30_000), 1);
        assert!(a.close.is_cancelled() && !b.close.is_cancelled());
        assert_eq!(conns.close_idle(40_000), 1);
        assert_eq!(conns.len(), 0);
    }

    #[test]
    fn a_closed_connection_is_forgotten_once() {
        let mut conns = table(2);
        let (id, a) = conns.open(0);
        conns.close(id);
        conns.close(id);
        assert!(a.close.is_cancelled());
        assert_eq!(conns.len(), 0);
    }
}
