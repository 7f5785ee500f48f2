//! What `/federation/v1/` answers: the signed head (which is also the
//! signed tree head), pages of this node's log, Merkle inclusion and
//! consistency proofs, and the notify ping.

use std::collections::HashMap;

use super::pull;
use crate::core::{CoreError, Directory, Result};
use crate::domain::NodeId;
use crate::federation::merkle::{self, Frontier, NodeRef};
use crate::federation::wire::{ConsistencyJson, HeadJson, InclusionJson, PageJson, RecordJson};
use crate::federation::{Hash, Key, SignedHead, TreeHead};
use crate::storage::LogTip;

/// The most records one page may hold, whatever is asked.
pub const MAX_PAGE_RECORDS: u64 = 5000;

impl Directory {
    /// The signed head for `tip` (signed once per tip, then cached).
    async fn signed_head(&self, tip: &LogTip) -> Result<SignedHead> {
        if let Some(h) = self.fed().head.lock().expect("head lock").as_ref()
            && h.head.size == tip.size
            && h.head.head_hash.0 == tip.last_hash
            && h.head.signer == self.own_key()
        {
            return Ok(h.clone());
        }
        let identity = self.log_identity().await?;
        let frontier = Frontier::from_nodes(tip.size, |r| {
            tip.frontier
                .iter()
                .find(|n| n.level == r.level && n.index == r.index)
                .map(|n| Hash(n.hash))
        })
        .ok_or_else(|| CoreError::Internal("the log's Merkle frontier is incomplete".into()))?;
        let head = TreeHead {
            log: Key::from_node_id(&identity.log)?,
            signer: self.own_key(),
            size: tip.size,
            head_hash: Hash(tip.last_hash),
            root_hash: frontier.root(),
            time: self.now(),
        }
        .sign(&self.inner.node_key)?;
        *self.fed().head.lock().expect("head lock") = Some(head.clone());
        Ok(head)
    }

    /// This node's signed head.
    pub async fn federation_head(&self) -> Result<HeadJson> {
        let tip = self.inner.store.fed_log_tip().await?;
        Ok(HeadJson::new(&self.signed_head(&tip).await?))
    }

    /// The records after `after` (at most `limit`, default the configured
    /// page size) and the head as of the same read.
    pub async fn federation_page(&self, after: u64, limit: Option<u64>) -> Result<PageJson> {
        let limit = limit
            .unwrap_or(self.federation_options().page_size)
            .clamp(1, MAX_PAGE_RECORDS);
        let (records, tip) = self.inner.store.fed_log_page(after, limit).await?;
        let head = self.signed_head(&tip).await?;
        Ok(PageJson {
            log: head.head.log.to_hex(),
            head: HeadJson::new(&head),
            records: records
                .iter()
                .map(|r| RecordJson::new(r.seq, &Hash(r.hash), &r.bytes))
                .collect(),
        })
    }

    async fn merkle_lookup(&self, refs: &[NodeRef]) -> Result<HashMap<NodeRef, Hash>> {
        let pairs: Vec<(u8, u64)> = refs.iter().map(|r| (r.level, r.index)).collect();
        Ok(self
            .inner
            .store
            .fed_merkle_nodes(&pairs)
            .await?
            .into_iter()
            .map(|((level, index), h)| (NodeRef { level, index }, Hash(h)))
            .collect())
    }

    fn tree_size(tip: &LogTip, size: Option<u64>) -> Result<u64> {
        let size = size.unwrap_or(tip.size);
        if size > tip.size {
            return Err(CoreError::NotFound(format!(
                "a tree of {size} records (the log has {})",
                tip.size
            )));
        }
        Ok(size)
    }

    /// The inclusion proof of record `seq` in the tree of `size` records
    /// (default: the whole log).
    pub async fn federation_inclusion(&self, seq: u64, size: Option<u64>) -> Result<InclusionJson> {
        let tip = self.inner.store.fed_log_tip().await?;
        let size = Self::tree_size(&tip, size)?;
        if seq == 0 || seq > size {
            return Err(CoreError::InvalidInput(format!(
                "seq must be between 1 and the tree size {size}"
            )));
        }
        let index = seq - 1;
        let mut refs = merkle::nodes_needed(|g| merkle::inclusion_path(index, size, g));
        refs.push(NodeRef { level: 0, index });
        let nodes = self.merkle_lookup(&refs).await?;
        let mut get = |r: NodeRef| nodes.get(&r).copied().ok_or(r);
        let path = merkle::inclusion_path(index, size, &mut get)
            .map_err(|r| CoreError::Internal(format!("Merkle node {r:?} missing")))?;
        let leaf = get(NodeRef { level: 0, index })
            .map_err(|r| CoreError::Internal(format!("Merkle node {r:?} missing")))?;
        Ok(InclusionJson {
            seq,
            size,
            leaf_hash: leaf.to_hex(),
            path: path.iter().map(Hash::to_hex).collect(),
        })
    }

    /// The consistency proof between the trees of `first` and `second`
    /// records (default: the whole log).
    pub async fn federation_consistency(
        &self,
        first: u64,
        second: Option<u64>,
    ) -> Result<ConsistencyJson> {
        let tip = self.inner.store.fed_log_tip().await?;
        let second = Self::tree_size(&tip, second)?;
        if first > second {
            return Err(CoreError::InvalidInput(format!(
                "first ({first}) must not exceed second ({second})"
            )));
        }
        let refs = merkle::nodes_needed(|g| merkle::consistency_path(first, second, g));
        let nodes = self.merkle_lookup(&refs).await?;
        let mut get = |r: NodeRef| nodes.get(&r).copied().ok_or(r);
        let path = merkle::consistency_path(first, second, &mut get)
            .map_err(|r| CoreError::Internal(format!("Merkle node {r:?} missing")))?;
        Ok(ConsistencyJson {
            first,
            second,
            path: path.iter().map(Hash::to_hex).collect(),
        })
    }

    /// The root of the tree of `size` records, for tests and audits.
    pub async fn federation_root(&self, size: u64) -> Result<Hash> {
        let tip = self.inner.store.fed_log_tip().await?;
        let size = Self::tree_size(&tip, Some(size))?;
        let refs = merkle::nodes_needed(|g| merkle::root(size, g));
        let nodes = self.merkle_lookup(&refs).await?;
        merkle::root(size, &mut |r: NodeRef| nodes.get(&r).copied().ok_or(r))
            .map_err(|r| CoreError::Internal(format!("Merkle node {r:?} missing")))
    }

    /// A child says its log has grown: pull it now. False when no child
    /// with that key is being pulled here (the ping is ignored).
    pub fn federation_notify(&self, log: &str) -> Result<bool> {
        let key: Key = log
            .parse()
            .map_err(|e: crate::federation::FederationError| {
                CoreError::InvalidInput(e.to_string())
            })?;
        Ok(pull::wake(self, &NodeId(key.to_hex())))
    }
}
