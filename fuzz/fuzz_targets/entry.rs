//! Entry bytes from the network, the API or the disk: decoding and full verification must
//! never panic, and whatever verifies must re-encode to the very same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staffroom_protocol::{verify_entry, Entry};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(entry) = Entry::decode(bytes) {
        assert_eq!(entry.encode(), bytes, "decoding is canonical");
    }
    let _ = staffroom_protocol::Header::parse(bytes);
    let _ = verify_entry(bytes, u64::MAX / 2);
});
