//! Applying a verified page of a child's log: entries and organisations,
//! provenance, the mirrored records, author states, grants, rejections,
//! relays into this node's own log and the child's new cursor — all in
//! ONE transaction, which first checks that the cursor is still where the
//! page was read from. A crash at any point leaves either all of it or
//! none of it, so a restart resumes from the cursor and applies nothing
//! twice.
//!
//! Ownership is decided here, inside the transaction: an address or
//! organisation already held for another node (or local to this one) is
//! not taken over; the record is quarantined as `owned-elsewhere`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::super::convert::{ORGANISATION_COLUMNS, organisation_values, to_i64};
use super::super::entity::{entry, organisation};
use super::super::entries::{EntryWrite, VersionRule, write_entries};
use super::super::policies::{PolicyOutcome, PolicyWrite, accept_events};
use super::super::seq::{WriteTx, rows_per_insert};
use super::super::{StorageError, Store};
use super::log::{LogAppend, LogTip, read_tip, write_append};
use super::peers::{RejectionRow, insert_rejections};
use super::state::{
    AuthorRow, GrantRow, ProvenanceRow, delete_provenance, insert_grants, upsert_authors,
    upsert_provenance,
};
use super::{Digest, FedMirror, FedPeers, now_ts};
use crate::domain::{
    ChangeKind, ChangeSeq, DirectoryAddress, EntryRecord, NodeId, OrgId, Organisation,
};

type Result<T> = std::result::Result<T, StorageError>;

/// What one record of the child's log does here, as the core judged it.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Create or replace an entry (its `origin` is the author).
    Upsert {
        /// The entry with its prepared certificates.
        record: Box<EntryRecord>,
        /// Grant hashes (hex) that authorise it, root first.
        chain: Vec<String>,
    },
    /// Remove the author's entry at this address.
    Remove(DirectoryAddress),
    /// Create or replace the author's organisation.
    UpsertOrganisation(Box<Organisation>),
    /// Remove the author's organisation.
    RemoveOrganisation(OrgId),
    /// Accepted with nothing to write beyond author state and grants
    /// (delegations, key rotations).
    Accept,
    /// An authentic policy event, judged against the policy's head inside
    /// the transaction (refused ones are quarantined with their reason).
    Policy(Box<PolicyWrite>),
    /// Authentic but refused; mirrored and recorded with this reason.
    Quarantine {
        /// Stable code.
        code: String,
        /// For people.
        detail: String,
    },
}

/// One record of the child's page.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyItem {
    /// Its sequence number in the child's log.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
    /// The record as the child served it.
    pub bytes: Vec<u8>,
    /// Who wrote what it says.
    pub author: NodeId,
    /// The author's sequence number.
    pub author_seq: u64,
    /// The authored record (the record itself or the one it relays), its
    /// hash and body type: relayed upward if the item takes effect.
    pub authored: Option<(Vec<u8>, Digest, u16)>,
    /// What it does.
    pub effect: Effect,
}

/// A verified page and the cursor after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyPage {
    /// The child.
    pub peer: NodeId,
    /// The cursor the page was read from; the apply is refused if the
    /// stored cursor has moved since.
    pub expected_cursor: u64,
    /// The cursor after the page.
    pub cursor: u64,
    /// Hash of the record at `cursor`.
    pub cursor_hash: Digest,
    /// The child's signing key after the page.
    pub signer: NodeId,
    /// The child's head size.
    pub head_seen: u64,
    /// Now.
    pub at: DateTime<Utc>,
    /// The page's records, in order.
    pub items: Vec<ApplyItem>,
    /// Author states after the page.
    pub authors: Vec<AuthorRow>,
    /// Grants first seen in the page.
    pub grants: Vec<GrantRow>,
}

/// An authored record that took effect, for the relay closure to wrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayable {
    /// The authored record.
    pub bytes: Vec<u8>,
    /// Its hash.
    pub hash: Digest,
    /// Its body type.
    pub body_type: u16,
    /// Its author.
    pub author: NodeId,
    /// The author's sequence number.
    pub author_seq: u64,
    /// Entry key or organisation id, for people.
    pub subject: Option<String>,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The last change it made (for the search index).
    pub seq: ChangeSeq,
    /// Records that took effect.
    pub applied: usize,
    /// Records quarantined.
    pub quarantined: usize,
    /// Records relayed into this node's log.
    pub relayed: usize,
}

enum Status {
    Applied,
    Quarantined(String, String),
}

fn owned_elsewhere(what: &str, owner: &str) -> Status {
    let short = &owner[..owner.len().min(12)];
    Status::Quarantined(
        "owned-elsewhere".into(),
        format!("{what} is published here by node {short}"),
    )
}

fn subject(effect: &Effect) -> Option<String> {
    match effect {
        Effect::Upsert { record, .. } => Some(record.entry.address.key()),
        Effect::Remove(a) => Some(a.key()),
        Effect::UpsertOrganisation(o) => Some(o.id.to_string()),
        Effect::RemoveOrganisation(id) => Some(id.to_string()),
        Effect::Policy(p) => Some(format!("policy {} v{}", p.facts.policy, p.facts.version)),
        Effect::Accept | Effect::Quarantine { .. } => None,
    }
}

impl Store {
    /// Applies a page (see the module documentation). `relay` is called
    /// inside the transaction with this node's log tip and the authored
    /// records that took effect, and returns what to append. `None` when
    /// the child's cursor is no longer `expected_cursor` (or it was
    /// stopped): nothing was written.
    pub async fn fed_apply(
        &self,
        page: ApplyPage,
        relay: impl FnOnce(&LogTip, &[Relayable]) -> std::result::Result<LogAppend, String>,
    ) -> Result<Option<ApplyOutcome>> {
        let mut w = WriteTx::begin(self).await?;
        let row = w
            .conn()
            .query_one(
                &Query::select()
                    .columns([FedPeers::Cursor, FedPeers::Status])
                    .from(FedPeers::Table)
                    .and_where(Expr::col(FedPeers::Peer).eq(page.peer.0.as_str()))
                    .to_owned(),
            )
            .await?;
        let current = match row {
            Some(r) => (
                r.try_get::<i64>("", "cursor")?,
                r.try_get::<String>("", "status")?,
            ),
            None => (-1, String::new()),
        };
        if current.0 != to_i64("cursor", page.expected_cursor)? || current.1 != "active" {
            w.rollback().await?;
            return Ok(None);
        }
        let at = now_ts(page.at);
        let mut status: Vec<Status> = page
            .items
            .iter()
            .map(|i| match &i.effect {
                Effect::Quarantine { code, detail } => {
                    Status::Quarantined(code.clone(), detail.clone())
                }
                _ => Status::Applied,
            })
            .collect();

        // Who holds the addresses and organisations the page speaks of.
        let keys: Vec<String> = page
            .items
            .iter()
            .filter_map(|i| match &i.effect {
                Effect::Upsert { record, .. } => Some(record.entry.address.key()),
                Effect::Remove(a) => Some(a.key()),
                _ => None,
            })
            .collect();
        let mut entry_owner: HashMap<String, Option<String>> = HashMap::new();
        for chunk in keys.chunks(rows_per_insert(1)) {
            let rows: Vec<(String, String)> = entry::Entity::find()
                .select_only()
                .columns([entry::Column::Key, entry::Column::Origin])
                .filter(entry::Column::Key.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(w.conn())
                .await?;
            entry_owner.extend(rows.into_iter().map(|(k, o)| (k, Some(o))));
        }
        let org_ids: Vec<String> = page
            .items
            .iter()
            .filter_map(|i| match &i.effect {
                Effect::UpsertOrganisation(o) => Some(o.id.to_string()),
                Effect::RemoveOrganisation(id) => Some(id.to_string()),
                _ => None,
            })
            .collect();
        let mut org_owner: HashMap<String, Option<String>> = org_origins(w.conn(), &org_ids)
            .await?
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();

        // Final state per key, in page order.
        let mut final_entries: HashMap<String, Option<usize>> = HashMap::new();
        let mut entry_order: Vec<String> = Vec::new();
        let mut final_orgs: HashMap<String, (bool, usize)> = HashMap::new();
        let mut org_order: Vec<String> = Vec::new();
        for (i, item) in page.items.iter().enumerate() {
            let author = item.author.0.as_str();
            match &item.effect {
                Effect::Upsert { record, .. } => {
                    let key = record.entry.address.key();
                    match entry_owner.get(&key) {
                        Some(Some(o)) if o != author => {
                            status[i] = owned_elsewhere(&record.entry.address.to_string(), o);
                        }
                        _ => {
                            entry_owner.insert(key.clone(), Some(author.to_owned()));
                            if final_entries.insert(key.clone(), Some(i)).is_none() {
                                entry_order.push(key);
                            }
                        }
                    }
                }
                Effect::Remove(address) => {
                    let key = address.key();
                    match entry_owner.get(&key) {
                        Some(Some(o)) if o == author => {
                            entry_owner.insert(key.clone(), None);
                            if final_entries.insert(key.clone(), None).is_none() {
                                entry_order.push(key);
                            }
                        }
                        Some(Some(o)) => status[i] = owned_elsewhere(&address.to_string(), o),
                        _ => {}
                    }
                }
                Effect::UpsertOrganisation(org) => {
                    let id = org.id.to_string();
                    match org_owner.get(&id) {
                        Some(Some(o)) if o != author => {
                            status[i] = owned_elsewhere(&format!("organisation {id}"), o);
                        }
                        _ => {
                            org_owner.insert(id.clone(), Some(author.to_owned()));
                            if final_orgs.insert(id.clone(), (true, i)).is_none() {
                                org_order.push(id);
                            }
                        }
                    }
                }
                Effect::RemoveOrganisation(id) => {
                    let id = id.to_string();
                    match org_owner.get(&id) {
                        Some(Some(o)) if o == author => {
                            org_owner.insert(id.clone(), None);
                            if final_orgs.insert(id.clone(), (false, i)).is_none() {
                                org_order.push(id);
                            }
                        }
                        Some(Some(o)) => {
                            status[i] = owned_elsewhere(&format!("organisation {id}"), o);
                        }
                        _ => {}
                    }
                }
                Effect::Accept | Effect::Quarantine { .. } | Effect::Policy(_) => {}
            }
        }

        // Organisations first: entries may name them.
        for id in &org_order {
            let (upsert, i) = final_orgs[id];
            if !upsert {
                continue;
            }
            let Effect::UpsertOrganisation(org) = &page.items[i].effect else {
                continue;
            };
            let insert = Query::insert()
                .into_table(organisation::Entity)
                .columns(ORGANISATION_COLUMNS)
                .values_panic(organisation_values(org))
                .on_conflict(
                    OnConflict::column(organisation::Column::Id)
                        .update_columns(ORGANISATION_COLUMNS.into_iter().skip(1))
                        .to_owned(),
                )
                .to_owned();
            w.conn().execute(&insert).await?;
            w.change(ChangeKind::OrganisationChanged, id.clone());
        }

        // Entries: an organisation is kept only if it is the author's here.
        let mut upserts: Vec<EntryRecord> = Vec::new();
        let mut provenance = Vec::new();
        let mut removed = Vec::new();
        for key in &entry_order {
            match final_entries[key] {
                Some(i) => {
                    let item = &page.items[i];
                    if let Effect::Upsert { record, chain } = &item.effect {
                        upserts.push((**record).clone());
                        provenance.push(ProvenanceRow {
                            key: key.clone(),
                            author: item.author.clone(),
                            author_seq: item.author_seq,
                            via: page.peer.clone(),
                            record_hash: item.authored.as_ref().map_or([0; 32], |a| a.1),
                            chain: chain.clone(),
                            at,
                        });
                    }
                }
                None => removed.push(key.clone()),
            }
        }
        let named: Vec<String> = upserts
            .iter()
            .filter_map(|r| r.entry.organisation.as_ref().map(|o| o.to_string()))
            .collect();
        let org_here = org_origins(w.conn(), &named).await?;
        for r in &mut upserts {
            let keep = r
                .entry
                .organisation
                .as_ref()
                .is_some_and(|o| org_here.get(o.as_str()) == Some(&r.entry.origin.0));
            if !keep {
                r.entry.organisation = None;
            }
        }
        let writes: Vec<EntryWrite<'_>> = upserts
            .iter()
            .map(|r| EntryWrite {
                entry: &r.entry,
                certificates: Some(&r.certificates),
            })
            .collect();
        write_entries(&mut w, &writes, VersionRule::Keep).await?;
        for chunk in removed.chunks(rows_per_insert(1)) {
            entry::Entity::delete_many()
                .filter(entry::Column::Key.is_in(chunk.iter().cloned()))
                .exec(w.conn())
                .await?;
        }
        for key in &removed {
            w.change(ChangeKind::EntryRemoved, key.clone());
        }
        upsert_provenance(w.conn(), &provenance).await?;
        delete_provenance(w.conn(), &removed).await?;

        // Organisation removals, once the page's entries are written.
        for id in &org_order {
            let (upsert, i) = final_orgs[id];
            if upsert {
                continue;
            }
            let in_use = entry::Entity::find()
                .filter(entry::Column::OrganisationId.eq(id.as_str()))
                .count(w.conn())
                .await?;
            if in_use > 0 {
                status[i] = Status::Quarantined(
                    "invalid-record".into(),
                    format!("organisation {id} still has {in_use} entries here"),
                );
                continue;
            }
            organisation::Entity::delete_by_id(id.clone())
                .exec(w.conn())
                .await?;
            w.change(ChangeKind::OrganisationChanged, id.clone());
        }

        // Policy events, in page order, against the heads that commit.
        for (i, item) in page.items.iter().enumerate() {
            if let Effect::Policy(write) = &item.effect {
                let mut write = (**write).clone();
                write.via = Some(page.peer.clone());
                if let Some(PolicyOutcome::Rejected(r)) =
                    accept_events(&mut w, std::slice::from_ref(&write))
                        .await?
                        .pop()
                {
                    status[i] = Status::Quarantined(r.code.into(), r.detail);
                }
            }
        }

        // The mirror, rejections, authors, grants.
        let mirror_cols = [
            FedMirror::Peer,
            FedMirror::Seq,
            FedMirror::Hash,
            FedMirror::Record,
            FedMirror::Status,
            FedMirror::Author,
            FedMirror::AuthorSeq,
        ];
        let per = rows_per_insert(mirror_cols.len()).min(500);
        for (chunk_items, chunk_status) in page.items.chunks(per).zip(status.chunks(per)) {
            let mut insert = Query::insert();
            insert.into_table(FedMirror::Table).columns(mirror_cols);
            for (item, st) in chunk_items.iter().zip(chunk_status) {
                insert.values_panic([
                    page.peer.0.clone().into(),
                    to_i64("seq", item.seq)?.into(),
                    item.hash.to_vec().into(),
                    item.bytes.clone().into(),
                    match st {
                        Status::Applied => "applied",
                        Status::Quarantined(..) => "quarantined",
                    }
                    .into(),
                    item.author.0.clone().into(),
                    to_i64("seq", item.author_seq)?.into(),
                ]);
            }
            w.conn().execute(&insert).await?;
        }
        let rejections: Vec<RejectionRow> = page
            .items
            .iter()
            .zip(&status)
            .filter_map(|(item, st)| match st {
                Status::Quarantined(code, detail) => Some(RejectionRow {
                    id: 0,
                    peer: page.peer.clone(),
                    seq: Some(item.seq),
                    author: Some(item.author.clone()),
                    author_seq: Some(item.author_seq),
                    code: code.clone(),
                    detail: detail.clone(),
                    at,
                }),
                Status::Applied => None,
            })
            .collect();
        insert_rejections(w.conn(), &rejections).await?;
        upsert_authors(w.conn(), &page.authors, at).await?;
        insert_grants(w.conn(), &page.grants, at).await?;

        // Relay what took effect into this node's log.
        let relayables: Vec<Relayable> = page
            .items
            .iter()
            .zip(&status)
            .filter(|(_, st)| matches!(st, Status::Applied))
            .filter_map(|(item, _)| {
                item.authored
                    .as_ref()
                    .map(|(bytes, hash, body_type)| Relayable {
                        bytes: bytes.clone(),
                        hash: *hash,
                        body_type: *body_type,
                        author: item.author.clone(),
                        author_seq: item.author_seq,
                        subject: subject(&item.effect),
                    })
            })
            .collect();
        if !relayables.is_empty() {
            let tip = read_tip(w.conn()).await?;
            let append =
                relay(&tip, &relayables).map_err(|e| StorageError::corrupt("log append", e))?;
            write_append(&w, &tip, append).await?;
        }

        // The cursor, guarded once more by its expected value.
        let q = Query::update()
            .table(FedPeers::Table)
            .value(FedPeers::Cursor, to_i64("cursor", page.cursor)?)
            .value(FedPeers::CursorHash, page.cursor_hash.to_vec())
            .value(FedPeers::Signer, page.signer.0.clone())
            .value(FedPeers::HeadSeen, to_i64("head", page.head_seen)?)
            .value(FedPeers::LastPullAt, at)
            .value(FedPeers::LastOkAt, at)
            .value(FedPeers::LastErrorCode, None::<String>)
            .value(FedPeers::LastError, None::<String>)
            .value(FedPeers::Failures, 0i32)
            .and_where(Expr::col(FedPeers::Peer).eq(page.peer.0.as_str()))
            .and_where(Expr::col(FedPeers::Cursor).eq(to_i64("cursor", page.expected_cursor)?))
            .to_owned();
        if w.conn().execute(&q).await?.rows_affected() != 1 {
            w.rollback().await?;
            return Ok(None);
        }
        let quarantined = status
            .iter()
            .filter(|s| matches!(s, Status::Quarantined(..)))
            .count();
        let relayed = relayables.len();
        let seq = w.commit().await?;
        Ok(Some(ApplyOutcome {
            seq,
            applied: page.items.len() - quarantined,
            quarantined,
            relayed,
        }))
    }
}

async fn org_origins(
    conn: &impl ConnectionTrait,
    ids: &[String],
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(rows_per_insert(1)) {
        let rows: Vec<(String, String)> = organisation::Entity::find()
            .select_only()
            .columns([organisation::Column::Id, organisation::Column::Origin])
            .filter(organisation::Column::Id.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}
