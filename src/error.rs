//! The one error table. Every module's error enum says which [`ErrorKind`] it
//! is; this table says what each kind means to each protocol: HTTP status and
//! RFC 7807 problem type, LDAP result code, DNS rcode, SMTP reply and enhanced
//! status code. Front ends look answers up here and never invent their own.
//!
//! Problem `type` values are stable URIs of the form
//! `https://ccdir.dev/problems/<slug>`; clients may switch on them.

/// Every kind of failure a client can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is syntactically valid but a field breaks a rule.
    InvalidInput,
    /// The request could not be parsed at all (bad JSON, bad BER, bad MIME).
    Malformed,
    /// A mail address or domain is not valid.
    InvalidAddress,
    /// Bytes that should be a certificate (PEM, DER, PKCS#7) are not one.
    InvalidCertificate,
    /// The certificate does not bind the entry's address or domain.
    CertificateNotBound,
    /// A signature, delegation or chain did not verify.
    BadSignature,
    /// The thing asked for does not exist (or the caller may not know it does).
    NotFound,
    /// The request conflicts with current state (e.g. deleting an organisation that has entries).
    Conflict,
    /// No or invalid credentials.
    Unauthenticated,
    /// Valid credentials that do not allow this.
    Forbidden,
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The body's media type is not one we read.
    UnsupportedMediaType,
    /// None of the media types the client accepts can be produced.
    NotAcceptable,
    /// The client has sent too much too fast.
    RateLimited,
    /// The operation is not offered over this front end.
    Unsupported,
    /// A dependency (database, index) is not available right now.
    Unavailable,
    /// A bug or an unexpected failure; details go to the log only.
    Internal,
}

/// What one [`ErrorKind`] means on each protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodes {
    pub http_status: u16,
    /// Last path segment of the problem type URI.
    pub slug: &'static str,
    pub title: &'static str,
    /// RFC 4511 resultCode.
    pub ldap: u32,
    /// RFC 1035 / 6895 RCODE.
    pub dns: u16,
    /// RFC 5321 reply code and RFC 3463 enhanced status code.
    pub smtp: (u16, &'static str),
}

pub const PROBLEM_BASE: &str = "https://ccdir.dev/problems/";

impl ErrorKind {
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::InvalidInput,
        ErrorKind::Malformed,
        ErrorKind::InvalidAddress,
        ErrorKind::InvalidCertificate,
        ErrorKind::CertificateNotBound,
        ErrorKind::BadSignature,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::PayloadTooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::NotAcceptable,
        ErrorKind::RateLimited,
        ErrorKind::Unsupported,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    pub const fn codes(self) -> ErrorCodes {
        use ErrorKind::*;
        let (http_status, slug, title, ldap, dns, smtp) = match self {
            InvalidInput => (400, "invalid-input", "Invalid input", 21, 1, (501, "5.5.4")),
            Malformed => (400, "malformed", "Malformed request", 2, 1, (500, "5.5.2")),
            InvalidAddress => (
                400,
                "invalid-address",
                "Invalid address",
                34,
                1,
                (553, "5.1.3"),
            ),
            InvalidCertificate => (
                422,
                "invalid-certificate",
                "Invalid certificate",
                21,
                1,
                (554, "5.7.7"),
            ),
            CertificateNotBound => (
                422,
                "certificate-not-bound",
                "Certificate does not bind the address",
                19,
                1,
                (554, "5.7.7"),
            ),
            BadSignature => (
                422,
                "bad-signature",
                "Signature did not verify",
                19,
                1,
                (554, "5.7.7"),
            ),
            NotFound => (404, "not-found", "Not found", 32, 3, (550, "5.1.1")),
            Conflict => (409, "conflict", "Conflict", 68, 5, (550, "5.7.1")),
            Unauthenticated => (
                401,
                "unauthenticated",
                "Authentication required",
                49,
                9,
                (535, "5.7.8"),
            ),
            Forbidden => (403, "forbidden", "Forbidden", 50, 5, (550, "5.7.1")),
            PayloadTooLarge => (
                413,
                "payload-too-large",
                "Payload too large",
                11,
                1,
                (552, "5.3.4"),
            ),
            UnsupportedMediaType => (
                415,
                "unsupported-media-type",
                "Unsupported media type",
                53,
                4,
                (554, "5.6.1"),
            ),
            NotAcceptable => (
                406,
                "not-acceptable",
                "Not acceptable",
                53,
                4,
                (554, "5.6.1"),
            ),
            RateLimited => (
                429,
                "rate-limited",
                "Too many requests",
                51,
                5,
                (450, "4.7.1"),
            ),
            Unsupported => (501, "unsupported", "Not supported", 53, 4, (502, "5.5.1")),
            Unavailable => (
                503,
                "unavailable",
                "Service unavailable",
                52,
                2,
                (421, "4.3.0"),
            ),
            Internal => (500, "internal", "Internal error", 80, 2, (451, "4.3.0")),
        };
        ErrorCodes {
            http_status,
            slug,
            title,
            ldap,
            dns,
            smtp,
        }
    }

    /// The RFC 7807 `type` URI.
    pub fn problem_type(self) -> String {
        format!("{PROBLEM_BASE}{}", self.codes().slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn slugs_are_unique_and_statuses_are_errors() {
        let mut seen = HashSet::new();
        for kind in ErrorKind::ALL {
            let c = kind.codes();
            assert!(seen.insert(c.slug), "duplicate slug {}", c.slug);
            assert!((400..600).contains(&c.http_status));
            assert!(c.ldap != 0, "{kind:?} must not map to LDAP success");
            assert!(c.dns != 0, "{kind:?} must not map to NOERROR");
            assert!((400..600).contains(&c.smtp.0));
        }
    }
}
