//! Organisations: the units that own entries, users and domains.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::{DomainError, DomainName, NodeId};

/// An organisation's stable identifier: a slug of `a-z`, `0-9` and `-`,
/// 1 to 63 characters, usable as a DNS label and an LDAP RDN value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrgId(String);

impl OrgId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OrgId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(OrgId(s.to_owned()))
        } else {
            Err(DomainError::InvalidField {
                field: "organisation id",
                reason: format!(
                    "{s:?} must be 1-63 of a-z, 0-9 and '-', not starting or ending with '-'"
                ),
            })
        }
    }
}

impl<'de> Deserialize<'de> for OrgId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: OrgId,
    pub name: String,
    /// Mail domains the organisation speaks for. Entries of the organisation
    /// must have their address in (or below) one of these, when any is set.
    pub domains: Vec<DomainName>,
    pub description: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub origin: NodeId,
    pub updated_at: DateTime<Utc>,
}

impl Organisation {
    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |field, reason: &str| {
            Err(DomainError::InvalidField {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty");
        }
        if self.name.len() > 256 || self.name.chars().any(char::is_control) {
            return bad("name", "longer than 256 octets or has control characters");
        }
        if self.domains.len() > 64 {
            return bad("domains", "at most 64");
        }
        if let Some(c) = &self.country
            && (c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return bad(
                "country",
                "must be an ISO 3166-1 alpha-2 code in upper case",
            );
        }
        Ok(())
    }

    /// Whether the organisation may hold an entry under `domain`.
    pub fn covers(&self, domain: &DomainName) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| domain.is_within(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_id_rules() {
        assert!("cardio-boston".parse::<OrgId>().is_ok());
        for bad in ["", "Cardio", "-a", "a-", "a b", "a_b"] {
            assert!(bad.parse::<OrgId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn covers_subdomains_only() {
        let org = Organisation {
            id: "x".parse().unwrap(),
            name: "X".into(),
            domains: vec!["example.org".parse().unwrap()],
            description: None,
            locality: None,
            region: None,
            country: None,
            origin: NodeId("n".into()),
            updated_at: DateTime::UNIX_EPOCH,
        };
        assert!(org.covers(&"direct.example.org".parse().unwrap()));
        assert!(!org.covers(&"example.com".parse().unwrap()));
    }
}
