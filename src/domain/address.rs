//! Mail addresses and domain names as the directory stores and matches them.
//!
//! RFC 5321 says the domain is case-insensitive and the local part belongs to
//! the receiving host, which may treat it case-sensitively. We keep the local
//! part exactly as given (so it is shown and signed the way its owner wrote
//! it) but match it case-insensitively, as every deployed mail system does.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DomainError;

/// A DNS host name: ASCII, lower-cased, no trailing dot, LDH labels.
/// Internationalised names must be given in A-label (`xn--`) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels from the leftmost to the top-level one.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('.')
    }

    /// True when `self` equals `ancestor` or lies below it
    /// (`cardio.example.org` is within `example.org`, `badexample.org` is not).
    pub fn is_within(&self, ancestor: &DomainName) -> bool {
        self.0 == ancestor.0
            || (self.0.len() > ancestor.0.len()
                && self.0.ends_with(&ancestor.0)
                && self.0.as_bytes()[self.0.len() - ancestor.0.len() - 1] == b'.')
    }
}

impl FromStr for DomainName {
    type Err = DomainError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| DomainError::InvalidDomain {
            input: input.to_owned(),
            reason,
        };
        let name = input.strip_suffix('.').unwrap_or(input);
        if name.is_empty() {
            return Err(err("empty"));
        }
        if !name.is_ascii() {
            return Err(err("non-ASCII; give internationalised names in xn-- form"));
        }
        if name.len() > 253 {
            return Err(err("longer than 253 octets"));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(err("empty label"));
            }
            if label.len() > 63 {
                return Err(err("label longer than 63 octets"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(err("labels may hold only letters, digits and '-'"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(err("a label may not start or end with '-'"));
            }
        }
        Ok(DomainName(name.to_ascii_lowercase()))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox address `local@domain` (RFC 5321 dot-atom local part, ASCII).
///
/// Equality and hashing ignore case in both parts; [`Address::key`] is the
/// form used for lookups and as the storage key.
#[derive(Debug, Clone)]
pub struct Address {
    local: String,
    domain: DomainName,
}

/// Characters RFC 5322 allows in an atom (`atext`).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

impl Address {
    /// The local part as its owner wrote it.
    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &DomainName {
        &self.domain
    }

    /// Lower-cased `local@domain`: the matching and storage key.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_ascii_lowercase(), self.domain)
    }
}

impl FromStr for Address {
    type Err = DomainError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| DomainError::InvalidAddress {
            input: input.to_owned(),
            reason,
        };
        let (local, domain) = input.rsplit_once('@').ok_or_else(|| err("missing '@'"))?;
        if local.is_empty() {
            return Err(err("empty local part"));
        }
        if local.len() > 64 {
            return Err(err("local part longer than 64 octets"));
        }
        if !local.bytes().all(|b| is_atext(b) || b == b'.') {
            return Err(err("local part has a character outside RFC 5322 atext"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(err("local part has a leading, trailing or doubled '.'"));
        }
        let domain = domain
            .parse::<DomainName>()
            .map_err(|_| err("invalid domain"))?;
        if domain.labels().count() < 2 {
            return Err(err("domain must have at least two labels"));
        }
        Ok(Address {
            local: local.to_owned(),
            domain,
        })
    }
}

impl PartialEq for Address {
    fn eq(&self, other: &Self) -> bool {
        self.domain == other.domain && self.local.eq_ignore_ascii_case(&other.local)
    }
}
impl Eq for Address {}

impl Hash for Address {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// What a directory entry is published under: a mailbox for people, services
/// and organisations, or a bare domain for domain entries (the Direct
/// "domain-bound" case). Anything with an `@` is a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DirectoryAddress {
    Mailbox(Address),
    Domain(DomainName),
}

impl DirectoryAddress {
    pub fn domain(&self) -> &DomainName {
        match self {
            DirectoryAddress::Mailbox(a) => a.domain(),
            DirectoryAddress::Domain(d) => d,
        }
    }

    /// The lookup and storage key: lower-cased.
    pub fn key(&self) -> String {
        match self {
            DirectoryAddress::Mailbox(a) => a.key(),
            DirectoryAddress::Domain(d) => d.as_str().to_owned(),
        }
    }

    pub fn as_mailbox(&self) -> Option<&Address> {
        match self {
            DirectoryAddress::Mailbox(a) => Some(a),
            DirectoryAddress::Domain(_) => None,
        }
    }
}

impl FromStr for DirectoryAddress {
    type Err = DomainError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let input = input.trim();
        if input.contains('@') {
            Ok(DirectoryAddress::Mailbox(input.parse()?))
        } else {
            let domain: DomainName = input.parse()?;
            if domain.labels().count() < 2 {
                return Err(DomainError::InvalidDomain {
                    input: input.to_owned(),
                    reason: "a directory domain needs at least two labels",
                });
            }
            Ok(DirectoryAddress::Domain(domain))
        }
    }
}

impl DirectoryAddress {
    /// The address as written: what `to_string` gives, without the
    /// formatting machinery (hot in protocol answers).
    pub fn text(&self) -> String {
        match self {
            DirectoryAddress::Mailbox(a) => {
                let mut out = String::with_capacity(a.local.len() + a.domain.0.len() + 1);
                out.push_str(&a.local);
                out.push('@');
                out.push_str(&a.domain.0);
                out
            }
            DirectoryAddress::Domain(d) => d.0.clone(),
        }
    }
}

impl fmt::Display for DirectoryAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectoryAddress::Mailbox(a) => a.fmt(f),
            DirectoryAddress::Domain(d) => d.fmt(f),
        }
    }
}

macro_rules! serde_via_str {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_via_str!(DomainName, Address, DirectoryAddress);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_the_display_form() {
        for a in ["John.Doe@Example.org", "example.org", "a@b.c"] {
            let address: DirectoryAddress = a.parse().unwrap();
            assert_eq!(address.text(), address.to_string());
        }
    }

    #[test]
    fn domain_is_lower_cased_and_trailing_dot_dropped() {
        let d: DomainName = "Cardio.Example.ORG.".parse().unwrap();
        assert_eq!(d.as_str(), "cardio.example.org");
    }

    #[test]
    fn domain_rejects_bad_labels() {
        for bad in ["", ".", "a..b", "-a.org", "a-.org", "a_b.org", "bücher.de"] {
            assert!(bad.parse::<DomainName>().is_err(), "{bad}");
        }
        assert!(
            format!("{}.org", "a".repeat(64))
                .parse::<DomainName>()
                .is_err()
        );
    }

    #[test]
    fn within_respects_label_boundaries() {
        let org: DomainName = "example.org".parse().unwrap();
        let sub: DomainName = "cardio.example.org".parse().unwrap();
        let other: DomainName = "badexample.org".parse().unwrap();
        assert!(sub.is_within(&org));
        assert!(org.is_within(&org));
        assert!(!other.is_within(&org));
        assert!(!org.is_within(&sub));
    }

    #[test]
    fn address_keeps_local_case_but_matches_without_it() {
        let a: Address = "Alice.Smith@Cardio.Example.org".parse().unwrap();
        let b: Address = "alice.smith@cardio.example.org".parse().unwrap();
        assert_eq!(a.to_string(), "Alice.Smith@cardio.example.org");
        assert_eq!(a, b);
        assert_eq!(a.key(), "alice.smith@cardio.example.org");
    }

    #[test]
    fn address_rejects_what_rfc5321_forbids() {
        for bad in [
            "alice",
            "@example.org",
            "alice@",
            ".alice@example.org",
            "al..ice@example.org",
            "al ice@example.org",
            "alice@localhost",
            "alice@exa_mple.org",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
        assert!(
            format!("{}@example.org", "a".repeat(65))
                .parse::<Address>()
                .is_err()
        );
    }

    #[test]
    fn directory_address_tells_mailbox_from_domain() {
        let m: DirectoryAddress = "bob@example.org".parse().unwrap();
        let d: DirectoryAddress = "Direct.Example.org".parse().unwrap();
        assert!(matches!(m, DirectoryAddress::Mailbox(_)));
        assert_eq!(d.key(), "direct.example.org");
        assert_eq!(m.domain().as_str(), "example.org");
    }
}
