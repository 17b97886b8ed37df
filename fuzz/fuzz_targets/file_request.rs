//! File requests from peers: decoding (with its checks on counts and ranges) must never
//! panic, and what decodes must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staffroom_protocol::files::wire::FileRequest;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = FileRequest::decode(bytes) {
        assert_eq!(request.encode(), bytes, "decoding is canonical");
    }
});
