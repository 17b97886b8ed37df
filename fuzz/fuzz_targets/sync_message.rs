//! Catch-up sync bytes from a peer: messages, requests and responses must decode or be
//! refused, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staffroom_protocol::sync::{Message, SyncRequest, SyncResponse};

fuzz_target!(|bytes: &[u8]| {
    let _ = Message::decode(bytes);
    let _ = SyncRequest::decode(bytes);
    let _ = SyncResponse::decode(bytes);
});
