//! What an operator does with federation: delegate domains to a child,
//! install the delegation a parent granted, rotate this node's key, add
//! and resume children, and read the status of it all.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Draft, grant_row};
use crate::core::{CoreError, Directory, Result};
use crate::domain::{DomainName, NodeId};
use crate::federation::merkle::Frontier;
use crate::federation::{Body, DelegationFile, Grant, Hash, Key, SignedGrant, validate_chain};
use crate::pki::NodeKey;
use crate::storage::{GrantRow, LogIdentity};

/// A delegation grant, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantView {
    /// SHA-256 of the grant (hex).
    pub hash: String,
    /// Who granted it.
    pub issuer: NodeId,
    /// Who holds it.
    pub subject: NodeId,
    /// What it covers.
    pub domains: Vec<String>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Already expired?
    pub expired: bool,
}

impl GrantView {
    pub(crate) fn from_row(g: &GrantRow, now: DateTime<Utc>) -> GrantView {
        GrantView {
            hash: hex::encode(g.hash),
            issuer: g.issuer.clone(),
            subject: g.subject.clone(),
            domains: g.domains.iter().map(|d| d.to_string()).collect(),
            issued_at: g.issued_at,
            expires_at: g.expires_at,
            expired: g.expires_at <= now,
        }
    }

    fn from_grant(g: &SignedGrant, now: DateTime<Utc>) -> GrantView {
        GrantView::from_row(&grant_row(g, false), now)
    }
}

/// A refusal, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionView {
    /// The child it concerns.
    pub child: NodeId,
    /// The child's record, when one record was refused.
    pub seq: Option<u64>,
    /// The record's author.
    pub author: Option<NodeId>,
    /// The author's sequence number.
    pub author_seq: Option<u64>,
    /// Stable code (`bad-signature`, `out-of-delegation`, ...).
    pub code: String,
    /// What exactly.
    pub detail: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One child, for `ccdir federation status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChildStatus {
    /// Its key.
    pub key: NodeId,
    /// Its name, if configured.
    pub name: Option<String>,
    /// Its base URL.
    pub url: String,
    /// `active` or `stopped`.
    pub status: &'static str,
    /// Why it was stopped.
    pub stopped_code: Option<String>,
    /// Why it was stopped, for people.
    pub stopped_detail: Option<String>,
    /// The last of its records applied.
    pub cursor: u64,
    /// The longest head it has shown.
    pub head: u64,
    /// Records it has that are not applied yet.
    pub lag: u64,
    /// When it was last asked.
    pub last_pull_at: Option<DateTime<Utc>>,
    /// When a pull last succeeded.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// The last failure's code, if the last pull failed.
    pub last_error_code: Option<String>,
    /// The last failure, for people.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub failures: u32,
    /// Records of its log that took effect.
    pub applied: u64,
    /// Records of its log that were quarantined.
    pub quarantined: u64,
}

/// Everything `ccdir federation status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FederationStatus {
    /// This node's key.
    pub node: NodeId,
    /// Its log identity.
    pub log: NodeId,
    /// The pinned root.
    pub root: NodeId,
    /// Is this node the root?
    pub is_root: bool,
    /// Records in this node's log.
    pub log_size: u64,
    /// Merkle root over them (hex).
    pub root_hash: String,
    /// How far the publisher has read the change sequence.
    pub publish_cursor: u64,
    /// The change sequence's head.
    pub change_head: u64,
    /// The delegation chain(s) this node holds.
    pub delegation: Vec<GrantView>,
    /// The children it pulls.
    pub children: Vec<ChildStatus>,
    /// The latest refusals, newest first.
    pub rejections: Vec<RejectionView>,
}

impl Directory {
    /// Grants `child` the right to publish for `domains` until `expires_at`,
    /// signed by this node's key. The root grants anything; any other node
    /// only what an unexpired chain it holds covers, and the file it
    /// returns carries that chain in front of the new grant.
    pub async fn delegate(
        &self,
        child: Key,
        domains: Vec<DomainName>,
        expires_at: DateTime<Utc>,
    ) -> Result<DelegationFile> {
        let now = self.now();
        if expires_at <= now {
            return Err(CoreError::InvalidInput(
                "the delegation must expire in the future".into(),
            ));
        }
        let mut chain: Vec<SignedGrant> = Vec::new();
        if !self.is_root() {
            let identity = self.log_identity().await?;
            let lineage: Vec<Key> = identity
                .lineage
                .iter()
                .filter_map(|k| Key::from_node_id(k).ok())
                .collect();
            let book = self.grant_book().await?;
            let mut found: Option<Vec<SignedGrant>> = None;
            for d in &domains {
                let c: Vec<SignedGrant> = book
                    .authorise(&lineage, d, now)
                    .map_err(|r| {
                        CoreError::Forbidden(format!("this node may not delegate {d}: {r}"))
                    })?
                    .into_iter()
                    .cloned()
                    .collect();
                match &found {
                    None => found = Some(c),
                    Some(f)
                        if f.last().map(SignedGrant::hash) == c.last().map(SignedGrant::hash) => {}
                    Some(_) => {
                        return Err(CoreError::InvalidInput(
                            "these domains are held under different delegations; delegate them separately".into(),
                        ));
                    }
                }
            }
            chain = found.unwrap_or_default();
            if let Some(last) = chain.last()
                && last.grant.subject != self.own_key()
            {
                return Err(CoreError::Conflict(
                    "this node's delegation names its previous key; ask the parent for a delegation to the current key first".into(),
                ));
            }
        }
        let grant = Grant::new(self.own_key(), child, domains, now, expires_at)?
            .sign(&self.inner.node_key)?;
        chain.push(grant);
        Ok(DelegationFile::new(&chain))
    }

    /// Installs a delegation granted to this node: checks the chain from
    /// the pinned root to this node's key, keeps it, and publishes it as
    /// the next record of the log (parents learn this node's authority
    /// from there). Publishing starts once a delegation is installed.
    pub async fn install_delegation(&self, file: &DelegationFile) -> Result<Vec<GrantView>> {
        let grants = file.grants()?;
        let identity = self.log_identity().await?;
        let now = self.now();
        let root = self.root_key();
        let subject = grants
            .last()
            .map(|g| g.grant.subject)
            .ok_or_else(|| CoreError::InvalidInput("the delegation file holds no grant".into()))?;
        if !identity.lineage.contains(&subject.node_id()) {
            return Err(CoreError::InvalidInput(format!(
                "this delegation is for {}, not for this node ({})",
                subject.short(),
                super::short(&identity.signer)
            )));
        }
        validate_chain(&root, &grants, &subject, now).map_err(|e| {
            CoreError::InvalidInput(format!(
                "the delegation does not lead from the pinned root {}: {e}",
                root.short()
            ))
        })?;
        let rows: Vec<GrantRow> = grants.iter().map(|g| grant_row(g, true)).collect();
        let (body_type, payload) = Body::Delegation(grants.clone()).encode();
        let id = identity.clone();
        self.inner
            .store
            .fed_install_grants(&rows, |tip| {
                self.sign_drafts(
                    &id,
                    tip,
                    vec![Draft {
                        body_type,
                        payload,
                        author: None,
                        subject: None,
                    }],
                )
            })
            .await?;
        self.remember_grants(&grants);
        self.fed().wake_publisher.notify_one();
        self.fed().wake_notifier.notify_one();
        Ok(grants
            .iter()
            .map(|g| GrantView::from_grant(g, now))
            .collect())
    }

    /// Rotates this node's signing key to `new_key`: the current key signs
    /// a key-rotation record naming the new one, and from the next record
    /// on the log is signed with the new key. The caller replaces the key
    /// file afterwards; no server may run on this data directory meanwhile.
    pub async fn rotate_key(&self, new_key: &NodeKey) -> Result<LogIdentity> {
        let identity = self.log_identity().await?;
        let next = Key(new_key.public_key_bytes());
        if next == self.own_key() {
            return Err(CoreError::InvalidInput(
                "the new key is the current key".into(),
            ));
        }
        let mut rotated = identity.clone();
        rotated.signer = next.node_id();
        rotated.lineage.push(next.node_id());
        let (body_type, payload) = Body::KeyRotation(next).encode();
        self.inner
            .store
            .fed_rotate(&rotated, |tip| {
                self.sign_drafts(
                    &identity,
                    tip,
                    vec![Draft {
                        body_type,
                        payload,
                        author: None,
                        subject: None,
                    }],
                )
            })
            .await?;
        Ok(rotated)
    }

    /// Adds a child to pull (or changes its URL). True when it is new.
    pub async fn add_child(&self, key: Key, url: &str, name: Option<&str>) -> Result<bool> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CoreError::InvalidInput(format!(
                "{url:?} is not an http:// or https:// URL"
            )));
        }
        Ok(self
            .inner
            .store
            .fed_add_peer(&key.node_id(), url, name, self.now())
            .await?)
    }

    /// Resumes a stopped child. False when there is no such child.
    pub async fn resume_child(&self, key: Key) -> Result<bool> {
        Ok(self.inner.store.fed_peer_resume(&key.node_id()).await?)
    }

    /// The federation status, with the latest `rejections` refusals.
    pub async fn federation_status(&self, rejections: u64) -> Result<FederationStatus> {
        let store = &self.inner.store;
        let now = self.now();
        let identity = match store.fed_identity().await? {
            Some(id) => id,
            None => LogIdentity {
                log: self.own_key().node_id(),
                signer: self.own_key().node_id(),
                lineage: vec![self.own_key().node_id()],
            },
        };
        let tip = store.fed_log_tip().await?;
        let root_hash = Frontier::from_nodes(tip.size, |r| {
            tip.frontier
                .iter()
                .find(|n| n.level == r.level && n.index == r.index)
                .map(|n| Hash(n.hash))
        })
        .map(|f| f.root().to_hex())
        .unwrap_or_default();
        let delegation = store
            .fed_grants()
            .await?
            .iter()
            .filter(|g| g.own)
            .map(|g| GrantView::from_row(g, now))
            .collect();
        let mut children = Vec::new();
        for p in store.fed_peers().await? {
            let (applied, quarantined) = store.fed_mirror_counts(&p.peer).await?;
            children.push(ChildStatus {
                status: p.status.as_str(),
                stopped_code: p.stop.as_ref().map(|s| s.0.clone()),
                stopped_detail: p.stop.as_ref().map(|s| s.1.clone()),
                lag: p.head_seen.saturating_sub(p.cursor),
                cursor: p.cursor,
                head: p.head_seen,
                last_pull_at: p.last_pull_at,
                last_ok_at: p.last_ok_at,
                last_error_code: p.last_error.as_ref().map(|e| e.0.clone()),
                last_error: p.last_error.as_ref().map(|e| e.1.clone()),
                failures: p.failures,
                applied,
                quarantined,
                key: p.peer,
                name: p.name,
                url: p.url,
            });
        }
        let rejections = store
            .fed_rejections(None, rejections)
            .await?
            .into_iter()
            .map(|r| RejectionView {
                child: r.peer,
                seq: r.seq,
                author: r.author,
                author_seq: r.author_seq,
                code: r.code,
                detail: r.detail,
                at: r.at,
            })
            .collect();
        Ok(FederationStatus {
            node: self.own_key().node_id(),
            log: identity.log,
            root: self.root_key().node_id(),
            is_root: self.is_root(),
            log_size: tip.size,
            root_hash,
            publish_cursor: store.fed_publish_cursor().await?.0,
            change_head: store.head_seq().await?.0,
            delegation,
            children,
            rejections,
        })
    }
}
