//! What can go wrong in federation: errors of the pure functions
//! ([`FederationError`]), and the reasons a parent gives for refusing what a
//! child served ([`Rejection`], with a stable [`RejectCode`]).

use std::fmt;

use crate::error::ErrorKind;

/// Where and why bytes failed to decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}: {reason}")]
pub struct DecodeError {
    /// Offset of the field that failed.
    pub at: usize,
    /// The field being read.
    pub what: &'static str,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl DecodeError {
    /// A decode error at `at`.
    pub fn new(at: usize, what: &'static str, reason: &'static str) -> Self {
        DecodeError { at, what, reason }
    }
}

/// A failure of the pure federation functions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    /// Bytes that are not a canonical encoding of the object expected.
    #[error("malformed {object}: {source}")]
    Decode {
        /// Which object: record, grant, head, body.
        object: &'static str,
        /// Where it failed.
        #[source]
        source: DecodeError,
    },
    /// A signature that does not verify under the key it names.
    #[error("bad signature on {what}")]
    BadSignature {
        /// Which object.
        what: String,
    },
    /// A key or hash that is not 64 hex digits.
    #[error("invalid {what}")]
    InvalidHex {
        /// What was being read.
        what: &'static str,
    },
    /// A value that decodes but breaks a rule (a grant with no domains,
    /// domains out of order, an entry that fails validation, ...).
    #[error("{0}")]
    Invalid(String),
    /// A Merkle proof asked for leaves the tree does not have.
    #[error("{0}")]
    Proof(String),
}

impl FederationError {
    /// The kind a client is told about.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FederationError::Decode { .. } => ErrorKind::Malformed,
            FederationError::BadSignature { .. } => ErrorKind::BadSignature,
            FederationError::InvalidHex { .. }
            | FederationError::Invalid(_)
            | FederationError::Proof(_) => ErrorKind::InvalidInput,
        }
    }

    pub(crate) fn decode(object: &'static str) -> impl Fn(DecodeError) -> FederationError + Copy {
        move |source| FederationError::Decode { object, source }
    }
}

/// What a parent does about a [`Rejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The child's log contradicts what we hold (fork, rollback, broken
    /// chain): stop pulling it until an operator looks.
    StopChild,
    /// This response cannot be trusted or read (forged signature, bad
    /// page, timeout): apply nothing, keep the cursor, retry with backoff.
    RejectPage,
    /// The record is authentic but may not take effect (outside the
    /// delegation, unbound certificate, ...): it is mirrored to keep the
    /// chain whole, quarantined, and the rest of the page applies.
    Quarantine,
}

/// Why something a child served was refused. The slug is stable: tests,
/// scripts and `ccdir federation status --json` may switch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// A record, relayed record or head whose signature does not verify.
    BadSignature,
    /// A record signed by a key that is not the author's current key.
    WrongSigner,
    /// A record or head of another log than the child's.
    WrongLog,
    /// Sequence numbers that do not follow each other.
    OutOfOrder,
    /// A record we already hold (or, relayed, an author's sequence number
    /// at or below one already applied).
    Replayed,
    /// A record whose `prev` is not the hash of the record before it.
    BrokenChain,
    /// A different record at a sequence number we already hold.
    Fork,
    /// The child's head is behind what we already hold.
    Rollback,
    /// The response is not a page (bad JSON, bad base64, bad record bytes).
    MalformedPage,
    /// The page ends before it is complete.
    TruncatedPage,
    /// More bytes or records than asked for.
    OversizedPage,
    /// The child did not answer in time.
    Timeout,
    /// The child could not be reached, or answered with an error status.
    Unreachable,
    /// No delegation from the pinned root covers the record's domain for its author.
    OutOfDelegation,
    /// The only delegations that would cover it have expired.
    DelegationExpired,
    /// A certificate that does not bind the entry's address or domain.
    CertificateNotBound,
    /// Bytes that are not a certificate.
    InvalidCertificate,
    /// An authentic record whose content breaks a rule of the directory.
    InvalidRecord,
    /// A record of a body type this node does not know (newer software).
    UnknownBody,
    /// The address or organisation is published by another node.
    OwnedElsewhere,
}

impl RejectCode {
    /// Every code, for documentation and tests.
    pub const ALL: [RejectCode; 20] = [
        RejectCode::BadSignature,
        RejectCode::WrongSigner,
        RejectCode::WrongLog,
        RejectCode::OutOfOrder,
        RejectCode::Replayed,
        RejectCode::BrokenChain,
        RejectCode::Fork,
        RejectCode::Rollback,
        RejectCode::MalformedPage,
        RejectCode::TruncatedPage,
        RejectCode::OversizedPage,
        RejectCode::Timeout,
        RejectCode::Unreachable,
        RejectCode::OutOfDelegation,
        RejectCode::DelegationExpired,
        RejectCode::CertificateNotBound,
        RejectCode::InvalidCertificate,
        RejectCode::InvalidRecord,
        RejectCode::UnknownBody,
        RejectCode::OwnedElsewhere,
    ];

    /// The stable slug.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::BadSignature => "bad-signature",
            RejectCode::WrongSigner => "wrong-signer",
            RejectCode::WrongLog => "wrong-log",
            RejectCode::OutOfOrder => "out-of-order",
            RejectCode::Replayed => "replayed",
            RejectCode::BrokenChain => "broken-chain",
            RejectCode::Fork => "fork",
            RejectCode::Rollback => "rollback",
            RejectCode::MalformedPage => "malformed-page",
            RejectCode::TruncatedPage => "truncated-page",
            RejectCode::OversizedPage => "oversized-page",
            RejectCode::Timeout => "timeout",
            RejectCode::Unreachable => "unreachable",
            RejectCode::OutOfDelegation => "out-of-delegation",
            RejectCode::DelegationExpired => "delegation-expired",
            RejectCode::CertificateNotBound => "certificate-not-bound",
            RejectCode::InvalidCertificate => "invalid-certificate",
            RejectCode::InvalidRecord => "invalid-record",
            RejectCode::UnknownBody => "unknown-body",
            RejectCode::OwnedElsewhere => "owned-elsewhere",
        }
    }

    /// The code with this slug.
    pub fn parse(s: &str) -> Option<RejectCode> {
        RejectCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// What a parent does about it.
    pub fn severity(self) -> Severity {
        match self {
            RejectCode::Fork | RejectCode::Rollback | RejectCode::BrokenChain => {
                Severity::StopChild
            }
            RejectCode::BadSignature
            | RejectCode::WrongSigner
            | RejectCode::WrongLog
            | RejectCode::OutOfOrder
            | RejectCode::Replayed
            | RejectCode::MalformedPage
            | RejectCode::TruncatedPage
            | RejectCode::OversizedPage
            | RejectCode::Timeout
            | RejectCode::Unreachable => Severity::RejectPage,
            RejectCode::OutOfDelegation
            | RejectCode::DelegationExpired
            | RejectCode::CertificateNotBound
            | RejectCode::InvalidCertificate
            | RejectCode::InvalidRecord
            | RejectCode::UnknownBody
            | RejectCode::OwnedElsewhere => Severity::Quarantine,
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal with its reason: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The stable code.
    pub code: RejectCode,
    /// What exactly was wrong (sequence numbers, keys, domains).
    pub detail: String,
}

impl Rejection {
    /// A rejection with `code` and `detail`.
    pub fn new(code: RejectCode, detail: impl Into<String>) -> Self {
        Rejection {
            code,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for c in RejectCode::ALL {
            assert!(seen.insert(c.as_str()));
            assert_eq!(RejectCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(RejectCode::parse("nope"), None);
    }
}
