//! What is wrong with the store right now, for `/v1/status` and `staffroom status`: a full
//! disk, a failing write, damage found at open. The writer sets and clears problems as they
//! come and go; nothing here decides anything.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One problem the store has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable: `disk_full`, `write_failed`, `store_repaired`, `entries_lost`,
    /// `state_restored`, `state_copy_failed`, `ledger_failed`.
    pub code: String,
    /// For the school's admin: what happened and what to do.
    pub message: String,
    /// When it was first seen, ms since the Unix epoch (the system clock).
    pub since_ms: u64,
}

/// The store's current problems, by code.
#[derive(Debug, Default)]
pub(crate) struct Health {
    problems: Mutex<BTreeMap<&'static str, Problem>>,
}

impl Health {
    /// Records `code` (keeping when it was first seen if it is already recorded).
    pub(crate) fn set(&self, code: &'static str, message: String) {
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        let since_ms = problems.get(code).map_or_else(now_ms, |p| p.since_ms);
        if !problems.contains_key(code) {
            tracing::error!(code, %message, "store problem");
        }
        problems.insert(
            code,
            Problem {
                code: code.to_owned(),
                message,
                since_ms,
            },
        );
    }

    /// Clears `code`, saying so if it was recorded.
    pub(crate) fn clear(&self, code: &'static str) {
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if problems.remove(code).is_some() {
            tracing::info!(code, "store problem resolved");
        }
    }

    pub(crate) fn has(&self, code: &str) -> bool {
        let problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        problems.contains_key(code)
    }

    pub(crate) fn problems(&self) -> Vec<Problem> {
        let problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        problems.values().cloned().collect()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_keeps_its_first_time_until_cleared() {
        let health = Health::default();
        health.set("disk_full", "first".into());
        let since = health.problems()[0].since_ms;
        health.set("disk_full", "second".into());
        assert_eq!(health.problems().len(), 1);
        assert_eq!(health.problems()[0].message, "second");
        assert_eq!(health.problems()[0].since_ms, since);
        health.clear("disk_full");
        assert!(health.problems().is_empty());
    }
}
