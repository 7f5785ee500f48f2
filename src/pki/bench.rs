//! A rough throughput measurement of the bulk-import path (issue, parse,
//! bind, evaluate). Ignored by default; run in release:
//!
//! ```text
//! cargo test --release --lib pki::bench -- --ignored --nocapture
//! ```
//!
//! It prints microseconds per certificate; it asserts only that everything
//! it issued is trusted, so it can not silently measure a failing path.

use std::time::Instant;

use super::ca::{CertAuthority, KeyPair, KeyType, LeafKey};
use super::testkit::{ca_spec, leaf_spec, now, rng};
use super::{TrustStore, bind, parse_certificate_der};
use crate::domain::{Certificate, DirectoryAddress, TrustStatus};

fn per_cert(label: &str, n: usize, start: Instant) -> f64 {
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label:<48} {us:>9.1} µs/cert  ({n} certs)");
    us
}

struct Setup {
    root: Certificate,
    inter: Certificate,
    leaves: Vec<Vec<u8>>,
    addresses: Vec<DirectoryAddress>,
}

fn setup(ca_key: KeyType, leaf_key: KeyType, n: usize, seed: u64) -> Setup {
    let mut r = rng(seed);
    let root = CertAuthority::new_root(&ca_spec("Bench Root", ca_key), &mut r).unwrap();
    let inter = root
        .issue_intermediate(&ca_spec("Bench Issuing", ca_key), &mut r)
        .unwrap();
    let shared = KeyPair::generate(leaf_key, &mut r)
        .unwrap()
        .public_key()
        .unwrap();
    let specs: Vec<_> = (0..n)
        .map(|i| {
            leaf_spec(
                &format!("user{i}@example.org"),
                LeafKey::Existing(shared.clone()),
            )
        })
        .collect();
    let start = Instant::now();
    let leaves: Vec<Vec<u8>> = specs
        .iter()
        .map(|s| inter.issue_leaf(s, &mut r).unwrap().cert_der)
        .collect();
    per_cert(
        &format!("issue leaf ({ca_key:?} CA, existing {leaf_key:?} key)"),
        n,
        start,
    );
    Setup {
        root: root.certificate().unwrap(),
        inter: inter.certificate().unwrap(),
        leaves,
        addresses: (0..n)
            .map(|i| format!("user{i}@example.org").parse().unwrap())
            .collect(),
    }
}

fn measure(s: &Setup, label: &str) {
    let store = TrustStore::new(std::slice::from_ref(&s.root));
    let inters = std::slice::from_ref(&s.inter);
    let n = s.leaves.len();

    let start = Instant::now();
    let parsed: Vec<Certificate> = s
        .leaves
        .iter()
        .map(|d| parse_certificate_der(d).unwrap())
        .collect();
    per_cert(&format!("{label}: parse"), n, start);

    let start = Instant::now();
    for (c, a) in parsed.iter().zip(&s.addresses) {
        bind(c, a).unwrap();
    }
    per_cert(&format!("{label}: bind"), n, start);

    let start = Instant::now();
    for c in &parsed {
        let v = store.evaluate(c, inters, now());
        assert_eq!(v.status, TrustStatus::Trusted, "{v:?}");
    }
    per_cert(&format!("{label}: evaluate"), n, start);

    for threads in [1usize, 2] {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                let store = &store;
                scope.spawn(move || {
                    for i in (t..n).step_by(threads) {
                        let c = parse_certificate_der(&s.leaves[i]).unwrap();
                        bind(&c, &s.addresses[i]).unwrap();
                        let v = store.evaluate(&c, inters, now());
                        assert_eq!(v.status, TrustStatus::Trusted);
                    }
                });
            }
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<48} {:>9.0} certs/s",
            format!("{label}: parse+bind+evaluate, {threads} thread(s)"),
            n as f64 / secs
        );
    }
}

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn bulk_import_throughput() {
    let p256 = setup(KeyType::EcdsaP256, KeyType::EcdsaP256, 4000, 1);
    measure(&p256, "P-256 issuers");
    let rsa = setup(KeyType::Rsa2048, KeyType::Rsa2048, 1000, 2);
    measure(&rsa, "RSA-2048 issuers");
    let ed = setup(KeyType::Ed25519, KeyType::EcdsaP256, 4000, 3);
    measure(&ed, "Ed25519 issuers");
}
