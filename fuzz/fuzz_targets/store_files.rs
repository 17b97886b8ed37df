//! The store's own files, read at every open and possibly damaged on disk: the ledger of
//! acknowledged ids and the copy of the node's state. Any bytes must parse or be refused,
//! never panic; the ledger never counts more ids or damage than records.
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
});
