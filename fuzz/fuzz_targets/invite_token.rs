//! Invite tokens pasted by teachers (or by anyone): decoding must never panic, and a token
//! that decodes must encode back to one that decodes to the same invite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staffroom_protocol::membership::InviteToken;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(token) = InviteToken::decode(text) {
        let again = InviteToken::decode(&token.encode()).expect("an encoded token decodes");
        assert_eq!(again, token);
    }
});
