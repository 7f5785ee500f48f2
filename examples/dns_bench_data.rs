//! Data for the DNS benchmark (`bench/dns.sh`): a demo CA (ECDSA P-256 root
//! and issuing CA), one shared RSA-2048 leaf key, and N entries
//! `userK@bench.example.org` each with its own certificate for that key
//! (a ~1.3 KB CERT answer, as a real RSA-2048 S/MIME certificate makes).
//!
//! ```text
//! cargo run --release --example dns_bench_data -- 100000 /tmp/dnsbench
//! ```
//!
//! Writes `anchor.pem` (the root), `import.jsonl` (the organisation and the
//! entries, for `ccdir import`) and `queries.txt` (one `name CERT` line per
//! entry, shuffled, for dnsperf).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use ccdir::domain::pem_certificate;
use ccdir::pki::ca::{CaSpec, CertAuthority, KeyPair, KeyType, LeafKey, LeafSpec};
use chrono::{Duration, Utc};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const ZONE: &str = "bench.example.org";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().unwrap_or_else(|| "100000".into()).parse()?;
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/dnsbench".into()));
    std::fs::create_dir_all(&dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let now = Utc::now();
    let spec = |cn: &str, path_len| CaSpec {
        common_name: cn.into(),
        organization: Some("ccdir bench".into()),
        key_type: KeyType::EcdsaP256,
        path_len,
        not_before: now - Duration::days(10),
        not_after: now + Duration::days(3650),
    };
    let root = CertAuthority::new_root(&spec("Bench Root", Some(1)), &mut rng)?;
    let issuing = root.issue_intermediate(&spec("Bench Issuing", Some(0)), &mut rng)?;
    let leaf_key = KeyPair::generate(KeyType::Rsa2048, &mut rng)?.public_key()?;
    std::fs::write(dir.join("anchor.pem"), pem_certificate(root.cert_der()))?;
    let issuing_pem = pem_certificate(issuing.cert_der());

    let lines: Vec<String> = (0..count)
        .into_par_iter()
        .map(|i| {
            let address = format!("user{i}@{ZONE}");
            let spec = LeafSpec {
                subject_cn: format!("Bench User {i}"),
                email: Some(address.clone()),
                dns: None,
                not_before: now - Duration::days(1),
                not_after: now + Duration::days(365),
                policies: vec!["2.16.840.1.101.3.2.1.3.3".into()],
                key: LeafKey::Existing(leaf_key.clone()),
            };
            let der = issuing
                .issue_leaf(&spec, &mut rand::rng())
                .expect("leaf")
                .cert_der;
            serde_json::json!({
                "address": address,
                "kind": "person",
                "display_name": format!("Bench User {i}"),
                "organisation": "bench",
                "certificates": [pem_certificate(&der), issuing_pem],
            })
            .to_string()
        })
        .collect();
    let mut out = BufWriter::new(std::fs::File::create(dir.join("import.jsonl"))?);
    writeln!(
        out,
        r#"{{"type":"organisation","id":"bench","name":"Bench","domains":["{ZONE}"]}}"#
    )?;
    for line in &lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    let mut names: Vec<usize> = (0..count).collect();
    names.shuffle(&mut rng);
    let mut q = BufWriter::new(std::fs::File::create(dir.join("queries.txt"))?);
    for i in names {
        writeln!(q, "user{i}.{ZONE} CERT")?;
    }
    q.flush()?;
    eprintln!("wrote {count} entries to {}", dir.display());
    Ok(())
}
