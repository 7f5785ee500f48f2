//! What a client supplies to create or change an entry or organisation: the
//! fields a person writes, without what the node assigns (origin, version,
//! time). Import files (JSON lines) use this shape directly; the REST API has
//! its own documented body type that converts into it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    DirectoryAddress, DomainError, DomainName, Entry, EntryKind, EntryRecord, Identifier, NodeId,
    OrgId, Organisation, Visibility,
};

/// An entry as supplied. `address` may be absent when the caller names it
/// elsewhere (the REST path).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<DirectoryAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EntryKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<OrgId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<String>,
    #[serde(
        default,
        deserialize_with = "identifiers::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub identifiers: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Certificates as PEM text, or base64 of DER or of a certs-only PKCS#7.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
}

fn clean(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl EntryInput {
    /// Builds the entry this input describes, filling what it leaves out:
    /// the kind from the address form, the display name from the given and
    /// family names (or the address), visibility public.
    pub fn into_entry(
        self,
        address: DirectoryAddress,
        origin: NodeId,
        now: DateTime<Utc>,
    ) -> Result<Entry, DomainError> {
        if let Some(own) = &self.address
            && own != &address
        {
            return Err(DomainError::InvalidField {
                field: "address",
                reason: format!("body names {own}, the request names {address}"),
            });
        }
        let kind = self.kind.unwrap_or(match address {
            DirectoryAddress::Mailbox(_) => EntryKind::Person,
            DirectoryAddress::Domain(_) => EntryKind::Domain,
        });
        let given_name = clean(self.given_name);
        let surname = clean(self.surname);
        let display_name =
            clean(self.display_name).unwrap_or_else(|| match (&given_name, &surname) {
                (Some(g), Some(s)) => format!("{g} {s}"),
                (Some(n), None) | (None, Some(n)) => n.clone(),
                (None, None) => address.to_string(),
            });
        let entry = Entry {
            address,
            kind,
            display_name,
            given_name,
            surname,
            organisation: self.organisation,
            unit: clean(self.unit),
            title: clean(self.title),
            profession: clean(self.profession),
            specialty: clean(self.specialty),
            identifiers: self.identifiers,
            locality: clean(self.locality),
            region: clean(self.region),
            country: clean(self.country).map(|c| c.to_ascii_uppercase()),
            postal_code: clean(self.postal_code),
            phone: clean(self.phone),
            visibility: self.visibility.unwrap_or_default(),
            origin,
            version: 0,
            updated_at: now,
        };
        entry.validate()?;
        Ok(entry)
    }
}

/// An organisation as supplied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<OrgId>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<DomainName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl OrganisationInput {
    pub fn into_organisation(
        self,
        id: OrgId,
        origin: NodeId,
        now: DateTime<Utc>,
    ) -> Result<Organisation, DomainError> {
        if let Some(own) = &self.id
            && own != &id
        {
            return Err(DomainError::InvalidField {
                field: "id",
                reason: format!("body names {own}, the request names {id}"),
            });
        }
        let org = Organisation {
            id,
            name: self.name.trim().to_owned(),
            domains: self.domains,
            description: clean(self.description),
            locality: clean(self.locality),
            region: clean(self.region),
            country: clean(self.country).map(|c| c.to_ascii_uppercase()),
            origin,
            updated_at: now,
        };
        org.validate()?;
        Ok(org)
    }
}

impl EntryInput {
    /// The input that would recreate `record` (certificates as PEM), for export.
    pub fn from_record(record: &EntryRecord) -> EntryInput {
        let e = &record.entry;
        EntryInput {
            address: Some(e.address.clone()),
            kind: Some(e.kind),
            display_name: Some(e.display_name.clone()),
            given_name: e.given_name.clone(),
            surname: e.surname.clone(),
            organisation: e.organisation.clone(),
            unit: e.unit.clone(),
            title: e.title.clone(),
            profession: e.profession.clone(),
            specialty: e.specialty.clone(),
            identifiers: e.identifiers.clone(),
            locality: e.locality.clone(),
            region: e.region.clone(),
            country: e.country.clone(),
            postal_code: e.postal_code.clone(),
            phone: e.phone.clone(),
            visibility: Some(e.visibility),
            certificates: record
                .certificates
                .iter()
                .map(|c| pem_certificate(&c.certificate.der))
                .collect(),
        }
    }
}

impl OrganisationInput {
    pub fn from_organisation(org: &Organisation) -> OrganisationInput {
        OrganisationInput {
            id: Some(org.id.clone()),
            name: org.name.clone(),
            domains: org.domains.clone(),
            description: org.description.clone(),
            locality: org.locality.clone(),
            region: org.region.clone(),
            country: org.country.clone(),
        }
    }
}

/// PEM text of one DER certificate (64-column base64, RFC 7468).
pub fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Identifiers may be written as objects (`{"scheme":"NPI","value":"…"}`)
/// or as `"NPI:1234567893"` strings.
mod identifiers {
    use serde::{Deserialize, Deserializer};

    use super::Identifier;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        Object { scheme: String, value: String },
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Identifier>, D::Error> {
        Vec::<Form>::deserialize(d)?
            .into_iter()
            .map(|f| match f {
                Form::Object { scheme, value } => Ok(Identifier { scheme, value }),
                Form::Text(t) => super::parse_identifier(&t).map_err(serde::de::Error::custom),
            })
            .collect()
    }
}

/// Parses `SCHEME:value`.
pub fn parse_identifier(text: &str) -> Result<Identifier, DomainError> {
    let (scheme, value) = text
        .split_once(':')
        .ok_or_else(|| DomainError::InvalidField {
            field: "identifiers",
            reason: format!("{text:?} is not SCHEME:value"),
        })?;
    Ok(Identifier {
        scheme: scheme.trim().to_owned(),
        value: value.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_defaults() {
        let input: EntryInput = serde_json::from_str(
            r#"{"given_name":"Ana","surname":"Lima","identifiers":["NPI:1234567893"],"country":"us"}"#,
        )
        .unwrap();
        let e = input
            .into_entry(
                "ana@x.example.org".parse().unwrap(),
                NodeId("n".into()),
                DateTime::UNIX_EPOCH,
            )
            .unwrap();
        assert_eq!(e.display_name, "Ana Lima");
        assert_eq!(e.kind, EntryKind::Person);
        assert_eq!(e.country.as_deref(), Some("US"));
        assert_eq!(e.identifiers[0].scheme, "NPI");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<EntryInput>(r#"{"nmae":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn body_address_must_match() {
        let input = EntryInput {
            address: Some("a@x.org".parse().unwrap()),
            ..Default::default()
        };
        assert!(
            input
                .into_entry(
                    "b@x.org".parse().unwrap(),
                    NodeId("n".into()),
                    DateTime::UNIX_EPOCH
                )
                .is_err()
        );
    }
}
