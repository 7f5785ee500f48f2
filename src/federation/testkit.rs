//! Helpers for the federation unit tests: deterministic keys and times, a
//! sample entry, and a little log writer that can also misbehave.

use chrono::{DateTime, TimeZone, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::head::{SignedHead, TreeHead};
use super::merkle::{Frontier, leaf_hash};
use super::record::{Body, Record, RecordHeader};
use super::types::{Hash, Key};
use crate::domain::{Entry, EntryKind, Visibility};
use crate::pki::NodeKey;

/// The key made from seed `n`.
pub fn key(n: u64) -> NodeKey {
    NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(n))
}

/// 2026-01-01T00:00:00Z plus `s` seconds.
pub fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
}

/// A valid person entry published by `author`.
pub fn sample_entry(author: &Key, address: &str) -> Entry {
    Entry {
        address: address.parse().unwrap(),
        kind: EntryKind::Person,
        display_name: "Alice Smith".into(),
        given_name: Some("Alice".into()),
        surname: Some("Smith".into()),
        organisation: Some("cardio".parse().unwrap()),
        unit: None,
        title: Some("MD".into()),
        profession: Some("Physician".into()),
        specialty: Some("Cardiology".into()),
        identifiers: vec![crate::domain::Identifier {
            scheme: "NPI".into(),
            value: "1234567893".into(),
        }],
        locality: Some("Boston".into()),
        region: Some("MA".into()),
        country: Some("US".into()),
        postal_code: None,
        phone: None,
        visibility: Visibility::Public,
        origin: author.node_id(),
        version: 3,
        updated_at: t(7),
    }
}

/// A log being written, which a test may make misbehave.
pub struct Log {
    id: Key,
    signing: NodeKey,
    seq: u64,
    prev: Hash,
    frontier: Frontier,
}

impl Log {
    /// An empty log of `key`.
    pub fn new(key: NodeKey) -> Log {
        Log {
            id: Key(key.public_key_bytes()),
            signing: key,
            seq: 0,
            prev: Hash::ZERO,
            frontier: Frontier::empty(),
        }
    }

    /// The log identity.
    pub fn id(&self) -> Key {
        self.id
    }

    /// Appends a record with `body`.
    pub fn append(&mut self, body: &Body) -> Record {
        let (t_, payload) = body.encode();
        self.seq += 1;
        let r = Record::sign(
            RecordHeader {
                log: self.id,
                signer: Key(self.signing.public_key_bytes()),
                seq: self.seq,
                prev: self.prev,
                time: t(self.seq as i64),
            },
            t_,
            &payload,
            &self.signing,
        )
        .unwrap();
        self.prev = r.hash();
        self.frontier.push(leaf_hash(r.bytes()));
        r
    }

    /// Appends an entry removal.
    pub fn removal(&mut self, address: &str) -> Record {
        self.append(&Body::EntryRemoval(address.parse().unwrap()))
    }

    /// Appends a key rotation and signs with `new` from then on.
    pub fn rotate(&mut self, new: NodeKey) -> Record {
        let r = self.append(&Body::KeyRotation(Key(new.public_key_bytes())));
        self.signing = new;
        r
    }

    /// Signs with `key` from now on, without saying so in the log.
    pub fn sign_with(&mut self, key: NodeKey) {
        self.signing = key;
    }

    /// Makes the next record link to `prev` instead of the last record.
    pub fn set_prev(&mut self, prev: Hash) {
        self.prev = prev;
    }

    /// The signed head.
    pub fn head(&self) -> SignedHead {
        TreeHead {
            log: self.id,
            signer: Key(self.signing.public_key_bytes()),
            size: self.seq,
            head_hash: if self.seq == 0 { Hash::ZERO } else { self.prev },
            root_hash: self.frontier.root(),
            time: t(1000),
        }
        .sign(&self.signing)
        .unwrap()
    }
}
