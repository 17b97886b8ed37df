//! Bodies and headers the node's API decodes from local clients: each JSON request type, and
//! the `Authorization` header. The first byte picks the decoder; none may panic, and a body
//! that decodes must encode to JSON that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use staffroom_node::api::types::{
    AddTeacherRequest, AdoptNetworkRequest, DialRequest, JoinRequest, SealRequest, SyncRequestBody,
};
use staffroom_node::store::FilePolicy;

fn round_trips<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(bytes) {
        let json = serde_json::to_vec(&value).expect("encodes");
        let again: T = serde_json::from_slice(&json).expect("decodes what it encoded");
        assert_eq!(again, value);
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Some((which, body)) = bytes.split_first() else {
        return;
    };
    match which % 8 {
        0 => round_trips::<AddTeacherRequest>(body),
        1 => round_trips::<AdoptNetworkRequest>(body),
        2 => round_trips::<JoinRequest>(body),
        3 => round_trips::<DialRequest>(body),
        4 => round_trips::<SyncRequestBody>(body),
        5 => round_trips::<SealRequest>(body),
        6 => round_trips::<FilePolicy>(body),
        _ => {
            let header = String::from_utf8_lossy(body);
            let _ = staffroom_node::api::auth::parse(Some(&header));
        }
    }
});
