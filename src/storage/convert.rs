//! Domain values to row values and back.
//!
//! Writing goes through plain sea-query statements (multi-row inserts and
//! upserts need more than the ActiveModel API offers), so each table has a
//! fixed column list here and a function giving the values in that order.
//! Reading goes through the entities' `Model`s.
//!
//! Times are stored at microsecond precision, the finest PostgreSQL keeps;
//! they are truncated on the way in so that both backends return the same
//! value.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::Expr;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StorageError;
use super::entity::{anchor, bundle, bundle_anchor, certificate, entry, organisation};
use crate::domain::{
    BundleDefinition, BundleName, BundleSource, Certificate, DirectoryAddress, DomainName, Entry,
    EntryCertificate, Fingerprint, NodeId, OrgId, Organisation, RefreshStatus, TrustAnchor,
    TrustBundle, TrustVerdict,
};

type Result<T> = std::result::Result<T, StorageError>;

/// A time as the database keeps it.
pub fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Versions and sequence numbers are `u64` in the domain, `BIGINT` in SQL.
pub fn to_i64(field: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StorageError::OutOfRange { field, value })
}

pub fn to_u64(what: &'static str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| StorageError::corrupt(what, format!("negative {value}")))
}

fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // Only lists of strings, plain enums and string pairs come through here;
    // their JSON encoding cannot fail.
    serde_json::to_string(value).expect("JSON encoding of a plain list")
}

fn from_json<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StorageError::corrupt(what, e))
}

pub(super) fn parse<T: std::str::FromStr>(what: &'static str, text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| StorageError::corrupt(what, format!("{text:?}: {e}")))
}

// ---------------------------------------------------------------- organisations

pub const ORGANISATION_COLUMNS: [organisation::Column; 9] = {
    use organisation::Column as C;
    [
        C::Id,
        C::Name,
        C::Domains,
        C::Description,
        C::Locality,
        C::Region,
        C::Country,
        C::Origin,
        C::UpdatedAt,
    ]
};

pub fn organisation_values(o: &Organisation) -> Vec<Expr> {
    vec![
        o.id.as_str().into(),
        o.name.clone().into(),
        json(&o.domains).into(),
        o.description.clone().into(),
        o.locality.clone().into(),
        o.region.clone().into(),
        o.country.clone().into(),
        o.origin.0.clone().into(),
        ts(o.updated_at).into(),
    ]
}

pub fn organisation_from_row(m: organisation::Model) -> Result<Organisation> {
    Ok(Organisation {
        id: parse("organisation id", &m.id)?,
        name: m.name,
        domains: from_json::<Vec<DomainName>>("organisation domains", &m.domains)?,
        description: m.description,
        locality: m.locality,
        region: m.region,
        country: m.country,
        origin: NodeId(m.origin),
        updated_at: m.updated_at,
    })
}

// ---------------------------------------------------------------------- entries

/// Every column but the surrogate id.
pub const ENTRY_COLUMNS: [entry::Column; 22] = {
    use entry::Column as C;
    [
        C::Key,
        C::Address,
        C::Kind,
        C::DisplayName,
        C::GivenName,
        C::Surname,
        C::OrganisationId,
        C::Unit,
        C::Title,
        C::Profession,
        C::Specialty,
        C::Identifiers,
        C::Locality,
        C::Region,
        C::Country,
        C::PostalCode,
        C::Phone,
        C::Visibility,
        C::Origin,
        C::Version,
        C::UpdatedAt,
        C::ChangeSeq,
    ]
};

/// The values of [`ENTRY_COLUMNS`] for `e`, with the version and change
/// the store decided on.
pub fn entry_values(e: &Entry, version: i64, seq: i64) -> Vec<Expr> {
    vec![
        e.address.key().into(),
        e.address.to_string().into(),
        e.kind.as_str().into(),
        e.display_name.clone().into(),
        e.given_name.clone().into(),
        e.surname.clone().into(),
        e.organisation
            .as_ref()
            .map(|o| o.as_str().to_owned())
            .into(),
        e.unit.clone().into(),
        e.title.clone().into(),
        e.profession.clone().into(),
        e.specialty.clone().into(),
        json(&e.identifiers).into(),
        e.locality.clone().into(),
        e.region.clone().into(),
        e.country.clone().into(),
        e.postal_code.clone().into(),
        e.phone.clone().into(),
        e.visibility.as_str().into(),
        e.origin.0.clone().into(),
        version.into(),
        ts(e.updated_at).into(),
        seq.into(),
    ]
}

pub fn entry_from_row(m: entry::Model) -> Result<Entry> {
    let organisation = m
        .organisation_id
        .as_deref()
        .map(|id| parse::<OrgId>("entry organisation", id))
        .transpose()?;
    Ok(Entry {
        address: parse::<DirectoryAddress>("entry address", &m.address)?,
        kind: parse("entry kind", &m.kind)?,
        display_name: m.display_name,
        given_name: m.given_name,
        surname: m.surname,
        organisation,
        unit: m.unit,
        title: m.title,
        profession: m.profession,
        specialty: m.specialty,
        identifiers: from_json("entry identifiers", &m.identifiers)?,
        locality: m.locality,
        region: m.region,
        country: m.country,
        postal_code: m.postal_code,
        phone: m.phone,
        visibility: parse("entry visibility", &m.visibility)?,
        origin: NodeId(m.origin),
        version: to_u64("entry version", m.version)?,
        updated_at: m.updated_at,
    })
}

// ----------------------------------------------------------------- certificates

/// The parsed facts of a certificate, in the same order in `certificates`
/// and `trust_anchors`.
fn certificate_values(c: &Certificate) -> [Expr; 15] {
    [
        c.fingerprint.to_hex().into(),
        c.der.clone().into(),
        c.subject.clone().into(),
        c.issuer.clone().into(),
        c.serial.clone().into(),
        ts(c.not_before).into(),
        ts(c.not_after).into(),
        json(&c.email_addresses).into(),
        json(&c.dns_names).into(),
        json(&c.key_usage).into(),
        json(&c.extended_key_usage).into(),
        json(&c.policies).into(),
        c.assurance.map(|a| a.as_str()).into(),
        c.key_algorithm.clone().into(),
        c.is_ca.into(),
    ]
}

/// Every column of `certificates` but the surrogate id.
pub const CERTIFICATE_COLUMNS: [certificate::Column; 21] = {
    use certificate::Column as C;
    [
        C::EntryId,
        C::Fingerprint,
        C::Der,
        C::Subject,
        C::Issuer,
        C::Serial,
        C::NotBefore,
        C::NotAfter,
        C::EmailAddresses,
        C::DnsNames,
        C::KeyUsage,
        C::ExtendedKeyUsage,
        C::Policies,
        C::Assurance,
        C::KeyAlgorithm,
        C::IsCa,
        C::Binding,
        C::TrustStatus,
        C::TrustReason,
        C::TrustEvaluatedAt,
        C::Chain,
    ]
};

pub fn entry_certificate_values(entry_id: i64, ec: &EntryCertificate) -> Vec<Expr> {
    let mut v = Vec::with_capacity(CERTIFICATE_COLUMNS.len());
    v.push(entry_id.into());
    v.extend(certificate_values(&ec.certificate));
    v.push(ec.binding.as_str().into());
    v.push(ec.trust.status.as_str().into());
    v.push(ec.trust.reason.clone().into());
    v.push(ts(ec.trust.evaluated_at).into());
    let chain: Vec<String> = ec.chain.iter().map(|c| STANDARD.encode(c)).collect();
    v.push(json(&chain).into());
    v
}

pub const ANCHOR_COLUMNS: [anchor::Column; 17] = {
    use anchor::Column as C;
    [
        C::Fingerprint,
        C::Der,
        C::Subject,
        C::Issuer,
        C::Serial,
        C::NotBefore,
        C::NotAfter,
        C::EmailAddresses,
        C::DnsNames,
        C::KeyUsage,
        C::ExtendedKeyUsage,
        C::Policies,
        C::Assurance,
        C::KeyAlgorithm,
        C::IsCa,
        C::Source,
        C::AddedAt,
    ]
};

pub fn anchor_values(a: &TrustAnchor) -> Vec<Expr> {
    let mut v = Vec::with_capacity(ANCHOR_COLUMNS.len());
    v.extend(certificate_values(&a.certificate));
    v.push(a.source.clone().into());
    v.push(ts(a.added_at).into());
    v
}

/// The certificate columns shared by `certificates` and `trust_anchors`,
/// moved out of either model.
struct CertificateRow {
    fingerprint: String,
    der: Vec<u8>,
    subject: String,
    issuer: String,
    serial: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    email_addresses: String,
    dns_names: String,
    key_usage: String,
    extended_key_usage: String,
    policies: String,
    assurance: Option<String>,
    key_algorithm: String,
    is_ca: bool,
}

impl CertificateRow {
    fn into_domain(self) -> Result<Certificate> {
        Ok(Certificate {
            fingerprint: parse::<Fingerprint>("certificate fingerprint", &self.fingerprint)?,
            der: self.der,
            subject: self.subject,
            issuer: self.issuer,
            serial: self.serial,
            not_before: self.not_before,
            not_after: self.not_after,
            email_addresses: from_json("certificate email addresses", &self.email_addresses)?,
            dns_names: from_json("certificate DNS names", &self.dns_names)?,
            key_usage: from_json("certificate key usage", &self.key_usage)?,
            extended_key_usage: from_json(
                "certificate extended key usage",
                &self.extended_key_usage,
            )?,
            policies: from_json("certificate policies", &self.policies)?,
            assurance: self
                .assurance
                .as_deref()
                .map(|a| parse("certificate assurance", a))
                .transpose()?,
            key_algorithm: self.key_algorithm,
            is_ca: self.is_ca,
        })
    }
}

pub fn entry_certificate_from_row(m: certificate::Model) -> Result<EntryCertificate> {
    let chain: Vec<String> = from_json("certificate chain", &m.chain)?;
    let chain = chain
        .iter()
        .map(|c| {
            STANDARD
                .decode(c)
                .map_err(|e| StorageError::corrupt("certificate chain", e))
        })
        .collect::<Result<Vec<_>>>()?;
    let trust = TrustVerdict {
        status: parse("trust status", &m.trust_status)?,
        reason: m.trust_reason,
        evaluated_at: m.trust_evaluated_at,
    };
    let binding = parse("certificate binding", &m.binding)?;
    let certificate = CertificateRow {
        fingerprint: m.fingerprint,
        der: m.der,
        subject: m.subject,
        issuer: m.issuer,
        serial: m.serial,
        not_before: m.not_before,
        not_after: m.not_after,
        email_addresses: m.email_addresses,
        dns_names: m.dns_names,
        key_usage: m.key_usage,
        extended_key_usage: m.extended_key_usage,
        policies: m.policies,
        assurance: m.assurance,
        key_algorithm: m.key_algorithm,
        is_ca: m.is_ca,
    }
    .into_domain()?;
    Ok(EntryCertificate {
        certificate,
        binding,
        trust,
        chain,
    })
}

pub fn anchor_from_row(m: anchor::Model) -> Result<TrustAnchor> {
    let certificate = CertificateRow {
        fingerprint: m.fingerprint,
        der: m.der,
        subject: m.subject,
        issuer: m.issuer,
        serial: m.serial,
        not_before: m.not_before,
        not_after: m.not_after,
        email_addresses: m.email_addresses,
        dns_names: m.dns_names,
        key_usage: m.key_usage,
        extended_key_usage: m.extended_key_usage,
        policies: m.policies,
        assurance: m.assurance,
        key_algorithm: m.key_algorithm,
        is_ca: m.is_ca,
    }
    .into_domain()?;
    Ok(TrustAnchor {
        certificate,
        source: m.source,
        added_at: m.added_at,
    })
}

// ----------------------------------------------------------------- bundles

/// Every column of `bundle_anchors`.
pub const BUNDLE_ANCHOR_COLUMNS: [bundle_anchor::Column; 17] = {
    use bundle_anchor::Column as C;
    [
        C::Bundle,
        C::Fingerprint,
        C::Der,
        C::Subject,
        C::Issuer,
        C::Serial,
        C::NotBefore,
        C::NotAfter,
        C::EmailAddresses,
        C::DnsNames,
        C::KeyUsage,
        C::ExtendedKeyUsage,
        C::Policies,
        C::Assurance,
        C::KeyAlgorithm,
        C::IsCa,
        C::AddedAt,
    ]
};

pub fn bundle_anchor_values(
    bundle: &BundleName,
    c: &Certificate,
    added_at: DateTime<Utc>,
) -> Vec<Expr> {
    let mut v = Vec::with_capacity(BUNDLE_ANCHOR_COLUMNS.len());
    v.push(bundle.as_str().into());
    v.extend(certificate_values(c));
    v.push(ts(added_at).into());
    v
}

pub fn bundle_anchor_from_row(m: bundle_anchor::Model) -> Result<(BundleName, TrustAnchor)> {
    let name: BundleName = parse("bundle name", &m.bundle)?;
    let certificate = CertificateRow {
        fingerprint: m.fingerprint,
        der: m.der,
        subject: m.subject,
        issuer: m.issuer,
        serial: m.serial,
        not_before: m.not_before,
        not_after: m.not_after,
        email_addresses: m.email_addresses,
        dns_names: m.dns_names,
        key_usage: m.key_usage,
        extended_key_usage: m.extended_key_usage,
        policies: m.policies,
        assurance: m.assurance,
        key_algorithm: m.key_algorithm,
        is_ca: m.is_ca,
    }
    .into_domain()?;
    let anchor = TrustAnchor {
        certificate,
        source: name.anchor_source(),
        added_at: m.added_at,
    };
    Ok((name, anchor))
}

pub fn bundle_from_row(m: bundle::Model) -> Result<TrustBundle> {
    let source = BundleSource::from_parts(&m.source_kind, &m.source)
        .map_err(|e| StorageError::corrupt("bundle source", e))?;
    let last_refresh = match (m.last_code, m.last_attempt_at) {
        (Some(code), Some(at)) => Some(RefreshStatus {
            code: parse("bundle refresh code", &code)?,
            detail: m.last_detail.unwrap_or_default(),
            at,
        }),
        _ => None,
    };
    Ok(TrustBundle {
        definition: BundleDefinition {
            name: parse("bundle name", &m.name)?,
            source,
            signer: m.signer,
            refresh: std::time::Duration::from_secs(to_u64("bundle refresh", m.refresh_seconds)?),
            origin: parse("bundle origin", &m.origin)?,
        },
        created_at: m.created_at,
        last_refresh,
        last_success_at: m.last_success_at,
        anchor_count: to_u64("bundle anchor count", m.anchor_count)?,
    })
}
