//! The peer book on disk: any text yields a bounded list of addresses, never a panic, and
//! what was read writes back to the same addresses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staffroom_node::peer_book;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let addrs = peer_book::parse(&text);
    assert!(addrs.len() <= staffroom_node::config::PEERS_COUNT_MAX);
    let written: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    assert_eq!(peer_book::parse(&written), addrs, "addresses round-trip");
});
