//! Domain values for the storage battery.
//!
//! Certificates here are *not* real X.509: storage only keeps and returns
//! what `pki` parsed, so distinct DER-sized byte strings with matching
//! fingerprints are enough. When `pki` can generate real certificates, swap
//! [`certificate`] for one that does; nothing else depends on the bytes.

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

use ccdir::domain::{
    Assurance, Binding, Certificate, DirectoryAddress, Entry, EntryCertificate, EntryKind,
    EntryRecord, Fingerprint, Identifier, KeyUsage, NodeId, OrgId, Organisation, TrustAnchor,
    TrustStatus, TrustVerdict, Visibility,
};

/// A time with microseconds, the precision the store keeps.
pub fn at(secs: i64, micros: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, micros * 1_000).single().unwrap()
}

/// About 1.2 KB of bytes unique to `seed`, like a real certificate.
fn der(seed: u64) -> Vec<u8> {
    // SplitMix64: cheap, deterministic, distinct streams per seed.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xC0FF_EE00;
    let mut out = Vec::with_capacity(1_200);
    out.extend_from_slice(&[0x30, 0x82, 0x04, 0xac]);
    while out.len() < 1_200 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(1_200);
    out
}

pub fn certificate(seed: u64, email: &str) -> Certificate {
    let der = der(seed);
    let fingerprint = Fingerprint(Sha256::digest(&der).into());
    Certificate {
        fingerprint,
        der,
        subject: format!("EMAIL={email},CN=Test {seed}"),
        issuer: "CN=Test CA,O=ccdir tests".into(),
        serial: format!("{seed:x}"),
        not_before: at(1_700_000_000, 0),
        not_after: at(1_800_000_000, 0),
        email_addresses: vec![email.to_owned()],
        dns_names: vec![],
        key_usage: vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
        extended_key_usage: vec!["1.3.6.1.5.5.7.3.4".into()],
        policies: vec!["2.16.840.1.101.3.2.1.3.13".into()],
        assurance: Some(Assurance::Medium),
        key_algorithm: "rsa-2048".into(),
        is_ca: false,
    }
}

pub fn trusted(at_secs: i64) -> TrustVerdict {
    TrustVerdict {
        status: TrustStatus::Trusted,
        reason: "chains to Test CA".into(),
        evaluated_at: at(at_secs, 123_456),
    }
}

pub fn entry_certificate(seed: u64, email: &str) -> EntryCertificate {
    EntryCertificate {
        certificate: certificate(seed, email),
        binding: Binding::Address,
        trust: trusted(1_750_000_000),
        chain: vec![der(seed ^ 0xFFFF_0000), der(seed ^ 0xFFFF_0001)],
    }
}

pub fn addr(s: &str) -> DirectoryAddress {
    s.parse().unwrap()
}

pub fn org_id(s: &str) -> OrgId {
    s.parse().unwrap()
}

/// A person with every field set.
pub fn person(address: &str, org: Option<&str>) -> Entry {
    Entry {
        address: addr(address),
        kind: EntryKind::Person,
        display_name: format!("Dr {address}"),
        given_name: Some("Alice".into()),
        surname: Some("Smith".into()),
        organisation: org.map(org_id),
        unit: Some("Cardiology".into()),
        title: Some("Head of department".into()),
        profession: Some("Physician".into()),
        specialty: Some("Cardiology".into()),
        identifiers: vec![
            Identifier {
                scheme: "NPI".into(),
                value: "1234567893".into(),
            },
            Identifier {
                scheme: "local".into(),
                value: "A-17".into(),
            },
        ],
        locality: Some("Boston".into()),
        region: Some("MA".into()),
        country: Some("US".into()),
        postal_code: Some("02114".into()),
        phone: Some("+1 617 555 0100".into()),
        visibility: Visibility::Internal,
        origin: NodeId("ab".repeat(32)),
        version: 1,
        updated_at: at(1_760_000_000, 654_321),
    }
}

/// A domain entry with every optional field empty.
pub fn bare_domain(domain: &str) -> Entry {
    Entry {
        address: addr(domain),
        kind: EntryKind::Domain,
        display_name: domain.to_owned(),
        given_name: None,
        surname: None,
        organisation: None,
        unit: None,
        title: None,
        profession: None,
        specialty: None,
        identifiers: vec![],
        locality: None,
        region: None,
        country: None,
        postal_code: None,
        phone: None,
        visibility: Visibility::Public,
        origin: NodeId("local".into()),
        version: 1,
        updated_at: at(1_760_000_000, 0),
    }
}

/// `n` records `user{i}@{domain}`, each with one certificate seeded from
/// `seed_base + i`.
pub fn records(domain: &str, n: usize, seed_base: u64) -> Vec<EntryRecord> {
    (0..n)
        .map(|i| {
            let address = format!("user{i}@{domain}");
            EntryRecord {
                entry: person(&address, None),
                certificates: vec![entry_certificate(seed_base + i as u64, &address)],
            }
        })
        .collect()
}

pub fn organisation(id: &str) -> Organisation {
    Organisation {
        id: org_id(id),
        name: format!("Organisation {id}"),
        domains: vec![
            "example.org".parse().unwrap(),
            "cardio.example.net".parse().unwrap(),
        ],
        description: Some("A practice".into()),
        locality: Some("Boston".into()),
        region: Some("MA".into()),
        country: Some("US".into()),
        origin: NodeId("cd".repeat(32)),
        updated_at: at(1_760_000_001, 1),
    }
}

pub fn anchor(seed: u64) -> TrustAnchor {
    let mut certificate = certificate(seed, "ca@example.org");
    certificate.is_ca = true;
    certificate.key_usage = vec![KeyUsage::KeyCertSign, KeyUsage::CrlSign];
    certificate.assurance = None;
    certificate.dns_names = vec!["ca.example.org".into()];
    TrustAnchor {
        certificate,
        source: "manual".into(),
        added_at: at(1_760_000_002, 2),
    }
}
