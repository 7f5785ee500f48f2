//! The demo directory: reads the description in `seeds/` and loads it
//! through the same import path users use. The description is also built
//! into the binary, so `serve --demo` works from any directory ([`Seeds`]). Names, places and choices are
//! deterministic for the configured seed; certificates come from a demo CA
//! made fresh on every run, so no private key is ever committed:
//!
//! * `ccdir Demo Root CA` (RSA-2048), added as a trust anchor, issues
//!   `ccdir Demo Issuing CA` (ECDSA P-256), which issues the leaves;
//! * `Unlisted Demo CA` is no anchor: its certificates show as untrusted;
//! * some leaves are expired or not yet valid, as `demo.toml` says.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Deserialize;

use crate::core::{Directory, ImportOptions, ImportProgress};
use crate::domain::{
    Caller, ChangeSeq, EntryInput, EntryKind, Identifier, OrganisationInput, Visibility,
    pem_certificate,
};
use crate::formats::{ImportRecord, ImportRow};
use crate::pki::ca::{CaSpec, CertAuthority, KeyPair, KeyType, LeafKey, LeafSpec, PublicKey};

/// `seeds/demo.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoConfig {
    rng_seed: u64,
    internal_fraction: f64,
    expired_fraction: f64,
    not_yet_valid_fraction: f64,
    untrusted_fraction: f64,
    rsa_leaf_fraction: f64,
    services: Vec<String>,
}

/// One row of `seeds/organisations.csv`.
#[derive(Debug, Deserialize)]
struct OrgRow {
    id: String,
    name: String,
    domain: String,
    kind: String,
    locality: String,
    region: String,
    country: String,
    postal_code: String,
    area_code: String,
    focus: String,
    people: usize,
}

/// One row of `seeds/professions.csv`.
#[derive(Debug, Deserialize)]
struct ProfessionRow {
    profession: String,
    title: String,
    weight: u32,
    org_kinds: String,
}

/// What loading the demo did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub organisations: usize,
    pub entries: usize,
    pub certificates: usize,
    pub seq: ChangeSeq,
}

/// Where the seed description comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeds {
    /// A directory holding `demo.toml` and the lists it names.
    Dir(PathBuf),
    /// The copy of the checkout's `seeds/` built into the binary.
    Builtin,
}

/// The files of `seeds/`, as they were when the binary was built.
const BUILTIN: [(&str, &str); 5] = [
    ("demo.toml", include_str!("../seeds/demo.toml")),
    (
        "organisations.csv",
        include_str!("../seeds/organisations.csv"),
    ),
    ("professions.csv", include_str!("../seeds/professions.csv")),
    ("given-names.txt", include_str!("../seeds/given-names.txt")),
    ("surnames.txt", include_str!("../seeds/surnames.txt")),
];

impl Seeds {
    /// `dir` when one is given; else `./seeds` when it holds a description
    /// (a checkout), else the built-in copy.
    pub fn locate(dir: Option<&Path>) -> Seeds {
        match dir {
            Some(dir) => Seeds::Dir(dir.to_owned()),
            None if Path::new("seeds/demo.toml").is_file() => Seeds::Dir("seeds".into()),
            None => Seeds::Builtin,
        }
    }

    /// The text of one file of the description.
    pub fn read(&self, file: &str) -> anyhow::Result<String> {
        match self {
            Seeds::Dir(dir) => {
                let path = dir.join(file);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))
            }
            Seeds::Builtin => BUILTIN
                .iter()
                .find(|(name, _)| *name == file)
                .map(|(_, text)| (*text).to_owned())
                .with_context(|| format!("the built-in seeds have no {file}")),
        }
    }

    /// A list file: one item per line, blank lines and `#` comments skipped.
    pub fn list(&self, file: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .read(file)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    }

    fn csv<T: for<'de> Deserialize<'de>>(&self, file: &str) -> anyhow::Result<Vec<T>> {
        let text = self.read(file)?;
        csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<Vec<T>, _>>()
            .with_context(|| format!("parsing {self}/{file}"))
    }
}

impl fmt::Display for Seeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seeds::Dir(dir) => write!(f, "{}", dir.display()),
            Seeds::Builtin => f.write_str("(built-in seeds)"),
        }
    }
}

/// Folds a name into mailbox-local-part letters: accents dropped, other
/// characters removed.
fn fold(name: &str) -> String {
    name.chars()
        .filter_map(|c| {
            let base = match c {
                'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ñ' | 'ń' => 'n',
                'ç' | 'ć' => 'c',
                'ł' => 'l',
                'ś' => 's',
                'ź' | 'ż' => 'z',
                c => c.to_ascii_lowercase(),
            };
            base.is_ascii_alphanumeric().then_some(base)
        })
        .collect()
}

/// A valid NPI: `1` and eight random digits, then the Luhn check digit.
fn npi(rng: &mut impl Rng) -> String {
    let body = format!("1{:08}", rng.random_range(0..100_000_000u32));
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|candidate| crate::domain::npi_is_valid(candidate))
        .expect("one check digit fits")
}

/// The CAs and leaf keys certificates are made from.
struct DemoPki {
    root: CertAuthority,
    issuing: CertAuthority,
    unlisted: CertAuthority,
    rsa_keys: Vec<PublicKey>,
    ec_keys: Vec<PublicKey>,
    now: DateTime<Utc>,
}

/// What a certificate should turn out as.
#[derive(Clone, Copy)]
enum Fate {
    Trusted,
    Expired,
    NotYetValid,
    Untrusted,
}

impl DemoPki {
    fn new(now: DateTime<Utc>) -> anyhow::Result<DemoPki> {
        let mut rng = rand::rng();
        let spec = |cn: &str, key_type, path_len| CaSpec {
            common_name: cn.to_owned(),
            organization: Some("ccdir demo".into()),
            key_type,
            path_len,
            not_before: now - Duration::days(400),
            not_after: now + Duration::days(3650),
        };
        let root = CertAuthority::new_root(
            &spec("ccdir Demo Root CA", KeyType::Rsa2048, Some(1)),
            &mut rng,
        )?;
        let issuing = root.issue_intermediate(
            &spec("ccdir Demo Issuing CA", KeyType::EcdsaP256, Some(0)),
            &mut rng,
        )?;
        let unlisted = CertAuthority::new_root(
            &spec("Unlisted Demo CA", KeyType::EcdsaP256, Some(0)),
            &mut rng,
        )?;
        let key = |t, rng: &mut rand::rngs::ThreadRng| -> anyhow::Result<PublicKey> {
            Ok(KeyPair::generate(t, rng)?.public_key()?)
        };
        Ok(DemoPki {
            rsa_keys: (0..2)
                .map(|_| key(KeyType::Rsa2048, &mut rng))
                .collect::<anyhow::Result<_>>()?,
            ec_keys: (0..4)
                .map(|_| key(KeyType::EcdsaP256, &mut rng))
                .collect::<anyhow::Result<_>>()?,
            root,
            issuing,
            unlisted,
            now,
        })
    }

    /// PEM of a leaf for `email` or `dns` (and its issuing CA, for the path).
    fn leaf(
        &self,
        cn: &str,
        email: Option<&str>,
        dns: Option<&str>,
        fate: Fate,
        rsa: bool,
        choices: &mut ChaCha20Rng,
    ) -> anyhow::Result<Vec<String>> {
        let age = Duration::days(choices.random_range(1..300));
        let life = Duration::days(choices.random_range(365..730));
        let (not_before, not_after) = match fate {
            Fate::Expired => (self.now - Duration::days(800), self.now - age),
            Fate::NotYetValid => (self.now + age, self.now + age + life),
            Fate::Trusted | Fate::Untrusted => (self.now - age, self.now - age + life),
        };
        let pool = if rsa { &self.rsa_keys } else { &self.ec_keys };
        let spec = LeafSpec {
            subject_cn: cn.to_owned(),
            email: email.map(str::to_owned),
            dns: dns.map(str::to_owned),
            not_before,
            not_after,
            // DirectTrust LoA 3 and FBCA medium, so assurance shows.
            policies: vec![
                "1.3.6.1.4.1.41179.1.3".into(),
                "2.16.840.1.101.3.2.1.3.3".into(),
            ],
            key: LeafKey::Existing(pool[choices.random_range(0..pool.len())].clone()),
        };
        let issuer = match fate {
            Fate::Untrusted => &self.unlisted,
            _ => &self.issuing,
        };
        let leaf = issuer.issue_leaf(&spec, &mut rand::rng())?;
        Ok(vec![
            pem_certificate(&leaf.cert_der),
            pem_certificate(issuer.cert_der()),
        ])
    }
}

/// Builds every row of the demo directory.
fn rows(seeds: &Seeds, pki: &DemoPki) -> anyhow::Result<Vec<ImportRow>> {
    let config: DemoConfig =
        toml::from_str(&seeds.read("demo.toml")?).context("parsing demo.toml")?;
    let orgs: Vec<OrgRow> = seeds.csv("organisations.csv")?;
    let professions: Vec<ProfessionRow> = seeds.csv("professions.csv")?;
    let given = seeds.list("given-names.txt")?;
    let surnames = seeds.list("surnames.txt")?;
    let mut rng = ChaCha20Rng::seed_from_u64(config.rng_seed);

    let fate = |rng: &mut ChaCha20Rng| {
        let r: f64 = rng.random();
        if r < config.expired_fraction {
            Fate::Expired
        } else if r < config.expired_fraction + config.not_yet_valid_fraction {
            Fate::NotYetValid
        } else if r < config.expired_fraction
            + config.not_yet_valid_fraction
            + config.untrusted_fraction
        {
            Fate::Untrusted
        } else {
            Fate::Trusted
        }
    };

    let mut out = Vec::new();
    let row = |record| ImportRow {
        line: 0,
        record: Ok(record),
    };
    for org in &orgs {
        out.push(row(ImportRecord::Organisation(OrganisationInput {
            id: Some(org.id.parse()?),
            name: org.name.clone(),
            domains: vec![org.domain.parse()?],
            description: Some(format!("{} ({})", org.focus.replace(';', ", "), org.kind)),
            locality: Some(org.locality.clone()),
            region: Some(org.region.clone()),
            country: Some(org.country.clone()),
        })));
        let focus: Vec<&str> = org.focus.split(';').collect();
        let eligible: Vec<&ProfessionRow> = professions
            .iter()
            .filter(|p| p.org_kinds.split(';').any(|k| k == org.kind))
            .collect();
        let total_weight: u32 = eligible.iter().map(|p| p.weight).sum();
        let base = |kind, address: String, name: String| EntryInput {
            address: Some(address.parse().expect("seed addresses are valid")),
            kind: Some(kind),
            display_name: Some(name),
            organisation: Some(org.id.parse().expect("seed ids are valid")),
            locality: Some(org.locality.clone()),
            region: Some(org.region.clone()),
            country: Some(org.country.clone()),
            postal_code: Some(org.postal_code.clone()),
            phone: Some(format!(
                "+1 {} 555 {:04}",
                org.area_code,
                100 + out_len_hint(&org.id)
            )),
            visibility: Some(Visibility::Public),
            ..Default::default()
        };

        let mut taken = HashSet::new();
        for _ in 0..org.people {
            let g = &given[rng.random_range(0..given.len())];
            let s = &surnames[rng.random_range(0..surnames.len())];
            let mut local = format!("{}.{}", fold(g), fold(s));
            let mut n = 2;
            while !taken.insert(local.clone()) {
                local = format!("{}.{}{n}", fold(g), fold(s));
                n += 1;
            }
            let address = format!("{local}@{}", org.domain);
            let specialty = if rng.random_bool(0.5) {
                focus[0]
            } else {
                focus[rng.random_range(0..focus.len())]
            };
            let mut pick = rng.random_range(0..total_weight.max(1));
            let profession = eligible
                .iter()
                .find(|p| {
                    if pick < p.weight {
                        true
                    } else {
                        pick -= p.weight;
                        false
                    }
                })
                .copied();
            let rsa = rng.random_bool(config.rsa_leaf_fraction);
            let certificates = pki.leaf(
                &format!("{g} {s}"),
                Some(&address),
                None,
                fate(&mut rng),
                rsa,
                &mut rng,
            )?;
            let mut entry = base(EntryKind::Person, address, format!("{g} {s}"));
            entry.given_name = Some(g.clone());
            entry.surname = Some(s.clone());
            entry.profession = profession.map(|p| p.profession.clone());
            entry.title = profession.map(|p| p.title.clone());
            entry.specialty = Some(specialty.to_owned());
            entry.unit = (org.kind == "hospital").then(|| specialty.to_owned());
            entry.identifiers = vec![Identifier {
                scheme: "NPI".into(),
                value: npi(&mut rng),
            }];
            entry.phone = Some(format!(
                "+1 {} 555 {:04}",
                org.area_code,
                rng.random_range(100..200)
            ));
            if rng.random_bool(config.internal_fraction) {
                entry.visibility = Some(Visibility::Internal);
            }
            entry.certificates = certificates;
            out.push(row(ImportRecord::Entry(Box::new(entry))));
        }

        let mut org_mailbox = base(
            EntryKind::Organisation,
            format!("info@{}", org.domain),
            org.name.clone(),
        );
        org_mailbox.certificates = pki.leaf(
            &org.name,
            Some(&format!("info@{}", org.domain)),
            None,
            Fate::Trusted,
            false,
            &mut rng,
        )?;
        out.push(row(ImportRecord::Entry(Box::new(org_mailbox))));
        for service in &config.services {
            let address = format!("{service}@{}", org.domain);
            let mut entry = base(
                EntryKind::Service,
                address.clone(),
                format!("{} — {}", capitalise(service), org.name),
            );
            entry.certificates = pki.leaf(
                &address,
                Some(&address),
                None,
                fate(&mut rng),
                false,
                &mut rng,
            )?;
            out.push(row(ImportRecord::Entry(Box::new(entry))));
        }
        let mut domain = base(
            EntryKind::Domain,
            org.domain.clone(),
            format!("{} (Direct domain)", org.name),
        );
        domain.phone = None;
        domain.certificates = pki.leaf(
            &org.domain,
            None,
            Some(&org.domain),
            Fate::Trusted,
            true,
            &mut rng,
        )?;
        out.push(row(ImportRecord::Entry(Box::new(domain))));
    }
    Ok(out)
}

/// A stable small number per organisation, for its switchboard extension.
fn out_len_hint(id: &str) -> u32 {
    id.bytes().map(u32::from).sum::<u32>() % 100
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Loads the demo directory described in `dir` into `directory`.
pub async fn load(
    directory: &Directory,
    seeds: &Seeds,
    bar: Option<&ProgressBar>,
) -> anyhow::Result<SeedReport> {
    let admin = Caller::NodeAdmin {
        subject: "seed".into(),
    };
    let pki = DemoPki::new(Utc::now())?;
    directory
        .add_anchors(
            &admin,
            &pem_certificate(pki.root.cert_der()).into_bytes(),
            "demo",
        )
        .await?;
    let rows = {
        let seeds = seeds.clone();
        tokio::task::spawn_blocking(move || rows(&seeds, &pki)).await??
    };
    if let Some(bar) = bar {
        bar.set_length(rows.len() as u64);
    }
    let bar = bar.cloned();
    let progress = Arc::new(move |p: ImportProgress| {
        if let (Some(bar), ImportProgress::Written(n)) = (&bar, p) {
            bar.set_position(n);
        }
    });
    let report = directory
        .import(&admin, rows.into_iter(), ImportOptions::default(), progress)
        .await?;
    if let Some(first) = report.rejected.first() {
        anyhow::bail!(
            "the seed description has {} bad row(s), e.g. {}",
            report.rejected.len(),
            first.reason
        );
    }
    demo_policy(directory).await?;
    Ok(SeedReport {
        organisations: report.organisations,
        entries: report.entries,
        certificates: report.certificates,
        seq: report.seq,
    })
}

/// The demo's fair-play policy, `demo-fair-play`: a deny list with two
/// domains on it, signed by an owner key made now and thrown away.
async fn demo_policy(directory: &Directory) -> anyhow::Result<()> {
    use crate::domain::{PolicyKind, PolicyOp};
    use crate::federation::{Hash, Key};
    use crate::policy::PolicyEvent;
    if directory.policy(&"demo-fair-play".parse()?).await.is_ok() {
        return Ok(()); // seeded before
    }
    let key = crate::pki::NodeKey::generate(&mut rand::rng());
    let ops = [
        PolicyOp::Create {
            kind: PolicyKind::DenyList,
            title: "Demo fair play".into(),
            description: "A demo deny list: domains caught relaying unsigned mail.".into(),
        },
        PolicyOp::List {
            subject: "domain:spam.example".parse()?,
            reason: "demo: an open relay".into(),
            expires: None,
        },
        PolicyOp::List {
            subject: "domain:phish.example".parse()?,
            reason: "demo: phishing for provider credentials".into(),
            expires: None,
        },
    ];
    let mut prev = Hash::ZERO;
    let mut events = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        let e = PolicyEvent {
            policy: "demo-fair-play".parse()?,
            owner: Key(key.public_key_bytes()),
            version: i as u64 + 1,
            prev,
            time: Utc::now(),
            op,
        }
        .sign(&key)?;
        prev = e.hash();
        events.push(e.bytes().to_vec());
    }
    directory.submit_policy_events(&events).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_names_into_local_parts() {
        assert_eq!(fold("José"), "jose");
        assert_eq!(fold("Van der Berg"), "vanderberg");
        assert_eq!(fold("O'Brien"), "obrien");
        assert_eq!(fold("Wójcik"), "wojcik");
    }

    #[test]
    fn npis_are_valid() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..100 {
            assert!(crate::domain::npi_is_valid(&npi(&mut rng)));
        }
    }
}
