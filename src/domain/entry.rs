//! Directory entries: people, organisations, service addresses and domains.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DirectoryAddress, DomainError, EntryCertificate, OrgId};

/// What an entry stands for. The kind decides which address form it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A person with a mailbox (a clinician, an administrator).
    Person,
    /// An organisation's own mailbox (e.g. the front desk of a practice).
    Organisation,
    /// A service or role address not tied to one person (`referrals@`).
    Service,
    /// A whole mail domain, for Direct domain-bound certificates.
    Domain,
}

impl EntryKind {
    pub const ALL: [EntryKind; 4] = [
        EntryKind::Person,
        EntryKind::Organisation,
        EntryKind::Service,
        EntryKind::Domain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Person => "person",
            EntryKind::Organisation => "organisation",
            EntryKind::Service => "service",
            EntryKind::Domain => "domain",
        }
    }
}

impl FromStr for EntryKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "person" => Ok(EntryKind::Person),
            "organisation" | "organization" => Ok(EntryKind::Organisation),
            "service" | "role" => Ok(EntryKind::Service),
            "domain" => Ok(EntryKind::Domain),
            _ => Err(DomainError::InvalidField {
                field: "kind",
                reason: format!("{s:?} is not one of person, organisation, service, domain"),
            }),
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may see an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone: served anonymously and published upward.
    #[default]
    Public,
    /// Only the entry's organisation and the node's administrators; never leaves the node.
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
        }
    }
}

impl FromStr for Visibility {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "public" => Ok(Visibility::Public),
            "internal" => Ok(Visibility::Internal),
            _ => Err(DomainError::InvalidField {
                field: "visibility",
                reason: format!("{s:?} is not public or internal"),
            }),
        }
    }
}

/// An identifier under a named scheme, e.g. `NPI` `1234567893`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    pub scheme: String,
    pub value: String,
}

impl Identifier {
    /// Checks the identifier against its scheme's rules where we know them
    /// (NPI: ten digits with the Luhn check digit over the `80840` prefix).
    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |reason: String| DomainError::InvalidField {
            field: "identifiers",
            reason,
        };
        if self.scheme.is_empty() || self.value.is_empty() {
            return Err(bad("scheme and value must not be empty".into()));
        }
        if self.scheme.len() > 32 || self.value.len() > 128 {
            return Err(bad("scheme or value too long".into()));
        }
        if self.scheme.eq_ignore_ascii_case("npi") && !npi_is_valid(&self.value) {
            return Err(bad(format!("{:?} is not a valid NPI", self.value)));
        }
        Ok(())
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.value)
    }
}

/// NPI check digit: Luhn over "80840" followed by the first nine digits.
pub fn npi_is_valid(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = format!("80840{npi}")
        .bytes()
        .map(|b| u32::from(b - b'0'))
        .collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The identity of a node: the hex of its ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One directory entry. Certificates are held beside it in [`EntryRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub address: DirectoryAddress,
    pub kind: EntryKind,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub organisation: Option<OrgId>,
    /// Department or unit inside the organisation.
    pub unit: Option<String>,
    pub title: Option<String>,
    /// Profession, e.g. "Physician", "Nurse practitioner".
    pub profession: Option<String>,
    /// Specialty, e.g. "Cardiology".
    pub specialty: Option<String>,
    pub identifiers: Vec<Identifier>,
    pub locality: Option<String>,
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
    pub visibility: Visibility,
    /// The node that authored the entry.
    pub origin: NodeId,
    /// Bumped by the origin on every change.
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

const MAX_TEXT: usize = 256;

impl Entry {
    /// Checks the rules that hold for every entry, whoever wrote it.
    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |field, reason: &str| {
            Err(DomainError::InvalidField {
                field,
                reason: reason.to_owned(),
            })
        };
        match (&self.address, self.kind) {
            (DirectoryAddress::Domain(_), EntryKind::Domain) => {}
            (DirectoryAddress::Mailbox(_), EntryKind::Domain) => {
                return bad(
                    "kind",
                    "a domain entry is published under a domain, not a mailbox",
                );
            }
            (DirectoryAddress::Domain(_), _) => {
                return bad(
                    "address",
                    "only domain entries may have a bare domain as address",
                );
            }
            (DirectoryAddress::Mailbox(_), _) => {}
        }
        if self.display_name.trim().is_empty() {
            return bad("display_name", "must not be empty");
        }
        let texts = [
            ("display_name", Some(&self.display_name)),
            ("given_name", self.given_name.as_ref()),
            ("surname", self.surname.as_ref()),
            ("unit", self.unit.as_ref()),
            ("title", self.title.as_ref()),
            ("profession", self.profession.as_ref()),
            ("specialty", self.specialty.as_ref()),
            ("locality", self.locality.as_ref()),
            ("region", self.region.as_ref()),
            ("postal_code", self.postal_code.as_ref()),
            ("phone", self.phone.as_ref()),
        ];
        for (field, value) in texts {
            if let Some(v) = value {
                if v.len() > MAX_TEXT {
                    return bad(field, "longer than 256 octets");
                }
                if v.chars().any(char::is_control) {
                    return bad(field, "contains control characters");
                }
            }
        }
        if let Some(c) = &self.country
            && (c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return bad(
                "country",
                "must be an ISO 3166-1 alpha-2 code in upper case",
            );
        }
        if self.identifiers.len() > 16 {
            return bad("identifiers", "at most 16");
        }
        self.identifiers.iter().try_for_each(Identifier::validate)
    }
}

/// An entry with the certificates attached to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub entry: Entry,
    pub certificates: Vec<EntryCertificate>,
}

/// The names of an entry that LDAP filters match, and who may see it: what
/// the in-memory attribute view keeps of every entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryNames {
    /// The lower-cased address ([`DirectoryAddress::key`]).
    pub key: String,
    pub kind: EntryKind,
    pub visibility: Visibility,
    pub organisation: Option<OrgId>,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
}

impl EntryNames {
    pub fn of(entry: &Entry) -> EntryNames {
        EntryNames {
            key: entry.address.key(),
            kind: entry.kind,
            visibility: entry.visibility,
            organisation: entry.organisation.clone(),
            display_name: entry.display_name.clone(),
            given_name: entry.given_name.clone(),
            surname: entry.surname.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Entry {
        Entry {
            address: "alice@cardio.example.org".parse().unwrap(),
            kind: EntryKind::Person,
            display_name: "Alice Smith".into(),
            given_name: Some("Alice".into()),
            surname: Some("Smith".into()),
            organisation: None,
            unit: None,
            title: None,
            profession: None,
            specialty: Some("Cardiology".into()),
            identifiers: vec![Identifier {
                scheme: "NPI".into(),
                value: "1234567893".into(),
            }],
            locality: Some("Boston".into()),
            region: Some("MA".into()),
            country: Some("US".into()),
            postal_code: None,
            phone: None,
            visibility: Visibility::Public,
            origin: NodeId("local".into()),
            version: 1,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn npi_check_digit() {
        assert!(npi_is_valid("1234567893"));
        assert!(!npi_is_valid("1234567890"));
        assert!(!npi_is_valid("123456789"));
    }

    #[test]
    fn valid_person_passes() {
        person().validate().unwrap();
    }

    #[test]
    fn kind_and_address_form_must_agree() {
        let mut e = person();
        e.kind = EntryKind::Domain;
        assert!(e.validate().is_err());
        let mut e = person();
        e.address = "cardio.example.org".parse().unwrap();
        assert!(e.validate().is_err());
        e.kind = EntryKind::Domain;
        e.validate().unwrap();
    }

    #[test]
    fn rejects_bad_fields() {
        let mut e = person();
        e.country = Some("usa".into());
        assert!(e.validate().is_err());
        let mut e = person();
        e.display_name = " ".into();
        assert!(e.validate().is_err());
        let mut e = person();
        e.identifiers[0].value = "1234567890".into();
        assert!(e.validate().is_err());
        let mut e = person();
        e.title = Some("x\u{0}y".into());
        assert!(e.validate().is_err());
    }
}
