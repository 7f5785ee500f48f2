//! How a node signs the webhook deliveries of policy feeds, so that a
//! receiver can tell them from forgeries with the node's public key alone.
//!
//! ```text
//! signed := "ccdir/webhook/v1" timestamp:i64 body
//! Ccdir-Signature: ed25519=<base64 of the Ed25519 signature over `signed`>
//! Ccdir-Timestamp: <timestamp, Unix seconds>
//! Ccdir-Node: <the node's key, hex>
//! ```
//!
//! The timestamp lets a receiver refuse old deliveries replayed at it; the
//! `Idempotency-Key` header (the same on every retry of one event) lets it
//! drop the repeats that at-least-once delivery brings.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::pki::{NodeKey, verify_ed25519};

/// The magic that starts the signed octets.
pub const WEBHOOK_MAGIC: &[u8] = b"ccdir/webhook/v1";
/// Header names.
pub const SIGNATURE_HEADER: &str = "Ccdir-Signature";
pub const TIMESTAMP_HEADER: &str = "Ccdir-Timestamp";
pub const NODE_HEADER: &str = "Ccdir-Node";

fn signed(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(WEBHOOK_MAGIC.len() + 8 + body.len());
    m.extend_from_slice(WEBHOOK_MAGIC);
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// The `Ccdir-Signature` value for `body` sent at `timestamp`.
pub fn sign_delivery(key: &NodeKey, timestamp: i64, body: &[u8]) -> String {
    format!(
        "ed25519={}",
        STANDARD.encode(key.sign(&signed(timestamp, body)))
    )
}

/// Checks a delivery's signature header against the node key `node`.
pub fn verify_delivery(node: &[u8; 32], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(b64) = header.strip_prefix("ed25519=") else {
        return false;
    };
    let Ok(sig) = STANDARD.decode(b64.trim()) else {
        return false;
    };
    verify_ed25519(node, &signed(timestamp, body), &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testkit::owner;

    #[test]
    fn deliveries_verify_only_as_sent() {
        let k = owner(3);
        let h = sign_delivery(&k, 1_800_000_000, b"{\"x\":1}");
        let pk = k.public_key_bytes();
        assert!(verify_delivery(&pk, 1_800_000_000, b"{\"x\":1}", &h));
        assert!(!verify_delivery(&pk, 1_800_000_001, b"{\"x\":1}", &h));
        assert!(!verify_delivery(&pk, 1_800_000_000, b"{\"x\":2}", &h));
        assert!(!verify_delivery(
            &owner(4).public_key_bytes(),
            1_800_000_000,
            b"{\"x\":1}",
            &h
        ));
        assert!(!verify_delivery(&pk, 1_800_000_000, b"{\"x\":1}", "nope"));
    }
}
