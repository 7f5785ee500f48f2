//! Fair-play policies as the directory sees them: names, subjects, the
//! head of a policy's event chain, and the one rule that decides what an
//! authentic event does to a policy ([`judge`]).
//!
//! Signatures and byte layouts are the `policy` module's business; here an
//! event is already known to be signed by the owner key it names.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Address, DomainError, DomainName, Fingerprint};

/// The longest reason an event may carry, in octets.
pub const MAX_REASON_BYTES: usize = 1024;
/// The longest policy title, in octets.
pub const MAX_TITLE_BYTES: usize = 200;
/// The longest policy description, in octets.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;

/// A policy's name: one DNS label (lower-case letters, digits and inner
/// hyphens, at most 63), so that it can stand in a DNSBL owner name
/// (`<subject>.<policy>.<zone>`). Names are global: the first owner to
/// create a name holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct PolicyId(String);

impl PolicyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PolicyId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| DomainError::InvalidField {
            field: "policy id",
            reason: reason.into(),
        };
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 63 {
            return Err(bad("must be 1 to 63 characters"));
        }
        if !b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        {
            return Err(bad("may hold only a-z, 0-9 and '-'"));
        }
        if b[0] == b'-' || b[b.len() - 1] == b'-' {
            return Err(bad("may not start or end with '-'"));
        }
        Ok(PolicyId(s.to_owned()))
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether listing a subject under the policy vouches for it or warns of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Listed subjects are not to be trusted (a block list).
    DenyList,
    /// Listed subjects are vouched for (an allow list); others are not.
    AllowList,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::DenyList => "deny-list",
            PolicyKind::AllowList => "allow-list",
        }
    }
}

impl FromStr for PolicyKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deny-list" | "deny" => Ok(PolicyKind::DenyList),
            "allow-list" | "allow" => Ok(PolicyKind::AllowList),
            _ => Err(DomainError::InvalidField {
                field: "policy kind",
                reason: "must be deny-list or allow-list".into(),
            }),
        }
    }
}

/// What an event lists or de-lists. Written `cert:<sha256 hex>`,
/// `addr:<address>` or `domain:<domain>`; [`Subject::to_string`] is the
/// canonical form (lower-case hex, lower-cased address and domain).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A certificate, by the SHA-256 of its DER.
    Certificate(Fingerprint),
    /// A mail address.
    Address(Address),
    /// Every address at a domain.
    Domain(DomainName),
}

impl Subject {
    /// The DNS owner label(s) the subject is published under in a policy
    /// zone: for certificates and addresses, unpadded lower-case base32
    /// (RFC 4648 standard alphabet, 52 characters) of the SHA-256 of the
    /// DER certificate or of the lower-cased address; for a domain, the
    /// domain itself (RFC 5782 name-based lists).
    pub fn dns_key(&self) -> String {
        match self {
            Subject::Certificate(f) => base32_label(&f.0),
            Subject::Address(a) => base32_label(&Sha256::digest(a.key().as_bytes())),
            Subject::Domain(d) => d.as_str().to_owned(),
        }
    }
}

/// Unpadded lower-case RFC 4648 base32 of `digest`: what
/// `base32 | tr -d = | tr A-Z a-z` prints for the same octets.
pub fn base32_label(digest: &[u8]) -> String {
    data_encoding::BASE32_NOPAD
        .encode(digest)
        .to_ascii_lowercase()
}

impl FromStr for Subject {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DomainError::InvalidField {
            field: "subject",
            reason: "must be cert:<sha256 hex>, addr:<address> or domain:<domain>".into(),
        };
        let (scheme, value) = s.split_once(':').ok_or_else(bad)?;
        match scheme {
            "cert" => Ok(Subject::Certificate(value.parse()?)),
            "addr" => Ok(Subject::Address(value.parse()?)),
            "domain" => Ok(Subject::Domain(value.parse()?)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Certificate(c) => write!(f, "cert:{c}"),
            Subject::Address(a) => write!(f, "addr:{}", a.key()),
            Subject::Domain(d) => write!(f, "domain:{d}"),
        }
    }
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOp {
    /// Version 1: the policy exists, owned by the event's signer.
    Create {
        kind: PolicyKind,
        title: String,
        description: String,
    },
    /// The subject is listed from now on (until `expires`, when given).
    List {
        subject: Subject,
        reason: String,
        expires: Option<DateTime<Utc>>,
    },
    /// The subject is no longer listed.
    Delist { subject: Subject, reason: String },
}

impl PolicyOp {
    pub fn name(&self) -> &'static str {
        match self {
            PolicyOp::Create { .. } => "create",
            PolicyOp::List { .. } => "list",
            PolicyOp::Delist { .. } => "delist",
        }
    }

    pub fn subject(&self) -> Option<&Subject> {
        match self {
            PolicyOp::Create { .. } => None,
            PolicyOp::List { subject, .. } | PolicyOp::Delist { subject, .. } => Some(subject),
        }
    }

    /// Checks sizes; a too long reason or title is refused, not cut.
    pub fn validate(&self) -> Result<(), DomainError> {
        let too_long = |field: &'static str, max: usize| DomainError::InvalidField {
            field,
            reason: format!("longer than {max} octets"),
        };
        match self {
            PolicyOp::Create {
                title, description, ..
            } => {
                if title.len() > MAX_TITLE_BYTES {
                    return Err(too_long("title", MAX_TITLE_BYTES));
                }
                if description.len() > MAX_DESCRIPTION_BYTES {
                    return Err(too_long("description", MAX_DESCRIPTION_BYTES));
                }
            }
            PolicyOp::List { reason, .. } | PolicyOp::Delist { reason, .. } => {
                if reason.len() > MAX_REASON_BYTES {
                    return Err(too_long("reason", MAX_REASON_BYTES));
                }
            }
        }
        Ok(())
    }
}

/// The facts about an authentic event that decide what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    pub policy: PolicyId,
    /// The owner key (hex) that signed it.
    pub owner: String,
    pub version: u64,
    /// Hash of the previous event (zeros for version 1).
    pub prev: [u8; 32],
    /// Hash of this event.
    pub hash: [u8; 32],
    /// Whether it is a create event.
    pub create: bool,
}

/// Where a policy's chain stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyHead {
    pub owner: String,
    pub version: u64,
    pub hash: [u8; 32],
}

/// What holding an event with the same version already means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Nothing at this version (or no policy).
    Nothing,
    /// This very event is held (applied or as evidence).
    Same,
    /// A different event is applied at this version.
    Other,
}

/// What an authentic event does to its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The next link of the chain: apply it.
    Apply,
    /// Already held: nothing to do (submitting twice is harmless).
    Duplicate,
    /// The owner signed a second, different event for a version already
    /// held: keep it as evidence and flag the policy.
    Equivocation,
    /// Refused, with a stable code and a reason for people.
    Reject(PolicyRejection),
}

/// Why an authentic event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRejection {
    /// `unknown-policy`, `policy-exists`, `wrong-owner`, `version-gap`,
    /// `prev-mismatch`.
    pub code: &'static str,
    pub detail: String,
}

fn reject(code: &'static str, detail: String) -> Verdict {
    Verdict::Reject(PolicyRejection { code, detail })
}

/// Decides what `event` does given the policy's `head` (None: unknown
/// here) and what is `held` at the event's version.
pub fn judge(head: Option<&PolicyHead>, held: Held, event: &EventFacts) -> Verdict {
    if held == Held::Same {
        return Verdict::Duplicate;
    }
    let Some(head) = head else {
        return if event.create {
            Verdict::Apply
        } else {
            reject(
                "unknown-policy",
                format!(
                    "policy {} is not known here; submit its events from version 1",
                    event.policy
                ),
            )
        };
    };
    if event.owner != head.owner {
        let code = if event.create {
            "policy-exists"
        } else {
            "wrong-owner"
        };
        return reject(
            code,
            format!(
                "policy {} belongs to key {}; this event is signed by {}",
                event.policy,
                short(&head.owner),
                short(&event.owner)
            ),
        );
    }
    if event.version <= head.version {
        return if held == Held::Other {
            Verdict::Equivocation
        } else {
            // Below the head but nothing applied there: cannot happen for a
            // consistent chain; treat it as the replay it looks like.
            reject(
                "version-gap",
                format!(
                    "version {} is at or below the head {}",
                    event.version, head.version
                ),
            )
        };
    }
    if event.version > head.version + 1 {
        return reject(
            "version-gap",
            format!(
                "policy {} is at version {}; the next event must be version {}, not {}",
                event.policy,
                head.version,
                head.version + 1,
                event.version
            ),
        );
    }
    if event.prev != head.hash {
        return reject(
            "prev-mismatch",
            format!(
                "version {} does not follow the head of policy {} (previous hash differs)",
                event.version, event.policy
            ),
        );
    }
    Verdict::Apply
}

fn short(key: &str) -> &str {
    &key[..key.len().min(12)]
}

/// How a subject stands under a policy now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub subject: String,
    pub listed: bool,
    /// The version of the event that set this.
    pub version: u64,
    pub reason: String,
    pub expires: Option<DateTime<Utc>>,
}

impl Listing {
    /// Listed, and not past its expiry, at `now`.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.listed && self.expires.is_none_or(|e| e > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: u64, prev: u8, hash: u8, owner: &str) -> EventFacts {
        EventFacts {
            policy: "direct-p1".parse().unwrap(),
            owner: owner.into(),
            version,
            prev: [prev; 32],
            hash: [hash; 32],
            create: version == 1,
        }
    }

    fn head(version: u64, hash: u8) -> PolicyHead {
        PolicyHead {
            owner: "aa".into(),
            version,
            hash: [hash; 32],
        }
    }

    fn code(v: Verdict) -> &'static str {
        match v {
            Verdict::Reject(r) => r.code,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn the_chain_grows_one_link_at_a_time() {
        assert_eq!(
            judge(None, Held::Nothing, &facts(1, 0, 1, "aa")),
            Verdict::Apply
        );
        assert_eq!(
            code(judge(None, Held::Nothing, &facts(2, 1, 2, "aa"))),
            "unknown-policy"
        );
        let h = head(1, 1);
        assert_eq!(
            judge(Some(&h), Held::Nothing, &facts(2, 1, 2, "aa")),
            Verdict::Apply
        );
        assert_eq!(
            code(judge(Some(&h), Held::Nothing, &facts(3, 2, 3, "aa"))),
            "version-gap"
        );
        assert_eq!(
            code(judge(Some(&h), Held::Nothing, &facts(2, 9, 2, "aa"))),
            "prev-mismatch"
        );
        assert_eq!(
            code(judge(Some(&h), Held::Nothing, &facts(2, 1, 2, "bb"))),
            "wrong-owner"
        );
        assert_eq!(
            code(judge(Some(&h), Held::Other, &facts(1, 0, 7, "bb"))),
            "policy-exists"
        );
    }

    #[test]
    fn repeats_are_harmless_and_equivocation_is_evidence() {
        let h = head(3, 3);
        assert_eq!(
            judge(Some(&h), Held::Same, &facts(2, 1, 2, "aa")),
            Verdict::Duplicate
        );
        assert_eq!(
            judge(Some(&h), Held::Other, &facts(2, 1, 9, "aa")),
            Verdict::Equivocation
        );
        assert_eq!(
            judge(Some(&h), Held::Other, &facts(1, 0, 9, "aa")),
            Verdict::Equivocation,
            "a second create by the same owner"
        );
    }

    #[test]
    fn subjects_parse_to_one_canonical_form() {
        let s: Subject = "addr:Alice@Cardio.Example.ORG".parse().unwrap();
        assert_eq!(s.to_string(), "addr:alice@cardio.example.org");
        let d: Subject = "domain:Cardio.Example.org".parse().unwrap();
        assert_eq!(d.to_string(), "domain:cardio.example.org");
        assert_eq!(d.dns_key(), "cardio.example.org");
        let hex = "AB".repeat(32);
        let c: Subject = format!("cert:{hex}").parse().unwrap();
        assert_eq!(c.to_string(), format!("cert:{}", "ab".repeat(32)));
        assert_eq!(c.dns_key().len(), 52);
        for bad in ["", "cert:12", "x:y", "addr:nope", "domain:-x.org", "cert"] {
            assert!(bad.parse::<Subject>().is_err(), "{bad}");
        }
        // The address key hashes the lower-cased address.
        let digest = Sha256::digest(b"alice@cardio.example.org");
        assert_eq!(s.dns_key(), base32_label(&digest));
        // RFC 4648 test vector, lower-cased and unpadded.
        assert_eq!(base32_label(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn policy_ids_are_dns_labels() {
        assert!("direct-p1".parse::<PolicyId>().is_ok());
        for bad in ["", "-a", "a-", "A", "a.b", &"x".repeat(64)] {
            assert!(bad.parse::<PolicyId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn oversized_reasons_are_refused() {
        let op = PolicyOp::List {
            subject: "domain:x.org".parse().unwrap(),
            reason: "r".repeat(MAX_REASON_BYTES + 1),
            expires: None,
        };
        assert!(op.validate().is_err());
    }
}
