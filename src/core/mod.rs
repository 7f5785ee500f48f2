//! The one service API every front end calls. It owns the rules: who may
//! see and change what, how certificates are bound and judged, and keeping
//! the derived views (search index, trust store) in step with the database.
//! Front ends translate their protocol into one call here and the result
//! back; they hold no rules of their own.

mod anchors;
mod attributes;
mod auth;
mod bulk;
mod bundles;
mod cache;
pub(crate) mod certificates;
mod entries;
mod federation;
mod organisations;
pub(crate) mod policies;
mod publication;
mod query;
mod search;
mod sync;
mod users;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, watch};

use crate::domain::{ChangeSeq, Clock, DomainError, NodeId, OrgId, Organisation};
use crate::error::ErrorKind;
use crate::index::{IndexError, SearchIndex};
use crate::pki::{NodeKey, PkiError, TrustStore};
use crate::storage::{StorageError, Store};
use crate::telemetry::Metrics;

pub use auth::issue_token;
pub use bulk::{ExportItem, ImportOptions, ImportProgress, ImportReport, RejectedRow};
pub use bundles::{BundleOptions, DEFAULT_BUNDLE_REFRESH, NewBundle, RefreshOutcome};
pub use entries::EntryView;
pub use federation::{
    AuditReport, ChildOptions, ChildStatus, ConsistencyJson, FederationOptions, FederationStatus,
    GrantView, HeadJson, InclusionJson, MirrorAudit, PageJson, Provenance, PullError, PullOutcome,
    RecordJson, RejectionView, audit_log, install_crypto_provider,
};
pub use policies::{
    CheckResult, DeadLetterRow, FeedEvent, MAX_SUBMIT_EVENTS, PolicyAnswer, PolicyInfo,
    PolicyOptions, SubmitResult, WebhookRow, WebhookView,
};
pub use publication::{
    CertRef, CertRefs, NameKey, NameState, Publication, Published, PublishedCerts, SavePlan,
};
pub use query::{EntryPage, EntryQuery, Placement, field_values};
pub use search::{SearchHit, SearchRequest, SearchResults};

/// Everything a failed core call can report. [`CoreError::kind`] places it
/// in the error table; [`CoreError::public_detail`] is what a client may read.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Federation(#[from] crate::federation::FederationError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    BadSignature(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Unavailable(String),
    /// The node is still starting ([`Directory::not_ready`]); the reason is
    /// not secret, so clients see it.
    #[error("not ready yet: {0}")]
    Starting(&'static str),
    #[error("{0}")]
    Internal(String),
}

impl CoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::Invalid(
                DomainError::InvalidAddress { .. } | DomainError::InvalidDomain { .. },
            ) => ErrorKind::InvalidAddress,
            CoreError::Invalid(DomainError::InvalidField { .. }) => ErrorKind::InvalidInput,
            CoreError::Pki(e) => e.kind(),
            CoreError::Storage(e) => e.kind(),
            CoreError::Index(e) => e.kind(),
            CoreError::Federation(e) => e.kind(),
            CoreError::NotFound(_) => ErrorKind::NotFound,
            CoreError::Forbidden(_) => ErrorKind::Forbidden,
            CoreError::Conflict(_) => ErrorKind::Conflict,
            CoreError::InvalidInput(_) => ErrorKind::InvalidInput,
            CoreError::Malformed(_) => ErrorKind::Malformed,
            CoreError::BadSignature(_) => ErrorKind::BadSignature,
            CoreError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            CoreError::Unavailable(_) | CoreError::Starting(_) => ErrorKind::Unavailable,
            CoreError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The detail a client may see: the reason for client errors, only the
    /// title for server errors (whose detail belongs in the log).
    pub fn public_detail(&self) -> String {
        let codes = self.kind().codes();
        match self {
            CoreError::Starting(_) => self.to_string(),
            _ if codes.http_status >= 500 => codes.title.to_owned(),
            // The driver's words name tables and constraints: log them, say less.
            CoreError::Storage(StorageError::Constraint(_)) => {
                "the write conflicts with what is stored (a duplicate, or a reference to something missing)".into()
            }
            _ => self.to_string(),
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Page sizes the search honours.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    pub default_limit: usize,
    pub max_limit: usize,
}

/// Where this process keeps the search index.
#[derive(Debug, Clone)]
pub enum IndexMode {
    /// On disk; failing to open it is an error (the server).
    Required(PathBuf),
    /// On disk if no other process holds it; otherwise run without an index
    /// and leave indexing to the process that holds it (CLI imports while a
    /// server runs).
    IfFree(PathBuf),
    /// In memory, rebuilt from the change log at start (tests).
    InMemory,
    /// No index in this process (export and other commands that never search).
    None,
}

/// What [`Directory::open`] needs.
pub struct DirectoryOptions {
    pub database_url: String,
    pub index: IndexMode,
    pub node_key: NodeKey,
    pub clock: Arc<dyn Clock>,
    pub search: SearchLimits,
    pub metrics: Arc<Metrics>,
    /// Bytes of recently read entries kept in memory (0: none). Used only
    /// by a process that keeps the search index, whose catch-up refreshes it.
    pub entry_cache_bytes: u64,
}

/// The directory service. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Absent when another process holds the index (see [`IndexMode::IfFree`]).
    index: Option<SearchIndex>,
    node_key: NodeKey,
    node_id: NodeId,
    clock: Arc<dyn Clock>,
    limits: SearchLimits,
    metrics: Arc<Metrics>,
    /// Built from the trust anchors; replaced whole when they change.
    trust: RwLock<Arc<TrustStore>>,
    /// Organisations by id, for names in results and domain checks.
    organisations: RwLock<HashMap<OrgId, Organisation>>,
    /// Bumped every time `organisations` is replaced.
    organisations_version: std::sync::atomic::AtomicU64,
    /// Wakes the index catch-up task after a write.
    wake_sync: Arc<Notify>,
    /// The last change sequence the search index has applied.
    indexed: watch::Sender<ChangeSeq>,
    /// Held while the index is written, so catch-up and rebuild never interleave.
    index_writing: tokio::sync::Mutex<()>,
    /// Bumped each time a trust re-evaluation of all certificates finishes.
    trust_generation: watch::Sender<u64>,
    /// The last change this process wrote, for derived views that follow writes.
    wrote: watch::Sender<ChangeSeq>,
    /// Federation: publisher, pullers, grant cache.
    fed: federation::FedHub,
    /// Policies: the view for DNS and the feeds, webhook deliveries.
    policies: policies::PolicyHub,
    /// Trust bundles: fetch options, HTTP client, refreshes in flight.
    bundles: bundles::BundleHub,
    /// Every entry's LDAP names in memory, kept by the index catch-up.
    attributes: attributes::AttributeView,
    /// Recently read entries, refreshed by the index catch-up.
    cache: cache::EntryCache,
    /// Why the node is not ready yet ([`Directory::not_ready`]), by hold.
    starting: std::sync::Mutex<Vec<(u64, &'static str)>>,
    next_hold: std::sync::atomic::AtomicU64,
    /// Set by [`Directory::warm_up`]: a serving process wants the LDAP
    /// attribute view, which the catch-up then builds.
    attributes_wanted: std::sync::atomic::AtomicBool,
}

impl Directory {
    /// Connects the database (running migrations), opens the index, loads
    /// anchors and organisations, and starts the catch-up task that keeps the
    /// index in step with the database.
    pub async fn open(options: DirectoryOptions) -> Result<Directory> {
        let store = Store::connect(&options.database_url).await?;
        store.migrate().await?;
        let index = match &options.index {
            IndexMode::Required(dir) => Some(SearchIndex::open(dir)?),
            IndexMode::IfFree(dir) => match SearchIndex::open(dir) {
                Ok(index) => Some(index),
                Err(e) => {
                    tracing::info!(error = %e, "search index busy; a running server will index the changes");
                    None
                }
            },
            IndexMode::InMemory => Some(SearchIndex::in_memory()?),
            IndexMode::None => None,
        };
        let applied = index
            .as_ref()
            .map(SearchIndex::applied_seq)
            .unwrap_or_default();
        let node_id = options.node_key.node_id();
        // Only the catch-up of a process keeping the index refreshes it.
        let cache_bytes = if index.is_some() {
            options.entry_cache_bytes
        } else {
            0
        };
        let inner = Arc::new(Inner {
            store,
            index,
            node_id,
            node_key: options.node_key,
            clock: options.clock,
            limits: options.search,
            metrics: options.metrics,
            trust: RwLock::new(Arc::new(TrustStore::new(&[]))),
            organisations: RwLock::new(HashMap::new()),
            organisations_version: std::sync::atomic::AtomicU64::new(0),
            wake_sync: Arc::new(Notify::new()),
            indexed: watch::Sender::new(applied),
            index_writing: tokio::sync::Mutex::new(()),
            trust_generation: watch::Sender::new(0),
            wrote: watch::Sender::new(ChangeSeq(0)),
            fed: federation::FedHub::new(),
            policies: policies::PolicyHub::default(),
            bundles: bundles::BundleHub::default(),
            attributes: attributes::AttributeView::default(),
            cache: cache::EntryCache::new(cache_bytes),
            starting: std::sync::Mutex::new(Vec::new()),
            next_hold: std::sync::atomic::AtomicU64::new(0),
            attributes_wanted: std::sync::atomic::AtomicBool::new(false),
        });
        let directory = Directory { inner };
        directory.reload_trust_store().await?;
        directory.reload_organisations().await?;
        let head = directory.inner.store.head_seq().await?;
        directory.inner.metrics.change_seq.set(head.0);
        directory.inner.metrics.index_applied_seq.set(applied.0);
        if directory.inner.index.is_some() {
            sync::spawn(&directory);
        }
        Ok(directory)
    }

    pub fn node_id(&self) -> &NodeId {
        &self.inner.node_id
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    /// How long this process's write transactions have been open, in all
    /// (see [`Store::write_time`](crate::storage::Store::write_time)).
    pub fn write_time(&self) -> std::time::Duration {
        self.inner.store.write_time()
    }

    /// The search index, or why there is none in this process.
    fn index(&self) -> Result<&SearchIndex> {
        self.inner.index.as_ref().ok_or_else(|| {
            CoreError::Unavailable("the search index is held by another process".into())
        })
    }

    /// Whether this process maintains the search index.
    pub fn has_index(&self) -> bool {
        self.inner.index.is_some()
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    fn trust_store(&self) -> Arc<TrustStore> {
        self.inner.trust.read().expect("trust lock").clone()
    }

    fn organisation(&self, id: &OrgId) -> Option<Organisation> {
        self.inner
            .organisations
            .read()
            .expect("org lock")
            .get(id)
            .cloned()
    }

    fn organisation_name(&self, id: Option<&OrgId>) -> Option<String> {
        let orgs = self.inner.organisations.read().expect("org lock");
        id.and_then(|id| orgs.get(id)).map(|o| o.name.clone())
    }

    /// Changes whenever the organisations may have changed: front ends that
    /// derive something from [`Directory::list_organisations`] rebuild it then.
    pub fn organisations_version(&self) -> u64 {
        self.inner
            .organisations_version
            .load(std::sync::atomic::Ordering::Acquire)
    }

    async fn reload_organisations(&self) -> Result<()> {
        let all = self.inner.store.list_organisations().await?;
        *self.inner.organisations.write().expect("org lock") =
            all.into_iter().map(|o| (o.id.clone(), o)).collect();
        self.inner
            .organisations_version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// Records that a write committed at `seq` and wakes the index catch-up.
    fn written(&self, seq: ChangeSeq) {
        self.inner.metrics.change_seq.set(seq.0);
        self.inner.wake_sync.notify_one();
        self.inner.wrote.send_if_modified(|last| {
            let newer = seq > *last;
            if newer {
                *last = seq;
            }
            newer
        });
        self.inner.fed.wake_publisher.notify_one();
    }

    /// Waits until the search index has applied `seq` (read-your-writes for
    /// callers that need it, such as tests and the import command).
    pub async fn wait_indexed(&self, seq: ChangeSeq) {
        let mut rx = self.inner.indexed.subscribe();
        self.inner.wake_sync.notify_one();
        let _ = rx.wait_for(|applied| *applied >= seq).await;
    }

    /// The last change sequence the search index applied.
    pub fn indexed_seq(&self) -> ChangeSeq {
        *self.inner.indexed.borrow()
    }

    /// Readiness: nothing holds it back ([`Directory::not_ready`]) and the
    /// database answers; reports how far the index lags.
    pub async fn readiness(&self) -> Result<Readiness> {
        if let Some(reason) = self.starting_reason() {
            return Err(CoreError::Starting(reason));
        }
        self.inner.store.ping().await?;
        let head = self.inner.store.head_seq().await?;
        let indexed = self.indexed_seq();
        Ok(Readiness {
            database: self.backend(),
            head,
            indexed,
        })
    }
}

/// A certs-only PKCS#7 (`.p7c` / `.p7b`) holding `ders`, for front ends
/// that serve certificate bundles.
pub fn certs_only_pkcs7(ders: &[&[u8]]) -> Vec<u8> {
    crate::pki::certs_only_pkcs7(ders)
}

/// Holds readiness back until dropped: see [`Directory::not_ready`].
#[must_use = "readiness is held back only while the hold lives"]
pub struct NotReady {
    inner: std::sync::Weak<Inner>,
    id: u64,
}

impl Drop for NotReady {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.starting).retain(|(id, _)| *id != self.id);
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Directory {
    /// Makes [`Directory::readiness`] answer "not ready yet: `reason`"
    /// until the hold is dropped: while the front ends start, while the
    /// demo directory loads. Holds may overlap; the oldest one's reason shows.
    pub fn not_ready(&self, reason: &'static str) -> NotReady {
        let id = self
            .inner
            .next_hold
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.inner.starting).push((id, reason));
        NotReady {
            inner: Arc::downgrade(&self.inner),
            id,
        }
    }

    fn starting_reason(&self) -> Option<&'static str> {
        lock(&self.inner.starting)
            .first()
            .map(|(_, reason)| *reason)
    }
}

/// What `/readyz` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    pub database: &'static str,
    pub head: ChangeSeq,
    pub indexed: ChangeSeq,
}

impl Directory {
    /// Lets go of this handle and waits until no other holds the directory,
    /// so its index (and the index's writer lock) is released when this
    /// returns. Other clones must be dropped first; background work (index
    /// catch-up, trust re-evaluation) finishes its round.
    pub async fn close(self) {
        let weak = Arc::downgrade(&self.inner);
        drop(self);
        while weak.strong_count() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// How many entries the database holds (all visibilities).
    pub async fn count_entries(&self) -> Result<u64> {
        Ok(self.inner.store.count_entries().await?)
    }
}
