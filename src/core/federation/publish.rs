//! The publisher: reads the change sequence from where it last stopped,
//! turns what changed locally and publicly into signed records, and
//! appends them together with its new position in ONE transaction — so a
//! crash loses nothing (the position did not move) and duplicates nothing
//! (the records did not commit either). A digest of the last body
//! published per entry or organisation skips records that would say the
//! same again (a trust re-evaluation, say).
//!
//! What is published: public entries and organisations whose origin is
//! this node. An entry that becomes internal, or is deleted, is withdrawn
//! with a removal record; internal entries never leave the node. Entries
//! applied from children are not published here: they were relayed,
//! verbatim, when they were applied.
//!
//! Nothing is published until the node may speak for anything: it is the
//! root, or it holds an installed delegation. Changes made before then
//! wait in the change sequence and go out, in order, after the delegation.

use std::collections::{HashMap, HashSet};
use std::sync::Weak;

use tracing::{debug, warn};

use super::{Draft, short};
use crate::core::{Directory, Inner, Result};
use crate::domain::{ChangeKind, ChangeSeq, DirectoryAddress, OrgId, Visibility};
use crate::federation::{Body, EntryPublication, Record};
use crate::storage::PublishItem;

/// Changes read per round.
const PAGE: u64 = 2000;

pub(super) fn spawn(directory: &Directory) {
    let weak = std::sync::Arc::downgrade(&directory.inner);
    tokio::spawn(run(weak));
}

async fn run(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let directory = Directory { inner };
        let mut published = 0;
        loop {
            match directory.publish_pending().await {
                Ok(0) => break,
                Ok(n) => published += n,
                Err(e) => {
                    warn!(error = %e, "publishing failed; retrying");
                    break;
                }
            }
        }
        if published > 0 {
            directory.fed().wake_notifier.notify_one();
        }
        let interval = directory.federation_options().publish_interval;
        let inner = directory.inner.clone();
        drop(directory);
        tokio::select! {
            _ = inner.fed.wake_publisher.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

impl Directory {
    /// May this node publish yet (root, or holding a delegation)?
    async fn may_publish(&self) -> Result<bool> {
        use std::sync::atomic::Ordering;
        if self.is_root() || self.fed().delegated.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let held = self.inner.store.fed_grants().await?.iter().any(|g| g.own);
        // Delegations are never uninstalled: once held, always checked true.
        self.fed().delegated.store(held, Ordering::Relaxed);
        Ok(held)
    }

    /// Publishes one round of pending changes; returns how many records
    /// it appended (0 when there was nothing to do).
    pub async fn publish_pending(&self) -> Result<usize> {
        let _round = self.fed().publishing.lock().await;
        if !self.may_publish().await? {
            return Ok(0);
        }
        let identity = self.log_identity().await?;
        let from = self.inner.store.fed_publish_cursor().await?;
        let changes = self.inner.store.changes_since(from, PAGE).await?;
        let Some(to) = changes.last().map(|c| c.seq) else {
            return Ok(0);
        };

        // What changed, first occurrence first (an organisation before the
        // entries that name it; an entry's removal before its
        // organisation's).
        let mut seen = HashSet::new();
        let mut order: Vec<String> = Vec::new();
        for c in &changes {
            let key = match c.kind {
                ChangeKind::EntryUpserted | ChangeKind::EntryRemoved => format!("e:{}", c.key),
                ChangeKind::OrganisationChanged => format!("o:{}", c.key),
                ChangeKind::PolicyEvent => format!("p:{}", c.key),
                ChangeKind::AnchorsChanged => continue,
            };
            if seen.insert(key.clone()) {
                order.push(key);
            }
        }
        let entry_keys: Vec<String> = order
            .iter()
            .filter_map(|k| k.strip_prefix("e:").map(str::to_owned))
            .collect();
        // Only this node's public entries are read in full; entries applied
        // from children (relayed when applied) are skipped cheaply.
        let mine = self
            .inner
            .store
            .fed_local_public(&entry_keys, &identity.lineage)
            .await?;
        let entries: HashMap<String, _> = self
            .inner
            .store
            .get_entries(&mine)
            .await?
            .into_iter()
            .map(|r| (r.entry.address.key(), r))
            .collect();
        let published = self.inner.store.fed_published(&order).await?;
        let ours: HashSet<&str> = identity.lineage.iter().map(|k| k.0.as_str()).collect();

        let mut drafts = Vec::new();
        let mut items = Vec::new();
        for key in &order {
            let body = if let Some(entry_key) = key.strip_prefix("e:") {
                match entries.get(entry_key) {
                    Some(r)
                        if r.entry.visibility == Visibility::Public
                            && ours.contains(r.entry.origin.0.as_str()) =>
                    {
                        let mut p = EntryPublication::from_record(r);
                        p.entry.origin = identity.log.clone();
                        Some(Body::EntryUpsert(Box::new(p)))
                    }
                    _ => None,
                }
            } else if let Some(hash) = key.strip_prefix("p:") {
                // Events submitted here; those pulled from children were
                // relayed, verbatim, when they were applied.
                let hash: Option<[u8; 32]> = hex::decode(hash).ok().and_then(|b| b.try_into().ok());
                match hash {
                    Some(h) => self
                        .inner
                        .store
                        .policy_event_by_hash(&h)
                        .await?
                        .filter(|e| e.via.is_none())
                        .map(|e| Body::PolicyEvent(e.event)),
                    None => None,
                }
            } else if let Some(id) = key.strip_prefix("o:") {
                let org = match id.parse::<OrgId>() {
                    Ok(id) => self.inner.store.get_organisation(&id).await?,
                    Err(_) => None,
                };
                org.filter(|o| ours.contains(o.origin.0.as_str()))
                    .map(|o| Body::OrganisationUpsert(Box::new(o)))
            } else {
                None
            };
            let (body, digest) = match body {
                Some(body) => {
                    let (t, payload) = body.encode();
                    let digest = Record::body_digest(t, &payload).0;
                    if published.get(key) == Some(&digest) {
                        continue;
                    }
                    (body, Some(digest))
                }
                // Gone, internal now, or not ours: withdraw what we published.
                None if published.contains_key(key) && !key.starts_with("p:") => {
                    let body = match key.split_once(':') {
                        Some(("e", k)) => match k.parse::<DirectoryAddress>() {
                            Ok(a) => Body::EntryRemoval(a),
                            Err(_) => continue,
                        },
                        Some((_, id)) => match id.parse::<OrgId>() {
                            Ok(id) => Body::OrganisationRemoval(id),
                            Err(_) => continue,
                        },
                        None => continue,
                    };
                    (body, None)
                }
                None => continue,
            };
            let (body_type, payload) = body.encode();
            drafts.push(Draft {
                body_type,
                payload,
                author: None,
                subject: key.split_once(':').map(|(_, s)| s.to_owned()),
            });
            items.push(PublishItem {
                key: key.clone(),
                digest,
            });
        }

        let count = drafts.len();
        let id = identity.clone();
        let done = self
            .inner
            .store
            .fed_publish(from, to, &items, |tip| self.sign_drafts(&id, tip, drafts))
            .await?;
        match done {
            Some(tip) => {
                debug!(
                    log = short(&identity.log),
                    from = tip.size + 1,
                    count,
                    up_to_change = to.0,
                    "published"
                );
                // A round that only moved the cursor still made progress.
                Ok(count.max(usize::from(to > from)))
            }
            None => Ok(0),
        }
    }

    /// Publishes until nothing is pending (tests and the benchmark).
    pub async fn publish_all(&self) -> Result<ChangeSeq> {
        while self.publish_pending().await? > 0 {}
        Ok(self.inner.store.fed_publish_cursor().await?)
    }
}
