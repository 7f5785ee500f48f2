//! Test helpers: owner keys and a policy chain that signs its next event.

use chrono::{TimeZone, Utc};

use super::event::{PolicyEvent, SignedEvent};
use crate::domain::{PolicyKind, PolicyOp};
use crate::federation::{Hash, Key};
use crate::pki::NodeKey;

/// A deterministic owner key.
pub fn owner(n: u8) -> NodeKey {
    use rand::SeedableRng;
    NodeKey::generate(&mut rand_chacha::ChaCha20Rng::from_seed([n; 32]))
}

/// A policy's chain as its owner keeps it.
pub struct Chain {
    pub key: NodeKey,
    pub policy: String,
    pub version: u64,
    pub head: Hash,
}

impl Chain {
    pub fn new(key: NodeKey, policy: &str) -> Chain {
        Chain {
            key,
            policy: policy.into(),
            version: 0,
            head: Hash::ZERO,
        }
    }

    /// Signs `op` as the next event (without moving the chain when `fork`).
    pub fn sign(&mut self, op: PolicyOp) -> SignedEvent {
        let e = PolicyEvent {
            policy: self.policy.parse().unwrap(),
            owner: Key(self.key.public_key_bytes()),
            version: self.version + 1,
            prev: self.head,
            time: Utc
                .timestamp_opt(1_800_000_000 + self.version as i64, 0)
                .unwrap(),
            op,
        }
        .sign(&self.key)
        .unwrap();
        self.version += 1;
        self.head = e.hash();
        e
    }

    pub fn create(&mut self) -> SignedEvent {
        self.sign(PolicyOp::Create {
            kind: PolicyKind::DenyList,
            title: "Test policy".into(),
            description: "for tests".into(),
        })
    }

    pub fn list(&mut self, subject: &str, reason: &str) -> SignedEvent {
        self.sign(PolicyOp::List {
            subject: subject.parse().unwrap(),
            reason: reason.into(),
            expires: None,
        })
    }

    pub fn delist(&mut self, subject: &str, reason: &str) -> SignedEvent {
        self.sign(PolicyOp::Delist {
            subject: subject.parse().unwrap(),
            reason: reason.into(),
        })
    }
}
