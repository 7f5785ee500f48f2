//! Trust bundles: named sets of trust anchors fetched from a URL or a file
//! (DirectTrust-style `.p7b`, or a signed `.p7m`), refreshed on an interval.
//! The anchors a bundle brings are owned by it: a refresh replaces them all
//! at once, and removing the bundle removes them. Anchors added by hand are
//! never touched by a bundle.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DomainError;

/// Longest bundle name.
pub const MAX_BUNDLE_NAME: usize = 64;
/// Shortest refresh interval: bundles are published daily or weekly, and a
/// tighter loop would only hammer the publisher.
pub const MIN_BUNDLE_REFRESH: Duration = Duration::from_secs(60);

/// A bundle's name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or a
/// digit, stored lower-case. `manual` is reserved (it is the source of
/// anchors added by hand).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BundleName(String);

impl BundleName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `source` an anchor from this bundle carries (`bundle:<name>`).
    pub fn anchor_source(&self) -> String {
        format!("bundle:{}", self.0)
    }
}

impl FromStr for BundleName {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        let bad = |reason: &str| DomainError::InvalidField {
            field: "bundle name",
            reason: reason.to_owned(),
        };
        let name = s.trim().to_ascii_lowercase();
        if name.is_empty() || name.len() > MAX_BUNDLE_NAME {
            return Err(bad("must be 1 to 64 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(bad("may hold only letters, digits, '.', '_' and '-'"));
        }
        if !name.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(bad("must start with a letter or a digit"));
        }
        if name == "manual" {
            return Err(bad("\"manual\" is reserved for anchors added by hand"));
        }
        Ok(BundleName(name))
    }
}

impl TryFrom<String> for BundleName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        s.parse()
    }
}

impl From<BundleName> for String {
    fn from(n: BundleName) -> String {
        n.0
    }
}

impl fmt::Display for BundleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a bundle is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// An `http://` or `https://` URL, fetched with a timeout.
    Url(String),
    /// An absolute path on the node (a bundle an operator or a cron job
    /// drops in place).
    File(PathBuf),
}

impl BundleSource {
    /// A URL source; only http and https are accepted.
    pub fn url(url: &str) -> Result<Self, DomainError> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        match rest {
            Some(host)
                if !host.is_empty()
                    && !host.starts_with('/')
                    && !url.contains(char::is_whitespace) =>
            {
                Ok(BundleSource::Url(url.to_owned()))
            }
            _ => Err(DomainError::InvalidField {
                field: "bundle url",
                reason: "must be an http:// or https:// URL with a host".into(),
            }),
        }
    }

    /// A file source; the path must be absolute (the server may run in
    /// another directory than the command that added it).
    pub fn file(path: impl Into<PathBuf>) -> Result<Self, DomainError> {
        let path = path.into();
        if !path.is_absolute() {
            return Err(DomainError::InvalidField {
                field: "bundle file",
                reason: format!("{} is not an absolute path", path.display()),
            });
        }
        Ok(BundleSource::File(path))
    }

    /// `url` or `file`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            BundleSource::Url(_) => "url",
            BundleSource::File(_) => "file",
        }
    }

    /// The URL or the path, as stored.
    pub fn location(&self) -> String {
        match self {
            BundleSource::Url(u) => u.clone(),
            BundleSource::File(p) => p.display().to_string(),
        }
    }

    /// Rebuilds a source from its stored kind and location.
    pub fn from_parts(kind: &str, location: &str) -> Result<Self, DomainError> {
        match kind {
            "url" => Self::url(location),
            "file" => Self::file(location),
            other => Err(DomainError::InvalidField {
                field: "bundle source kind",
                reason: format!("{other:?} is neither url nor file"),
            }),
        }
    }
}

impl fmt::Display for BundleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleSource::Url(u) => f.write_str(u),
            BundleSource::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// How one refresh of a bundle ended. The strings are stable: they appear
/// in the API, the CLI, logs and metrics, and clients may switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefreshCode {
    /// The bundle was read and its anchors are in force.
    Ok,
    /// HTTP 404 or 410, or the file does not exist: the publisher moved it.
    NotFound,
    /// The source did not answer in time (connect, headers or body).
    Timeout,
    /// The source could not be reached or read (DNS, refused connection,
    /// TLS failure, an HTTP error other than 404, an unreadable file).
    Unreachable,
    /// The bytes are not a bundle: not PKCS#7/PEM/DER, no certificate,
    /// too large, or a certificate that does not parse.
    BadFormat,
    /// A signer is configured, and the bundle is not signed by it (or by a
    /// certificate it issued), or not signed at all.
    BadSigner,
    /// The bundle is signed by the configured signer, but the signature or
    /// the message digest does not match the content (tampered or corrupt).
    SignatureMismatch,
}

impl RefreshCode {
    pub const ALL: [RefreshCode; 7] = [
        RefreshCode::Ok,
        RefreshCode::NotFound,
        RefreshCode::Timeout,
        RefreshCode::Unreachable,
        RefreshCode::BadFormat,
        RefreshCode::BadSigner,
        RefreshCode::SignatureMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefreshCode::Ok => "ok",
            RefreshCode::NotFound => "not-found",
            RefreshCode::Timeout => "timeout",
            RefreshCode::Unreachable => "unreachable",
            RefreshCode::BadFormat => "bad-format",
            RefreshCode::BadSigner => "bad-signer",
            RefreshCode::SignatureMismatch => "signature-mismatch",
        }
    }
}

impl FromStr for RefreshCode {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        RefreshCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| DomainError::InvalidField {
                field: "refresh code",
                reason: format!("{s:?} is not a refresh code"),
            })
    }
}

impl fmt::Display for RefreshCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one refresh attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshStatus {
    pub code: RefreshCode,
    /// For people: what was read, or what went wrong.
    pub detail: String,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
}

/// Who declared a bundle; decides whether a restart may remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleOrigin {
    /// Declared in the configuration file: `serve` adds or updates it at
    /// start and removes it once it is no longer declared.
    Config,
    /// Added at run time (CLI or REST); stays until removed the same way.
    Runtime,
}

impl BundleOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            BundleOrigin::Config => "config",
            BundleOrigin::Runtime => "runtime",
        }
    }
}

impl FromStr for BundleOrigin {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        match s {
            "config" => Ok(BundleOrigin::Config),
            "runtime" => Ok(BundleOrigin::Runtime),
            _ => Err(DomainError::InvalidField {
                field: "bundle origin",
                reason: format!("{s:?} is neither config nor runtime"),
            }),
        }
    }
}

/// What defines a bundle: everything an operator sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleDefinition {
    pub name: BundleName,
    pub source: BundleSource,
    /// DER of the certificate that must sign the bundle (`.p7m`); `None`
    /// accepts unsigned bundles.
    pub signer: Option<Vec<u8>>,
    /// How often the bundle is fetched again.
    pub refresh: Duration,
    pub origin: BundleOrigin,
}

/// A bundle as stored: its definition and how its refreshes went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustBundle {
    pub definition: BundleDefinition,
    pub created_at: DateTime<Utc>,
    /// The last attempt, successful or not; `None` before the first.
    pub last_refresh: Option<RefreshStatus>,
    /// When a refresh last succeeded (and its anchors came into force).
    pub last_success_at: Option<DateTime<Utc>>,
    /// Anchors in force from this bundle (those of the last success).
    pub anchor_count: u64,
}

impl TrustBundle {
    pub fn name(&self) -> &BundleName {
        &self.definition.name
    }

    /// Whether a refresh is due at `now`: never tried, or the interval has
    /// passed since the last attempt; after a failed attempt, `retry` (when
    /// shorter) instead, so that a publisher's outage is noticed ending.
    pub fn refresh_due(&self, now: DateTime<Utc>, retry: Duration) -> bool {
        match &self.last_refresh {
            None => true,
            Some(last) => {
                let wait = if last.code == RefreshCode::Ok {
                    self.definition.refresh
                } else {
                    self.definition.refresh.min(retry)
                };
                let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                last.at
                    .checked_add_signed(wait)
                    .is_none_or(|due| due <= now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_lower_cased() {
        assert_eq!(
            "DirectTrust-Prod".parse::<BundleName>().unwrap().as_str(),
            "directtrust-prod"
        );
        for bad in ["", "-x", "a b", "manual", "MANUAL", "x/y", &"a".repeat(65)] {
            assert!(bad.parse::<BundleName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sources_are_checked() {
        assert!(BundleSource::url("https://bundles.directtrust.org/x.p7b").is_ok());
        assert!(BundleSource::url("http://127.0.0.1:8080/b.p7m").is_ok());
        for bad in ["ftp://x/y", "https://", "https:///x", "file:///etc/x", "x"] {
            assert!(BundleSource::url(bad).is_err(), "{bad}");
        }
        assert!(BundleSource::file("relative/b.p7b").is_err());
        let f = BundleSource::file("/etc/ccdir/b.p7b").unwrap();
        assert_eq!(
            BundleSource::from_parts(f.kind(), &f.location()).unwrap(),
            f
        );
    }

    #[test]
    fn codes_round_trip() {
        for c in RefreshCode::ALL {
            assert_eq!(c.as_str().parse::<RefreshCode>().unwrap(), c);
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
