//! Keys and hashes as federation speaks of them: 32 raw octets, shown and
//! written in JSON as lower-case hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::error::FederationError;
use crate::domain::NodeId;

/// An Ed25519 public key: a node's identity, or one of the keys it has
/// rotated to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

fn parse_hex32(what: &'static str, s: &str) -> Result<[u8; 32], FederationError> {
    let bytes = hex::decode(s.trim()).map_err(|_| FederationError::InvalidHex { what })?;
    bytes
        .try_into()
        .map_err(|_| FederationError::InvalidHex { what })
}

impl Key {
    /// Lower-case hex, the form of a [`NodeId`].
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The node id this key stands for.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.to_hex())
    }

    /// The key a node id names.
    pub fn from_node_id(id: &NodeId) -> Result<Key, FederationError> {
        id.0.parse()
    }

    /// A short form for logs and tables: the first 12 hex digits.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_owned()
    }
}

impl Hash {
    /// The all-zero hash: the `prev` of a log's first record.
    pub const ZERO: Hash = Hash([0; 32]);

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Key {
    type Err = FederationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32("key (64 hex digits)", s).map(Key)
    }
}

impl FromStr for Hash {
    type Err = FederationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32("hash (64 hex digits)", s).map(Hash)
    }
}

macro_rules! hex_traits {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), hex::encode(self.0))
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_traits!(Key);
hex_traits!(Hash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let k: Key = "ab".repeat(32).parse().unwrap();
        assert_eq!(k.to_hex(), "ab".repeat(32));
        assert_eq!(k.node_id().0, "ab".repeat(32));
        assert!("ab".parse::<Key>().is_err());
        assert!("zz".repeat(32).parse::<Hash>().is_err());
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<Key>(&json).unwrap(), k);
    }

    #[test]
    fn sha256_of_nothing_is_the_known_value() {
        assert_eq!(
            sha256(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha256_parts(&[b"a", b"bc"]), sha256(b"abc"));
    }
}
