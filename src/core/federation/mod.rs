//! Federation in the core: this node's publication log (the publisher
//! turns local public changes into signed records), pulling children
//! (fetch, verify, judge, apply a page and its cursor in one transaction),
//! serving the log, its head and Merkle proofs, delegation and key
//! rotation, provenance on entries, status and independent verification.
//!
//! | file | what |
//! |---|---|
//! | `publish.rs` | the publisher: change sequence → signed records |
//! | `pull.rs` | pulling a child: HTTP, checks, judgement, apply; the per-child loops |
//! | `serve.rs` | what `/federation/v1/` answers: head, pages, proofs, notify |
//! | `admin.rs` | delegate, install a delegation, rotate the key, children, status |
//! | `provenance.rs` | where an entry came from, for search results and entries |
//! | `audit.rs` | `ccdir verify`: a remote log or the local mirrors, checked from scratch |

mod admin;
mod audit;
mod provenance;
mod publish;
mod pull;
mod serve;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use super::{CoreError, Directory, Result};
use crate::domain::NodeId;
use crate::federation::merkle::{Frontier, NodeRef, leaf_hash};
use crate::federation::{GrantBook, Hash, Key, Record, RecordHeader, SignedGrant, SignedHead};
use crate::storage::{GrantRow, LogAppend, LogEntry, LogIdentity, LogTip, MerkleNode};

pub use crate::federation::wire::{ConsistencyJson, HeadJson, InclusionJson, PageJson, RecordJson};
pub use admin::{ChildStatus, FederationStatus, GrantView, RejectionView};
pub use audit::{AuditReport, MirrorAudit, audit_log};
pub use provenance::Provenance;
pub use pull::{PullError, PullOutcome};

/// One child to pull, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildOptions {
    /// Its key (its log identity).
    pub key: Key,
    /// Its base URL, e.g. `https://org.example.org:8443`.
    pub url: String,
    /// A name for people.
    pub name: Option<String>,
}

/// How this node federates. Built by the application from its
/// configuration; the core never reads configuration itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationOptions {
    /// The pinned root key; `None` when this node is the root.
    pub root: Option<Key>,
    /// Where to ping when this node's log grows (its parent's base URL).
    pub parent_url: Option<String>,
    /// Children to pull (more can be added at run time).
    pub children: Vec<ChildOptions>,
    /// How often each child is pulled when it does not ping.
    pub pull_interval: Duration,
    /// How often the publisher looks for changes it was not told about.
    pub publish_interval: Duration,
    /// Records asked for per page.
    pub page_size: u64,
    /// Largest page accepted, in bytes.
    pub max_page_bytes: usize,
    /// Connecting to a child.
    pub connect_timeout: Duration,
    /// A whole request, body included.
    pub request_timeout: Duration,
    /// First wait after a failed pull; doubled per failure.
    pub backoff_initial: Duration,
    /// Longest wait after failed pulls.
    pub backoff_max: Duration,
}

impl Default for FederationOptions {
    fn default() -> Self {
        FederationOptions {
            root: None,
            parent_url: None,
            children: Vec::new(),
            pull_interval: Duration::from_secs(5),
            publish_interval: Duration::from_secs(1),
            page_size: 500,
            max_page_bytes: 16 << 20,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Federation state shared by all clones of a [`Directory`].
pub(crate) struct FedHub {
    options: RwLock<Arc<FederationOptions>>,
    /// Wakes the publisher after a local write.
    pub(crate) wake_publisher: Notify,
    /// Wakes the task that pings the parent.
    wake_notifier: Notify,
    /// Per-child wake-ups (a child's ping).
    pullers: Mutex<HashMap<NodeId, Arc<Notify>>>,
    /// Every grant known, loaded once and added to as pages apply.
    book: RwLock<Option<GrantBook>>,
    /// The last head signed, by size.
    head: Mutex<Option<SignedHead>>,
    /// Serialises this process's publishing rounds.
    publishing: tokio::sync::Mutex<()>,
    /// This node holds a delegation (publishing may start).
    delegated: std::sync::atomic::AtomicBool,
    http: std::sync::OnceLock<reqwest::Client>,
}

impl FedHub {
    pub(crate) fn new() -> FedHub {
        FedHub {
            options: RwLock::new(Arc::new(FederationOptions::default())),
            wake_publisher: Notify::new(),
            wake_notifier: Notify::new(),
            pullers: Mutex::new(HashMap::new()),
            book: RwLock::new(None),
            head: Mutex::new(None),
            publishing: tokio::sync::Mutex::new(()),
            delegated: std::sync::atomic::AtomicBool::new(false),
            http: std::sync::OnceLock::new(),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> CoreError {
    CoreError::Internal(e.to_string())
}

/// Installs the ring provider for rustls, once (reqwest is built with
/// `rustls-no-provider`, see `docs/federation.md`).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A grant as storage keeps it.
pub(crate) fn grant_row(g: &SignedGrant, own: bool) -> GrantRow {
    GrantRow {
        hash: g.hash().0,
        issuer: g.grant.issuer.node_id(),
        subject: g.grant.subject.node_id(),
        domains: g.grant.domains.clone(),
        issued_at: g.grant.issued_at,
        expires_at: g.grant.expires_at,
        bytes: g.bytes().to_vec(),
        own,
    }
}

/// One record to sign into this node's log.
pub(crate) struct Draft {
    pub body_type: u16,
    pub payload: Vec<u8>,
    /// The author of what it says; `None` for this node.
    pub author: Option<(NodeId, u64)>,
    pub subject: Option<String>,
}

impl Directory {
    pub(crate) fn fed(&self) -> &FedHub {
        &self.inner.fed
    }

    /// The federation options in force.
    pub fn federation_options(&self) -> Arc<FederationOptions> {
        self.fed().options.read().expect("options lock").clone()
    }

    /// Sets the federation options (the application does, before starting
    /// federation or running a federation command).
    pub fn set_federation_options(&self, options: FederationOptions) {
        *self.fed().options.write().expect("options lock") = Arc::new(options);
    }

    /// This node's key.
    pub(crate) fn own_key(&self) -> Key {
        Key(self.inner.node_key.public_key_bytes())
    }

    /// The pinned root: the configured key, or this node's own.
    pub(crate) fn root_key(&self) -> Key {
        self.federation_options()
            .root
            .unwrap_or_else(|| self.own_key())
    }

    /// Is this node the root of its federation?
    pub(crate) fn is_root(&self) -> bool {
        self.root_key() == self.own_key()
    }

    /// The log identity; created on first use from the node key. Fails
    /// when the node key is not the log's current signing key (a rotation
    /// half done, or a key file replaced by hand).
    pub(crate) async fn log_identity(&self) -> Result<LogIdentity> {
        let own = self.own_key().node_id();
        match self.inner.store.fed_identity().await? {
            Some(id) if id.signer == own => Ok(id),
            Some(id) => Err(CoreError::Conflict(format!(
                "the node key {} is not the key this node's log is signed with ({}); \
                 restore that key or rotate with `ccdir federation rotate-key`",
                &own.0[..12],
                &id.signer.0[..12.min(id.signer.0.len())]
            ))),
            None => {
                let id = LogIdentity {
                    log: own.clone(),
                    signer: own.clone(),
                    lineage: vec![own],
                };
                self.inner.store.fed_set_identity(&id).await?;
                Ok(id)
            }
        }
    }

    /// The grant book, loaded from storage on first use.
    pub(crate) async fn grant_book(&self) -> Result<GrantBook> {
        if let Some(book) = self.fed().book.read().expect("book lock").as_ref()
            && *book.root() == self.root_key()
        {
            return Ok(book.clone());
        }
        let mut book = GrantBook::new(self.root_key());
        for row in self.inner.store.fed_grants().await? {
            match SignedGrant::decode(&row.bytes) {
                Ok(g) => {
                    book.add(g);
                }
                Err(e) => tracing::warn!(error = %e, "a stored grant no longer verifies; ignored"),
            }
        }
        *self.fed().book.write().expect("book lock") = Some(book.clone());
        Ok(book)
    }

    pub(crate) fn remember_grants(&self, grants: &[SignedGrant]) {
        if let Some(book) = self.fed().book.write().expect("book lock").as_mut() {
            for g in grants {
                book.add(g.clone());
            }
        }
    }

    /// Signs `drafts` onto the end of this node's log as it stands in the
    /// transaction (`tip`), with the Merkle nodes they complete.
    pub(crate) fn sign_drafts(
        &self,
        identity: &LogIdentity,
        tip: &LogTip,
        drafts: Vec<Draft>,
    ) -> std::result::Result<LogAppend, String> {
        let log = Key::from_node_id(&identity.log).map_err(|e| e.to_string())?;
        let signer = self.own_key();
        let mut frontier = Frontier::from_nodes(tip.size, |r: NodeRef| {
            tip.frontier
                .iter()
                .find(|n| n.level == r.level && n.index == r.index)
                .map(|n| Hash(n.hash))
        })
        .ok_or("the Merkle frontier of the log is incomplete")?;
        let now = self.now();
        let mut prev = Hash(tip.last_hash);
        let mut out = LogAppend::default();
        for (seq, d) in (tip.size + 1..).zip(drafts) {
            let record = Record::sign(
                RecordHeader {
                    log,
                    signer,
                    seq,
                    prev,
                    time: now,
                },
                d.body_type,
                &d.payload,
                &self.inner.node_key,
            )
            .map_err(|e| e.to_string())?;
            prev = record.hash();
            for (r, h) in frontier.push(leaf_hash(record.bytes())) {
                out.nodes.push(MerkleNode {
                    level: r.level,
                    index: r.index,
                    hash: h.0,
                });
            }
            let (author, author_seq) = d.author.unwrap_or_else(|| (identity.log.clone(), seq));
            out.records.push(LogEntry {
                seq,
                hash: record.hash().0,
                body_type: d.body_type,
                author,
                author_seq,
                subject: d.subject,
                bytes: record.into_bytes(),
            });
        }
        Ok(out)
    }

    /// Starts federation: records the log identity, registers configured
    /// children, and spawns the publisher, the parent notifier and the
    /// child pullers.
    pub async fn start_federation(&self, options: FederationOptions) -> Result<()> {
        install_crypto_provider();
        self.set_federation_options(options.clone());
        self.log_identity().await?;
        self.grant_book().await?;
        for child in &options.children {
            self.inner
                .store
                .fed_add_peer(
                    &child.key.node_id(),
                    &child.url,
                    child.name.as_deref(),
                    self.now(),
                )
                .await?;
        }
        publish::spawn(self);
        pull::spawn_notifier(self);
        pull::spawn_supervisor(self);
        Ok(())
    }

    /// The HTTP client for pulls and pings.
    pub(crate) fn http(&self) -> Result<reqwest::Client> {
        if let Some(c) = self.fed().http.get() {
            return Ok(c.clone());
        }
        install_crypto_provider();
        let o = self.federation_options();
        let client = reqwest::Client::builder()
            .connect_timeout(o.connect_timeout)
            .timeout(o.request_timeout)
            .user_agent(concat!("ccdir/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(internal)?;
        Ok(self.fed().http.get_or_init(|| client).clone())
    }
}

/// A short form of a node id for messages.
pub(crate) fn short(id: &NodeId) -> &str {
    &id.0[..id.0.len().min(12)]
}
