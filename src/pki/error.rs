//! The errors of the `pki` module and the [`ErrorKind`] each one maps to.

use std::path::PathBuf;

use crate::error::ErrorKind;

/// Everything that can go wrong in `pki`. Messages name the rule that was
/// broken and are safe to show a client; none carries key material.
// The fields (`reason`, `size`, `limit`, ...) say what they hold.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The input is larger than we read ([`super::MAX_INPUT_BYTES`]).
    #[error("input is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// A bundle holds more certificates than we accept ([`super::MAX_CERTIFICATES`]).
    #[error("bundle holds {count} certificates; the limit is {limit}")]
    TooManyCertificates { count: usize, limit: usize },
    /// The bytes are not a certificate, PEM or PKCS#7 bundle we can read.
    #[error("invalid certificate: {reason}")]
    InvalidCertificate { reason: String },
    /// The certificate does not bind the entry's address or domain.
    #[error("{reason}")]
    NotBound { reason: String },
    /// A signature did not verify (node signatures, records).
    #[error("signature did not verify: {reason}")]
    BadSignature { reason: String },
    /// An API token was refused.
    #[error("invalid token: {reason}")]
    BadToken { reason: String },
    /// Key material that cannot be read or used.
    #[error("invalid key: {reason}")]
    InvalidKey { reason: String },
    /// A request to the demo CA that breaks a rule (bad name, empty window).
    #[error("invalid certificate request: {reason}")]
    InvalidRequest { reason: String },
    /// Reading or writing a key file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A failure inside a cryptographic library that input cannot cause.
    #[error("internal pki failure: {reason}")]
    Internal { reason: String },
}

impl PkiError {
    /// Where this error sits in the crate's error table.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PkiError::TooLarge { .. } | PkiError::TooManyCertificates { .. } => {
                ErrorKind::PayloadTooLarge
            }
            PkiError::InvalidCertificate { .. } => ErrorKind::InvalidCertificate,
            PkiError::NotBound { .. } => ErrorKind::CertificateNotBound,
            PkiError::BadSignature { .. } => ErrorKind::BadSignature,
            PkiError::BadToken { .. } => ErrorKind::Unauthenticated,
            PkiError::InvalidKey { .. } | PkiError::InvalidRequest { .. } => {
                ErrorKind::InvalidInput
            }
            PkiError::Io { .. } | PkiError::Internal { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        PkiError::InvalidCertificate {
            reason: reason.into(),
        }
    }

    pub(crate) fn internal(reason: impl std::fmt::Display) -> Self {
        PkiError::Internal {
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_table() {
        assert_eq!(
            PkiError::NotBound { reason: "x".into() }.kind(),
            ErrorKind::CertificateNotBound
        );
        assert_eq!(
            PkiError::BadToken { reason: "x".into() }.kind(),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            PkiError::TooLarge { size: 2, limit: 1 }.kind(),
            ErrorKind::PayloadTooLarge
        );
        assert_eq!(PkiError::invalid("x").kind(), ErrorKind::InvalidCertificate);
    }
}
