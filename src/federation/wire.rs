//! The JSON shapes of `/federation/v1/`: what a node serves and what a
//! parent or auditor reads. In every shape the base64 `encoded`/`record`
//! field is authoritative (it is what the signature covers); the other
//! fields repeat its content for people and are ignored when verifying.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::error::FederationError;
use super::head::SignedHead;
use super::types::Hash;

/// A signed head (`GET /federation/v1/head`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadJson {
    /// The log (hex key).
    pub log: String,
    /// The key that signed the head (hex).
    pub signer: String,
    /// Number of records.
    pub size: u64,
    /// Hash of the last record (hex).
    pub head_hash: String,
    /// Merkle root over all records (hex).
    pub root_hash: String,
    /// When it was signed (RFC 3339, microseconds).
    pub time: String,
    /// Base64 of the canonical signed head: the part that counts.
    pub encoded: String,
}

impl HeadJson {
    /// The JSON form of `head`.
    pub fn new(head: &SignedHead) -> HeadJson {
        let h = &head.head;
        HeadJson {
            log: h.log.to_hex(),
            signer: h.signer.to_hex(),
            size: h.size,
            head_hash: h.head_hash.to_hex(),
            root_hash: h.root_hash.to_hex(),
            time: h.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            encoded: STANDARD.encode(head.bytes()),
        }
    }

    /// Decodes `encoded` and verifies its signature.
    pub fn verify(&self) -> Result<SignedHead, FederationError> {
        let bytes = STANDARD
            .decode(self.encoded.trim())
            .map_err(|_| FederationError::Invalid("the head is not base64".into()))?;
        SignedHead::decode(&bytes)
    }
}

/// One record of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordJson {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash (hex).
    pub hash: String,
    /// Base64 of the canonical record: the part that counts.
    pub record: String,
}

impl RecordJson {
    /// The JSON form of a stored record.
    pub fn new(seq: u64, hash: &Hash, bytes: &[u8]) -> RecordJson {
        RecordJson {
            seq,
            hash: hash.to_hex(),
            record: STANDARD.encode(bytes),
        }
    }

    /// The record bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, FederationError> {
        STANDARD
            .decode(self.record.trim())
            .map_err(|_| FederationError::Invalid(format!("record {} is not base64", self.seq)))
    }
}

/// A page of a log (`GET /federation/v1/log?after=&limit=`): the records
/// after `after`, and the head as it stood when the page was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageJson {
    /// The log (hex key).
    pub log: String,
    /// The signed head, at least as long as the records served.
    pub head: HeadJson,
    /// Records in order.
    pub records: Vec<RecordJson>,
}

/// An inclusion proof (`GET /federation/v1/proof/inclusion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionJson {
    /// The record's sequence number (leaf index + 1).
    pub seq: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// `SHA-256(0x00 || record)` (hex).
    pub leaf_hash: String,
    /// The audit path, innermost first (hex).
    pub path: Vec<String>,
}

/// A consistency proof (`GET /federation/v1/proof/consistency`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyJson {
    /// The smaller tree size.
    pub first: u64,
    /// The larger tree size.
    pub second: u64,
    /// The proof (hex).
    pub path: Vec<String>,
}

/// The body of `POST /federation/v1/notify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyJson {
    /// The log that has new records (hex key).
    pub log: String,
}

/// Parses a list of hex hashes.
pub fn hashes(list: &[String]) -> Result<Vec<Hash>, FederationError> {
    list.iter().map(|h| h.parse()).collect()
}
