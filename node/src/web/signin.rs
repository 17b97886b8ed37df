//! Sign-in without passwords, as a state machine (time and randomness in, decisions out): a
//! registered teacher's CLI asks for a one-time link; the browser redeems it once, before it
//! expires, for a session; a session carries its own CSRF token and ends at its expiry or on
//! signing out. Only BLAKE3 hashes of links and sessions are kept, so a lookup compares
//! hashes, never the secrets themselves. Everything lives in memory: a restart signs everyone
//! out.

use std::collections::HashMap;

use staffroom_protocol::AuthorId;

/// Links waiting to be used at most; more are refused until some are used or expire.
pub const LINKS_MAX: usize = 256;
/// Sessions at most; a new one beyond it ends the one closest to its expiry.
pub const SESSIONS_MAX: usize = 1024;

/// A secret as it travels: 32 random bytes, in hex.
pub type Secret = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub teacher: AuthorId,
    /// The token every form of this session must carry back (hex).
    pub csrf: String,
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error("this sign-in link has expired; ask for a new one with `staffroom web login`")]
    Expired,
    #[error("this sign-in link is not known here: it was used already, or the node has restarted since; ask for a new one with `staffroom web login`")]
    Unknown,
    #[error("too many sign-in links are waiting to be used; try again in a few minutes")]
    TooManyLinks,
}

struct Link {
    teacher: AuthorId,
    expires_at_ms: u64,
}

pub struct SignIns {
    link_ms: u64,
    session_ms: u64,
    links: HashMap<[u8; 32], Link>,
    sessions: HashMap<[u8; 32], Session>,
}

impl SignIns {
    pub fn new(link_ms: u64, session_ms: u64) -> Self {
        SignIns {
            link_ms,
            session_ms,
            links: HashMap::new(),
            sessions: HashMap::new(),
        }
    }

    /// A link for `teacher`, from `secret` (random); the hex in it, and when it expires.
    pub fn issue(
        &mut self,
        teacher: AuthorId,
        secret: Secret,
        now_ms: u64,
    ) -> Result<(String, u64), SignInError> {
        self.links.retain(|_, l| l.expires_at_ms > now_ms);
        if self.links.len() >= LINKS_MAX {
            return Err(SignInError::TooManyLinks);
        }
        let expires_at_ms = now_ms.saturating_add(self.link_ms);
        self.links.insert(
            hash(&secret),
            Link {
                teacher,
                expires_at_ms,
            },
        );
        Ok((hex::encode(secret), expires_at_ms))
    }

    /// Redeems the link `token` (hex) once: a link is gone after its first use, expired or
    /// not. The new session's cookie value (hex of `session_secret`) and the session.
    pub fn redeem(
        &mut self,
        token: &str,
        session_secret: Secret,
        csrf_secret: Secret,
        now_ms: u64,
    ) -> Result<(String, Session), SignInError> {
        let link = parse(token)
            .and_then(|secret| self.links.remove(&hash(&secret)))
            .ok_or(SignInError::Unknown)?;
        if link.expires_at_ms <= now_ms {
            return Err(SignInError::Expired);
        }
        self.sessions.retain(|_, s| s.expires_at_ms > now_ms);
        if self.sessions.len() >= SESSIONS_MAX {
            let soonest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_at_ms)
                .map(|(k, _)| *k);
            if let Some(key) = soonest {
                self.sessions.remove(&key);
            }
        }
        let session = Session {
            teacher: link.teacher,
            csrf: hex::encode(&csrf_secret[..16]),
            expires_at_ms: now_ms.saturating_add(self.session_ms),
        };
        self.sessions.insert(hash(&session_secret), session.clone());
        Ok((hex::encode(session_secret), session))
    }

    /// The session a cookie value names, if it has not expired.
    pub fn session(&self, cookie: &str, now_ms: u64) -> Option<&Session> {
        let secret = parse(cookie)?;
        self.sessions
            .get(&hash(&secret))
            .filter(|s| s.expires_at_ms > now_ms)
    }

    /// Ends the session a cookie value names.
    pub fn sign_out(&mut self, cookie: &str) {
        if let Some(secret) = parse(cookie) {
            self.sessions.remove(&hash(&secret));
        }
    }

    pub fn session_ms(&self) -> u64 {
        self.session_ms
    }
}

fn parse(text: &str) -> Option<Secret> {
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text, &mut secret).ok()?;
    Some(secret)
}

fn hash(secret: &Secret) -> [u8; 32] {
    *blake3::hash(secret).as_bytes()
}

/// Whether two CSRF tokens are equal, in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEACHER: AuthorId = AuthorId([1; 32]);

    fn signins() -> SignIns {
        SignIns::new(60_000, 3_600_000)
    }

    #[test]
    fn a_link_signs_in_once() {
        let mut s = signins();
        let (token, expires) = s.issue(TEACHER, [7; 32], 1_000).unwrap();
        assert_eq!(expires, 61_000);
        let (cookie, session) = s.redeem(&token, [8; 32], [9; 32], 2_000).unwrap();
        assert_eq!(session.teacher, TEACHER);
        assert_eq!(s.session(&cookie, 3_000), Some(&session));
        assert_eq!(
            s.redeem(&token, [10; 32], [11; 32], 2_001),
            Err(SignInError::Unknown)
        );
    }

    #[test]
    fn an_expired_link_is_refused_and_forgotten() {
        let mut s = signins();
        let (token, expires) = s.issue(TEACHER, [7; 32], 1_000).unwrap();
        assert_eq!(
            s.redeem(&token, [8; 32], [9; 32], expires),
            Err(SignInError::Expired)
        );
        assert_eq!(
            s.redeem(&token, [8; 32], [9; 32], 1_001),
            Err(SignInError::Unknown)
        );
    }

    #[test]
    fn sessions_end_at_expiry_and_on_sign_out() {
        let mut s = signins();
        let (token, _) = s.issue(TEACHER, [7; 32], 0).unwrap();
        let (cookie, session) = s.redeem(&token, [8; 32], [9; 32], 0).unwrap();
        assert!(s.session(&cookie, session.expires_at_ms - 1).is_some());
        assert!(s.session(&cookie, session.expires_at_ms).is_none());
        s.sign_out(&cookie);
        assert!(s.session(&cookie, 1).is_none());
        assert!(s.session("not hex", 1).is_none());
        assert!(
            s.session(&hex::encode([7u8; 32]), 1).is_none(),
            "a link is not a session"
        );
    }

    #[test]
    fn links_and_sessions_are_bounded() {
        let mut s = signins();
        for i in 0..LINKS_MAX {
            let secret = blake3::hash(&i.to_be_bytes()).into();
            s.issue(TEACHER, secret, 0).unwrap();
        }
        assert_eq!(s.issue(TEACHER, [1; 32], 0), Err(SignInError::TooManyLinks));
        // Expired links make room again.
        assert!(s.issue(TEACHER, [1; 32], 60_000).is_ok());

        let mut s = signins();
        let mut first = None;
        for i in 0..=SESSIONS_MAX as u64 {
            let (token, _) = s
                .issue(TEACHER, blake3::hash(&i.to_be_bytes()).into(), i)
                .unwrap();
            let secret = blake3::hash(&((i + 1) << 40).to_be_bytes()).into();
            let (cookie, _) = s.redeem(&token, secret, [0; 32], i).unwrap();
            first.get_or_insert(cookie);
        }
        assert_eq!(s.sessions.len(), SESSIONS_MAX);
        assert!(
            s.session(&first.unwrap(), 10).is_none(),
            "the oldest made room"
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abcd", "abcd"));
        assert!(!same_token("abcd", "abce"));
        assert!(!same_token("abcd", "abc"));
    }
}
