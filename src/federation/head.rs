//! The signed head of a log: how long it is, the hash of its last record
//! (the tip of the hash chain) and the Merkle tree root over all of its
//! records (RFC 6962 style, see [`super::merkle`]). It is both the head a
//! parent compares its cursor with and the signed tree head an auditor
//! checks proofs against.
//!
//! ```text
//! head := "ccdir/head/v1" log:key signer:key size:u64 head_hash:hash
//!         root_hash:hash time:time sig:sig
//! ```

use chrono::{DateTime, SubsecRound, Utc};

use super::encoding::{Reader, Writer};
use super::error::FederationError;
use super::types::{Hash, Key};
use crate::pki::{NodeKey, verify_ed25519};

/// The magic that starts a head.
pub const HEAD_MAGIC: &[u8] = b"ccdir/head/v1";

/// What a head states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    /// The log.
    pub log: Key,
    /// The key that signs it (the log's current key).
    pub signer: Key,
    /// Number of records, which is also the last sequence number.
    pub size: u64,
    /// Hash of record `size`; zeros for an empty log.
    pub head_hash: Hash,
    /// Merkle tree root over records 1..=size.
    pub root_hash: Hash,
    /// When the head was signed.
    pub time: DateTime<Utc>,
}

/// A head whose signature verified under its `signer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    /// What it states.
    pub head: TreeHead,
    bytes: Vec<u8>,
}

impl TreeHead {
    fn signed_part(&self) -> Writer {
        let mut w = Writer::new(HEAD_MAGIC);
        w.key(&self.log)
            .key(&self.signer)
            .u64(self.size)
            .hash(&self.head_hash)
            .hash(&self.root_hash)
            .time(self.time);
        w
    }

    /// Signs the head; `key` must be `signer`.
    pub fn sign(mut self, key: &NodeKey) -> Result<SignedHead, FederationError> {
        if Key(key.public_key_bytes()) != self.signer {
            return Err(FederationError::Invalid(
                "a head is signed by the key it names".into(),
            ));
        }
        self.time = self.time.trunc_subsecs(6);
        let mut w = self.signed_part();
        let sig = key.sign(w.as_bytes());
        w.raw(&sig);
        Ok(SignedHead {
            head: self,
            bytes: w.into_bytes(),
        })
    }
}

impl SignedHead {
    /// Decodes a head and verifies its signature under its `signer`.
    pub fn decode(bytes: &[u8]) -> Result<SignedHead, FederationError> {
        let d = FederationError::decode("head");
        let mut r = Reader::new(bytes, HEAD_MAGIC).map_err(d)?;
        let head = TreeHead {
            log: r.key("log").map_err(d)?,
            signer: r.key("signer").map_err(d)?,
            size: r.u64("size").map_err(d)?,
            head_hash: r.hash("head_hash").map_err(d)?,
            root_hash: r.hash("root_hash").map_err(d)?,
            time: r.time("time").map_err(d)?,
        };
        let signed_len = r.position();
        let sig = r.sig("signature").map_err(d)?;
        r.finish("head").map_err(d)?;
        verify_ed25519(&head.signer.0, &bytes[..signed_len], &sig).map_err(|_| {
            FederationError::BadSignature {
                what: format!("head of {}", head.log.short()),
            }
        })?;
        Ok(SignedHead {
            head,
            bytes: bytes.to_vec(),
        })
    }

    /// The canonical bytes, signature included.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signature (the last 64 octets).
    pub fn signature(&self) -> &[u8] {
        &self.bytes[self.bytes.len().saturating_sub(64)..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::testkit::{key, t};

    #[test]
    fn heads_sign_decode_and_refuse_tampering() {
        let k = key(4);
        let h = TreeHead {
            log: Key(k.public_key_bytes()),
            signer: Key(k.public_key_bytes()),
            size: 3,
            head_hash: Hash([1; 32]),
            root_hash: Hash([2; 32]),
            time: t(9),
        }
        .sign(&k)
        .unwrap();
        assert!(h.bytes().starts_with(HEAD_MAGIC));
        assert_eq!(h.bytes().len(), HEAD_MAGIC.len() + 32 * 4 + 8 + 8 + 64);
        assert_eq!(SignedHead::decode(h.bytes()).unwrap(), h);
        let mut b = h.bytes().to_vec();
        b[HEAD_MAGIC.len() + 64 + 7] = 2; // size 3 -> 2
        assert!(matches!(
            SignedHead::decode(&b),
            Err(FederationError::BadSignature { .. })
        ));
        for cut in 0..h.bytes().len() {
            assert!(SignedHead::decode(&h.bytes()[..cut]).is_err());
        }
    }
}
