//! Keeps the search index in step with the database. The index records the
//! last change it applied; this task reads the changes after it, fetches the
//! current state of what changed and applies it, woken by writes (and by a
//! timer, for writes made by other processes sharing the database).

use std::collections::{BTreeSet, HashSet};
use std::sync::Weak;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::{Directory, Inner, Result};
use crate::domain::{ChangeKind, ChangeSeq, EntryNames, OrgId};
use crate::index::{IndexDoc, IndexOp};

/// Changes read per round.
const PAGE: u64 = 5000;
/// How often to look for changes nobody told us about.
const POLL: Duration = Duration::from_millis(500);
/// The longest a write waits for others to join its index commit.
const MAX_GATHER: Duration = Duration::from_millis(400);

pub(super) fn spawn(directory: &Directory) {
    tokio::spawn(run(std::sync::Arc::downgrade(&directory.inner)));
}

impl Directory {
    /// Builds, in the background, what a serving process keeps in memory
    /// besides what its front ends wait for at start: the LDAP attribute
    /// view (until it is built, LDAP filters are answered from the search
    /// index) and the entry cache (see [`warm_cache`]). A server calls it
    /// once its listeners are up, so that neither competes with building
    /// the front ends' views; commands that only read a little never do.
    pub fn warm_up(&self) {
        self.inner
            .attributes_wanted
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.inner.wake_sync.notify_one();
        if self.inner.cache.has_room() {
            tokio::spawn(warm_cache(std::sync::Arc::downgrade(&self.inner)));
        }
    }
}

/// Fills the entry cache from a scan of the entries until it is nine
/// tenths full, in the background after start, so that the first lookups
/// of each entry do not all go to the database. Holds the directory only
/// while reading a page.
async fn warm_cache(weak: Weak<Inner>) {
    let started = Instant::now();
    let mut cursor = 0;
    let mut read = 0usize;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let ticket = inner.cache.ticket();
        let (page, next) = match inner.store.scan_entries(cursor, 1000).await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "warming the entry cache failed; it fills as entries are read");
                return;
            }
        };
        read += page.len();
        let room = inner.cache.fill(ticket, page);
        match next {
            Some(n) if room => cursor = n,
            _ => break,
        }
        drop(inner);
        // Leave the database to the requests now and then.
        tokio::task::yield_now().await;
    }
    debug!(read, elapsed = ?started.elapsed(), "entry cache warmed");
}

/// Holds the directory only while working: between rounds it keeps a weak
/// reference, so dropping the last `Directory` releases the index (and its
/// writer lock) and ends this task.
///
/// Under a stream of writes, each round is followed by a pause twice as
/// long as the round took (at most [`MAX_GATHER`]) before the next one
/// starts: writes gather meanwhile, so the index commits them in bigger
/// batches and spends at most about a third of the time committing. A
/// commit costs much the same for ten documents as for a thousand (new
/// segment writers, a reader reload, merges). A lone write after a quiet
/// spell waits only for its own round.
async fn run(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let wake = inner.wake_sync.clone();
        let directory = Directory { inner };
        let started = Instant::now();
        if let Err(e) = directory.catch_up().await {
            warn!(error = %e, "search index catch-up failed; retrying");
        }
        let pause = gather_pause(started.elapsed());
        drop(directory);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        tokio::time::sleep(pause).await;
    }
}

/// How long writes may gather after a catch-up round that took `round`.
fn gather_pause(round: Duration) -> Duration {
    round.saturating_mul(2).min(MAX_GATHER)
}

impl Directory {
    /// Applies every change after the index's position. Returns the new position.
    pub async fn catch_up(&self) -> Result<ChangeSeq> {
        let _writing = self.inner.index_writing.lock().await;
        let mut from = self.index()?.applied_seq();
        // Only once a server asks for it (after its front ends are up:
        // building it would compete with the views they wait for); until
        // then the LDAP plan asks the index instead.
        if !self.inner.attributes.is_built()
            && self
                .inner
                .attributes_wanted
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            // Under the lock: rows the scan reads are at least as new as
            // `from`, and the rounds below re-apply everything after it.
            self.build_attributes().await?;
        }
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
            // The index and the attribute view need the entries' own
            // fields; whole records only for what the entry cache held.
            let entries = self.inner.store.get_entries_only(&keys).await?;
            let present: HashSet<String> = entries.iter().map(|e| e.address.key()).collect();
            let mut ops: Vec<IndexOp> = entries
                .iter()
                .map(|e| {
                    let org_name = self.organisation_name(e.organisation.as_ref());
                    IndexOp::Upsert(IndexDoc::from_entry(e, org_name.as_deref()))
                })
                .collect();
            ops.extend(
                keys.iter()
                    .filter(|k| !present.contains(*k))
                    .cloned()
                    .map(IndexOp::Remove),
            );
            let names = entries.iter().map(EntryNames::of).collect();
            self.inner.attributes.apply(&keys, names);
            let warm = self.inner.cache.take_warm(&keys);
            if !warm.is_empty() {
                let records = self.inner.store.get_entries(&warm).await?;
                self.inner.cache.put_back(records);
            }
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

    /// Builds the in-memory attribute view from a scan of every entry.
    pub(super) async fn build_attributes(&self) -> Result<()> {
        let started = Instant::now();
        let all = self.inner.store.all_entry_names().await?;
        let count = all.len();
        self.inner.attributes.build(all);
        debug!(count, elapsed = ?started.elapsed(), "attribute view built");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_gather_twice_as_long_as_a_round_took_within_a_bound() {
        assert_eq!(gather_pause(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            gather_pause(Duration::from_millis(30)),
            Duration::from_millis(60)
        );
        assert_eq!(gather_pause(Duration::from_secs(5)), MAX_GATHER);
        assert!(MAX_GATHER < Duration::from_secs(1));
    }
}
