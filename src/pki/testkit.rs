//! Test fixtures: real PKIs made with the demo CA from a seeded RNG.

use chrono::{DateTime, TimeZone, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::ca::{CaSpec, CertAuthority, KeyType, LeafKey, LeafSpec};
use super::parse_certificate_der;
use crate::domain::Certificate;

pub(crate) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub(crate) fn ymd(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().unwrap()
}

/// "Now" in the tests.
pub(crate) fn now() -> DateTime<Utc> {
    ymd(2030, 6, 1)
}

pub(crate) fn ca_spec(cn: &str, key_type: KeyType) -> CaSpec {
    CaSpec {
        common_name: cn.into(),
        organization: Some("Example Health".into()),
        key_type,
        path_len: None,
        not_before: ymd(2029, 1, 1),
        not_after: ymd(2040, 1, 1),
    }
}

pub(crate) fn leaf_spec(email: &str, key: LeafKey) -> LeafSpec {
    LeafSpec {
        subject_cn: "Alice Example".into(),
        email: Some(email.into()),
        dns: None,
        not_before: ymd(2030, 1, 1),
        not_after: ymd(2031, 1, 1),
        policies: vec![
            "2.16.840.1.101.3.2.1.3.3".into(),
            "1.3.6.1.4.1.41179.1.2".into(),
        ],
        key,
    }
}

/// A root, an intermediate below it and a leaf below that.
pub(crate) struct Pki {
    pub root: CertAuthority,
    pub inter: CertAuthority,
    pub root_cert: Certificate,
    pub inter_cert: Certificate,
    pub leaf: Certificate,
}

pub(crate) fn pki(key_type: KeyType, seed: u64) -> Pki {
    let mut r = rng(seed);
    let root = CertAuthority::new_root(&ca_spec("Test Root CA", key_type), &mut r).unwrap();
    let inter = root
        .issue_intermediate(&ca_spec("Test Issuing CA", key_type), &mut r)
        .unwrap();
    let leaf_key = if key_type == KeyType::Rsa2048 {
        LeafKey::Generate(KeyType::EcdsaP256)
    } else {
        LeafKey::Generate(key_type)
    };
    let leaf = inter
        .issue_leaf(&leaf_spec("Alice@Example.org", leaf_key), &mut r)
        .unwrap();
    Pki {
        root_cert: root.certificate().unwrap(),
        inter_cert: inter.certificate().unwrap(),
        leaf: parse_certificate_der(&leaf.cert_der).unwrap(),
        root,
        inter,
    }
}
