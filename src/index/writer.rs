//! Writing: the catch-up loop's batches ([`SearchIndex::apply`]), clearing,
//! and full rebuilds ([`BulkWriter`]).
//!
//! Every write ends in a commit that records the change sequence it brings
//! the index up to in the commit payload, then reloads the reader, so a
//! change is searchable when the call returns and survives a crash exactly
//! as far as it was committed.

use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};

use tantivy::indexer::NoMergePolicy;
use tantivy::{IndexWriter, Term};

use super::{IndexDoc, IndexError, IndexOp, SearchIndex, merge_policy, payload};
use crate::domain::ChangeSeq;

impl SearchIndex {
    /// Applies a batch of changes and records `up_to` as applied, in one
    /// commit. Batches of thousands are fine (and much cheaper per change
    /// than batches of one). Fails with [`IndexError::Stale`] if `up_to` is
    /// older than what is already applied, and with [`IndexError::Busy`]
    /// while a rebuild holds the writer.
    pub fn apply(&self, ops: Vec<IndexOp>, up_to: ChangeSeq) -> Result<(), IndexError> {
        let mut guard = self.lock_writer();
        let writer = guard.as_mut().ok_or(IndexError::Busy)?;
        let applied = self.applied_seq();
        if up_to < applied {
            return Err(IndexError::Stale { applied, up_to });
        }
        let key = self.fields.key;
        let result = (|| {
            for op in ops {
                match op {
                    IndexOp::Upsert(doc) => {
                        writer.delete_term(Term::from_field_text(key, &doc.key));
                        writer
                            .add_document(doc.to_document(&self.fields))
                            .map_err(IndexError::engine("adding a document"))?;
                    }
                    IndexOp::Remove(k) => {
                        writer.delete_term(Term::from_field_text(key, &k));
                    }
                }
            }
            commit(writer, up_to)
        })();
        self.after_commit(writer, result, up_to)
    }

    /// Removes every document and records change 0, so that the next
    /// catch-up replays from the beginning (or the caller rebuilds).
    pub fn clear(&self) -> Result<(), IndexError> {
        let mut guard = self.lock_writer();
        let writer = guard.as_mut().ok_or(IndexError::Busy)?;
        let result = writer
            .delete_all_documents()
            .map_err(IndexError::engine("clearing"))
            .and_then(|_| commit(writer, ChangeSeq(0)));
        self.after_commit(writer, result, ChangeSeq(0))
    }

    /// Starts a full rebuild. Documents added to the [`BulkWriter`] replace
    /// the whole index when it [finishes](BulkWriter::finish); until then
    /// searches see the old contents, and dropping it unfinished leaves them
    /// in place. [`apply`](Self::apply) fails with [`IndexError::Busy`]
    /// meanwhile.
    pub fn bulk_writer(&self) -> Result<BulkWriter<'_>, IndexError> {
        let writer = self.lock_writer().take().ok_or(IndexError::Busy)?;
        if let Err(err) = writer.delete_all_documents() {
            *self.lock_writer() = Some(writer);
            return Err(IndexError::engine("starting a rebuild")(err));
        }
        // Merging while the rebuild is still adding competes for the same
        // cores and rewrites segments that `finish` merges again anyway.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        Ok(BulkWriter {
            index: self,
            writer: Some(writer),
            added: 0,
        })
    }

    fn lock_writer(&self) -> MutexGuard<'_, Option<IndexWriter>> {
        // A panic while holding the lock leaves at worst uncommitted
        // operations behind, which the rollback on the next error discards.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a commit (or rolls back a failed one).
    fn after_commit(
        &self,
        writer: &mut IndexWriter,
        result: Result<(), IndexError>,
        up_to: ChangeSeq,
    ) -> Result<(), IndexError> {
        if let Err(err) = result {
            if let Err(rollback) = writer.rollback() {
                tracing::error!(error = %rollback, "search index rollback failed");
            }
            return Err(err);
        }
        self.applied.store(up_to.0, Ordering::Release);
        self.fresh.store(up_to.0 == 0, Ordering::Release);
        self.reader
            .reload()
            .map_err(IndexError::engine("reloading the reader"))
    }
}

fn commit(writer: &mut IndexWriter, up_to: ChangeSeq) -> Result<(), IndexError> {
    let mut prepared = writer
        .prepare_commit()
        .map_err(IndexError::engine("preparing a commit"))?;
    prepared.set_payload(&payload(up_to));
    prepared
        .commit()
        .map_err(IndexError::engine("committing"))?;
    Ok(())
}

/// Merges every segment into one: a freshly rebuilt index is then as fast
/// to search as it will ever be, and its commit payload is kept by the merge.
fn merge_all(index: &SearchIndex, writer: &mut IndexWriter) -> Result<(), IndexError> {
    let segments = index
        .index
        .searchable_segment_ids()
        .map_err(IndexError::engine("listing segments"))?;
    if segments.len() > 1 {
        writer
            .merge(&segments)
            .wait()
            .map_err(IndexError::engine("merging segments"))?;
    }
    Ok(())
}

/// A full rebuild in progress; see [`SearchIndex::bulk_writer`].
///
/// It owns the index's writer, so it can be held across `.await` points and
/// moved between threads.
pub struct BulkWriter<'a> {
    index: &'a SearchIndex,
    writer: Option<IndexWriter>,
    added: u64,
}

impl BulkWriter<'_> {
    /// Adds one document. Keys must be unique within a rebuild.
    pub fn add(&mut self, doc: &IndexDoc) -> Result<(), IndexError> {
        let writer = self.writer.as_ref().ok_or(IndexError::Busy)?;
        writer
            .add_document(doc.to_document(&self.index.fields))
            .map_err(IndexError::engine("adding a document"))?;
        self.added += 1;
        Ok(())
    }

    /// How many documents were added so far.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Commits the rebuild, recording that it reflects the database up to
    /// `up_to`, and makes it searchable.
    pub fn finish(mut self, up_to: ChangeSeq) -> Result<(), IndexError> {
        let Some(mut writer) = self.writer.take() else {
            return Err(IndexError::Busy);
        };
        let result = commit(&mut writer, up_to).and_then(|()| merge_all(self.index, &mut writer));
        writer.set_merge_policy(merge_policy());
        let outcome = self.index.after_commit(&mut writer, result, up_to);
        *self.index.lock_writer() = Some(writer);
        outcome
    }
}

impl Drop for BulkWriter<'_> {
    fn drop(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            if let Err(err) = writer.rollback() {
                tracing::error!(error = %err, "search index rollback of an abandoned rebuild failed");
            }
            writer.set_merge_policy(merge_policy());
            *self.index.lock_writer() = Some(writer);
        }
    }
}
