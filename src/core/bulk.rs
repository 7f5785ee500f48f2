//! Bulk work: import, export and rebuilding the search index.
//!
//! Import is a two-stage pipeline so both cores work: a blocking thread
//! reads rows and prepares entries (certificate parsing, binding and chain
//! checks in parallel with rayon) while the previous batch is written in one
//! transaction. An imported row is the entry's whole state, certificates
//! included. Strict imports check every row first and write nothing if any
//! is bad.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use tokio::sync::mpsc;

use super::certificates::{decode_material, prepare};
use super::{CoreError, Directory, Result};
use crate::domain::{
    Caller, ChangeSeq, EntryInput, EntryRecord, NodeId, OrgId, Organisation, OrganisationInput,
};
use crate::formats::{ImportRecord, ImportRow};
use crate::index::{IndexDoc, IndexOp};
use crate::pki::TrustStore;

#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Abort on the first bad row with nothing written.
    pub strict: bool,
    /// Entries per transaction.
    pub batch_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            strict: false,
            batch_size: 2000,
        }
    }
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RejectedRow {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    pub organisations: usize,
    pub entries: usize,
    pub certificates: usize,
    pub rejected: Vec<RejectedRow>,
    /// Strict mode found bad rows: nothing was written.
    pub aborted: bool,
    /// The change sequence after the last write.
    pub seq: ChangeSeq,
}

/// Progress reported while importing or rebuilding.
#[derive(Debug, Clone, Copy)]
pub enum ImportProgress {
    /// This many rows have been read and prepared.
    Prepared(u64),
    /// This many entries have been written.
    Written(u64),
}

/// What the preparing stage hands the writing stage.
enum Prepared {
    Organisation(Organisation),
    Entries(Vec<EntryRecord>),
    Rejected(Vec<RejectedRow>),
}

/// Everything the preparing stage needs, owned, so it can run on its own thread.
struct Preparer {
    caller: Caller,
    node: NodeId,
    now: DateTime<Utc>,
    trust: Arc<TrustStore>,
    organisations: HashMap<OrgId, Organisation>,
}

impl Preparer {
    fn organisation(&mut self, input: OrganisationInput) -> Result<Organisation, String> {
        if !self.caller.is_node_admin() {
            return Err("only a node admin may import organisations".into());
        }
        let id = input.id.clone().ok_or("an organisation row needs an id")?;
        let org = input
            .into_organisation(id, self.node.clone(), self.now)
            .map_err(|e| e.to_string())?;
        self.organisations.insert(org.id.clone(), org.clone());
        Ok(org)
    }

    fn entry(&self, input: EntryInput) -> Result<EntryRecord, String> {
        let address = input
            .address
            .clone()
            .ok_or("an entry row needs an address")?;
        let blobs = input
            .certificates
            .iter()
            .map(|t| decode_material(t))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.public_detail())?;
        let entry = input
            .into_entry(address.clone(), self.node.clone(), self.now)
            .map_err(|e| e.to_string())?;
        if !self
            .caller
            .can_write_entries_of(entry.organisation.as_ref())
        {
            return Err("this token may not write entries of that organisation".into());
        }
        if let Some(org_id) = &entry.organisation {
            let org = self
                .organisations
                .get(org_id)
                .ok_or_else(|| format!("unknown organisation {org_id}"))?;
            if !org.covers(address.domain()) {
                return Err(format!(
                    "{} is outside the domains of organisation {org_id}",
                    address.domain()
                ));
            }
        }
        let certificates = if blobs.is_empty() {
            Vec::new()
        } else {
            prepare(&self.trust, &address, &blobs, self.now).map_err(|e| e.public_detail())?
        };
        Ok(EntryRecord {
            entry,
            certificates,
        })
    }

    /// Prepares a chunk of rows: organisations in order, entries in parallel.
    fn chunk(&mut self, rows: Vec<ImportRow>) -> Vec<Prepared> {
        let mut out = Vec::new();
        let mut pending: Vec<(usize, EntryInput)> = Vec::new();
        let mut rejected = Vec::new();
        let flush = |this: &Self,
                     pending: &mut Vec<(usize, EntryInput)>,
                     out: &mut Vec<Prepared>,
                     rejected: &mut Vec<RejectedRow>| {
            if pending.is_empty() {
                return;
            }
            let results: Vec<(usize, Result<EntryRecord, String>)> = std::mem::take(pending)
                .into_par_iter()
                .map(|(line, input)| (line, this.entry(input)))
                .collect();
            let mut records = Vec::with_capacity(results.len());
            for (line, result) in results {
                match result {
                    Ok(r) => records.push(r),
                    Err(reason) => rejected.push(RejectedRow { line, reason }),
                }
            }
            // Within one transaction an address may appear once: the last row wins.
            let mut last: HashMap<String, usize> = HashMap::new();
            for (i, r) in records.iter().enumerate() {
                last.insert(r.entry.address.key(), i);
            }
            let records: Vec<EntryRecord> = records
                .into_iter()
                .enumerate()
                .filter(|(i, r)| last.get(&r.entry.address.key()) == Some(i))
                .map(|(_, r)| r)
                .collect();
            out.push(Prepared::Entries(records));
        };
        for row in rows {
            match row.record {
                Err(reason) => rejected.push(RejectedRow {
                    line: row.line,
                    reason,
                }),
                Ok(ImportRecord::Entry(input)) => pending.push((row.line, *input)),
                Ok(ImportRecord::Organisation(input)) => {
                    flush(self, &mut pending, &mut out, &mut rejected);
                    match self.organisation(input) {
                        Ok(org) => out.push(Prepared::Organisation(org)),
                        Err(reason) => rejected.push(RejectedRow {
                            line: row.line,
                            reason,
                        }),
                    }
                }
            }
        }
        flush(self, &mut pending, &mut out, &mut rejected);
        if !rejected.is_empty() {
            out.push(Prepared::Rejected(rejected));
        }
        out
    }
}

impl Directory {
    /// Imports rows. `progress` is called as rows are prepared and written.
    pub async fn import<I>(
        &self,
        caller: &Caller,
        rows: I,
        options: ImportOptions,
        progress: Arc<dyn Fn(ImportProgress) + Send + Sync>,
    ) -> Result<ImportReport>
    where
        I: Iterator<Item = ImportRow> + Send + 'static,
    {
        if matches!(caller, Caller::Anonymous | Caller::OrgMember { .. }) {
            return Err(CoreError::Unauthenticated(
                "importing needs an admin token".into(),
            ));
        }
        let mut preparer = Preparer {
            caller: caller.clone(),
            node: self.inner.node_id.clone(),
            now: self.now(),
            trust: self.trust_store(),
            organisations: self.inner.organisations.read().expect("org lock").clone(),
        };
        let batch = options.batch_size.max(1);
        let strict = options.strict;
        let (tx, mut rx) = mpsc::channel::<Vec<Prepared>>(2);
        let prep_progress = progress.clone();
        let producer = tokio::task::spawn_blocking(move || {
            let mut rows = rows;
            let mut done = 0u64;
            loop {
                let chunk: Vec<ImportRow> = rows.by_ref().take(batch).collect();
                if chunk.is_empty() {
                    return;
                }
                done += chunk.len() as u64;
                let prepared = preparer.chunk(chunk);
                prep_progress(ImportProgress::Prepared(done));
                if tx.blocking_send(prepared).is_err() {
                    return;
                }
            }
        });

        let mut report = ImportReport::default();
        let mut held: Vec<Prepared> = Vec::new();
        let mut written = 0u64;
        while let Some(prepared) = rx.recv().await {
            if strict {
                for p in prepared {
                    match p {
                        Prepared::Rejected(r) => report.rejected.extend(r),
                        other => held.push(other),
                    }
                }
                continue;
            }
            for p in prepared {
                written += self.write_prepared(p, &mut report).await? as u64;
                progress(ImportProgress::Written(written));
            }
        }
        producer
            .await
            .map_err(|e| CoreError::Internal(format!("import reader failed: {e}")))?;

        if strict {
            if !report.rejected.is_empty() {
                report.aborted = true;
                return Ok(report);
            }
            // Organisations first, then every entry in one transaction.
            let mut entries = Vec::new();
            for p in held {
                match p {
                    Prepared::Entries(e) => entries.extend(e),
                    other => {
                        self.write_prepared(other, &mut report).await?;
                    }
                }
            }
            let n = self
                .write_prepared(Prepared::Entries(entries), &mut report)
                .await?;
            progress(ImportProgress::Written(n as u64));
        }
        report.rejected.sort_by_key(|r| r.line);
        Ok(report)
    }

    /// Writes one prepared item; returns how many entries it wrote.
    async fn write_prepared(&self, item: Prepared, report: &mut ImportReport) -> Result<usize> {
        match item {
            Prepared::Rejected(r) => {
                report.rejected.extend(r);
                Ok(0)
            }
            Prepared::Organisation(org) => {
                let seq = self.inner.store.put_organisation(&org).await?;
                self.inner
                    .organisations
                    .write()
                    .expect("org lock")
                    .insert(org.id.clone(), org);
                report.organisations += 1;
                report.seq = seq;
                self.written(seq);
                Ok(0)
            }
            Prepared::Entries(records) if records.is_empty() => Ok(0),
            Prepared::Entries(records) => {
                let seq = self.inner.store.import_batch(&records).await?;
                report.entries += records.len();
                report.certificates += records.iter().map(|r| r.certificates.len()).sum::<usize>();
                report.seq = seq;
                self.inner
                    .metrics
                    .entries_written
                    .inc_by(records.len() as u64);
                self.written(seq);
                Ok(records.len())
            }
        }
    }

    /// Streams every organisation, then every entry the caller may see.
    pub async fn export(
        &self,
        caller: &Caller,
        mut sink: impl FnMut(ExportItem) -> std::io::Result<()>,
    ) -> Result<usize> {
        let io = |e: std::io::Error| CoreError::Internal(format!("writing the export: {e}"));
        for org in self.list_organisations().await? {
            sink(ExportItem::Organisation(
                OrganisationInput::from_organisation(&org),
            ))
            .map_err(io)?;
        }
        let mut cursor = 0;
        let mut count = 0;
        loop {
            let (page, next) = self.inner.store.scan_entries(cursor, 1000).await?;
            for record in page.iter().filter(|r| caller.can_see(&r.entry)) {
                let name = self.organisation_name(record.entry.organisation.as_ref());
                sink(ExportItem::Entry(
                    Box::new(EntryInput::from_record(record)),
                    name,
                ))
                .map_err(io)?;
                count += 1;
            }
            match next {
                Some(n) => cursor = n,
                None => return Ok(count),
            }
        }
    }

    /// One page of every entry (all visibilities) with its organisation's
    /// name, in storage order, for tools that walk the whole directory.
    /// Returns the cursor of the next page.
    pub async fn export_page(
        &self,
        cursor: i64,
        limit: u64,
    ) -> Result<(Vec<(EntryRecord, Option<String>)>, Option<i64>)> {
        let (page, next) = self.inner.store.scan_entries(cursor, limit).await?;
        let named = page
            .into_iter()
            .map(|r| {
                let name = self.organisation_name(r.entry.organisation.as_ref());
                (r, name)
            })
            .collect();
        Ok((named, next))
    }

    /// Rebuilds the search index from the database. `progress` gets the
    /// number of entries indexed so far and the total.
    pub async fn reindex(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<u64> {
        // Everything up to `head` is in the rows we are about to read;
        // anything written meanwhile is applied afterwards by the catch-up.
        let _writing = self.inner.index_writing.lock().await;
        let head = self.inner.store.head_seq().await?;
        let total = self.inner.store.count_entries().await?;
        self.index()?.clear()?;
        let mut cursor = 0;
        let mut done = 0u64;
        loop {
            let (page, next) = self.inner.store.scan_entries(cursor, 5000).await?;
            let ops: Vec<IndexOp> = page
                .iter()
                .map(|r| {
                    let org_name = self.organisation_name(r.entry.organisation.as_ref());
                    IndexOp::Upsert(IndexDoc::from_entry(&r.entry, org_name.as_deref()))
                })
                .collect();
            done += ops.len() as u64;
            let last = next.is_none();
            let up_to = if last { head } else { ChangeSeq(0) };
            let this = self.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                Ok(this.index()?.apply(ops, up_to)?)
            })
            .await
            .map_err(|e| CoreError::Internal(format!("index task: {e}")))??;
            progress(done, total);
            match next {
                Some(n) => cursor = n,
                None => break,
            }
        }
        // The other derived views kept by the catch-up start over too.
        self.build_attributes().await?;
        self.inner.cache.clear();
        self.inner.indexed.send_replace(head);
        self.inner.metrics.index_applied_seq.set(head.0);
        self.inner.wake_sync.notify_one();
        Ok(done)
    }
}

/// One item of an export, in the order written.
pub enum ExportItem {
    Organisation(OrganisationInput),
    /// The entry and its organisation's name.
    Entry(Box<EntryInput>, Option<String>),
}
