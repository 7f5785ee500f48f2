//! Named values (the log's identity, the publisher's cursor), delegation
//! grants, author states and provenance.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};

use super::super::convert::{to_i64, to_u64};
use super::super::direct::ProvenanceColumns;
use super::super::seq::{WriteTx, rows_per_insert};
use super::super::{StorageError, Store};
use super::log::{LogAppend, LogTip, read_tip, write_append};
use super::{Digest, FedAuthors, FedGrants, FedProvenance, FedState, digest, node, now_ts};
use crate::domain::{DomainName, NodeId};

type Result<T> = std::result::Result<T, StorageError>;

/// `fed_state` names of the log identity.
const LOG_ID: &str = "log";
const SIGNER: &str = "signer";
const LINEAGE: &str = "lineage";

pub(super) async fn state_get(conn: &impl ConnectionTrait, name: &str) -> Result<Option<String>> {
    let q = Query::select()
        .column(FedState::Value)
        .from(FedState::Table)
        .and_where(Expr::col(FedState::Name).eq(name))
        .to_owned();
    Ok(match conn.query_one(&q).await? {
        Some(row) => Some(row.try_get("", "value")?),
        None => None,
    })
}

pub(super) async fn state_set(conn: &impl ConnectionTrait, name: &str, value: &str) -> Result<()> {
    let q = Query::insert()
        .into_table(FedState::Table)
        .columns([FedState::Name, FedState::Value])
        .values_panic([name.into(), value.into()])
        .on_conflict(
            OnConflict::column(FedState::Name)
                .update_column(FedState::Value)
                .to_owned(),
        )
        .to_owned();
    conn.execute(&q).await?;
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // Lists of strings: their JSON cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StorageError::corrupt(what, e))
}

/// This node's log identity as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogIdentity {
    /// The log key (the node's first key).
    pub log: NodeId,
    /// The key the log is signed with now.
    pub signer: NodeId,
    /// Every key used, the log key first.
    pub lineage: Vec<NodeId>,
}

/// A delegation grant as stored (its signature verified before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// SHA-256 of the grant bytes.
    pub hash: Digest,
    /// Who issued it.
    pub issuer: NodeId,
    /// Who it is for.
    pub subject: NodeId,
    /// What it covers.
    pub domains: Vec<DomainName>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The signed grant.
    pub bytes: Vec<u8>,
    /// Part of this node's own chain.
    pub own: bool,
}

/// What this node remembers about an author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorRow {
    /// The author's log.
    pub author: NodeId,
    /// Its current key.
    pub signer: NodeId,
    /// Every key it used, the log key first.
    pub lineage: Vec<NodeId>,
    /// Its last sequence number applied here.
    pub last_seq: u64,
    /// The child it last came through.
    pub via: NodeId,
}

/// Where an entry from elsewhere came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceRow {
    /// Entry key.
    pub key: String,
    /// The node that published it.
    pub author: NodeId,
    /// Its sequence number in the author's log.
    pub author_seq: u64,
    /// The child this node pulled it from.
    pub via: NodeId,
    /// Hash of the author's record.
    pub record_hash: Digest,
    /// Grant hashes (hex), root first.
    pub chain: Vec<String>,
    /// When it was applied here.
    pub at: DateTime<Utc>,
}

pub(super) async fn insert_grants(
    conn: &impl ConnectionTrait,
    rows: &[GrantRow],
    at: DateTime<Utc>,
) -> Result<()> {
    for g in rows {
        let mut on_conflict = OnConflict::column(FedGrants::Hash);
        if g.own {
            on_conflict.update_column(FedGrants::Own);
        } else {
            on_conflict.do_nothing();
        }
        let q = Query::insert()
            .into_table(FedGrants::Table)
            .columns([
                FedGrants::Hash,
                FedGrants::Issuer,
                FedGrants::Subject,
                FedGrants::Domains,
                FedGrants::IssuedAt,
                FedGrants::ExpiresAt,
                FedGrants::Grant,
                FedGrants::Own,
                FedGrants::AddedAt,
            ])
            .values_panic([
                g.hash.to_vec().into(),
                g.issuer.0.clone().into(),
                g.subject.0.clone().into(),
                json(&g.domains.iter().map(|d| d.as_str()).collect::<Vec<_>>()).into(),
                now_ts(g.issued_at).into(),
                now_ts(g.expires_at).into(),
                g.bytes.clone().into(),
                g.own.into(),
                at.into(),
            ])
            .on_conflict(on_conflict)
            .to_owned();
        conn.execute(&q).await?;
    }
    Ok(())
}

pub(super) async fn upsert_authors(
    conn: &impl ConnectionTrait,
    rows: &[AuthorRow],
    at: DateTime<Utc>,
) -> Result<()> {
    let cols = [
        FedAuthors::Author,
        FedAuthors::Signer,
        FedAuthors::Lineage,
        FedAuthors::LastSeq,
        FedAuthors::Via,
        FedAuthors::UpdatedAt,
    ];
    for chunk in rows.chunks(rows_per_insert(cols.len())) {
        let mut insert = Query::insert();
        insert
            .into_table(FedAuthors::Table)
            .columns(cols)
            .on_conflict(
                OnConflict::column(FedAuthors::Author)
                    .update_columns(cols.into_iter().skip(1))
                    .to_owned(),
            );
        for a in chunk {
            insert.values_panic([
                a.author.0.clone().into(),
                a.signer.0.clone().into(),
                json(&a.lineage).into(),
                to_i64("author seq", a.last_seq)?.into(),
                a.via.0.clone().into(),
                at.into(),
            ]);
        }
        conn.execute(&insert).await?;
    }
    Ok(())
}

/// A provenance row from its columns, however they were read.
fn provenance_row(
    (key, author, author_seq, via, record_hash, chain, at): ProvenanceColumns,
) -> Result<ProvenanceRow> {
    Ok(ProvenanceRow {
        key,
        author: node(author),
        author_seq: to_u64("author seq", author_seq)?,
        via: node(via),
        record_hash: digest("record hash", record_hash)?,
        chain: from_json("provenance chain", &chain)?,
        at,
    })
}

fn grant_from_row(row: sea_orm::QueryResult) -> Result<GrantRow> {
    let domains: Vec<String> = from_json("grant domains", &row.try_get::<String>("", "domains")?)?;
    Ok(GrantRow {
        hash: digest("grant hash", row.try_get("", "hash")?)?,
        issuer: node(row.try_get("", "issuer")?),
        subject: node(row.try_get("", "subject")?),
        domains: domains
            .iter()
            .map(|d| {
                d.parse()
                    .map_err(|e| StorageError::corrupt("grant domain", e))
            })
            .collect::<Result<_>>()?,
        issued_at: row.try_get("", "issued_at")?,
        expires_at: row.try_get("", "expires_at")?,
        bytes: row.try_get("", "grant")?,
        own: row.try_get("", "own")?,
    })
}

impl Store {
    /// This node's log identity, once its first record was written.
    pub async fn fed_identity(&self) -> Result<Option<LogIdentity>> {
        let (Some(log), Some(signer)) = (
            state_get(&self.db, LOG_ID).await?,
            state_get(&self.db, SIGNER).await?,
        ) else {
            return Ok(None);
        };
        let lineage: Vec<NodeId> = match state_get(&self.db, LINEAGE).await? {
            Some(text) => from_json("lineage", &text)?,
            None => vec![NodeId(log.clone())],
        };
        Ok(Some(LogIdentity {
            log: NodeId(log),
            signer: NodeId(signer),
            lineage,
        }))
    }

    /// Records the log identity (first start, or after a key rotation).
    pub async fn fed_set_identity(&self, id: &LogIdentity) -> Result<()> {
        let w = WriteTx::begin(self).await?;
        set_identity(w.conn(), id).await?;
        w.commit().await?;
        Ok(())
    }

    /// Every grant known.
    pub async fn fed_grants(&self) -> Result<Vec<GrantRow>> {
        let q = Query::select()
            .columns([
                FedGrants::Hash,
                FedGrants::Issuer,
                FedGrants::Subject,
                FedGrants::Domains,
                FedGrants::IssuedAt,
                FedGrants::ExpiresAt,
                FedGrants::Grant,
                FedGrants::Own,
            ])
            .from(FedGrants::Table)
            .order_by(FedGrants::AddedAt, sea_orm::sea_query::Order::Asc)
            .to_owned();
        self.db
            .query_all(&q)
            .await?
            .into_iter()
            .map(grant_from_row)
            .collect()
    }

    /// Installs this node's own chain of grants and appends what `build`
    /// makes (the delegation record), in one transaction.
    pub async fn fed_install_grants(
        &self,
        grants: &[GrantRow],
        build: impl FnOnce(&LogTip) -> std::result::Result<LogAppend, String>,
    ) -> Result<LogTip> {
        let w = WriteTx::begin(self).await?;
        insert_grants(w.conn(), grants, now_ts(w.now())).await?;
        let tip = read_tip(w.conn()).await?;
        let append = build(&tip).map_err(|e| StorageError::corrupt("log append", e))?;
        write_append(&w, &tip, append).await?;
        w.commit().await?;
        Ok(tip)
    }

    /// Appends what `build` makes (a key rotation record) and records the
    /// new identity, in one transaction.
    pub async fn fed_rotate(
        &self,
        id: &LogIdentity,
        build: impl FnOnce(&LogTip) -> std::result::Result<LogAppend, String>,
    ) -> Result<LogTip> {
        let w = WriteTx::begin(self).await?;
        let tip = read_tip(w.conn()).await?;
        let append = build(&tip).map_err(|e| StorageError::corrupt("log append", e))?;
        write_append(&w, &tip, append).await?;
        set_identity(w.conn(), id).await?;
        w.commit().await?;
        Ok(tip)
    }

    /// The stored states of these authors.
    pub async fn fed_authors(&self, authors: &[NodeId]) -> Result<Vec<AuthorRow>> {
        let mut out = Vec::new();
        for chunk in authors.chunks(rows_per_insert(1)) {
            let q = Query::select()
                .columns([
                    FedAuthors::Author,
                    FedAuthors::Signer,
                    FedAuthors::Lineage,
                    FedAuthors::LastSeq,
                    FedAuthors::Via,
                ])
                .from(FedAuthors::Table)
                .and_where(Expr::col(FedAuthors::Author).is_in(chunk.iter().map(|a| a.0.clone())))
                .to_owned();
            for row in self.db.query_all(&q).await? {
                out.push(AuthorRow {
                    author: node(row.try_get("", "author")?),
                    signer: node(row.try_get("", "signer")?),
                    lineage: from_json("lineage", &row.try_get::<String>("", "lineage")?)?,
                    last_seq: to_u64("author seq", row.try_get("", "last_seq")?)?,
                    via: node(row.try_get("", "via")?),
                });
            }
        }
        Ok(out)
    }

    /// Provenance of the entries with these keys (those from elsewhere).
    pub async fn fed_provenance(&self, keys: &[String]) -> Result<HashMap<String, ProvenanceRow>> {
        let mut out = HashMap::new();
        if let Some(read) = self.provenance_direct(keys) {
            for columns in read.await? {
                let p = provenance_row(columns)?;
                out.insert(p.key.clone(), p);
            }
            return Ok(out);
        }
        for chunk in keys.chunks(rows_per_insert(1)) {
            let q = Query::select()
                .columns([
                    FedProvenance::Key,
                    FedProvenance::Author,
                    FedProvenance::AuthorSeq,
                    FedProvenance::Via,
                    FedProvenance::RecordHash,
                    FedProvenance::Chain,
                    FedProvenance::At,
                ])
                .from(FedProvenance::Table)
                .and_where(Expr::col(FedProvenance::Key).is_in(chunk.iter().cloned()))
                .to_owned();
            for row in self.db.query_all(&q).await? {
                let p = provenance_row((
                    row.try_get("", "key")?,
                    row.try_get("", "author")?,
                    row.try_get("", "author_seq")?,
                    row.try_get("", "via")?,
                    row.try_get("", "record_hash")?,
                    row.try_get("", "chain")?,
                    row.try_get("", "at")?,
                ))?;
                out.insert(p.key.clone(), p);
            }
        }
        Ok(out)
    }

    /// Grants with these hashes (hex).
    pub async fn fed_grants_by_hash(&self, hashes: &[String]) -> Result<Vec<GrantRow>> {
        let mut out = Vec::new();
        let raw: Vec<Vec<u8>> = hashes.iter().filter_map(|h| hex::decode(h).ok()).collect();
        for chunk in raw.chunks(rows_per_insert(1)) {
            let q = Query::select()
                .columns([
                    FedGrants::Hash,
                    FedGrants::Issuer,
                    FedGrants::Subject,
                    FedGrants::Domains,
                    FedGrants::IssuedAt,
                    FedGrants::ExpiresAt,
                    FedGrants::Grant,
                    FedGrants::Own,
                ])
                .from(FedGrants::Table)
                .and_where(Expr::col(FedGrants::Hash).is_in(chunk.iter().cloned()))
                .to_owned();
            for row in self.db.query_all(&q).await? {
                out.push(grant_from_row(row)?);
            }
        }
        Ok(out)
    }
}

async fn set_identity(conn: &impl ConnectionTrait, id: &LogIdentity) -> Result<()> {
    state_set(conn, LOG_ID, &id.log.0).await?;
    state_set(conn, SIGNER, &id.signer.0).await?;
    state_set(conn, LINEAGE, &json(&id.lineage)).await
}

pub(super) async fn upsert_provenance(
    conn: &impl ConnectionTrait,
    rows: &[ProvenanceRow],
) -> Result<()> {
    let cols = [
        FedProvenance::Key,
        FedProvenance::Author,
        FedProvenance::AuthorSeq,
        FedProvenance::Via,
        FedProvenance::RecordHash,
        FedProvenance::Chain,
        FedProvenance::At,
    ];
    for chunk in rows.chunks(rows_per_insert(cols.len())) {
        let mut insert = Query::insert();
        insert
            .into_table(FedProvenance::Table)
            .columns(cols)
            .on_conflict(
                OnConflict::column(FedProvenance::Key)
                    .update_columns(cols.into_iter().skip(1))
                    .to_owned(),
            );
        for p in chunk {
            insert.values_panic([
                p.key.clone().into(),
                p.author.0.clone().into(),
                to_i64("author seq", p.author_seq)?.into(),
                p.via.0.clone().into(),
                p.record_hash.to_vec().into(),
                json(&p.chain).into(),
                now_ts(p.at).into(),
            ]);
        }
        conn.execute(&insert).await?;
    }
    Ok(())
}

pub(super) async fn delete_provenance(conn: &impl ConnectionTrait, keys: &[String]) -> Result<()> {
    for chunk in keys.chunks(rows_per_insert(1)) {
        let q = Query::delete()
            .from_table(FedProvenance::Table)
            .and_where(Expr::col(FedProvenance::Key).is_in(chunk.iter().cloned()))
            .to_owned();
        conn.execute(&q).await?;
    }
    Ok(())
}
