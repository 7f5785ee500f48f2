//! `ccdir bench federation`: a root ingesting the logs of many
//! organisation nodes, and the latency from a write at a leaf to a hit in
//! the root's search.
//!
//! Ingest: `orgs` logs of `per_org` entry upserts each (a delegation
//! record first), every entry with its own ECDSA P-256 certificate and the
//! issuing CA as chain, are signed in this process and served by a small
//! HTTP server here; a real root (`app::start`: REST, federation, search
//! index, SQLite or PostgreSQL) pulls them all, verifies every signature,
//! chain and delegation, checks binding and trust against its anchor,
//! applies, relays into its own Merkle log and indexes. Measured: wall and
//! CPU time from start until the root's log holds every record, and until
//! the search index has caught up.
//!
//! Latency: a leaf and an intermediate (real nodes in this process) under
//! the same root; each sample writes an entry at the leaf and polls the
//! root's search until it is found. Children are pulled on notify (the
//! pull interval is left at 5 s, so the ping is what moves records).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use rayon::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::process_cpu_seconds;
use crate::app::{self, RunningNode};
use crate::config::{ChildConfig, Config};
use crate::core::{Directory, SearchRequest};
use crate::domain::{Caller, Entry, EntryInput, EntryKind, Visibility};
use crate::federation::merkle::{Frontier, leaf_hash};
use crate::federation::wire::{HeadJson, PageJson, RecordJson};
use crate::federation::{
    Body, CertificateMaterial, EntryPublication, Grant, Hash, Key, Record, RecordHeader, TreeHead,
};
use crate::pki::NodeKey;
use crate::pki::ca::{CaSpec, CertAuthority, KeyPair, KeyType, LeafKey, LeafSpec};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Organisation nodes.
    pub orgs: usize,
    /// Entries each publishes.
    pub per_org: usize,
    /// Records per page the root asks for.
    pub page_size: u64,
    /// Give every entry a certificate.
    pub certificates: bool,
    /// The root's database; SQLite in the work directory when `None`.
    pub database_url: Option<String>,
    /// Latency samples.
    pub samples: usize,
    /// Where the nodes keep their data (a temporary directory otherwise).
    pub work_dir: Option<PathBuf>,
}

pub(super) struct ServedLog {
    pub(super) records: Vec<(u64, Hash, Vec<u8>)>,
    head: HeadJson,
    log: String,
}

fn serve_page(logs: &[ServedLog], path: &str) -> Option<Vec<u8>> {
    // /o/<i>/federation/v1/log?after=&limit=
    let rest = path.strip_prefix("/o/")?;
    let (i, rest) = rest.split_once('/')?;
    let log = logs.get(i.parse::<usize>().ok()?)?;
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let after = param("after").unwrap_or(0);
    let limit = param("limit").unwrap_or(500) as usize;
    let start = after.min(log.records.len() as u64) as usize;
    let page = PageJson {
        log: log.log.clone(),
        head: log.head.clone(),
        records: log.records[start..(start + limit).min(log.records.len())]
            .iter()
            .map(|(seq, hash, bytes)| RecordJson::new(*seq, hash, bytes))
            .collect(),
    };
    serde_json::to_vec(&page).ok()
}

async fn serve(logs: Arc<Vec<ServedLog>>) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) =
                    match tokio::task::spawn_blocking(move || serve_page(&logs, &path)).await {
                        Ok(Some(b)) => ("200 OK", b),
                        _ => ("404 Not Found", b"{}".to_vec()),
                    };
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(base)
}

pub(super) fn ca_spec(cn: &str) -> CaSpec {
    let now = Utc::now();
    CaSpec {
        common_name: cn.into(),
        organization: Some("ccdir bench".into()),
        key_type: KeyType::EcdsaP256,
        path_len: None,
        not_before: now - chrono::Duration::days(1),
        not_after: now + chrono::Duration::days(3650),
    }
}

/// One organisation's log, signed.
pub(super) fn org_log(
    i: usize,
    per_org: usize,
    root: &NodeKey,
    issuing: Option<&CertAuthority>,
    leaf_key: Option<&crate::pki::ca::PublicKey>,
) -> anyhow::Result<ServedLog> {
    let key = NodeKey::generate(&mut rand::rng());
    let id = Key(key.public_key_bytes());
    let now = Utc::now();
    let domain = format!("org{i}.bench.example");
    let grant = Grant::new(
        Key(root.public_key_bytes()),
        id,
        vec![domain.parse()?],
        now,
        now + chrono::Duration::days(30),
    )?
    .sign(root)?;
    let chain_der = issuing.map(|c| c.cert_der().to_vec());
    let mut bodies = Vec::with_capacity(per_org + 1);
    bodies.push(Body::Delegation(vec![grant]));
    let mut rng = rand::rng();
    for j in 0..per_org {
        let address = format!("p{j}@{domain}");
        let certificates = match (issuing, leaf_key) {
            (Some(ca), Some(k)) => {
                let leaf = ca.issue_leaf(
                    &LeafSpec {
                        subject_cn: address.clone(),
                        email: Some(address.clone()),
                        dns: None,
                        not_before: now - chrono::Duration::days(1),
                        not_after: now + chrono::Duration::days(365),
                        policies: vec!["2.16.840.1.101.3.2.1.3.3".into()],
                        key: LeafKey::Existing(k.clone()),
                    },
                    &mut rng,
                )?;
                vec![CertificateMaterial {
                    der: leaf.cert_der,
                    chain: chain_der.iter().cloned().collect(),
                }]
            }
            _ => Vec::new(),
        };
        bodies.push(Body::EntryUpsert(Box::new(EntryPublication {
            entry: Entry {
                address: address.parse()?,
                kind: EntryKind::Person,
                display_name: format!("Bench Person{j} Org{i}"),
                given_name: Some(format!("Person{j}")),
                surname: Some(format!("Org{i}")),
                organisation: None,
                unit: None,
                title: None,
                profession: Some("Physician".into()),
                specialty: Some("Cardiology".into()),
                identifiers: vec![],
                locality: Some("Boston".into()),
                region: Some("MA".into()),
                country: Some("US".into()),
                postal_code: None,
                phone: None,
                visibility: Visibility::Public,
                origin: id.node_id(),
                version: 1,
                updated_at: now,
            },
            certificates,
        })));
    }
    let mut records = Vec::with_capacity(bodies.len());
    let mut frontier = Frontier::empty();
    let mut prev = Hash::ZERO;
    for (n, body) in bodies.iter().enumerate() {
        let (t, payload) = body.encode();
        let r = Record::sign(
            RecordHeader {
                log: id,
                signer: id,
                seq: n as u64 + 1,
                prev,
                time: now,
            },
            t,
            &payload,
            &key,
        )?;
        prev = r.hash();
        frontier.push(leaf_hash(r.bytes()));
        records.push((r.header.seq, r.hash(), r.into_bytes()));
    }
    let head = TreeHead {
        log: id,
        signer: id,
        size: records.len() as u64,
        head_hash: prev,
        root_hash: frontier.root(),
        time: now,
    }
    .sign(&key)?;
    Ok(ServedLog {
        records,
        head: HeadJson::new(&head),
        log: id.to_hex(),
    })
}

fn node_config(dir: PathBuf, database_url: Option<String>) -> Config {
    let mut c = Config {
        data_dir: dir,
        database_url,
        ..Config::default()
    };
    // Every front end on a port of its own: several nodes run at once.
    c.api.listen = "127.0.0.1:0".parse().expect("address");
    c.ldap.listen = "127.0.0.1:0".parse().expect("address");
    c.ldap.ldaps_listen = "127.0.0.1:0".parse().expect("address");
    c.dns.listen = "127.0.0.1:0".parse().expect("address");
    c.api.rate_limit_per_second = 100_000;
    c.api.rate_limit_burst = 100_000;
    c
}

async fn start_node(config: &Config) -> anyhow::Result<(RunningNode, Key)> {
    std::fs::create_dir_all(&config.data_dir)?;
    let key = NodeKey::generate(&mut rand::rng());
    let id = Key(key.public_key_bytes());
    Ok((app::start(config, key).await?, id))
}

fn admin() -> Caller {
    Caller::NodeAdmin {
        subject: "bench".into(),
    }
}

async fn log_size(d: &Directory) -> u64 {
    d.federation_head().await.map(|h| h.size).unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the benchmark; returns the report (Markdown).
pub async fn run(o: BenchOptions) -> anyhow::Result<String> {
    crate::core::install_crypto_provider();
    let tmp;
    let work = match &o.work_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    let mut report = String::new();
    let total = (o.orgs * (o.per_org + 1)) as u64;

    // 1. Sign every organisation's log (not measured as ingest).
    let gen_started = Instant::now();
    let gen_cpu = process_cpu_seconds();
    let root_key = NodeKey::generate(&mut rand::rng());
    let ca = CertAuthority::new_root(&ca_spec("Bench Root"), &mut rand::rng())?;
    let issuing = ca.issue_intermediate(&ca_spec("Bench Issuing"), &mut rand::rng())?;
    let leaf_key = KeyPair::generate(KeyType::EcdsaP256, &mut rand::rng())?.public_key()?;
    let logs: Vec<ServedLog> = (0..o.orgs)
        .into_par_iter()
        .map(|i| {
            org_log(
                i,
                o.per_org,
                &root_key,
                o.certificates.then_some(&issuing),
                o.certificates.then_some(&leaf_key),
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let bytes: usize = logs
        .iter()
        .flat_map(|l| l.records.iter())
        .map(|r| r.2.len())
        .sum();
    eprintln!(
        "signed {total} records ({:.0} MB) for {} organisations in {:.1} s",
        bytes as f64 / 1e6,
        o.orgs,
        gen_started.elapsed().as_secs_f64()
    );
    let gen_cpu = process_cpu_seconds() - gen_cpu;
    let children: Vec<ChildConfig> = logs
        .iter()
        .enumerate()
        .map(|(i, l)| (i, l.log.clone()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(i, log)| ChildConfig {
            key: log,
            url: format!("{{base}}/o/{i}"),
            name: Some(format!("org{i}")),
        })
        .collect();
    let logs = Arc::new(logs);
    let base = serve(logs.clone()).await?;

    // 2. The root ingests them all.
    let root_dir = work.join("root");
    std::fs::create_dir_all(&root_dir)?;
    root_key
        .save_pem(&root_dir.join("node.key"))
        .context("saving the root key")?;
    let mut rc = node_config(root_dir, o.database_url.clone());
    rc.federation.page_size = o.page_size;
    rc.federation.pull_interval_ms = 1000;
    rc.federation.children = children
        .into_iter()
        .map(|mut c| {
            c.url = c.url.replace("{base}", &base);
            c
        })
        .collect();
    let root_node_key = NodeKey::load_pem(&rc.data_dir.join("node.key"))?;
    // The anchor first, so the root judges the certificates trusted.
    {
        let d = app::open_directory(
            &rc,
            NodeKey::load_pem(&rc.data_dir.join("node.key"))?,
            crate::core::IndexMode::None,
            crate::telemetry::Metrics::new(),
        )
        .await?;
        d.add_anchors(&admin(), ca.cert_der(), "bench").await?;
    }
    let cpu0 = process_cpu_seconds();
    let started = Instant::now();
    let root = app::start(&rc, root_node_key).await?;
    let written0 = root.directory.write_time();
    let mut last_print = Instant::now();
    loop {
        let size = log_size(&root.directory).await;
        if size >= total {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {size} / {total} records applied after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let applied_wall = started.elapsed().as_secs_f64();
    let written = (root.directory.write_time() - written0).as_secs_f64();
    let applied_cpu = process_cpu_seconds() - cpu0;
    let head = root.directory.readiness().await?.head;
    root.directory.wait_indexed(head).await;
    let indexed_wall = started.elapsed().as_secs_f64();
    let indexed_cpu = process_cpu_seconds() - cpu0;
    let status = root.directory.federation_status(5).await?;
    let quarantined: u64 = status.children.iter().map(|c| c.quarantined).sum();
    let entries = root.directory.count_entries().await?;
    let backend = root.directory.backend();
    let metrics = root.directory.metrics();
    let stage = |name| metrics.federation_stage_seconds(name);

    report.push_str(&format!(
        "Root ingest ({backend}, {} organisation logs x {} entries{}, page {}):\n\n\
         | measure | wall | CPU (process) | records/s (wall) |\n|---|---|---|---|\n\
         | verified + applied + relayed ({total} records) | {applied_wall:.1} s | {applied_cpu:.1} s | {:.0} |\n\
         | ... and searchable (index caught up) | {indexed_wall:.1} s | {indexed_cpu:.1} s | {:.0} |\n\
         | signing the logs (not part of ingest) | {:.1} s | {gen_cpu:.1} s | |\n\n\
         Entries at the root: {entries}; quarantined records: {quarantined}; log size {}.\n\n\
         Where the pulls spent their time, summed over the children's loops (which run at once): \
         fetching pages {:.1} s; checking them (signatures, delegation, certificates; in parallel) {:.1} s; \
         applying them, waiting for the writer included, {:.1} s. \
         Write transactions were open {written:.1} s ({:.0} % of the wall time until applied; \
         on SQLite they run one at a time, storing the records and signing their relays).\n\n",
        o.orgs,
        o.per_org,
        if o.certificates { ", each with a P-256 certificate" } else { "" },
        o.page_size,
        total as f64 / applied_wall,
        total as f64 / indexed_wall,
        gen_started.elapsed().as_secs_f64() - indexed_wall,
        status.log_size,
        stage("fetch"),
        stage("check"),
        stage("apply"),
        100.0 * written / applied_wall,
    ));

    // 3. Latency: leaf -> intermediate -> root search, with notify.
    let mut ic = node_config(work.join("inter"), None);
    ic.federation.root_key = Some(Key(root_key.public_key_bytes()).to_hex());
    ic.federation.parent_url = Some(format!("http://{}", root.api_addr));
    let (inter, inter_key) = start_node(&ic).await?;
    let mut lc = node_config(work.join("leaf"), None);
    lc.federation.root_key = ic.federation.root_key.clone();
    lc.federation.parent_url = Some(format!("http://{}", inter.api_addr));
    let (leaf, leaf_key) = start_node(&lc).await?;
    let expires = Utc::now() + chrono::Duration::days(1);
    let f = root
        .directory
        .delegate(inter_key, vec!["latency.example".parse()?], expires)
        .await?;
    inter.directory.install_delegation(&f).await?;
    let f = inter
        .directory
        .delegate(leaf_key, vec!["leaf.latency.example".parse()?], expires)
        .await?;
    leaf.directory.install_delegation(&f).await?;
    root.directory
        .add_child(
            inter_key,
            &format!("http://{}", inter.api_addr),
            Some("inter"),
        )
        .await?;
    inter
        .directory
        .add_child(leaf_key, &format!("http://{}", leaf.api_addr), Some("leaf"))
        .await?;
    // Let the supervisors pick the new children up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut lat = Vec::with_capacity(o.samples);
    for k in 0..o.samples {
        let surname = format!("Latencyq{k}x");
        let address = format!("n{k}@leaf.latency.example").parse()?;
        let t0 = Instant::now();
        leaf.directory
            .put_entry(
                &admin(),
                &address,
                EntryInput {
                    given_name: Some("Lat".into()),
                    surname: Some(surname.clone()),
                    ..Default::default()
                },
            )
            .await?;
        loop {
            let r = root
                .directory
                .search(
                    &Caller::Anonymous,
                    SearchRequest {
                        text: surname.to_lowercase(),
                        ..Default::default()
                    },
                )
                .await?;
            if !r.hits.is_empty() {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("sample {k} did not reach the root in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    report.push_str(&format!(
        "Propagation leaf -> intermediate -> root search with notify ({} samples, root holding {entries} entries):\n\n\
         | p50 | p90 | p99 | max |\n|---|---|---|---|\n| {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |\n",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0),
    ));
    leaf.stop().await;
    inter.stop().await;
    root.stop().await;
    if o.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(report)
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "ccdir-bench-federation-{}-{}",
        std::process::id(),
        Utc::now().timestamp()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
