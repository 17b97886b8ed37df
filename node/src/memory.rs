//! Giving freed memory back to the system. glibc's allocator keeps what a large piece of work
//! freed (the store's scan at open: ~110 MiB at 100,000 entries) unless asked, so an idle node
//! would hold it for ever; other allocators do this on their own.

/// Returns the allocator's free memory to the system, where the allocator is glibc's.
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim takes no pointers and has no preconditions; it only walks the
        // allocator's own free lists, under the allocator's locks.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(
            released = released != 0,
            took_ms = started.elapsed().as_millis() as u64,
            "freed memory given back"
        );
    }
}
