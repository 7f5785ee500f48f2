//! The JSON shapes of the REST API, documented for the OpenAPI document.
//! They are the API's contract and change only with its version; domain
//! types convert into them here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::core::{EntryView, GrantView, Provenance, RefreshOutcome, SearchResults};
use crate::domain::{
    EntryCertificate, EntryInput, Identifier, Organisation, OrganisationInput, TrustAnchor,
    TrustBundle,
};

/// Query parameters of `GET /api/v1/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Free text: names, organisation, specialty, place, address or an identifier.
    /// Matches word prefixes and tolerates typos.
    #[param(example = "cardiology boston")]
    pub q: Option<String>,
    /// Only entries of this organisation (id).
    pub org: Option<String>,
    /// Only entries in this locality (city), case-insensitive.
    pub locality: Option<String>,
    /// Only entries of this kind: person, organisation, service, domain.
    pub kind: Option<String>,
    /// Page size (default 20, at most 100).
    pub limit: Option<usize>,
    /// The `next` value of the previous page.
    pub cursor: Option<String>,
}

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "results": [{
        "address": "alice.smith@direct.beaconhillcardio.example.org",
        "name": "Alice Smith",
        "organisation": "Beacon Hill Cardiology Associates",
        "organisation_id": "beacon-hill-cardiology",
        "kind": "person",
        "specialty": "Cardiology",
        "locality": "Boston",
        "region": "MA",
        "certificates": [{
            "fingerprint": "3f1c0a…",
            "binding": "address",
            "trust": "trusted",
            "not_after": "2027-11-23T00:00:00Z"
        }]
    }],
    "next": null,
    "total": 1
}))]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next: Option<String>,
    /// Estimated number of matches.
    pub total: usize,
}

/// One search hit: who, where, and their certificates at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub address: String,
    pub name: String,
    /// Organisation name.
    pub organisation: Option<String>,
    pub organisation_id: Option<String>,
    pub kind: String,
    pub title: Option<String>,
    pub profession: Option<String>,
    pub specialty: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub certificates: Vec<CertificateSummary>,
    /// Where the entry came from, when another node published it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceDto>,
}

/// Where an entry from another node came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvenanceDto {
    /// The node that published it (node key, hex).
    pub publisher: String,
    /// The child this node received it from (the publisher, or an intermediate that relayed it).
    pub via: String,
    /// Its sequence number in the publisher's log.
    pub seq: u64,
    /// SHA-256 of the publisher's signed record (hex).
    pub record_hash: String,
    /// The delegations that authorised it, from the root down to the publisher.
    pub delegation: Vec<DelegationDto>,
    pub received_at: DateTime<Utc>,
}

/// One delegation of a chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationDto {
    /// SHA-256 of the signed grant (hex).
    pub grant: String,
    /// Who granted it (node key, hex).
    pub issuer: String,
    /// Who holds it (node key, hex).
    pub subject: String,
    pub domains: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

impl From<&GrantView> for DelegationDto {
    fn from(g: &GrantView) -> Self {
        DelegationDto {
            grant: g.hash.clone(),
            issuer: g.issuer.to_string(),
            subject: g.subject.to_string(),
            domains: g.domains.clone(),
            expires_at: g.expires_at,
        }
    }
}

impl From<&Provenance> for ProvenanceDto {
    fn from(p: &Provenance) -> Self {
        ProvenanceDto {
            publisher: p.publisher.to_string(),
            via: p.via.to_string(),
            seq: p.seq,
            record_hash: p.record_hash.clone(),
            delegation: p.chain.iter().map(Into::into).collect(),
            received_at: p.received_at,
        }
    }
}

/// A certificate at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateSummary {
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint: String,
    /// `address` (rfc822Name) or `domain` (dNSName) bound.
    pub binding: String,
    /// trusted, untrusted, expired or not-yet-valid.
    pub trust: String,
    pub not_after: DateTime<Utc>,
}

impl From<&EntryCertificate> for CertificateSummary {
    fn from(c: &EntryCertificate) -> Self {
        CertificateSummary {
            fingerprint: c.certificate.fingerprint.to_hex(),
            binding: c.binding.as_str().to_owned(),
            trust: c.trust.status.as_str().to_owned(),
            not_after: c.certificate.not_after,
        }
    }
}

impl From<SearchResults> for SearchResponse {
    fn from(r: SearchResults) -> Self {
        SearchResponse {
            results: r
                .hits
                .into_iter()
                .map(|hit| {
                    let e = &hit.record.entry;
                    SearchResult {
                        address: e.address.to_string(),
                        name: e.display_name.clone(),
                        organisation: hit.organisation_name.clone(),
                        organisation_id: e.organisation.as_ref().map(|o| o.to_string()),
                        kind: e.kind.as_str().to_owned(),
                        title: e.title.clone(),
                        profession: e.profession.clone(),
                        specialty: e.specialty.clone(),
                        locality: e.locality.clone(),
                        region: e.region.clone(),
                        certificates: hit.record.certificates.iter().map(Into::into).collect(),
                        provenance: hit.provenance.as_ref().map(Into::into),
                    }
                })
                .collect(),
            next: r.next,
            total: r.total,
        }
    }
}

/// An identifier under a scheme, e.g. NPI.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifierDto {
    #[schema(example = "NPI")]
    pub scheme: String,
    #[schema(example = "1234567893")]
    pub value: String,
}

impl From<&Identifier> for IdentifierDto {
    fn from(i: &Identifier) -> Self {
        IdentifierDto {
            scheme: i.scheme.clone(),
            value: i.value.clone(),
        }
    }
}

/// The body of `PUT /api/v1/entries/{address}`. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "person",
    "given_name": "Alice",
    "surname": "Smith",
    "organisation": "beacon-hill-cardiology",
    "profession": "Physician",
    "specialty": "Cardiology",
    "identifiers": [{"scheme": "NPI", "value": "1234567893"}],
    "locality": "Boston",
    "region": "MA",
    "country": "US",
    "visibility": "public"
}))]
pub struct EntryBody {
    /// person, organisation, service or domain; from the address form when absent.
    pub kind: Option<String>,
    /// Defaults to given name and surname.
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// Organisation id; the address must lie in its domains.
    pub organisation: Option<String>,
    pub unit: Option<String>,
    pub title: Option<String>,
    pub profession: Option<String>,
    pub specialty: Option<String>,
    #[serde(default)]
    pub identifiers: Vec<IdentifierDto>,
    pub locality: Option<String>,
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
    /// public (default) or internal.
    pub visibility: Option<String>,
    /// PEM, or base64 DER / PKCS#7. When given, they replace the entry's
    /// certificates; when absent, the certificates are kept.
    #[serde(default)]
    pub certificates: Vec<String>,
}

impl EntryBody {
    pub fn into_input(self) -> Result<EntryInput, crate::domain::DomainError> {
        Ok(EntryInput {
            address: None,
            kind: self.kind.as_deref().map(str::parse).transpose()?,
            display_name: self.display_name,
            given_name: self.given_name,
            surname: self.surname,
            organisation: self.organisation.as_deref().map(str::parse).transpose()?,
            unit: self.unit,
            title: self.title,
            profession: self.profession,
            specialty: self.specialty,
            identifiers: self
                .identifiers
                .into_iter()
                .map(|i| Identifier {
                    scheme: i.scheme,
                    value: i.value,
                })
                .collect(),
            locality: self.locality,
            region: self.region,
            country: self.country,
            postal_code: self.postal_code,
            phone: self.phone,
            visibility: self.visibility.as_deref().map(str::parse).transpose()?,
            certificates: self.certificates,
        })
    }
}

/// A directory entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryDto {
    pub address: String,
    pub kind: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub organisation: Option<String>,
    pub organisation_name: Option<String>,
    pub unit: Option<String>,
    pub title: Option<String>,
    pub profession: Option<String>,
    pub specialty: Option<String>,
    pub identifiers: Vec<IdentifierDto>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
    pub visibility: String,
    /// Node id (ed25519 public key, hex) of the node that authored the entry.
    pub origin: String,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
    pub certificates: Vec<CertificateSummary>,
    /// Where the entry came from, when another node published it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceDto>,
}

impl From<&EntryView> for EntryDto {
    fn from(v: &EntryView) -> Self {
        let e = &v.record.entry;
        EntryDto {
            address: e.address.to_string(),
            kind: e.kind.as_str().to_owned(),
            display_name: e.display_name.clone(),
            given_name: e.given_name.clone(),
            surname: e.surname.clone(),
            organisation: e.organisation.as_ref().map(|o| o.to_string()),
            organisation_name: v.organisation_name.clone(),
            unit: e.unit.clone(),
            title: e.title.clone(),
            profession: e.profession.clone(),
            specialty: e.specialty.clone(),
            identifiers: e.identifiers.iter().map(Into::into).collect(),
            locality: e.locality.clone(),
            region: e.region.clone(),
            country: e.country.clone(),
            postal_code: e.postal_code.clone(),
            phone: e.phone.clone(),
            visibility: e.visibility.as_str().to_owned(),
            origin: e.origin.to_string(),
            version: e.version,
            updated_at: e.updated_at,
            certificates: v.record.certificates.iter().map(Into::into).collect(),
            provenance: v.provenance.as_ref().map(Into::into),
        }
    }
}

/// A certificate in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateDto {
    pub fingerprint: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub binding: String,
    pub trust: String,
    /// Why the node judged it so.
    pub trust_reason: String,
    pub email_addresses: Vec<String>,
    pub dns_names: Vec<String>,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub policies: Vec<String>,
    /// Level of assurance from the policy OIDs (FBCA / DirectTrust), if any.
    pub assurance: Option<String>,
    pub key_algorithm: String,
    /// The certificate, PEM.
    pub pem: String,
}

impl From<&EntryCertificate> for CertificateDto {
    fn from(c: &EntryCertificate) -> Self {
        let cert = &c.certificate;
        CertificateDto {
            fingerprint: cert.fingerprint.to_hex(),
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
            serial: cert.serial.clone(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            binding: c.binding.as_str().to_owned(),
            trust: c.trust.status.as_str().to_owned(),
            trust_reason: c.trust.reason.clone(),
            email_addresses: cert.email_addresses.clone(),
            dns_names: cert.dns_names.clone(),
            key_usage: cert
                .key_usage
                .iter()
                .map(|k| {
                    serde_json::to_value(k)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect(),
            extended_key_usage: cert.extended_key_usage.clone(),
            policies: cert.policies.clone(),
            assurance: cert.assurance.map(|a| a.as_str().to_owned()),
            key_algorithm: cert.key_algorithm.clone(),
            pem: crate::domain::pem_certificate(&cert.der),
        }
    }
}

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "beacon-hill-cardiology",
    "name": "Beacon Hill Cardiology Associates",
    "domains": ["direct.beaconhillcardio.example.org"],
    "locality": "Boston", "region": "MA", "country": "US",
    "updated_at": "2026-11-23T12:00:00Z"
}))]
pub struct OrganisationDto {
    pub id: String,
    pub name: String,
    pub domains: Vec<String>,
    pub description: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Organisation> for OrganisationDto {
    fn from(o: &Organisation) -> Self {
        OrganisationDto {
            id: o.id.to_string(),
            name: o.name.clone(),
            domains: o.domains.iter().map(|d| d.to_string()).collect(),
            description: o.description.clone(),
            locality: o.locality.clone(),
            region: o.region.clone(),
            country: o.country.clone(),
            updated_at: o.updated_at,
        }
    }
}

/// The body to create or replace an organisation. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "beacon-hill-cardiology",
    "name": "Beacon Hill Cardiology Associates",
    "domains": ["direct.beaconhillcardio.example.org"],
    "locality": "Boston", "region": "MA", "country": "US"
}))]
pub struct OrganisationBody {
    /// Required when creating with POST; must match the path with PUT.
    pub id: Option<String>,
    pub name: String,
    /// Mail domains; entries of the organisation must lie within them.
    #[serde(default)]
    pub domains: Vec<String>,
    pub description: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
}

impl OrganisationBody {
    pub fn into_input(self) -> Result<OrganisationInput, crate::domain::DomainError> {
        Ok(OrganisationInput {
            id: self.id.as_deref().map(str::parse).transpose()?,
            name: self.name,
            domains: self
                .domains
                .iter()
                .map(|d| d.parse())
                .collect::<Result<_, _>>()?,
            description: self.description,
            locality: self.locality,
            region: self.region,
            country: self.country,
        })
    }
}

/// A trust anchor.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnchorDto {
    pub fingerprint: String,
    pub subject: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub key_algorithm: String,
    /// manual, or the bundle it came from.
    pub source: String,
    pub added_at: DateTime<Utc>,
    pub pem: String,
}

impl From<&TrustAnchor> for AnchorDto {
    fn from(a: &TrustAnchor) -> Self {
        let c = &a.certificate;
        AnchorDto {
            fingerprint: c.fingerprint.to_hex(),
            subject: c.subject.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            key_algorithm: c.key_algorithm.clone(),
            source: a.source.clone(),
            added_at: a.added_at,
            pem: crate::domain::pem_certificate(&c.der),
        }
    }
}

/// A trust bundle: where it comes from and how its last refresh went.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "name": "directtrust",
    "source_kind": "url",
    "source": "https://bundles.example.org/accredited.p7m",
    "signer_pem": "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n",
    "refresh_seconds": 86400,
    "origin": "runtime",
    "created_at": "2026-12-03T08:00:00Z",
    "anchor_count": 2,
    "last_refresh": {"code": "ok", "detail": "2 anchors from 2310 bytes, signed by CN=Bundle Signing", "at": "2026-12-03T08:00:01Z"},
    "last_success_at": "2026-12-03T08:00:01Z"
}))]
pub struct BundleDto {
    pub name: String,
    /// `url` or `file`.
    pub source_kind: &'static str,
    /// The URL, or the file's path on the node.
    pub source: String,
    /// The certificate that must sign the bundle; absent: unsigned bundles are accepted.
    pub signer_pem: Option<String>,
    pub refresh_seconds: u64,
    /// `config` (declared in the configuration file) or `runtime`.
    pub origin: &'static str,
    pub created_at: DateTime<Utc>,
    /// Anchors in force from this bundle (those of the last success).
    pub anchor_count: u64,
    /// The last attempt; absent before the first.
    pub last_refresh: Option<RefreshDto>,
    /// When a refresh last succeeded.
    pub last_success_at: Option<DateTime<Utc>>,
}

/// How one refresh ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshDto {
    /// `ok`, `not-found`, `timeout`, `unreachable`, `bad-format`,
    /// `bad-signer` or `signature-mismatch`; stable, switch on it.
    #[schema(example = "signature-mismatch")]
    pub code: &'static str,
    /// What was read, or what went wrong, for people.
    pub detail: String,
    pub at: DateTime<Utc>,
}

impl From<&TrustBundle> for BundleDto {
    fn from(b: &TrustBundle) -> Self {
        let d = &b.definition;
        BundleDto {
            name: d.name.to_string(),
            source_kind: d.source.kind(),
            source: d.source.location(),
            signer_pem: d.signer.as_deref().map(crate::domain::pem_certificate),
            refresh_seconds: d.refresh.as_secs(),
            origin: d.origin.as_str(),
            created_at: b.created_at,
            anchor_count: b.anchor_count,
            last_refresh: b.last_refresh.as_ref().map(|s| RefreshDto {
                code: s.code.as_str(),
                detail: s.detail.clone(),
                at: s.at,
            }),
            last_success_at: b.last_success_at,
        }
    }
}

/// A bundle after a refresh (or after being added, which refreshes it).
/// A failed refresh is reported here, not as an error: the bundle's
/// `last_refresh.code` says what failed, and its earlier anchors stay.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleRefreshDto {
    pub bundle: BundleDto,
    /// Whether this refresh succeeded (`last_refresh.code` is `ok`).
    pub ok: bool,
    /// Anchors that came into force and went out of force.
    pub added: usize,
    pub removed: usize,
}

impl From<&RefreshOutcome> for BundleRefreshDto {
    fn from(o: &RefreshOutcome) -> Self {
        BundleRefreshDto {
            bundle: BundleDto::from(&o.bundle),
            ok: o.ok(),
            added: o.added,
            removed: o.removed,
        }
    }
}

/// Body of `POST /api/v1/bundles`: `url` or `file`, not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "directtrust",
    "url": "https://bundles.example.org/accredited.p7m",
    "signer_pem": "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n",
    "refresh_seconds": 86400
}))]
pub struct NewBundleBody {
    /// a-z, 0-9, '.', '_', '-'; at most 64.
    pub name: String,
    /// Fetch the bundle from this http:// or https:// URL.
    pub url: Option<String>,
    /// Or read it from this absolute path on the node.
    pub file: Option<String>,
    /// The certificate (PEM) that must sign the bundle, which must then be
    /// a CMS-signed `.p7m` signed by it or by a certificate it issued.
    pub signer_pem: Option<String>,
    /// How often to fetch it again (at least 60; default 86400).
    pub refresh_seconds: Option<u64>,
}
