//! Fault tests that need root: a store's disk filling up and freed (tmpfs mounts), damage
//! to a store. Built only with `--features faults`; `.ci/run` runs them as root.

mod disk_full;
