//! Keyset scans over everything, for rebuilding derived views, exporting,
//! and re-evaluating trust.
//!
//! A consistent rebuild reads [`Store::head_seq`] first, scans to the end,
//! then applies `changes_since(head)`: rows committed during the scan may be
//! missed by the scan (a PostgreSQL id is taken at insert, not at commit),
//! but never by the changes that follow.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::convert::{entry_certificate_from_row, parse};
use super::entity::{certificate, entry};
use super::entries::records_of;
use super::seq::rows_per_insert;
use super::{StorageError, Store};
use crate::domain::{
    Binding, EntryCertificate, EntryNames, EntryRecord, OrgId, TrustStatus, Visibility,
};

type Result<T> = std::result::Result<T, StorageError>;

/// The largest page a scan or [`Store::changes_since`] returns, whatever
/// `limit` asks for: it bounds memory and keeps `IN (...)` lists under the
/// backends' parameter limits.
pub const MAX_PAGE: u64 = 10_000;

/// One attached certificate with what publishing it (DNS CERT records)
/// needs of it and of its entry: read by [`Store::scan_published`] without
/// decoding the rest of either.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedRow {
    /// The entry's key ([`crate::domain::DirectoryAddress::key`]): its names derive from it.
    pub key: String,
    pub visibility: Visibility,
    pub binding: Binding,
    /// The trust status last stored (not re-judged at any moment).
    pub trust: TrustStatus,
    pub not_before: chrono::DateTime<chrono::Utc>,
    pub not_after: chrono::DateTime<chrono::Utc>,
    /// The certificate's row id: [`Store::certificate_ders`] reads its DER.
    pub id: i64,
    /// The first eight bytes of its SHA-256 fingerprint (big-endian).
    pub fingerprint_prefix: u64,
}

impl Store {
    /// Up to `limit` entries with their certificates whose surrogate id is
    /// greater than `after_id` (start with 0), in id order, and the cursor
    /// for the next page (`None` when this page was the last). Pages hold at
    /// most [`MAX_PAGE`] entries.
    pub async fn scan_entries(
        &self,
        after_id: i64,
        limit: u64,
    ) -> Result<(Vec<EntryRecord>, Option<i64>)> {
        let limit = limit.clamp(1, MAX_PAGE);
        let tx = self.begin_read().await?;
        let rows = entry::Entity::find()
            .filter(entry::Column::Id.gt(after_id))
            .order_by_asc(entry::Column::Id)
            .limit(limit)
            .all(&tx)
            .await?;
        let full = rows.len() as u64 == limit;
        let records = records_of(&tx, rows).await?;
        tx.commit().await?;
        let next = records.last().map(|(id, _)| *id).filter(|_| full);
        Ok((records.into_iter().map(|(_, r)| r).collect(), next))
    }

    /// [`Store::scan_entries`] reading only the columns of [`EntryNames`]:
    /// what the in-memory attribute view is built from.
    pub async fn scan_entry_names(
        &self,
        after_id: i64,
        limit: u64,
    ) -> Result<(Vec<EntryNames>, Option<i64>)> {
        type Row = (
            i64,
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
        );
        let limit = limit.clamp(1, MAX_PAGE);
        let rows: Vec<Row> = entry::Entity::find()
            .select_only()
            .columns([
                entry::Column::Id,
                entry::Column::Key,
                entry::Column::Kind,
                entry::Column::Visibility,
                entry::Column::OrganisationId,
                entry::Column::DisplayName,
                entry::Column::GivenName,
                entry::Column::Surname,
            ])
            .filter(entry::Column::Id.gt(after_id))
            .order_by_asc(entry::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        let next = rows
            .last()
            .map(|r| r.0)
            .filter(|_| rows.len() as u64 == limit);
        let names = rows
            .into_iter()
            .map(
                |(_, key, kind, visibility, org, display_name, given_name, surname)| {
                    Ok(EntryNames {
                        key,
                        kind: parse("entry kind", &kind)?,
                        visibility: parse("entry visibility", &visibility)?,
                        organisation: org
                            .as_deref()
                            .map(|o| parse::<OrgId>("entry organisation", o))
                            .transpose()?,
                        display_name,
                        given_name,
                        surname,
                    })
                },
            )
            .collect::<Result<Vec<_>>>()?;
        Ok((names, next))
    }

    /// Up to `limit` attached certificates whose surrogate id is greater
    /// than `after` (start with 0), each with its entry's key, and the
    /// cursor for the next page (`None` when this page was the last). Pages
    /// hold at most [`MAX_PAGE`] certificates.
    pub async fn scan_certificates(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<(Vec<(String, EntryCertificate)>, Option<i64>)> {
        let limit = limit.clamp(1, MAX_PAGE);
        let tx = self.begin_read().await?;
        let rows = certificate::Entity::find()
            .filter(certificate::Column::Id.gt(after))
            .order_by_asc(certificate::Column::Id)
            .limit(limit)
            .all(&tx)
            .await?;
        let mut entry_ids: Vec<i64> = rows.iter().map(|c| c.entry_id).collect();
        entry_ids.sort_unstable();
        entry_ids.dedup();
        let keys: HashMap<i64, String> = entry::Entity::find()
            .select_only()
            .columns([entry::Column::Id, entry::Column::Key])
            .filter(entry::Column::Id.is_in(entry_ids))
            .into_tuple::<(i64, String)>()
            .all(&tx)
            .await?
            .into_iter()
            .collect();
        tx.commit().await?;
        let full = rows.len() as u64 == limit;
        let next = rows.last().map(|c| c.id).filter(|_| full);
        let page = rows
            .into_iter()
            .map(|c| {
                let key = keys.get(&c.entry_id).cloned().ok_or_else(|| {
                    StorageError::corrupt("certificates", format!("entry {} missing", c.entry_id))
                })?;
                Ok((key, entry_certificate_from_row(c)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((page, next))
    }

    /// Like [`Store::scan_certificates`], reading only the columns of
    /// [`PublishedRow`]: what the DNS publication view is built from at
    /// start (a full record decode costs ten times as much).
    pub async fn scan_published(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<(Vec<PublishedRow>, Option<i64>)> {
        let limit = limit.clamp(1, MAX_PAGE);
        let tx = self.begin_read().await?;
        let rows: Vec<PublishedCertRow> = published_certificates()
            .filter(certificate::Column::Id.gt(after))
            .order_by_asc(certificate::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&tx)
            .await?;
        let mut entry_ids: Vec<i64> = rows.iter().map(|c| c.1).collect();
        entry_ids.sort_unstable();
        entry_ids.dedup();
        let mut entries = HashMap::new();
        for chunk in entry_ids.chunks(rows_per_insert(1)) {
            entries.extend(
                published_entries()
                    .filter(entry::Column::Id.is_in(chunk.iter().copied()))
                    .into_tuple::<PublishedEntryRow>()
                    .all(&tx)
                    .await?
                    .into_iter()
                    .map(published_entry)
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        tx.commit().await?;
        let next = rows
            .last()
            .map(|c| c.0)
            .filter(|_| rows.len() as u64 == limit);
        Ok((assemble_published(rows, &entries)?, next))
    }

    /// The DER of the certificates with these row ids (see
    /// [`PublishedRow::id`]), in no particular order; ids no longer stored
    /// (the entry changed since) are left out.
    pub async fn certificate_ders(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(rows_per_insert(1)) {
            out.extend(
                certificate::Entity::find()
                    .select_only()
                    .columns([certificate::Column::Id, certificate::Column::Der])
                    .filter(certificate::Column::Id.is_in(chunk.iter().copied()))
                    .into_tuple::<(i64, Vec<u8>)>()
                    .all(&self.db)
                    .await?,
            );
        }
        Ok(out)
    }

    /// The [`PublishedRow`]s of the public entries with `keys` (lower-case
    /// entry keys): what the DNS publication view needs when those entries
    /// changed. Entries that are internal, gone or without certificates
    /// give no rows.
    pub async fn published_of(&self, keys: &[String]) -> Result<Vec<PublishedRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|k| k.to_ascii_lowercase()).collect();
        let tx = self.begin_read().await?;
        let mut entries = HashMap::new();
        for chunk in keys.chunks(rows_per_insert(1)) {
            for row in published_entries()
                .filter(entry::Column::Key.is_in(chunk.iter().cloned()))
                .filter(entry::Column::Visibility.eq(Visibility::Public.as_str()))
                .into_tuple::<PublishedEntryRow>()
                .all(&tx)
                .await?
            {
                let (id, e) = published_entry(row)?;
                entries.insert(id, e);
            }
        }
        let ids: Vec<i64> = entries.keys().copied().collect();
        let mut rows: Vec<PublishedCertRow> = Vec::new();
        for chunk in ids.chunks(rows_per_insert(1)) {
            rows.extend(
                published_certificates()
                    .filter(certificate::Column::EntryId.is_in(chunk.iter().copied()))
                    .order_by_asc(certificate::Column::Id)
                    .into_tuple::<PublishedCertRow>()
                    .all(&tx)
                    .await?,
            );
        }
        tx.commit().await?;
        assemble_published(rows, &entries)
    }
}

/// Id, entry id, DER, validity, binding and trust of a certificate.
type PublishedCertRow = (
    i64,
    i64,
    String,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    String,
    String,
);

/// Id, key and visibility of an entry.
type PublishedEntryRow = (i64, String, String);

fn published_certificates() -> sea_orm::Select<certificate::Entity> {
    certificate::Entity::find().select_only().columns([
        certificate::Column::Id,
        certificate::Column::EntryId,
        certificate::Column::Fingerprint,
        certificate::Column::NotBefore,
        certificate::Column::NotAfter,
        certificate::Column::Binding,
        certificate::Column::TrustStatus,
    ])
}

fn published_entries() -> sea_orm::Select<entry::Entity> {
    entry::Entity::find().select_only().columns([
        entry::Column::Id,
        entry::Column::Key,
        entry::Column::Visibility,
    ])
}

/// Each entry's columns parsed once, however many certificates it has.
fn published_entry(
    (id, key, visibility): PublishedEntryRow,
) -> Result<(i64, (String, Visibility))> {
    Ok((id, (key, parse("entry visibility", &visibility)?)))
}

/// The first eight bytes of a stored fingerprint (64 hex digits).
pub(super) fn fingerprint_prefix(hex: &str) -> Result<u64> {
    hex.get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| StorageError::corrupt("certificate fingerprint", format!("{hex:?}")))
}

fn assemble_published(
    rows: Vec<PublishedCertRow>,
    entries: &HashMap<i64, (String, Visibility)>,
) -> Result<Vec<PublishedRow>> {
    rows.into_iter()
        .map(
            |(id, entry_id, fingerprint, not_before, not_after, binding, trust)| {
                let (key, visibility) = entries.get(&entry_id).ok_or_else(|| {
                    StorageError::corrupt("certificates", format!("entry {entry_id} missing"))
                })?;
                Ok(PublishedRow {
                    key: key.clone(),
                    visibility: *visibility,
                    binding: parse("certificate binding", &binding)?,
                    trust: parse("trust status", &trust)?,
                    not_before,
                    not_after,
                    id,
                    fingerprint_prefix: fingerprint_prefix(&fingerprint)?,
                })
            },
        )
        .collect()
}
