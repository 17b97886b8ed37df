//! Signed API requests: every call carries its teacher's key and an ed25519 signature over the
//! node it is for (its peer id, and the random id of this run of it), its method, path and
//! query, a hash of its body, a time and a fresh nonce. No reusable secret crosses the wire: a
//! captured request is good for that node, that run, that call, once, and only while fresh.
//!
//! ```text
//! Authorization: Staffroom-v1 key=<64 hex>,boot=<32 hex>,ts=<ms>,nonce=<32 hex>,sig=<128 hex>
//! signed = "staffroom/api-request/v1\n" node "\n" boot "\n" METHOD "\n" path?query "\n"
//!          hex(BLAKE3(body)) "\n" ts "\n" nonce
//! ```
//!
//! The node refuses a request for another run (`boot`: so nothing captured before a restart
//! can be replayed after it), dated more than [`REQUEST_WINDOW_MS`] from its clock, or whose
//! `(key, nonce)` it has seen — [`ReplayGuard`], a bounded state machine. Clients learn the run
//! id and the node's clock from `GET /v1/hello`, so a computer whose clock is off still works.

use std::collections::{HashMap, VecDeque};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use staffroom_protocol::AuthorId;

/// The scheme name in the `Authorization` header.
pub const SCHEME: &str = "Staffroom-v1";
/// How far a request's time may be from the node's clock, either way.
pub const REQUEST_WINDOW_MS: u64 = 120_000;
/// Nonces remembered at most (each for the window); beyond this, requests wait (busy).
pub const NONCES_MAX: usize = 65_536;
/// Prefixed to what is signed: an API signature can never pass for an entry's, or the reverse.
const CONTEXT: &str = "staffroom/api-request/v1\n";

/// Why a request's authentication failed, with a message a teacher can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unsigned request: every call must be signed with a registered teacher's key (the staffroom CLI does this)")]
    Unsigned,
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    #[error("request dated {ts_ms} ms is too far from this node's clock ({now_ms} ms): check the clock of the computer that sent it")]
    Stale { ts_ms: u64, now_ms: u64 },
    #[error("the node has restarted since this request was signed; sign it again")]
    Restarted,
    #[error("bad request signature: the request was altered, or signed for another node")]
    BadSignature,
    #[error("replayed request: this nonce was already used")]
    Replayed,
    #[error("too many recent requests to check for replays; try again")]
    Busy,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Unsigned => "unsigned_request",
            AuthError::Malformed(_) => "bad_authorization",
            AuthError::Stale { .. } => "stale_request",
            AuthError::Restarted => "node_restarted",
            AuthError::BadSignature => "bad_request_signature",
            AuthError::Replayed => "replayed_request",
            AuthError::Busy => "busy",
        }
    }
}

/// The parts of a signed request's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub key: AuthorId,
    pub boot: [u8; 16],
    pub ts_ms: u64,
    pub nonce: [u8; 16],
    pub sig: [u8; 64],
}

/// What a request signature covers.
pub struct Call<'a> {
    /// The node's peer id, as text.
    pub node: &'a str,
    /// The id of the node's current run, as hex.
    pub boot: &'a str,
    pub method: &'a str,
    /// Path and query, as sent (`/v1/entries?limit=5`).
    pub target: &'a str,
    /// BLAKE3 of the body. For a file upload, the file's root: the node checks the bytes
    /// against it as they stream in, instead of holding them all before it can check.
    pub body_hash: blake3::Hash,
}

impl Call<'_> {
    fn message(&self, ts_ms: u64, nonce: &[u8; 16]) -> Vec<u8> {
        let body = self.body_hash.to_hex();
        format!(
            "{CONTEXT}{}\n{}\n{}\n{}\n{body}\n{ts_ms}\n{}",
            self.node,
            self.boot,
            self.method,
            self.target,
            hex::encode(nonce)
        )
        .into_bytes()
    }

    /// The `Authorization` header value for this call, signed by `key`.
    pub fn sign(&self, key: &SigningKey, ts_ms: u64, nonce: [u8; 16]) -> String {
        let sig = key.sign(&self.message(ts_ms, &nonce)).to_bytes();
        format!(
            "{SCHEME} key={},boot={},ts={ts_ms},nonce={},sig={}",
            hex::encode(key.verifying_key().to_bytes()),
            self.boot,
            hex::encode(nonce),
            hex::encode(sig)
        )
    }

    /// Checks the signature (strictly) over this call.
    pub fn verify(&self, c: &Credentials) -> Result<(), AuthError> {
        let key =
            VerifyingKey::from_bytes(c.key.as_bytes()).map_err(|_| AuthError::BadSignature)?;
        key.verify_strict(
            &self.message(c.ts_ms, &c.nonce),
            &Signature::from_bytes(&c.sig),
        )
        .map_err(|_| AuthError::BadSignature)
    }
}

/// Parses an `Authorization` header value (at most a few hundred bytes are looked at).
pub fn parse(header: Option<&str>) -> Result<Credentials, AuthError> {
    let header = header.ok_or(AuthError::Unsigned)?;
    let rest = header
        .strip_prefix(SCHEME)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(AuthError::Unsigned)?;
    if rest.len() > 512 {
        return Err(AuthError::Malformed("too long"));
    }
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or(AuthError::Malformed("expected name=value pairs"))?;
        if fields.insert(name, value).is_some() {
            return Err(AuthError::Malformed("a field appears twice"));
        }
    }
    let field = |name| {
        fields
            .get(name)
            .copied()
            .ok_or(AuthError::Malformed("a field is missing"))
    };
    let hex_array = |name, out: &mut [u8]| {
        hex::decode_to_slice(field(name)?, out).map_err(|_| AuthError::Malformed("bad hex"))
    };
    let mut key = [0u8; 32];
    let mut boot = [0u8; 16];
    let mut nonce = [0u8; 16];
    let mut sig = [0u8; 64];
    hex_array("key", &mut key)?;
    hex_array("boot", &mut boot)?;
    hex_array("nonce", &mut nonce)?;
    hex_array("sig", &mut sig)?;
    let ts_ms = field("ts")?
        .parse()
        .map_err(|_| AuthError::Malformed("ts is not a number"))?;
    Ok(Credentials {
        key: AuthorId(key),
        boot,
        ts_ms,
        nonce,
        sig,
    })
}

/// Remembers recent `(key, nonce)` pairs for the request window. Time comes in as an argument.
#[derive(Debug)]
pub struct ReplayGuard {
    /// The id of this run of the node.
    boot: [u8; 16],
    seen: HashMap<(AuthorId, [u8; 16]), u64>,
    by_time: VecDeque<(u64, AuthorId, [u8; 16])>,
}

impl ReplayGuard {
    pub fn new(boot: [u8; 16]) -> Self {
        ReplayGuard {
            boot,
            seen: HashMap::new(),
            by_time: VecDeque::new(),
        }
    }

    /// Accepts a request's time and nonce once, or says why not. Call after the signature
    /// has verified, so nobody can fill the memory with nonces under others' keys.
    pub fn admit(&mut self, c: &Credentials, now_ms: u64) -> Result<(), AuthError> {
        self.forget_before(now_ms.saturating_sub(2 * REQUEST_WINDOW_MS));
        if c.boot != self.boot {
            return Err(AuthError::Restarted);
        }
        if c.ts_ms.abs_diff(now_ms) > REQUEST_WINDOW_MS {
            return Err(AuthError::Stale {
                ts_ms: c.ts_ms,
                now_ms,
            });
        }
        if self.seen.contains_key(&(c.key, c.nonce)) {
            return Err(AuthError::Replayed);
        }
        if self.seen.len() >= NONCES_MAX {
            return Err(AuthError::Busy);
        }
        self.seen.insert((c.key, c.nonce), now_ms);
        self.by_time.push_back((now_ms, c.key, c.nonce));
        Ok(())
    }

    /// Forgets nonces accepted before `cutoff_ms`: their requests are stale by then anyway
    /// (accepted within the window of their own time, kept for two windows).
    fn forget_before(&mut self, cutoff_ms: u64) {
        while let Some(&(at, key, nonce)) = self.by_time.front() {
            if at >= cutoff_ms {
                break;
            }
            self.by_time.pop_front();
            self.seen.remove(&(key, nonce));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_225_600_000;

    const BOOT: [u8; 16] = [5; 16];
    const BOOT_HEX: &str = "05050505050505050505050505050505";

    fn call(body: &[u8]) -> Call<'_> {
        Call {
            node: "12D3KooWnode",
            boot: BOOT_HEX,
            method: "POST",
            target: "/v1/entries",
            body_hash: blake3::hash(body),
        }
    }

    fn signed(body: &[u8], ts: u64, nonce: u8) -> Credentials {
        let key = SigningKey::from_bytes(&[7; 32]);
        parse(Some(&call(body).sign(&key, ts, [nonce; 16]))).expect("parses")
    }

    #[test]
    fn a_signed_call_verifies_and_any_change_breaks_it() {
        let c = signed(b"body", NOW, 1);
        assert_eq!(call(b"body").verify(&c), Ok(()));
        assert_eq!(call(b"bodY").verify(&c), Err(AuthError::BadSignature));
        let other_path = Call {
            target: "/v1/sync",
            ..call(b"body")
        };
        assert_eq!(other_path.verify(&c), Err(AuthError::BadSignature));
        let other_node = Call {
            node: "12D3KooWother",
            ..call(b"body")
        };
        assert_eq!(other_node.verify(&c), Err(AuthError::BadSignature));
        let mut later = c.clone();
        later.ts_ms += 1;
        assert_eq!(call(b"body").verify(&later), Err(AuthError::BadSignature));
        let other_run = Call {
            boot: "06060606060606060606060606060606",
            ..call(b"body")
        };
        assert_eq!(other_run.verify(&c), Err(AuthError::BadSignature));
    }

    #[test]
    fn headers_are_parsed_strictly() {
        assert_eq!(parse(None), Err(AuthError::Unsigned));
        assert_eq!(parse(Some("Bearer abc")), Err(AuthError::Unsigned));
        assert!(matches!(
            parse(Some("Staffroom-v1 key=zz,boot=00,ts=1,nonce=00,sig=00")),
            Err(AuthError::Malformed(_))
        ));
        let good = call(b"").sign(&SigningKey::from_bytes(&[7; 32]), NOW, [0; 16]);
        assert!(
            parse(Some(&format!("{good},ts=5"))).is_err(),
            "duplicate field"
        );
        assert!(parse(Some(&"x".repeat(600))).is_err());
    }

    #[test]
    fn nonces_are_single_use_within_the_window_and_time_is_checked() {
        let mut guard = ReplayGuard::new(BOOT);
        let c = signed(b"", NOW, 1);
        assert_eq!(guard.admit(&c, NOW), Ok(()));
        assert_eq!(guard.admit(&c, NOW + 5), Err(AuthError::Replayed));
        assert!(matches!(
            guard.admit(&signed(b"", NOW - REQUEST_WINDOW_MS - 1, 2), NOW),
            Err(AuthError::Stale { .. })
        ));
        let mut before_restart = signed(b"", NOW, 3);
        before_restart.boot = [4; 16];
        assert_eq!(
            guard.admit(&before_restart, NOW),
            Err(AuthError::Restarted),
            "made for an earlier run of the node"
        );
        // Long after, the old nonce is forgotten — and its request is stale anyway.
        let much_later = NOW + 3 * REQUEST_WINDOW_MS;
        assert!(matches!(
            guard.admit(&c, much_later),
            Err(AuthError::Stale { .. })
        ));
        assert_eq!(guard.seen.len(), 0);
    }

    #[test]
    fn the_guard_is_bounded() {
        let mut guard = ReplayGuard::new(BOOT);
        for n in 0..NONCES_MAX as u32 {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&n.to_be_bytes());
            let c = Credentials {
                key: AuthorId([1; 32]),
                boot: BOOT,
                ts_ms: NOW,
                nonce,
                sig: [0; 64],
            };
            guard.admit(&c, NOW).unwrap();
        }
        let c = Credentials {
            key: AuthorId([2; 32]),
            boot: BOOT,
            ts_ms: NOW,
            nonce: [9; 16],
            sig: [0; 64],
        };
        assert_eq!(guard.admit(&c, NOW), Err(AuthError::Busy));
    }
}
