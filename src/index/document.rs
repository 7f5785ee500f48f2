//! What the index holds about one entry ([`IndexDoc`]) and the changes the
//! catch-up loop feeds it ([`IndexOp`]).

use tantivy::TantivyDocument;

use super::analysis;
use super::schema::Fields;
use crate::domain::{Entry, EntryKind, Visibility};

/// The searchable projection of one directory entry. Built by
/// [`IndexDoc::from_entry`]; the index never reads anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDoc {
    /// Lower-cased address or domain: the primary key, returned by searches.
    pub key: String,
    /// The address as its owner wrote it.
    pub address: String,
    /// The name shown for the entry (a person's full name, a service's title).
    pub display_name: String,
    /// Given name, searched as a name (and the LDAP `givenName`).
    pub given_name: Option<String>,
    /// Surname, searched as a name (and the LDAP `sn`).
    pub surname: Option<String>,
    /// The owning organisation's id: filtered on, and decides who sees internal entries.
    pub organisation_id: Option<String>,
    /// The organisation's display name, searched like any other text.
    pub organisation_name: Option<String>,
    /// Department or unit; searched with title, profession and specialty.
    pub unit: Option<String>,
    /// Title ("MD", "Head of Cardiology"), searched with the role fields.
    pub title: Option<String>,
    /// Profession ("Physician"), searched with the role fields.
    pub profession: Option<String>,
    /// Specialty ("Cardiology"), searched with the role fields.
    pub specialty: Option<String>,
    /// City or town: searched, and the value of the exact locality filter.
    pub locality: Option<String>,
    /// Region or state; searched with locality and postal code.
    pub region: Option<String>,
    /// Postal code, searched with locality and region (exactly: no typos).
    pub postal_code: Option<String>,
    /// Identifier values, bare and scheme-qualified (`1234567893`, `NPI:1234567893`).
    pub identifiers: Vec<String>,
    /// Filtered on exactly.
    pub kind: EntryKind,
    /// Internal entries are only found by callers whose scope includes them.
    pub visibility: Visibility,
}

/// One change to apply to the index.
// Nearly every op is an upsert, so boxing the document would cost an
// allocation per op and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexOp {
    /// Create the document with this key, or replace it.
    Upsert(IndexDoc),
    /// Remove the document with this key (lower-cased address or domain), if any.
    Remove(String),
}

impl IndexDoc {
    /// Projects an entry. `organisation_name` is looked up by the caller,
    /// because entries carry only the organisation's id.
    pub fn from_entry(entry: &Entry, organisation_name: Option<&str>) -> IndexDoc {
        let mut identifiers = Vec::with_capacity(entry.identifiers.len() * 2);
        for id in &entry.identifiers {
            identifiers.push(id.value.clone());
            identifiers.push(id.to_string());
        }
        IndexDoc {
            key: entry.address.key(),
            address: entry.address.to_string(),
            display_name: entry.display_name.clone(),
            given_name: entry.given_name.clone(),
            surname: entry.surname.clone(),
            organisation_id: entry.organisation.as_ref().map(ToString::to_string),
            organisation_name: organisation_name.map(str::to_owned),
            unit: entry.unit.clone(),
            title: entry.title.clone(),
            profession: entry.profession.clone(),
            specialty: entry.specialty.clone(),
            locality: entry.locality.clone(),
            region: entry.region.clone(),
            postal_code: entry.postal_code.clone(),
            identifiers,
            kind: entry.kind,
            visibility: entry.visibility,
        }
    }

    /// The tantivy document for this entry.
    pub(crate) fn to_document(&self, f: &Fields) -> TantivyDocument {
        let mut doc = TantivyDocument::new();
        doc.add_text(f.key, &self.key);
        if let Some(org) = &self.organisation_id {
            doc.add_text(f.org_id, org);
        }
        doc.add_text(f.kind, self.kind.as_str());
        doc.add_text(f.visibility, self.visibility.as_str());
        if let Some(locality) = &self.locality {
            doc.add_text(f.locality, analysis::lower(locality));
        }

        let all_pfx = f.all_pfx;
        let mut text = |field: super::schema::TextField, value: &str| {
            if !value.trim().is_empty() {
                for f in [field.words, field.prefixes].into_iter().flatten() {
                    doc.add_text(f, value);
                }
                if field.prefixes.is_some() {
                    doc.add_text(all_pfx, value);
                }
            }
        };
        text(f.name, &self.display_name);
        // Given name and surname usually repeat the display name; index them
        // again only when they add words, so a name's term frequency and
        // length stay comparable between entries that do and do not set them.
        let shown = words_of(&self.display_name);
        for part in [&self.given_name, &self.surname].into_iter().flatten() {
            if !words_of(part).iter().all(|w| shown.contains(w)) {
                text(f.name, part);
            }
        }
        if let Some(name) = &self.organisation_name {
            text(f.org, name);
        }
        text(f.addr, &self.address);
        for value in [&self.profession, &self.specialty, &self.title, &self.unit]
            .into_iter()
            .flatten()
        {
            text(f.role, value);
        }
        for value in [&self.locality, &self.region, &self.postal_code]
            .into_iter()
            .flatten()
        {
            text(f.place, value);
        }
        for value in &self.identifiers {
            text(f.ident, value);
        }

        doc.add_text(f.cn, analysis::lower(&self.display_name));
        if let Some(sn) = &self.surname {
            doc.add_text(f.sn, analysis::lower(sn));
        }
        if let Some(given) = &self.given_name {
            doc.add_text(f.given, analysis::lower(given));
        }
        doc
    }
}

/// The lower-cased words of a value, split as the text analyser splits them.
fn words_of(value: &str) -> Vec<String> {
    value
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::domain::{Identifier, NodeId};

    #[test]
    fn from_entry_keys_and_qualifies_identifiers() {
        let entry = Entry {
            address: "Alice.Smith@Cardio.Example.org".parse().unwrap(),
            kind: EntryKind::Person,
            display_name: "Alice Smith".into(),
            given_name: Some("Alice".into()),
            surname: Some("Smith".into()),
            organisation: Some("cardio-boston".parse().unwrap()),
            unit: None,
            title: None,
            profession: Some("Physician".into()),
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
            visibility: Visibility::Internal,
            origin: NodeId("local".into()),
            version: 1,
            updated_at: DateTime::UNIX_EPOCH,
        };
        let doc = IndexDoc::from_entry(&entry, Some("Boston Cardiology"));
        assert_eq!(doc.key, "alice.smith@cardio.example.org");
        assert_eq!(doc.address, "Alice.Smith@cardio.example.org");
        assert_eq!(doc.identifiers, ["1234567893", "NPI:1234567893"]);
        assert_eq!(doc.organisation_id.as_deref(), Some("cardio-boston"));
        assert_eq!(doc.organisation_name.as_deref(), Some("Boston Cardiology"));
        assert_eq!(doc.visibility, Visibility::Internal);
    }
}
