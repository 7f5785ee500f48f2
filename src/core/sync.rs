//! Keeps the search index in step with the database. The index records the
//! last change it applied; this task reads the changes after it, fetches the
//! current state of what changed and applies it, woken by writes (and by a
//! timer, for writes made by other processes sharing the database).

use std::collections::{BTreeSet, HashSet};
use std::sync::Weak;
use std::time::Duration;

use tracing::{debug, warn};

use super::{Directory, Inner, Result};
use crate::domain::{ChangeKind, ChangeSeq, OrgId};
use crate::index::{IndexDoc, IndexOp};

/// Changes read per round.
const PAGE: u64 = 5000;
/// How often to look for changes nobody told us about.
const POLL: Duration = Duration::from_millis(500);

pub(super) fn spawn(directory: &Directory) {
    let weak = std::sync::Arc::downgrade(&directory.inner);
    tokio::spawn(run(weak));
}

/// Holds the directory only while working: between rounds it keeps a weak
/// reference, so dropping the last `Directory` releases the index (and its
/// writer lock) and ends this task.
async fn run(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let wake = inner.wake_sync.clone();
        let directory = Directory { inner };
        if let Err(e) = directory.catch_up().await {
            warn!(error = %e, "search index catch-up failed; retrying");
        }
        drop(directory);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

impl Directory {
    /// Applies every change after the index's position. Returns the new position.
    pub async fn catch_up(&self) -> Result<ChangeSeq> {
        let _writing = self.inner.index_writing.lock().await;
        let mut from = self.index()?.applied_seq();
        loop {
            let changes = self.inner.store.changes_since(from, PAGE).await?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                break;
            };
            let mut keys = BTreeSet::new();
            let mut orgs_changed = HashSet::new();
            let mut anchors_changed = false;
            for change in &changes {
                match change.kind {
                    ChangeKind::EntryUpserted | ChangeKind::EntryRemoved => {
                        keys.insert(change.key.clone());
                    }
                    ChangeKind::OrganisationChanged => {
                        orgs_changed.insert(change.key.clone());
                    }
                    ChangeKind::AnchorsChanged => anchors_changed = true,
                    ChangeKind::PolicyEvent => {}
                }
            }
            if !orgs_changed.is_empty() {
                // Another process may have changed them; names show in the index.
                self.reload_organisations().await?;
                for org in &orgs_changed {
                    if let Ok(id) = org.parse::<OrgId>() {
                        keys.extend(self.inner.store.entries_of_organisation(&id).await?);
                    }
                }
            }
            if anchors_changed {
                self.reload_trust_store().await?;
            }
            let keys: Vec<String> = keys.into_iter().collect();
            let records = self.inner.store.get_entries(&keys).await?;
            let present: HashSet<String> = records.iter().map(|r| r.entry.address.key()).collect();
            let mut ops: Vec<IndexOp> = records
                .iter()
                .map(|r| {
                    let org_name = self.organisation_name(r.entry.organisation.as_ref());
                    IndexOp::Upsert(IndexDoc::from_entry(&r.entry, org_name.as_deref()))
                })
                .collect();
            ops.extend(
                keys.into_iter()
                    .filter(|k| !present.contains(k))
                    .map(IndexOp::Remove),
            );
            let count = ops.len();
            let this = self.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                Ok(this.index()?.apply(ops, last)?)
            })
            .await
            .map_err(|e| super::CoreError::Internal(format!("index task: {e}")))??;
            debug!(count, up_to = last.0, "search index caught up");
            from = last;
            self.inner.metrics.index_applied_seq.set(last.0);
            self.inner.indexed.send_replace(last);
        }
        Ok(from)
    }
}
