//! X.509 and the node's own keys: reading certificates in every wrapping they
//! arrive in, binding them to directory entries, validating chains against
//! trust anchors, writing PKCS#7 bundles and PEM, a small CA for demo data and
//! benchmarks, the node's Ed25519 identity and the API tokens it signs.
//!
//! | file | what |
//! |---|---|
//! | `parse.rs` | format detection (PEM / DER / PKCS#7 DER+BER) and [`parse_certificate_der`] |
//! | `bind.rs` | [`bind`]: does a certificate belong to an address or domain entry |
//! | `chain.rs` | [`TrustStore`]: path building and signature checks to the anchors |
//! | `pkcs7.rs`, `pem.rs` | [`certs_only_pkcs7`], [`to_pem`] and their readers |
//! | `bundle.rs`, `signed.rs` | [`read_bundle`]: trust bundles, plain or CMS-signed, and the SignedData check |
//! | `assurance.rs` | policy OIDs → [`Assurance`](crate::domain::Assurance) |
//! | `ca.rs` | [`ca::CertAuthority`] for demo data, tests and benchmarks |
//! | `node_key.rs` | [`NodeKey`]: the node's Ed25519 identity, [`verify_ed25519`] |
//! | `token.rs` | [`token`]: EdDSA JWT API tokens |
//! | `asn1.rs`, `view.rs`, `verify.rs`, `rng.rs` | internals: TLV walking, raw certificate views, signature algorithms, RNG bridge |
//!
//! Only [`crate::domain`] and [`crate::error`] are used from the rest of the crate.

#![warn(missing_docs)]

mod asn1;
mod assurance;
#[cfg(test)]
mod bench;
mod bind;
mod bundle;
pub mod ca;
mod chain;
mod error;
mod names;
mod node_key;
#[cfg(test)]
mod openssl_tests;
mod parse;
mod pem;
mod pkcs7;
mod rng;
mod signed;
#[cfg(test)]
mod testkit;
pub mod token;
mod verify;
mod view;

pub use assurance::{assurance_of_policies, assurance_of_policy};
pub use bind::bind;
pub use bundle::{
    BundleContents, BundleError, MAX_BUNDLE_BYTES, read_bundle, read_signer_certificate,
};
pub use chain::{MAX_PATH_LEN, TrustStore};
pub use error::PkiError;
pub use node_key::{NodeKey, permissions_too_open, verify_ed25519};
pub use parse::{parse_certificate_der, parse_certificates};
pub use pem::to_pem;
pub use pkcs7::certs_only_pkcs7;

/// Largest input [`parse_certificates`] reads (1 MiB).
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// Most certificates one bundle may hold.
pub const MAX_CERTIFICATES: usize = 500;
