//! What can go wrong answering an LDAP request, and where each failure
//! sits in the one error table ([`crate::error`]). The result code a client
//! sees always comes from that table; the text is the public detail only.

use crate::core::CoreError;
use crate::error::ErrorKind;

/// A failed LDAP operation.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// The request is not valid LDAP (bad BER, a bad field, wrong version).
    #[error("{0}")]
    Protocol(String),
    /// A DN that is not an RFC 4514 distinguished name.
    #[error("invalid DN: {0}")]
    InvalidDn(String),
    /// The base object of a search does not exist (or is not visible).
    #[error("no such object")]
    NoSuchObject,
    /// Writes, SASL, Compare and the like: not offered over LDAP.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A bind with wrong credentials (or an unknown user).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failed binds from this client address.
    #[error("too many failed binds; try again later")]
    TooManyFailures,
    /// StartTLS or LDAPS without a configured certificate.
    #[error("TLS is not configured on this server")]
    NoTls,
    /// A paged-results cookie that is not ours, expired, or for another search.
    #[error("the paged results cookie is invalid or expired")]
    BadCookie,
    /// The directory failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl LdapError {
    /// The error-table kind this failure is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LdapError::Protocol(_) => ErrorKind::Malformed,
            LdapError::InvalidDn(_) => ErrorKind::InvalidAddress,
            LdapError::NoSuchObject => ErrorKind::NotFound,
            // OpenLDAP answers an unusable cookie with unwillingToPerform too.
            LdapError::Unsupported(_) | LdapError::BadCookie => ErrorKind::Unsupported,
            LdapError::InvalidCredentials => ErrorKind::Unauthenticated,
            LdapError::TooManyFailures => ErrorKind::RateLimited,
            LdapError::NoTls => ErrorKind::Unavailable,
            LdapError::Core(e) => e.kind(),
        }
    }

    /// The RFC 4511 result code, from the error table.
    pub fn result_code(&self) -> u32 {
        self.kind().codes().ldap
    }

    /// The diagnostic message a client may read.
    pub fn public_message(&self) -> String {
        match self {
            LdapError::Core(e) => {
                if e.kind().codes().http_status >= 500 {
                    tracing::error!(error = %e, "LDAP request failed");
                }
                e.public_detail()
            }
            other => other.to_string(),
        }
    }
}

/// Why the server could not start its LDAP listeners.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the TLS certificate or key {path}: {reason}")]
    TlsFiles { path: String, reason: String },
    #[error("the TLS certificate and key do not make a server configuration: {0}")]
    TlsConfig(String),
    #[error("the base DN {0:?} is not a distinguished name")]
    BaseDn(String),
}
