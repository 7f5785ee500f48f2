//! `ccdir verify`: checking a log from scratch, trusting nothing but the
//! pinned key. A remote log is downloaded whole over `/federation/v1/`:
//! every signature, the hash chain, every relayed record's own signature,
//! the Merkle root recomputed from the records against the signed head,
//! inclusion proofs (leaf hashes computed here, not taken from the server)
//! and a consistency proof. The mirrors a node keeps of its children are
//! checked the same way from the database.

use std::time::Duration;

use serde::Serialize;

use super::install_crypto_provider;
use crate::core::{CoreError, Directory, Result};
use crate::federation::merkle::{self, Frontier, leaf_hash};
use crate::federation::wire::{ConsistencyJson, HeadJson, InclusionJson, PageJson, hashes};
use crate::federation::{
    Cursor, Evaluator, GrantBook, Hash, Key, Record, SignedHead, body_type, verify_page,
};

/// What verifying a log found. Any failure is an error instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// The log (hex key).
    pub log: String,
    /// Records checked (the head's size).
    pub size: u64,
    /// The Merkle root recomputed from the records, equal to the signed head's.
    pub root_hash: String,
    /// Relayed records whose own signature was checked.
    pub relays: u64,
    /// Distinct authors in the log.
    pub authors: u64,
    /// Records an unexpired delegation from the root covers today.
    pub covered: u64,
    /// Records that name a domain no unexpired delegation covers today
    /// (expired since, or never covered: see `uncovered_examples`).
    pub uncovered: u64,
    /// A few of those, for people.
    pub uncovered_examples: Vec<String>,
    /// Inclusion proofs fetched and checked.
    pub inclusion_proofs: u64,
    /// The consistency proof checked: from this size to `size`.
    pub consistent_from: Option<u64>,
}

/// What checking one mirrored child log found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorAudit {
    /// The child.
    pub child: String,
    /// Records checked.
    pub records: u64,
    /// The cursor the mirror ends at, and its hash matches.
    pub cursor: u64,
    /// `ok`, or what is wrong.
    pub result: String,
}

fn audit_err(what: impl std::fmt::Display) -> CoreError {
    CoreError::Invalid(crate::domain::DomainError::InvalidField {
        field: "log",
        reason: what.to_string(),
    })
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T> {
    let r = client
        .get(url)
        .send()
        .await
        .map_err(|e| CoreError::Unavailable(format!("{url}: {e}")))?;
    if !r.status().is_success() {
        return Err(CoreError::Unavailable(format!(
            "{url}: HTTP {}",
            r.status()
        )));
    }
    r.json()
        .await
        .map_err(|e| audit_err(format!("{url}: not the expected JSON: {e}")))
}

/// Verifies the log served at `base` (e.g. `http://root:8080`). `pinned`
/// is the key the log must belong to (the root key, for the root's log);
/// `root` the key delegations start from (defaults to `pinned`, then to
/// the log's own key). `proofs` inclusion proofs are fetched, spread over
/// the log. `previous` is a tree head seen earlier (size, root hash) that
/// the log must be consistent with.
pub async fn audit_log(
    base: &str,
    pinned: Option<Key>,
    root: Option<Key>,
    proofs: u64,
    previous: Option<(u64, Hash)>,
) -> Result<AuditReport> {
    install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    let base = base.trim_end_matches('/');
    let head_json: HeadJson = get_json(&client, &format!("{base}/federation/v1/head")).await?;
    let head: SignedHead = head_json.verify().map_err(audit_err)?;
    let h = head.head.clone();
    if let Some(k) = pinned
        && h.log != k
    {
        return Err(audit_err(format!(
            "the log is {}, not the pinned {}",
            h.log.short(),
            k.short()
        )));
    }
    let root = root.or(pinned).unwrap_or(h.log);

    let mut cursor = Cursor::start(h.log);
    let mut frontier = Frontier::empty();
    let mut leaves: Vec<Hash> = Vec::with_capacity(h.size.min(1 << 24) as usize);
    let mut evaluator = Evaluator::new(GrantBook::new(root), Vec::new(), chrono::Utc::now());
    let mut authors = std::collections::HashSet::new();
    let mut report = AuditReport {
        log: h.log.to_hex(),
        size: h.size,
        root_hash: String::new(),
        relays: 0,
        authors: 0,
        covered: 0,
        uncovered: 0,
        uncovered_examples: Vec::new(),
        inclusion_proofs: 0,
        consistent_from: None,
    };
    while cursor.seq < h.size {
        let after = cursor.seq.saturating_sub(1);
        let page: PageJson = get_json(
            &client,
            &format!("{base}/federation/v1/log?after={after}&limit=1000"),
        )
        .await?;
        let page_head = page.head.verify().map_err(audit_err)?;
        let raw = page
            .records
            .iter()
            .map(|r| r.bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(audit_err)?;
        let last_hash = cursor.hash;
        let held = move |_s: u64| Some(last_hash);
        let verified = verify_page(&cursor, &raw, &page_head, &held).map_err(audit_err)?;
        if verified.records.is_empty() {
            return Err(audit_err(format!(
                "the log stops at {} records; its head claimed {}",
                cursor.seq, h.size
            )));
        }
        for r in &verified.records {
            if r.header.seq > h.size {
                break;
            }
            let leaf = leaf_hash(r.bytes());
            frontier.push(leaf);
            leaves.push(leaf);
            if r.body_type == body_type::RELAY {
                report.relays += 1;
            }
            let e = evaluator.evaluate(r);
            authors.insert(e.author);
            match &e.outcome {
                Ok(_) => report.covered += 1,
                Err(rej) if rej.code.severity() == crate::federation::Severity::Quarantine => {
                    report.uncovered += 1;
                    if report.uncovered_examples.len() < 5 {
                        report
                            .uncovered_examples
                            .push(format!("record {}: {rej}", r.header.seq));
                    }
                }
                Err(rej) => {
                    return Err(audit_err(format!("record {}: {rej}", r.header.seq)));
                }
            }
            if r.header.seq == h.size && r.hash() != h.head_hash {
                return Err(audit_err(format!(
                    "record {} is not the one the signed head names",
                    h.size
                )));
            }
        }
        cursor = verified.cursor;
    }
    if frontier.root() != h.root_hash {
        return Err(audit_err(format!(
            "the Merkle root of the records is {}, the signed head says {}",
            frontier.root(),
            h.root_hash
        )));
    }
    report.root_hash = h.root_hash.to_hex();
    report.authors = authors.len() as u64;

    // Inclusion proofs, leaf hashes computed here.
    let n = proofs.min(h.size);
    for i in 0..n {
        let seq = 1 + i * h.size / n.max(1);
        let p: InclusionJson = get_json(
            &client,
            &format!(
                "{base}/federation/v1/proof/inclusion?seq={seq}&size={}",
                h.size
            ),
        )
        .await?;
        let path = hashes(&p.path).map_err(audit_err)?;
        let leaf = leaves[(seq - 1) as usize];
        if !merkle::verify_inclusion(&leaf, seq - 1, h.size, &path, &h.root_hash) {
            return Err(audit_err(format!(
                "the inclusion proof of record {seq} does not verify"
            )));
        }
        report.inclusion_proofs += 1;
    }

    // Consistency with an earlier head, or with the first half of this one.
    let (first, first_root) = match previous {
        Some(p) => p,
        None if h.size > 1 => {
            let m = h.size / 2;
            (m, merkle_root_of(&leaves[..m as usize]))
        }
        None => (h.size, h.root_hash),
    };
    if first > h.size {
        return Err(audit_err(format!(
            "the log has {} records, fewer than the {first} seen before: it went back",
            h.size
        )));
    }
    let c: ConsistencyJson = get_json(
        &client,
        &format!(
            "{base}/federation/v1/proof/consistency?first={first}&second={}",
            h.size
        ),
    )
    .await?;
    let path = hashes(&c.path).map_err(audit_err)?;
    if !merkle::verify_consistency(first, h.size, &first_root, &h.root_hash, &path) {
        return Err(audit_err(format!(
            "the log of {} records is not consistent with the tree of {first} records",
            h.size
        )));
    }
    report.consistent_from = Some(first);
    Ok(report)
}

fn merkle_root_of(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::empty();
    for l in leaves {
        f.push(*l);
    }
    f.root()
}

impl Directory {
    /// Checks every mirrored child log in the database: signatures, hash
    /// chain, sequence numbers, and that the mirror ends at the child's
    /// cursor.
    pub async fn audit_mirrors(&self) -> Result<Vec<MirrorAudit>> {
        let store = &self.inner.store;
        let mut out = Vec::new();
        for peer in store.fed_peers().await? {
            let mut checked = 0u64;
            let mut prev = Hash::ZERO;
            let mut result = String::from("ok");
            let log = Key::from_node_id(&peer.peer)?;
            let mut signer = log;
            'pages: loop {
                let page = store.fed_mirror_page(&peer.peer, checked, 1000).await?;
                if page.is_empty() {
                    break;
                }
                for m in page {
                    let r = match Record::decode(&m.bytes) {
                        Ok(r) => r,
                        Err(e) => {
                            result = format!("record {}: {e}", m.seq);
                            break 'pages;
                        }
                    };
                    let problem = if r.header.log != log {
                        Some("belongs to another log")
                    } else if r.header.seq != checked + 1 || m.seq != checked + 1 {
                        Some("out of sequence")
                    } else if r.header.prev != prev {
                        Some("does not link to the record before it")
                    } else if r.hash().0 != m.hash {
                        Some("is not the record whose hash was stored")
                    } else if r.header.signer != signer {
                        Some("is signed by a key the log did not rotate to")
                    } else {
                        None
                    };
                    if let Some(p) = problem {
                        result = format!("record {} {p}", m.seq);
                        break 'pages;
                    }
                    if let Ok(crate::federation::Body::KeyRotation(k)) = r.body() {
                        signer = k;
                    }
                    prev = r.hash();
                    checked += 1;
                }
            }
            if result == "ok" && (checked != peer.cursor || prev.0 != peer.cursor_hash) {
                result = format!(
                    "the mirror ends at record {checked}, the cursor is at {}",
                    peer.cursor
                );
            }
            out.push(MirrorAudit {
                child: peer.peer.0.clone(),
                records: checked,
                cursor: peer.cursor,
                result,
            });
        }
        Ok(out)
    }
}
