//! The process's open-file limit. A node holds sockets for peers, the API and the store's
//! files; the usual soft limit of 1024 is low for that, while the hard limit is usually far
//! higher. At start the node raises its soft limit towards the hard one (to at most
//! `WANTED`); the API's connection cap keeps it safe either way.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Open files the node asks for: ample, and bounded.
const WANTED: u64 = 65_536;

/// Raises the soft open-file limit to `min(hard, WANTED)` if it is lower; returns the limit
/// in force afterwards (`None` if unlimited).
pub fn raise() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(WANTED, |hard| hard.min(WANTED));
    match limit.current {
        Some(soft) if soft < wanted => {
            let raised = Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => Some(wanted),
                Err(e) => {
                    tracing::warn!(error = %e, soft, wanted, "cannot raise the open-file limit");
                    Some(soft)
                }
            }
        }
        current => current,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_least_where_it_was_and_within_the_hard_limit() {
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let after = super::raise();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(after, now.current);
        if let (Some(before), Some(after)) = (before.current, after) {
            assert!(after >= before);
        }
        if let (Some(hard), Some(after)) = (now.maximum, after) {
            assert!(after <= hard);
        }
    }
}
