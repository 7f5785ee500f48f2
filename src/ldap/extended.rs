//! Extended operations (RFC 4511 §4.12): StartTLS (RFC 4513 §3, answered
//! here, the upgrade itself is the transport's) and "Who am I?" (RFC 4532).
//! Any other request name is a protocolError, as RFC 4511 §4.12 says.

use ldap3_proto::proto::{LdapExtendedRequest, LdapExtendedResponse, LdapResult, LdapResultCode};

use super::error::LdapError;
use super::rootdse::{EXTENSION_START_TLS, EXTENSION_WHO_AM_I};
use super::search::error_code;

/// What the session does after answering an extended request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Nothing special.
    Continue,
    /// Start the TLS handshake right after sending the answer.
    StartTls,
}

fn response(
    code: LdapResultCode,
    message: String,
    name: Option<&str>,
    value: Option<Vec<u8>>,
) -> LdapExtendedResponse {
    LdapExtendedResponse {
        res: LdapResult {
            code,
            matcheddn: String::new(),
            message,
            referral: Vec::new(),
        },
        name: name.map(str::to_owned),
        value,
    }
}

/// Answers an extended request. `tls_available`: a certificate is
/// configured; `secure`: the connection already runs TLS; `bound_dn`: the
/// DN the connection is bound as (empty when anonymous).
pub fn extended(
    request: &LdapExtendedRequest,
    tls_available: bool,
    secure: bool,
    bound_dn: &str,
) -> (LdapExtendedResponse, After) {
    let failed = |e: LdapError, name: Option<&str>| {
        (
            response(error_code(&e), e.public_message(), name, None),
            After::Continue,
        )
    };
    match request.name.as_str() {
        EXTENSION_START_TLS => {
            let name = Some(EXTENSION_START_TLS);
            if !tls_available {
                failed(LdapError::NoTls, name)
            } else if secure {
                failed(LdapError::Unsupported("TLS is already established"), name)
            } else {
                (
                    response(LdapResultCode::Success, String::new(), name, None),
                    After::StartTls,
                )
            }
        }
        EXTENSION_WHO_AM_I => {
            let authzid = if bound_dn.is_empty() {
                Vec::new()
            } else {
                format!("dn:{bound_dn}").into_bytes()
            };
            (
                response(LdapResultCode::Success, String::new(), None, Some(authzid)),
                After::Continue,
            )
        }
        _ => failed(
            LdapError::Protocol(format!("unknown extended operation {}", request.name)),
            None,
        ),
    }
}
