//! The store's own files, read at every open and possibly damaged on disk: the ledger of
//! acknowledged ids, the copy of the node's state, and the entries' records (compressed or
//! not). Any bytes must parse or be refused, never panic; the ledger never counts more ids or
//! damage than records; no record unpacks to more than the largest entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staffroom_node::store::fuzzing;

fuzz_target!(|bytes: &[u8]| {
    let (records, damaged, ids) = fuzzing::ledger(bytes);
    assert!(
        damaged <= records && ids <= records,
        "{records} {damaged} {ids}"
    );
    assert_eq!(records, bytes.len() / 37, "one record per 37 bytes");
    let _ = fuzzing::state_copy(bytes);
    if let Some(len) = fuzzing::record(bytes) {
        assert!(len <= staffroom_protocol::limits::ENTRY_BYTES_MAX, "{len}");
    }
});
