//! Users of an organisation: people who sign in to read the directory (an
//! LDAP simple bind) and then see their organisation's internal entries.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::{DomainError, OrgId};

/// A user's name inside its organisation: 1 to 64 of `a-z`, `0-9`, `.`,
/// `_` and `-`, lower-cased, starting with a letter or digit. Usable as an
/// RDN value (`uid=<name>`) without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UserName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let ok = !lower.is_empty()
            && lower.len() <= 64
            && lower.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && lower.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(UserName(lower))
        } else {
            Err(DomainError::InvalidField {
                field: "user name",
                reason: format!(
                    "{s:?} must be 1-64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
                ),
            })
        }
    }
}

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user as listed (the password hash never leaves storage and core).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub organisation: OrgId,
    pub name: UserName,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Checks a new password: 8 to 1024 octets, no control characters.
pub fn check_password(password: &str) -> Result<(), DomainError> {
    let bad = |reason: &str| DomainError::InvalidField {
        field: "password",
        reason: reason.to_owned(),
    };
    if password.len() < 8 {
        return Err(bad("at least 8 characters"));
    }
    if password.len() > 1024 {
        return Err(bad("at most 1024 octets"));
    }
    if password.chars().any(char::is_control) {
        return Err(bad("contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert_eq!(
            "Bob.Smith".parse::<UserName>().unwrap().as_str(),
            "bob.smith"
        );
        for bad in ["", ".bob", "bo b", "bob@x", &"a".repeat(65)] {
            assert!(bad.parse::<UserName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password("long enough").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password("new\nline!!").is_err());
    }
}
