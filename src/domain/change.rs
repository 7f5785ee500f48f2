//! The node's one change sequence. Every write that changes what a reader
//! could see takes the next number; derived views (search index, LDAP and
//! DNS caches) remember the last number they applied and catch up from it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// A position in the change sequence. `ChangeSeq(0)` is "before anything".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ChangeSeq(pub u64);

impl fmt::Display for ChangeSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What changed; the key says which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// An entry or its certificates were created or changed; key = entry key.
    EntryUpserted,
    /// An entry was removed; key = entry key.
    EntryRemoved,
    /// An organisation was created, changed or removed; key = organisation id.
    /// Readers that show organisation names must refresh its entries.
    OrganisationChanged,
    /// The set of trust anchors changed; key = anchor fingerprint.
    /// Certificate trust statuses were re-evaluated in the same transaction.
    AnchorsChanged,
    /// A policy event was accepted (applied, or kept as evidence);
    /// key = the event's hash (hex). Its number is the event's position
    /// in the all-policies feed.
    PolicyEvent,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::EntryUpserted => "entry-upserted",
            ChangeKind::EntryRemoved => "entry-removed",
            ChangeKind::OrganisationChanged => "organisation-changed",
            ChangeKind::AnchorsChanged => "anchors-changed",
            ChangeKind::PolicyEvent => "policy-event",
        }
    }
}

impl std::str::FromStr for ChangeKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "entry-upserted" => ChangeKind::EntryUpserted,
            "entry-removed" => ChangeKind::EntryRemoved,
            "organisation-changed" => ChangeKind::OrganisationChanged,
            "anchors-changed" => ChangeKind::AnchorsChanged,
            "policy-event" => ChangeKind::PolicyEvent,
            _ => {
                return Err(DomainError::InvalidField {
                    field: "change kind",
                    reason: format!("unknown {s:?}"),
                });
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub seq: ChangeSeq,
    pub kind: ChangeKind,
    pub key: String,
}
