//! Invite tokens: one short string a teacher can paste (or put in a QR code) that names the
//! network, the invite operation to redeem, when it expires, and where the inviter's school
//! node listens — so that the token alone is enough to dial and join.
//!
//! ```text
//! token   = "SR1" BASE32(payload)         (RFC 4648 alphabet, no padding; read in any case)
//! payload = network:[32] invite:[32] expires_at_ms:u64 addr_count:u8 (len:u8 addr)*
//!           [name_len:u8 name]     (only for a private network: its founding entry has none)
//! ```
//!
//! Addresses are libp2p multiaddrs in their binary form (this crate does not parse them).
//! A token grants nothing by itself: joining with it is a signed operation that every node
//! checks against the invite's limits, and reading follows membership.

use data_encoding::BASE32_NOPAD;

use crate::ids::{EntryId, NetworkId};

/// What every token starts with: "Staffroom", token format 1.
pub const TOKEN_PREFIX: &str = "SR1";
/// Node addresses one token carries at most.
pub const TOKEN_ADDRS_MAX: usize = 4;
/// Bytes of one address at most.
pub const TOKEN_ADDR_BYTES_MAX: usize = 128;
/// Bytes of a private network's name in a token at most (a network name's limit).
pub const TOKEN_NAME_BYTES_MAX: usize = super::wire::NETWORK_NAME_BYTES_MAX;
/// Characters of a token at most (what [`InviteToken::decode`] reads).
pub const TOKEN_CHARS_MAX: usize = 1200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteToken {
    pub network: NetworkId,
    pub invite: EntryId,
    pub expires_at_ms: u64,
    /// The inviter's node addresses (binary multiaddrs, each ending in its peer id).
    pub addrs: Vec<Vec<u8>>,
    /// A private network's name, which travels only to those invited (empty: none; public
    /// networks are named by their founding entry).
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not an invite token: it should start with {TOKEN_PREFIX}")]
    Prefix,
    #[error("invite token is longer than {TOKEN_CHARS_MAX} characters")]
    TooLong,
    #[error("invite token is damaged (not base32): check that it was copied whole")]
    Encoding,
    #[error("invite token is damaged: {0}")]
    Malformed(&'static str),
}

impl InviteToken {
    /// The token's text. Addresses beyond the limits are left out.
    pub fn encode(&self) -> String {
        let addrs: Vec<&Vec<u8>> = self
            .addrs
            .iter()
            .filter(|a| !a.is_empty() && a.len() <= TOKEN_ADDR_BYTES_MAX)
            .take(TOKEN_ADDRS_MAX)
            .collect();
        let mut payload = Vec::with_capacity(73 + addrs.len() * 48);
        payload.extend_from_slice(self.network.as_bytes());
        payload.extend_from_slice(self.invite.as_bytes());
        payload.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        payload.push(addrs.len() as u8);
        for a in addrs {
            payload.push(a.len() as u8);
            payload.extend_from_slice(a);
        }
        let name = crate::text::truncate_bytes(&self.name, TOKEN_NAME_BYTES_MAX);
        if !name.is_empty() {
            payload.push(name.len() as u8);
            payload.extend_from_slice(name.as_bytes());
        }
        format!("{TOKEN_PREFIX}{}", BASE32_NOPAD.encode(&payload))
    }

    /// Reads a token, ignoring surrounding space and letter case.
    pub fn decode(text: &str) -> Result<InviteToken, TokenError> {
        let text = text.trim();
        if text.len() > TOKEN_CHARS_MAX {
            return Err(TokenError::TooLong);
        }
        let upper = text.to_ascii_uppercase();
        let body = upper.strip_prefix(TOKEN_PREFIX).ok_or(TokenError::Prefix)?;
        let payload = BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| TokenError::Encoding)?;
        let mut rest = payload.as_slice();
        let mut take = |n: usize, what| -> Result<&[u8], TokenError> {
            if rest.len() < n {
                return Err(TokenError::Malformed(what));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let array = |b: &[u8]| -> [u8; 32] { b.try_into().unwrap_or([0; 32]) };
        let network = NetworkId(array(take(32, "network id cut short")?));
        let invite = EntryId(array(take(32, "invite id cut short")?));
        let mut time = [0u8; 8];
        time.copy_from_slice(take(8, "expiry cut short")?);
        let count = usize::from(take(1, "address count missing")?[0]);
        if count > TOKEN_ADDRS_MAX {
            return Err(TokenError::Malformed("too many addresses"));
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(take(1, "address cut short")?[0]);
            if len == 0 || len > TOKEN_ADDR_BYTES_MAX {
                return Err(TokenError::Malformed("address of a bad length"));
            }
            addrs.push(take(len, "address cut short")?.to_vec());
        }
        let mut name = String::new();
        if let Ok(len) = take(1, "no name") {
            let len = usize::from(len[0]);
            if len == 0 || len > TOKEN_NAME_BYTES_MAX {
                return Err(TokenError::Malformed("name of a bad length"));
            }
            let bytes = take(len, "name cut short")?;
            name = std::str::from_utf8(bytes)
                .ok()
                .filter(|n| crate::text::single_line("name", n, TOKEN_NAME_BYTES_MAX).is_ok())
                .ok_or(TokenError::Malformed("name is not one line of text"))?
                .to_owned();
        }
        if take(1, "").is_ok() {
            return Err(TokenError::Malformed("trailing bytes"));
        }
        Ok(InviteToken {
            network,
            invite,
            expires_at_ms: u64::from_be_bytes(time),
            addrs,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> InviteToken {
        InviteToken {
            network: NetworkId([1; 32]),
            invite: EntryId([2; 32]),
            expires_at_ms: 1_767_225_600_000,
            addrs: vec![vec![4, 127, 0, 0, 1, 6, 0x0f, 0xc8], vec![9; 40]],
            name: String::new(),
        }
    }

    #[test]
    fn a_private_networks_name_travels_in_its_tokens_only() {
        let named = InviteToken {
            name: "Y6 writing group".into(),
            ..token()
        };
        let text = named.encode();
        assert_eq!(InviteToken::decode(&text), Ok(named));
        assert!(token().encode().len() < text.len());
    }

    #[test]
    fn tokens_round_trip_in_any_case_and_stay_short() {
        let t = token();
        let text = t.encode();
        assert!(text.starts_with("SR1"), "{text}");
        assert!(text.len() < 220, "{} characters", text.len());
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(InviteToken::decode(&text), Ok(t.clone()));
        assert_eq!(
            InviteToken::decode(&format!("  {}\n", text.to_lowercase())),
            Ok(t)
        );
    }

    #[test]
    fn damaged_tokens_are_clear_errors() {
        let text = token().encode();
        assert_eq!(InviteToken::decode("hello"), Err(TokenError::Prefix));
        assert_eq!(
            InviteToken::decode(&format!("{text}!")),
            Err(TokenError::Encoding)
        );
        let cut = &text[..60];
        assert!(matches!(
            InviteToken::decode(cut),
            Err(TokenError::Malformed(_) | TokenError::Encoding)
        ));
        assert_eq!(
            InviteToken::decode(&"SR1".repeat(401)),
            Err(TokenError::TooLong)
        );
        let mut t = token();
        t.addrs = vec![vec![1; 10]; 9];
        let decoded = InviteToken::decode(&t.encode()).unwrap();
        assert_eq!(
            decoded.addrs.len(),
            TOKEN_ADDRS_MAX,
            "extra addresses left out"
        );
    }
}
