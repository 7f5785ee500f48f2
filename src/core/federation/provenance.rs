//! Where an entry came from: the node that published it, the child this
//! node received it through, its place in the author's log, and the
//! delegation chain that authorised it. Shown on search results and
//! entries; absent for entries written on this node.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::admin::GrantView;
use crate::core::{Directory, EntryView, Result};
use crate::domain::NodeId;

/// The provenance of an entry from another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The node that published it (the author of the record).
    pub publisher: NodeId,
    /// The child this node pulled it from (the publisher itself, or an
    /// intermediate that relayed it).
    pub via: NodeId,
    /// Its sequence number in the publisher's log.
    pub seq: u64,
    /// SHA-256 of the publisher's signed record (hex).
    pub record_hash: String,
    /// The delegations that authorised it, root first.
    pub chain: Vec<GrantView>,
    /// When this node applied it.
    pub received_at: DateTime<Utc>,
}

impl Directory {
    /// Fills in `provenance` on views of entries that came from elsewhere.
    pub(crate) async fn attach_provenance(&self, views: &mut [EntryView]) -> Result<()> {
        if views.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = views.iter().map(|v| v.record.entry.address.key()).collect();
        let rows = self.inner.store.fed_provenance(&keys).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let hashes: Vec<String> = rows
            .values()
            .flat_map(|p| p.chain.iter().cloned())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let now = self.now();
        let grants: HashMap<String, GrantView> = self
            .inner
            .store
            .fed_grants_by_hash(&hashes)
            .await?
            .iter()
            .map(|g| (hex::encode(g.hash), GrantView::from_row(g, now)))
            .collect();
        for view in views {
            let entry = &view.record.entry;
            if let Some(p) = rows.get(&entry.address.key())
                && p.author == entry.origin
            {
                view.provenance = Some(Provenance {
                    publisher: p.author.clone(),
                    via: p.via.clone(),
                    seq: p.author_seq,
                    record_hash: hex::encode(p.record_hash),
                    chain: p
                        .chain
                        .iter()
                        .filter_map(|h| grants.get(h).cloned())
                        .collect(),
                    received_at: p.at,
                });
            }
        }
        Ok(())
    }
}
