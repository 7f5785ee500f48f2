//! Test data for the LDAP benchmark (`bench/ldap.sh`): the same directory
//! of people with certificates, written for ccdir (`ccdir import`) and for
//! OpenLDAP (`slapadd`), plus the lists the load client draws from.
//!
//! ```text
//! cargo run --release --example ldap_bench_data -- <entries> <out dir>
//! ```
//!
//! Writes `ccdir.ldif`, `slapd.ldif`, `mails.txt` (every address) and
//! `prefixes.txt` (three-letter starts of given names and surnames, the
//! text a user types before the address book asks). Certificates come
//! from an ECDSA P-256 CA certifying one shared leaf key (fast to make);
//! names from small word lists, with a seeded RNG so runs compare.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ccdir::pki::ca::{CaSpec, CertAuthority, KeyPair, KeyType, LeafKey, LeafSpec};
use chrono::{Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[rustfmt::skip]
const GIVEN: &[&str] = &[
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily",
    "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Dorothy", "Kevin", "Carol", "Brian",
    "Amanda", "George", "Melissa", "Edward", "Deborah", "Ronald", "Stephanie", "Timothy",
    "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen",
    "Gary", "Amy", "Nicholas", "Shirley", "Eric", "Angela", "Jonathan", "Helen", "Stephen",
];

#[rustfmt::skip]
const SURNAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner",
    "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales",
    "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey",
    "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks",
    "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell",
    "Smithers", "Smits", "Smiley", "Smirnov", "Smallwood", "Snow", "Snyder", "Soto", "Spencer",
];

/// Organisations the entries are spread over.
const ORGS: usize = 100;

fn attr(out: &mut (impl Write + ?Sized), name: &str, value: &str) -> std::io::Result<()> {
    if value.is_ascii() && !value.starts_with([' ', ':', '<']) {
        writeln!(out, "{name}: {value}")
    } else {
        writeln!(out, "{name}:: {}", B64.encode(value))
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(1).map_or(Ok(100_000), |a| a.parse())?;
    let out = PathBuf::from(args.get(2).map_or("bench-data", String::as_str));
    std::fs::create_dir_all(&out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(3389);
    let now = Utc::now();
    let ca = CertAuthority::new_root(
        &CaSpec {
            common_name: "LDAP bench CA".into(),
            organization: Some("ccdir bench".into()),
            key_type: KeyType::EcdsaP256,
            path_len: Some(0),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(3650),
        },
        &mut rng,
    )?;
    let leaf_key = KeyPair::generate(KeyType::EcdsaP256, &mut rng)?.public_key()?;

    let mut ccdir = BufWriter::new(File::create(out.join("ccdir.ldif"))?);
    let mut slapd = BufWriter::new(File::create(out.join("slapd.ldif"))?);
    let mut mails = BufWriter::new(File::create(out.join("mails.txt"))?);
    writeln!(
        slapd,
        "dn: dc=ccdir\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\ndc: ccdir\no: ccdir\n"
    )?;
    for i in 0..ORGS {
        let (id, name, domain) = (
            format!("org-{i:03}"),
            format!("Health Organisation {i}"),
            format!("direct.org{i:03}.example.org"),
        );
        let dn = format!("o={id},dc=ccdir");
        for out in [&mut ccdir as &mut dyn Write, &mut slapd] {
            writeln!(
                out,
                "dn: {dn}\nobjectClass: top\nobjectClass: organization\no: {id}\no: {name}"
            )?;
        }
        writeln!(ccdir, "associatedDomain: {domain}\n")?;
        writeln!(slapd)?;
    }
    let mut prefixes = BTreeSet::new();
    for n in 0..count {
        let given = GIVEN[rng.random_range(0..GIVEN.len())];
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        prefixes.insert(given[..3].to_lowercase());
        prefixes.insert(surname[..3].to_lowercase());
        let org = n % ORGS;
        let mail = format!(
            "{}.{}.{n}@direct.org{org:03}.example.org",
            given.to_lowercase(),
            surname.to_lowercase()
        );
        let der = ca
            .issue_leaf(
                &LeafSpec {
                    subject_cn: format!("{given} {surname}"),
                    email: Some(mail.clone()),
                    dns: None,
                    not_before: now - Duration::days(1),
                    not_after: now + Duration::days(730),
                    policies: Vec::new(),
                    key: LeafKey::Existing(leaf_key.clone()),
                },
                &mut rng,
            )?
            .cert_der;
        let dn = format!("mail={mail},o=org-{org:03},dc=ccdir");
        for out in [&mut ccdir as &mut dyn Write, &mut slapd] {
            writeln!(out, "dn: {dn}")?;
            for class in ["top", "person", "organizationalPerson", "inetOrgPerson"] {
                writeln!(out, "objectClass: {class}")?;
            }
            attr(out, "mail", &mail)?;
            attr(out, "cn", &format!("{given} {surname}"))?;
            attr(out, "displayName", &format!("{given} {surname}"))?;
            attr(out, "givenName", given)?;
            attr(out, "sn", surname)?;
            attr(out, "title", "MD")?;
            attr(out, "l", "Boston")?;
            writeln!(out, "userCertificate;binary:: {}\n", B64.encode(&der))?;
        }
        writeln!(mails, "{mail}")?;
        if n % 10_000 == 0 {
            eprint!("\r{n} entries");
        }
    }
    let mut p = BufWriter::new(File::create(out.join("prefixes.txt"))?);
    for prefix in prefixes {
        writeln!(p, "{prefix}")?;
    }
    for w in [&mut ccdir as &mut dyn Write, &mut slapd, &mut mails, &mut p] {
        w.flush()?;
    }
    eprintln!(
        "\rwrote {count} entries in {ORGS} organisations to {}",
        out.display()
    );
    Ok(())
}
