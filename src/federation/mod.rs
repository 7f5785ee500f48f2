//! Federation: signed publication logs, delegation from a pinned root, and
//! the checks a parent makes before anything a child published takes
//! effect. Pure functions over bytes and domain values: storage and the
//! network are the core's business (`core/federation*`).
//!
//! | file | what |
//! |---|---|
//! | `encoding.rs` | the canonical binary encoding every signed object uses |
//! | `types.rs` | [`Key`] and [`Hash`] |
//! | `record.rs` | log records and their bodies ([`Record`], [`Body`]) |
//! | `grant.rs` | delegation grants, chains and the coverage check ([`GrantBook`]) |
//! | `head.rs` | the signed head / signed tree head ([`SignedHead`]) |
//! | `merkle.rs` | the RFC 6962 Merkle tree over a log, proofs and their checks |
//! | `page.rs` | checking a child's page against our cursor: forks, rollbacks, replays |
//! | `authority.rs` | whether an authentic record may take effect ([`Evaluator`]) |
//! | `wire.rs` | the JSON shapes of `/federation/v1/` |
//!
//! The byte layouts are specified in `docs/federation.md`.

#![warn(missing_docs)]

pub mod authority;
pub mod encoding;
mod error;
pub mod grant;
pub mod head;
pub mod merkle;
pub mod page;
pub mod record;
#[cfg(test)]
pub(crate) mod testkit;
mod types;
pub mod wire;

pub use authority::{Accepted, AuthorState, Evaluation, Evaluator};
pub use error::{DecodeError, FederationError, RejectCode, Rejection, Severity};
pub use grant::{DelegationFile, Grant, GrantBook, SignedGrant, validate_chain};
pub use head::{SignedHead, TreeHead};
pub use page::{Cursor, VerifiedPage, decode_record, verify_decoded, verify_page};
pub use record::{Body, CertificateMaterial, EntryPublication, Record, RecordHeader, body_type};
pub use types::{Hash, Key, sha256};
