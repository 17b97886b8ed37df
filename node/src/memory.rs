//! The node's allocator, and giving freed memory back to the system.
//!
//! mimalloc is the global allocator (feature `mimalloc`, on by default) of every binary that
//! links the node. sled allocates and frees a page's worth of small objects for every page it
//! reads and evicts; once a store outgrows sled's cache (a million entries) that churn went
//! through glibc's allocator, whose free lists fragmented until `malloc` and `free` alone took
//! a quarter of a catch-up's CPU (`docs/performance.md`: a fresh node caught up a million
//! entries at 6,944/s with glibc, 12,048/s with mimalloc).
//!
//! glibc's allocator also keeps what a large piece of work freed (the store's scan at open,
//! ~110 MiB at 100,000 entries) unless asked; C libraries linked in still use it.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns free memory to the system after a large piece of work: mimalloc's (only the
/// calling thread's heap and abandoned ones: what other threads freed is purged by mimalloc
/// itself, after a delay, when they next allocate) and glibc's, where it is in use.
pub fn give_back_freed() {
    let started = std::time::Instant::now();
    #[cfg(feature = "mimalloc")]
    // SAFETY: mi_collect takes no pointers; it only walks the allocator's own free pages.
    unsafe {
        libmimalloc_sys::mi_collect(true)
    };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and has no preconditions; it only walks the
    // allocator's own free lists, under the allocator's locks.
    unsafe {
        libc::malloc_trim(0)
    };
    tracing::debug!(
        took_ms = started.elapsed().as_millis() as u64,
        "freed memory given back"
    );
}
