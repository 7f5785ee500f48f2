//! `ccdir policy …`: the owner's side (keys, offline signing, the chain
//! file) and the client side (submit, check) of fair-play policies.
//!
//! The chain file holds one JSON object a line, in version order:
//! `{"policy":"direct-p1","version":3,"hash":"<hex>","event":"<base64>"}`.
//! `event` is the owner-signed event (docs/policies.md); the other fields
//! repeat it for people and tools.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::cli::{CheckArgs, OwnerFiles, PolicyCommand, SubmitArgs};
use crate::domain::{PolicyId, PolicyKind, PolicyOp, Subject};
use crate::federation::{Hash, Key};
use crate::pki::NodeKey;
use crate::policy::{PolicyEvent, SignedEvent};

#[derive(Debug, Serialize, Deserialize)]
struct ChainLine {
    policy: String,
    version: u64,
    hash: String,
    event: String,
}

fn key_path(files: &OwnerFiles, policy: &PolicyId) -> PathBuf {
    files
        .key
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{policy}.key")))
}

fn chain_path(chain: Option<&PathBuf>, policy: &PolicyId) -> PathBuf {
    chain
        .cloned()
        .unwrap_or_else(|| PathBuf::from(format!("{policy}.events.jsonl")))
}

/// Every event of a chain file, checked: signatures, one policy, versions
/// 1, 2, 3… each naming the previous hash.
fn read_chain(path: &Path, policy: &PolicyId) -> anyhow::Result<Vec<SignedEvent>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("reading the chain file {}", path.display()))?;
    let mut out: Vec<SignedEvent> = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let parsed: ChainLine = serde_json::from_str(&line).with_context(at)?;
        let bytes = STANDARD.decode(parsed.event.trim()).with_context(at)?;
        let e = SignedEvent::decode(&bytes).with_context(at)?;
        let expected_prev = out.last().map_or(Hash::ZERO, SignedEvent::hash);
        if &e.event.policy != policy
            || e.event.version != out.len() as u64 + 1
            || e.event.prev != expected_prev
        {
            bail!(
                "{}: event {} of policy {} does not follow the chain",
                at(),
                e.event.version,
                e.event.policy
            );
        }
        out.push(e);
    }
    Ok(out)
}

fn append(path: &Path, e: &SignedEvent) -> anyhow::Result<()> {
    let line = serde_json::to_string(&ChainLine {
        policy: e.event.policy.to_string(),
        version: e.event.version,
        hash: e.hash().to_hex(),
        event: STANDARD.encode(e.bytes()),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("writing the chain file {}", path.display()))?;
    writeln!(f, "{line}")?;
    f.sync_all()?;
    Ok(())
}

/// Signs `op` as the next event of the chain and appends it.
fn sign_next(policy: &str, files: &OwnerFiles, op: PolicyOp) -> anyhow::Result<()> {
    let policy: PolicyId = policy.parse()?;
    let chain = chain_path(files.chain.as_ref(), &policy);
    let events = read_chain(&chain, &policy)?;
    let Some(head) = events.last() else {
        bail!("{} holds no create event", chain.display());
    };
    let key_file = key_path(files, &policy);
    let key = NodeKey::load_pem(&key_file)
        .with_context(|| format!("reading the owner key {}", key_file.display()))?;
    if Key(key.public_key_bytes()) != head.event.owner {
        bail!(
            "{} is not the owner key of policy {policy}",
            key_file.display()
        );
    }
    let signed = PolicyEvent {
        policy,
        owner: head.event.owner,
        version: head.event.version + 1,
        prev: head.hash(),
        time: chrono::Utc::now(),
        op,
    }
    .sign(&key)?;
    append(&chain, &signed)?;
    println!(
        "signed {} version {} ({}) into {}; send it with `ccdir policy submit {}`",
        signed.event.op.name(),
        signed.event.version,
        signed.hash(),
        chain.display(),
        signed.event.policy
    );
    Ok(())
}

fn client() -> anyhow::Result<reqwest::Client> {
    crate::core::install_crypto_provider();
    Ok(reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

async fn problem(response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or(text);
    anyhow::anyhow!("the node answered {status}: {detail}")
}

async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let policy: PolicyId = args.policy.parse()?;
    let chain = chain_path(args.chain.as_ref(), &policy);
    let events = read_chain(&chain, &policy)?;
    let body = serde_json::json!({
        "events": events.iter().map(|e| STANDARD.encode(e.bytes())).collect::<Vec<_>>(),
    });
    let url = format!("{}/api/v1/policy-events", args.url.trim_end_matches('/'));
    let response = client()?.post(&url).json(&body).send().await?;
    if !response.status().is_success() {
        return Err(problem(response).await);
    }
    let results: Vec<serde_json::Value> = response.json().await?;
    for r in results {
        println!(
            "version {}\t{}",
            r["version"],
            r["outcome"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let subject: Subject = args.subject.parse()?;
    let url = format!("{}/api/v1/policy-check", args.url.trim_end_matches('/'));
    let mut query = vec![("subject", subject.to_string())];
    if !args.policies.is_empty() {
        query.push(("policies", args.policies.join(",")));
    }
    let response = client()?.get(&url).query(&query).send().await?;
    if !response.status().is_success() {
        return Err(problem(response).await);
    }
    let results: Vec<serde_json::Value> = response.json().await?;
    for r in results {
        let evidence = &r["evidence"];
        println!(
            "{}\t{}\t{}{}",
            r["policy"].as_str().unwrap_or("?"),
            if r["listed"].as_bool() == Some(true) {
                "listed"
            } else {
                "not listed"
            },
            evidence["reason"].as_str().unwrap_or(""),
            if r["flagged"].as_bool() == Some(true) {
                "\t(policy flagged: conflicting events)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Runs `ccdir policy …`.
pub async fn command(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Create(args) => {
            let policy: PolicyId = args.policy.parse()?;
            let chain = chain_path(args.files.chain.as_ref(), &policy);
            if chain.exists() {
                bail!(
                    "{} exists: policy {policy} was created already",
                    chain.display()
                );
            }
            let key_file = key_path(&args.files, &policy);
            let key = if key_file.exists() {
                NodeKey::load_pem(&key_file)?
            } else {
                let key = NodeKey::generate(&mut rand::rng());
                key.save_pem(&key_file)?;
                println!("made the owner key {}", key_file.display());
                key
            };
            let signed = PolicyEvent {
                policy: policy.clone(),
                owner: Key(key.public_key_bytes()),
                version: 1,
                prev: Hash::ZERO,
                time: chrono::Utc::now(),
                op: PolicyOp::Create {
                    kind: if args.allow_list {
                        PolicyKind::AllowList
                    } else {
                        PolicyKind::DenyList
                    },
                    title: if args.title.is_empty() {
                        policy.to_string()
                    } else {
                        args.title
                    },
                    description: args.description,
                },
            }
            .sign(&key)?;
            append(&chain, &signed)?;
            println!(
                "created policy {policy} (owner {}) in {}; send it with `ccdir policy submit {policy} --url <node>`",
                hex::encode(key.public_key_bytes()),
                chain.display()
            );
            Ok(())
        }
        PolicyCommand::List(args) => sign_next(
            &args.policy,
            &args.files,
            PolicyOp::List {
                subject: args.subject.parse()?,
                reason: args.reason,
                expires: args
                    .expires
                    .as_deref()
                    .map(super::federation::expiry)
                    .transpose()?,
            },
        ),
        PolicyCommand::Delist(args) => sign_next(
            &args.policy,
            &args.files,
            PolicyOp::Delist {
                subject: args.subject.parse()?,
                reason: args.reason,
            },
        ),
        PolicyCommand::Submit(args) => submit(args).await,
        PolicyCommand::Check(args) => check(args).await,
    }
}
