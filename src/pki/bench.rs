//! A rough throughput measurement of the bulk-import path (issue, parse,
//! bind, evaluate). Ignored by default; run in release:
//!
//! ```text
//! cargo test --release --lib pki::bench -- --ignored --nocapture
//! ```
//!
//! It prints microseconds per certificate, both wall-clock and on-CPU (from
//! `/proc/thread-self/schedstat` on Linux: the time the thread actually ran,
//! which stays honest when other processes share the cores). It asserts that
//! everything it issued is trusted, so it cannot silently time a failing path.

use std::time::Instant;

use super::ca::{CertAuthority, KeyPair, KeyType, LeafKey};
use super::testkit::{ca_spec, leaf_spec, now, rng};
use super::{TrustStore, bind, parse_certificate_der};
use crate::domain::{Certificate, DirectoryAddress, TrustStatus};

/// Nanoseconds this thread has spent on a CPU, where the kernel tells.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// A wall-clock and on-CPU stopwatch.
struct Watch(Instant, Option<u64>);

fn start() -> Watch {
    Watch(Instant::now(), on_cpu_ns())
}

/// Prints and returns on-CPU µs per certificate (wall-clock if unknown).
fn per_cert(label: &str, n: usize, w: Watch) -> f64 {
    let wall = w.0.elapsed().as_secs_f64() * 1e6 / n as f64;
    let cpu = match (w.1, on_cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e3 / n as f64,
        _ => wall,
    };
    println!("{label:<52} {cpu:>8.1} µs/cert on CPU {wall:>8.1} wall  ({n} certs)");
    cpu
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
    let w = start();
    let leaves: Vec<Vec<u8>> = specs
        .iter()
        .map(|s| inter.issue_leaf(s, &mut r).unwrap().cert_der)
        .collect();
    per_cert(
        &format!("issue leaf ({ca_key:?} CA, existing {leaf_key:?} key)"),
        n,
        w,
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

    let w = start();
    let parsed: Vec<Certificate> = s
        .leaves
        .iter()
        .map(|d| parse_certificate_der(d).unwrap())
        .collect();
    per_cert(&format!("{label}: parse"), n, w);

    let w = start();
    for (c, a) in parsed.iter().zip(&s.addresses) {
        bind(c, a).unwrap();
    }
    per_cert(&format!("{label}: bind"), n, w);

    let w = start();
    for c in &parsed {
        let v = store.evaluate(c, inters, now());
        assert_eq!(v.status, TrustStatus::Trusted, "{v:?}");
    }
    per_cert(&format!("{label}: evaluate"), n, w);

    let w = start();
    for (d, a) in s.leaves.iter().zip(&s.addresses) {
        let c = parse_certificate_der(d).unwrap();
        bind(&c, a).unwrap();
        assert_eq!(
            store.evaluate(&c, inters, now()).status,
            TrustStatus::Trusted
        );
    }
    let all = per_cert(&format!("{label}: parse+bind+evaluate"), n, w);
    println!(
        "{:<52} {:>8.0} certs/s on 2 fully available cores",
        format!("{label}: implied"),
        2e6 / all
    );

    for threads in [1usize, 2] {
        let wall = Instant::now();
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
        let secs = wall.elapsed().as_secs_f64();
        println!(
            "{:<52} {:>8.0} certs/s wall-clock (shared machine)",
            format!("{label}: {threads} thread(s)"),
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
