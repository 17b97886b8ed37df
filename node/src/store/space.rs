//! Room on the store's disk. Once a write fails for lack of space, sled fails every later
//! write until it is reopened; so the writer never lets it get there. Before each group of
//! writes it looks at the free space on the store's file system, and below the reserve it
//! refuses the group ([`StoreError::DiskFull`]) without touching sled. Reads go on, and
//! writes resume by themselves once space is freed: no restart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;

/// `[store]` in `config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Free space on the store's disk below which new writes are refused, in MiB: room for
    /// sled's own bookkeeping and for the rest of the machine.
    pub reserve_mib: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { reserve_mib: 64 }
    }
}

/// The allowed range of `store.reserve_mib`.
pub const RESERVE_MIB_RANGE: std::ops::RangeInclusive<u64> = 1..=1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store.reserve_mib = {0} is out of range: it must be from 1 to 1048576")]
pub struct StoreConfigError(pub u64);

impl StoreConfig {
    pub fn check(&self) -> Result<(), StoreConfigError> {
        match RESERVE_MIB_RANGE.contains(&self.reserve_mib) {
            true => Ok(()),
            false => Err(StoreConfigError(self.reserve_mib)),
        }
    }

    pub(crate) fn reserve_bytes(&self) -> u64 {
        self.reserve_mib.saturating_mul(1024 * 1024)
    }
}

/// What the store's health says while the disk is full.
pub(crate) fn disk_full_message(e: &StoreError) -> String {
    format!("{e}: new entries and files are refused until space is freed on the store's disk")
}

/// The free space on the file system the store is on.
pub(crate) struct Space {
    dir: PathBuf,
    reserve_bytes: u64,
}

impl Space {
    pub(crate) fn new(dir: &Path, config: StoreConfig) -> Space {
        Space {
            dir: dir.to_owned(),
            reserve_bytes: config.reserve_bytes(),
        }
    }

    /// Whether `adding_bytes` more may be written and still leave the reserve free. When
    /// the free space cannot be read, they may: sled's own errors then say what is wrong.
    pub(crate) fn check(&self, adding_bytes: u64) -> Result<(), StoreError> {
        let Ok(stat) = rustix::fs::statvfs(&self.dir) else {
            return Ok(());
        };
        let free_bytes = stat.f_bavail.saturating_mul(stat.f_frsize);
        match free_bytes < self.reserve_bytes.saturating_add(adding_bytes) {
            true => Err(StoreError::DiskFull {
                free_bytes,
                reserve_bytes: self.reserve_bytes,
            }),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_below_the_reserve_only() {
        let dir = tempfile::tempdir().unwrap();
        let roomy = Space::new(dir.path(), StoreConfig { reserve_mib: 1 });
        assert!(roomy.check(1024).is_ok(), "a test machine has a MiB free");
        match roomy.check(u64::MAX) {
            Err(StoreError::DiskFull { reserve_bytes, .. }) => assert_eq!(reserve_bytes, 1 << 20),
            other => panic!("no disk has 2^64 bytes free: {other:?}"),
        }
    }

    #[test]
    fn the_reserve_is_checked() {
        assert!(StoreConfig::default().check().is_ok());
        assert_eq!(
            StoreConfig { reserve_mib: 0 }.check(),
            Err(StoreConfigError(0))
        );
    }
}
