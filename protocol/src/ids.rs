//! 32-byte identifiers: entries, networks and authors, shown as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid 32-byte identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {what}: expected 64 hex characters, got {got:?}")]
pub struct ParseIdError {
    what: &'static str,
    got: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 8 hex characters: enough for humans and log lines.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; 32];
                match hex::decode_to_slice(s.trim(), &mut out) {
                    Ok(()) => Ok(Self(out)),
                    Err(_) => Err(ParseIdError { what: $what, got: s.chars().take(80).collect() }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// The BLAKE3 hash of an entry's full canonical encoding, signature included.
    EntryId,
    "entry id"
);
id_type!(
    /// A network (a group of schools) that entries belong to; also names its gossip topic.
    NetworkId,
    "network id"
);
id_type!(
    /// A teacher's ed25519 public key: who wrote an entry, whichever node relayed it.
    AuthorId,
    "author key"
);
id_type!(
    /// A school node's libp2p ed25519 public key, as a member binds it to their membership.
    NodeKey,
    "node key"
);

/// The fewest hex characters of an id a person may give, as with git's short hashes.
pub const ID_PREFIX_CHARS_MIN: usize = 4;

/// Why a string is not an id prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an id or the start of one: expected {ID_PREFIX_CHARS_MIN} to 64 hex characters, got {got:?}")]
pub struct ParseIdPrefixError {
    got: String,
}

/// The start of a 32-byte id as a person types it: 4 to 64 hex characters, either case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPrefix {
    /// The whole bytes the characters give (the last odd character is in `half`).
    bytes: Vec<u8>,
    /// The high nibble of the next byte, for an odd number of characters.
    half: Option<u8>,
    text: String,
}

impl IdPrefix {
    /// The whole bytes every matching id starts with (a store scans from these).
    pub fn whole_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether `id` starts with this prefix.
    pub fn matches(&self, id: &[u8; 32]) -> bool {
        id.starts_with(&self.bytes)
            && self
                .half
                .is_none_or(|nibble| id.get(self.bytes.len()).is_some_and(|b| b >> 4 == nibble))
    }

    /// The prefix as given, in lowercase.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for IdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for IdPrefix {
    type Err = ParseIdPrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        let refused = || ParseIdPrefixError {
            got: s.chars().take(80).collect(),
        };
        let hex_only = text.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex_only || !(ID_PREFIX_CHARS_MIN..=64).contains(&text.len()) {
            return Err(refused());
        }
        let even = text.len() - text.len() % 2;
        let bytes = hex::decode(&text[..even]).map_err(|_| refused())?;
        let half = match text.as_bytes().get(even) {
            Some(c) => Some(hex_value(*c).ok_or_else(refused)?),
            None => None,
        };
        Ok(IdPrefix { bytes, half, text })
    }
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let id = EntryId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<EntryId>().unwrap(), id);
        assert_eq!(id.short(), "abababab");
        let err = "xyz".parse::<NetworkId>().unwrap_err();
        assert!(err.to_string().contains("network id"), "{err}");
        assert!("ab".repeat(31).parse::<EntryId>().is_err());
    }

    #[test]
    fn prefixes_match_the_ids_they_start() {
        let id = EntryId([0xab; 32]);
        for good in ["abab", "ABAB", "ababa", " ababab ", &id.to_hex()] {
            let prefix: IdPrefix = good.parse().unwrap();
            assert!(prefix.matches(id.as_bytes()), "{good}");
        }
        for other in ["abac", "ababb", "bbab"] {
            let prefix: IdPrefix = other.parse().unwrap();
            assert!(!prefix.matches(id.as_bytes()), "{other}");
        }
        let odd: IdPrefix = "ababa".parse().unwrap();
        assert_eq!(odd.whole_bytes(), &[0xab, 0xab]);
        assert_eq!(odd.as_str(), "ababa");
        for bad in ["", "aba", "abcg", "ab ab", &"a".repeat(65), "ééé"] {
            let err = bad.parse::<IdPrefix>().unwrap_err();
            assert!(
                err.to_string().contains("4 to 64 hex characters"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn serde_uses_hex() {
        let id = AuthorId([1; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "01".repeat(32)));
        assert_eq!(serde_json::from_str::<AuthorId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<AuthorId>("\"zz\"").is_err());
    }
}
