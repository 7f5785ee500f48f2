//! Certificates as the directory sees them: parsed facts, how a certificate
//! binds to an entry, and whether the node trusts it. Parsing itself is
//! `pki`'s job; these are the results it hands back.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DomainError;

/// SHA-256 of a certificate's DER encoding. Shown as lower-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Fingerprint {
    type Err = DomainError;
    /// Accepts hex in either case, with or without `:` separators
    /// (the form `openssl x509 -fingerprint -sha256` prints).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DomainError::InvalidField {
            field: "fingerprint",
            reason: "must be 64 hex digits (SHA-256)".into(),
        };
        let clean: String = s.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(clean).map_err(|_| bad())?;
        Ok(Fingerprint(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The key usage bits of RFC 5280 §4.2.1.3 that a certificate asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsage {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    KeyCertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
}

/// Level of assurance read from the certificate policy OIDs (FBCA arc
/// 2.16.840.1.101.3.2.1.3.x and the DirectTrust LoA arc), highest found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Assurance {
    Rudimentary,
    Basic,
    Medium,
    MediumHardware,
    High,
}

impl Assurance {
    pub fn as_str(self) -> &'static str {
        match self {
            Assurance::Rudimentary => "rudimentary",
            Assurance::Basic => "basic",
            Assurance::Medium => "medium",
            Assurance::MediumHardware => "medium-hardware",
            Assurance::High => "high",
        }
    }
}

impl FromStr for Assurance {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "rudimentary" => Assurance::Rudimentary,
            "basic" => Assurance::Basic,
            "medium" => Assurance::Medium,
            "medium-hardware" => Assurance::MediumHardware,
            "high" => Assurance::High,
            _ => {
                return Err(DomainError::InvalidField {
                    field: "assurance",
                    reason: format!("unknown level {s:?}"),
                });
            }
        })
    }
}

/// The facts parsed out of one X.509 certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub fingerprint: Fingerprint,
    #[serde(with = "der_base64")]
    pub der: Vec<u8>,
    /// RFC 4514 string form.
    pub subject: String,
    pub issuer: String,
    /// Serial number as lower-case hex.
    pub serial: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// rfc822Name SANs as written in the certificate.
    pub email_addresses: Vec<String>,
    /// dNSName SANs, lower-cased.
    pub dns_names: Vec<String>,
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usage OIDs in dotted form.
    pub extended_key_usage: Vec<String>,
    /// Certificate policy OIDs in dotted form.
    pub policies: Vec<String>,
    pub assurance: Option<Assurance>,
    /// e.g. `rsa-2048`, `ecdsa-p256`, `ed25519`.
    pub key_algorithm: String,
    /// basicConstraints cA.
    pub is_ca: bool,
}

/// How a certificate is bound to the entry it is attached to (Direct AS §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    /// An rfc822Name SAN equals the entry's mailbox address.
    Address,
    /// A dNSName SAN equals the entry's domain.
    Domain,
}

impl Binding {
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Address => "address",
            Binding::Domain => "domain",
        }
    }
}

impl FromStr for Binding {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "address" => Ok(Binding::Address),
            "domain" => Ok(Binding::Domain),
            _ => Err(DomainError::InvalidField {
                field: "binding",
                reason: format!("unknown binding {s:?}"),
            }),
        }
    }
}

/// Whether the node trusts a certificate, as of the last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustStatus {
    /// Chains to one of the node's trust anchors and is inside its validity period.
    Trusted,
    /// No valid path to a trust anchor (unknown issuer, bad signature, ...).
    Untrusted,
    /// Past its notAfter (or an issuer on the path is).
    Expired,
    /// Before its notBefore.
    NotYetValid,
}

impl TrustStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustStatus::Trusted => "trusted",
            TrustStatus::Untrusted => "untrusted",
            TrustStatus::Expired => "expired",
            TrustStatus::NotYetValid => "not-yet-valid",
        }
    }
}

impl FromStr for TrustStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trusted" => Ok(TrustStatus::Trusted),
            "untrusted" => Ok(TrustStatus::Untrusted),
            "expired" => Ok(TrustStatus::Expired),
            "not-yet-valid" => Ok(TrustStatus::NotYetValid),
            _ => Err(DomainError::InvalidField {
                field: "trust",
                reason: format!("unknown trust status {s:?}"),
            }),
        }
    }
}

/// A trust status with the human-readable reason it was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustVerdict {
    pub status: TrustStatus,
    pub reason: String,
    pub evaluated_at: DateTime<Utc>,
}

impl TrustVerdict {
    /// The verdict as it stands at `now`: a certificate judged trusted
    /// earlier may have expired since, without anything else changing.
    /// Whether [`TrustVerdict::at`] would change this verdict at `now`.
    pub fn changes_at(&self, cert: &Certificate, now: DateTime<Utc>) -> bool {
        match self.status {
            TrustStatus::Trusted | TrustStatus::NotYetValid if now > cert.not_after => true,
            TrustStatus::NotYetValid => now >= cert.not_before,
            _ => false,
        }
    }

    pub fn at(&self, cert: &Certificate, now: DateTime<Utc>) -> TrustVerdict {
        match self.status {
            TrustStatus::Trusted | TrustStatus::NotYetValid if now > cert.not_after => {
                TrustVerdict {
                    status: TrustStatus::Expired,
                    reason: format!("expired at {}", cert.not_after.to_rfc3339()),
                    evaluated_at: now,
                }
            }
            TrustStatus::NotYetValid if now >= cert.not_before => TrustVerdict {
                status: TrustStatus::Untrusted,
                reason: "validity began after the last evaluation; re-evaluate".into(),
                evaluated_at: now,
            },
            _ => self.clone(),
        }
    }
}

/// A certificate attached to an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryCertificate {
    pub certificate: Certificate,
    pub binding: Binding,
    pub trust: TrustVerdict,
    /// Intermediate certificates (DER) supplied with it, leaf-most first;
    /// served in PKCS#7 bundles so clients can build the path.
    #[serde(with = "chain_base64")]
    pub chain: Vec<Vec<u8>>,
}

/// A certificate the node trusts as the root of a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustAnchor {
    pub certificate: Certificate,
    /// Where the anchor came from: `manual`, or a bundle name.
    pub source: String,
    pub added_at: DateTime<Utc>,
}

mod der_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(der: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(der))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

mod chain_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(chain: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(chain.iter().map(|c| STANDARD.encode(c)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parses_openssl_form() {
        let hex = "AB:".repeat(31) + "AB";
        let fp: Fingerprint = hex.parse().unwrap();
        assert_eq!(fp.to_hex(), "ab".repeat(32));
        assert!("abcd".parse::<Fingerprint>().is_err());
    }
}
