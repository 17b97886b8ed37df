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
    fn serde_uses_hex() {
        let id = AuthorId([1; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "01".repeat(32)));
        assert_eq!(serde_json::from_str::<AuthorId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<AuthorId>("\"zz\"").is_err());
    }
}
