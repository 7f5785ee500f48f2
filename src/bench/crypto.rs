//! `ccdir bench crypto`: what the cryptography alone costs per record that
//! a root ingests, on one core, with nothing else running — the floor under
//! `bench federation` and `bench run` that no storage or indexing change can
//! go below.
//!
//! A record arriving from a child is decoded and its ed25519 signature
//! verified, the certificate it carries is parsed, bound to its address and
//! chained to an anchor (one ECDSA P-256 signature on the leaf; the
//! intermediate's own signature is checked once and remembered), and the
//! record is relayed into the root's log under the root's signature. The
//! records, certificates and keys are those `bench federation` serves.

use std::hint::black_box;
use std::time::Instant;

use chrono::Utc;
use ed25519_dalek::{Signature, VerifyingKey};

use super::federation::{ca_spec, org_log};
use crate::core::certificates::prepare;
use crate::domain::TrustStatus;
use crate::federation::{Body, Hash, Key, Record, RecordHeader, body_type, decode_record};
use crate::pki::ca::{CertAuthority, KeyPair, KeyType};
use crate::pki::{NodeKey, TrustStore, parse_certificates, verify_ed25519};

/// One measured operation.
struct Row {
    what: &'static str,
    per_op_us: f64,
    /// Part of what one ingested record costs at least.
    in_floor: bool,
}

/// Runs `f` over every item and returns µs per item.
fn per_item<T>(items: &[T], mut f: impl FnMut(&T)) -> f64 {
    let started = Instant::now();
    for item in items {
        f(item);
    }
    started.elapsed().as_secs_f64() * 1e6 / items.len() as f64
}

/// Measures over `n` records (at least 100) and returns the report (Markdown).
pub fn run(n: usize) -> anyhow::Result<String> {
    let n = n.max(100);
    let rows = measure(n)?;
    let floor = floor(&rows);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let mut out = format!(
        "Cryptography per ingested record ({n} records of `bench federation`, one core, one thread):\n\n\
         | operation | µs per record |\n|---|---:|\n"
    );
    for r in &rows {
        out.push_str(&format!("| {} | {:.1} |\n", r.what, r.per_op_us));
    }
    out.push_str(&format!(
        "\nFloor per record (the first three rows): {floor:.0} µs of CPU → at most \
         {:.0} records/s on one core, {:.0} records/s on all {cores} cores of this \
         machine, before anything is stored, indexed or served.\n",
        1e6 / floor,
        cores as f64 * 1e6 / floor
    ));
    Ok(out)
}

/// The least CPU one ingested record costs, in µs: the rows in the floor.
fn floor(rows: &[Row]) -> f64 {
    rows.iter()
        .filter(|r| r.in_floor)
        .map(|r| r.per_op_us)
        .sum()
}

/// Times every operation over `n` real records; panics if one of them
/// stops verifying or chaining (the figures would mean nothing).
fn measure(n: usize) -> anyhow::Result<Vec<Row>> {
    let mut rng = rand::rng();
    let root_key = NodeKey::generate(&mut rng);
    let ca = CertAuthority::new_root(&ca_spec("Bench Root"), &mut rng)?;
    let issuing = ca.issue_intermediate(&ca_spec("Bench Issuing"), &mut rng)?;
    let leaf_key = KeyPair::generate(KeyType::EcdsaP256, &mut rng)?.public_key()?;
    let log = org_log(0, n, &root_key, Some(&issuing), Some(&leaf_key))?;
    // The first record is the delegation; the rest are entry upserts.
    let raw: Vec<&[u8]> = log.records[1..].iter().map(|r| r.2.as_slice()).collect();
    let trust = TrustStore::new(&parse_certificates(ca.cert_der())?);
    let now = Utc::now();

    let mut rows = Vec::new();
    rows.push(Row {
        what: "record decode + ed25519 verify (`decode_record`)",
        per_op_us: per_item(&raw, |b| {
            black_box(decode_record(b).expect("a record the bench signed verifies"));
        }),
        in_floor: true,
    });

    let decoded: Vec<Record> = raw
        .iter()
        .map(|b| decode_record(b).expect("verified above"))
        .collect();
    let upserts: Vec<_> = decoded
        .iter()
        .map(|r| match r.body() {
            Ok(Body::EntryUpsert(p)) => Ok(p),
            other => Err(anyhow::anyhow!("expected an entry upsert, got {other:?}")),
        })
        .collect::<anyhow::Result<_>>()?;
    let blobs: Vec<(_, Vec<Vec<u8>>)> = upserts
        .iter()
        .map(|p| {
            let c = &p.certificates[0];
            let mut blobs = vec![c.der.clone()];
            blobs.extend(c.chain.iter().cloned());
            (p.entry.address.clone(), blobs)
        })
        .collect();
    // Warm the intermediate's edge, as a long ingest has it.
    prepare(&trust, &blobs[0].0, &blobs[0].1, now)?;
    rows.push(Row {
        what: "certificate: parse leaf + chain, bind, ECDSA P-256 chain check (`prepare`)",
        per_op_us: per_item(&blobs, |(address, blobs)| {
            let prepared = prepare(&trust, address, blobs, now).expect("the bench's certificates");
            assert_eq!(prepared[0].trust.status, TrustStatus::Trusted);
            black_box(prepared);
        }),
        in_floor: true,
    });

    let signer = NodeKey::generate(&mut rng);
    let me = Key(signer.public_key_bytes());
    let mut prev = Hash::ZERO;
    let mut seq = 0;
    rows.push(Row {
        what: "relay: wrap + ed25519 sign into the root's log (`Record::sign`)",
        per_op_us: per_item(&raw, |b| {
            seq += 1;
            let r = Record::sign(
                RecordHeader {
                    log: me,
                    signer: me,
                    seq,
                    prev,
                    time: now,
                },
                body_type::RELAY,
                &Body::relay_payload(b),
                &signer,
            )
            .expect("signing");
            prev = r.hash();
        }),
        in_floor: true,
    });

    // Where the parts of those go.
    let certs: Vec<_> = blobs
        .iter()
        .map(|(_, b)| parse_certificates(&b[0]).map(|mut v| v.remove(0)))
        .collect::<Result<_, _>>()?;
    let cas = parse_certificates(issuing.cert_der())?;
    rows.push(Row {
        what: "… of which X.509 parsing (leaf + intermediate)",
        per_op_us: per_item(&blobs, |(_, b)| {
            for blob in b {
                black_box(parse_certificates(blob).expect("parses"));
            }
        }),
        in_floor: false,
    });
    rows.push(Row {
        what: "… of which the chain check (ECDSA P-256 on the leaf)",
        per_op_us: per_item(&certs, |leaf| {
            black_box(trust.evaluate(leaf, &cas, now));
        }),
        in_floor: false,
    });
    let signed: Vec<(Vec<u8>, [u8; 64])> =
        raw.iter().map(|b| (b.to_vec(), signer.sign(b))).collect();
    let public = signer.public_key_bytes();
    rows.push(Row {
        what: "… ed25519 verify, the key decoded each time",
        per_op_us: per_item(&signed, |(m, s)| {
            VerifyingKey::from_bytes(&public)
                .and_then(|k| k.verify_strict(m, &Signature::from_bytes(s)))
                .expect("verifies");
        }),
        in_floor: false,
    });
    rows.push(Row {
        what: "… ed25519 verify, the signer's key remembered (`verify_ed25519`)",
        per_op_us: per_item(&signed, |(m, s)| {
            verify_ed25519(&public, m, s).expect("verifies");
        }),
        in_floor: false,
    });
    rows.push(Row {
        what: "… ed25519 sign alone",
        per_op_us: per_item(&signed, |(m, _)| {
            black_box(signer.sign(m));
        }),
        in_floor: false,
    });

    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_is_timed_and_the_floor_is_the_three_per_record_steps() {
        let rows = super::measure(100).unwrap();
        assert_eq!(rows.len(), 8);
        assert!(
            rows.iter()
                .all(|r| r.per_op_us.is_finite() && r.per_op_us > 0.0)
        );
        let in_floor: Vec<f64> = rows
            .iter()
            .filter(|r| r.in_floor)
            .map(|r| r.per_op_us)
            .collect();
        assert_eq!(in_floor.len(), 3);
        assert_eq!(super::floor(&rows), in_floor.iter().sum::<f64>());
        // Verifying, chaining and signing a record is never free.
        assert!(super::floor(&rows) > 5.0, "{}", super::floor(&rows));
        let report = super::run(100).unwrap();
        assert!(report.contains("Floor per record"), "{report}");
    }
}
