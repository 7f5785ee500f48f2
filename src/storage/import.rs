//! Bulk import: many entries with their certificates in one transaction.

use std::collections::HashMap;

use super::entries::{EntryWrite, VersionRule, write_entries};
use super::seq::WriteTx;
use super::{StorageError, Store};
use crate::domain::{ChangeSeq, EntryRecord};

impl Store {
    /// Upserts every record, replacing each entry's certificate set with
    /// the record's, in ONE transaction: either the whole batch is visible
    /// or none of it. Versions are bumped as by [`Store::put_entry`]. A key
    /// that occurs more than once in the batch is written once, from its
    /// last occurrence. Returns the last change of the batch (the current
    /// head for an empty batch).
    ///
    /// Statements are multi-row, so batches of 1 000 to 5 000 records are
    /// the sweet spot; much larger batches hold the write lock for longer
    /// without getting faster.
    pub async fn import_batch(&self, records: &[EntryRecord]) -> Result<ChangeSeq, StorageError> {
        if records.is_empty() {
            return self.head_seq().await;
        }
        let mut last: HashMap<String, usize> = HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            last.insert(r.entry.address.key(), i);
        }
        let items: Vec<EntryWrite<'_>> = records
            .iter()
            .enumerate()
            .filter(|(i, r)| last.get(&r.entry.address.key()) == Some(i))
            .map(|(_, r)| EntryWrite {
                entry: &r.entry,
                certificates: Some(&r.certificates),
            })
            .collect();
        let mut w = WriteTx::begin(self).await?;
        write_entries(&mut w, &items, VersionRule::Bump).await?;
        w.commit().await
    }
}
