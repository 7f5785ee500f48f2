//! Federation tables (migration `m20261202_000001_federation`): this
//! node's log and Merkle nodes, the publisher's state, children with their
//! cursors and mirrored logs, authors, grants, rejections and provenance.
//!
//! Storage knows nothing of signatures or encodings: records are opaque
//! bytes with a few columns beside them, keys are [`NodeId`]s, hashes are
//! 32-byte arrays. Whoever appends to the log passes a closure that is
//! called *inside* the write transaction with the log's tip, so that the
//! sequence number, the previous hash and the Merkle frontier it signs
//! over are the ones that commit (writers are serialised by the change
//! counter; see `seq.rs`).
//!
//! | file | what |
//! |---|---|
//! | `log.rs` | the own log: tip, pages, Merkle nodes, appends (publish, install, rotate) |
//! | `apply.rs` | applying a verified page of a child and its cursor in one transaction |
//! | `peers.rs` | children, their status and errors, mirrored records, rejections |
//! | `state.rs` | named values, grants, authors, provenance |

mod apply;
mod log;
mod peers;
mod state;

use chrono::{DateTime, Utc};
use sea_orm::DeriveIden;

pub use apply::{ApplyItem, ApplyOutcome, ApplyPage, Effect, Relayable};
pub use log::{LogAppend, LogEntry, LogTip, MerkleNode, PublishItem, StoredRecord};
pub use peers::{MirroredRecord, PeerRow, PeerStatus, RejectionRow};
pub use state::{AuthorRow, GrantRow, LogIdentity, ProvenanceRow};

use crate::domain::NodeId;

/// A SHA-256 digest as storage keeps it.
pub type Digest = [u8; 32];

pub(super) fn digest(what: &'static str, bytes: Vec<u8>) -> Result<Digest, super::StorageError> {
    bytes
        .try_into()
        .map_err(|_| super::StorageError::corrupt(what, "not 32 bytes"))
}

pub(super) fn node(text: String) -> NodeId {
    NodeId(text)
}

/// The time as the database keeps it.
pub(super) fn now_ts(t: DateTime<Utc>) -> DateTime<Utc> {
    super::convert::ts(t)
}

// Table and column names, as the migration spells them (snake case of
// the variant; `Table` is the snake case of the enum's name).

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedLog {
    Table,
    Seq,
    Hash,
    Record,
    BodyType,
    Author,
    AuthorSeq,
    Subject,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedMerkle {
    Table,
    Level,
    Idx,
    Hash,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedState {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedPublished {
    Table,
    Key,
    Digest,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedPeers {
    Table,
    Peer,
    Url,
    Name,
    Cursor,
    CursorHash,
    Signer,
    HeadSeen,
    Status,
    StopCode,
    StopDetail,
    LastPullAt,
    LastOkAt,
    LastErrorCode,
    LastError,
    Failures,
    AddedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedMirror {
    Table,
    Peer,
    Seq,
    Hash,
    Record,
    Status,
    Author,
    AuthorSeq,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedAuthors {
    Table,
    Author,
    Signer,
    Lineage,
    LastSeq,
    Via,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedGrants {
    Table,
    Hash,
    Issuer,
    Subject,
    Domains,
    IssuedAt,
    ExpiresAt,
    Grant,
    Own,
    AddedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedRejections {
    Table,
    Id,
    Peer,
    Seq,
    Author,
    AuthorSeq,
    Code,
    Detail,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
pub(super) enum FedProvenance {
    Table,
    Key,
    Author,
    AuthorSeq,
    Via,
    RecordHash,
    Chain,
    At,
}
