//! Trust bundles: adding and removing them, fetching and checking them,
//! putting their anchors into force, and refreshing each on its interval.
//!
//! A refresh either applies completely or not at all: the bundle is fetched
//! (with timeouts and a size cap), read and checked by
//! [`pki::read_bundle`], and only then are its anchors replaced in one
//! transaction. Any failure records the status code and detail and leaves
//! the anchors of the last success in force. When the anchors changed, the
//! trust store is rebuilt and every certificate re-judged, exactly as for
//! anchors added by hand.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tracing::{info, warn};

use super::{CoreError, Directory, Inner, Result, install_crypto_provider};
use crate::domain::{
    BundleDefinition, BundleName, BundleOrigin, BundleSource, Caller, MIN_BUNDLE_REFRESH,
    RefreshCode, RefreshStatus, TrustBundle,
};
use crate::pki::{self, BundleError, MAX_BUNDLE_BYTES};
use crate::telemetry::BundleLabels;

/// How bundles are fetched and scheduled (from `[bundles]` in the configuration).
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// Time allowed to connect to a bundle's server.
    pub connect_timeout: Duration,
    /// Time allowed for a whole fetch, body included (files too).
    pub fetch_timeout: Duration,
    /// After a failed refresh, the next try comes after this long (or the
    /// bundle's own interval, when that is shorter).
    pub retry_interval: Duration,
    /// How often the scheduler looks for bundles that are due.
    pub check_interval: Duration,
}

impl Default for BundleOptions {
    fn default() -> Self {
        BundleOptions {
            connect_timeout: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(60),
            retry_interval: Duration::from_secs(15 * 60),
            check_interval: Duration::from_secs(30),
        }
    }
}

/// What an operator asks for when adding a bundle.
#[derive(Debug, Clone)]
pub struct NewBundle {
    pub name: BundleName,
    pub source: BundleSource,
    /// The signer certificate, PEM or DER, when the bundle must be signed.
    pub signer: Option<Vec<u8>>,
    /// Refresh interval; `None`: [`DEFAULT_BUNDLE_REFRESH`].
    pub refresh: Option<Duration>,
}

/// Refresh interval when none is given: daily, as bundles are published.
pub const DEFAULT_BUNDLE_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// A bundle after a refresh, and what the refresh changed.
#[derive(Debug, Clone)]
pub struct RefreshOutcome {
    pub bundle: TrustBundle,
    /// Anchors that came into force and went out of it; both 0 on failure.
    pub added: usize,
    pub removed: usize,
}

impl RefreshOutcome {
    /// Whether the refresh succeeded.
    pub fn ok(&self) -> bool {
        self.bundle
            .last_refresh
            .as_ref()
            .is_some_and(|s| s.code == RefreshCode::Ok)
    }
}

/// The bundle state a directory shares between its clones.
#[derive(Default)]
pub(crate) struct BundleHub {
    options: RwLock<BundleOptions>,
    http: OnceLock<reqwest::Client>,
    /// Bundles being refreshed by the scheduler, so none runs twice at once.
    in_flight: Mutex<HashSet<BundleName>>,
}

/// Why a fetch or a check failed: a status code and a detail for people.
type Failure = (RefreshCode, String);

fn failure(e: BundleError) -> Failure {
    let code = match e {
        BundleError::BadFormat(_) => RefreshCode::BadFormat,
        BundleError::BadSigner(_) => RefreshCode::BadSigner,
        BundleError::SignatureMismatch(_) => RefreshCode::SignatureMismatch,
    };
    (code, e.to_string())
}

impl Directory {
    fn bundle_options(&self) -> BundleOptions {
        self.inner
            .bundles
            .options
            .read()
            .expect("bundle options")
            .clone()
    }

    /// Sets how bundles are fetched (CLI commands; `serve` uses [`Directory::start_bundles`]).
    pub fn set_bundle_options(&self, options: BundleOptions) {
        *self.inner.bundles.options.write().expect("bundle options") = options;
    }

    /// For `serve`: sets the options, makes the stored bundles declared in
    /// the configuration match `declared` (adding, updating, and removing
    /// those no longer declared), and starts the scheduler that refreshes
    /// each bundle when due (at once for those never refreshed).
    pub async fn start_bundles(
        &self,
        options: BundleOptions,
        declared: Vec<BundleDefinition>,
    ) -> Result<()> {
        install_crypto_provider();
        self.set_bundle_options(options);
        let names: HashSet<BundleName> = declared.iter().map(|d| d.name.clone()).collect();
        for stored in self.inner.store.list_bundles().await? {
            let def = &stored.definition;
            if def.origin == BundleOrigin::Config && !names.contains(&def.name) {
                info!(bundle = %def.name, "bundle no longer in the configuration; removing it");
                self.drop_bundle(&def.name).await?;
            }
        }
        for def in declared {
            let def = BundleDefinition {
                origin: BundleOrigin::Config,
                ..def
            };
            check_refresh(def.refresh)?;
            if let Some(existing) = self.inner.store.get_bundle(&def.name).await?
                && existing.definition.origin == BundleOrigin::Runtime
            {
                warn!(bundle = %def.name, "bundle added at run time is now declared in the configuration, which wins");
            }
            self.inner.store.put_bundle(&def).await?;
        }
        spawn_scheduler(self);
        Ok(())
    }

    /// All bundles, for a node admin (front ends).
    pub async fn list_bundles_as(&self, caller: &Caller) -> Result<Vec<TrustBundle>> {
        self.require_node_admin(caller, "reading trust bundles")?;
        self.list_bundles().await
    }

    /// One bundle, for a node admin (front ends).
    pub async fn get_bundle_as(&self, caller: &Caller, name: &BundleName) -> Result<TrustBundle> {
        self.require_node_admin(caller, "reading trust bundles")?;
        self.get_bundle(name).await
    }

    pub async fn list_bundles(&self) -> Result<Vec<TrustBundle>> {
        Ok(self.inner.store.list_bundles().await?)
    }

    pub async fn get_bundle(&self, name: &BundleName) -> Result<TrustBundle> {
        self.inner
            .store
            .get_bundle(name)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("trust bundle {name}")))
    }

    /// Adds a bundle and refreshes it at once. The bundle stays defined when
    /// that first refresh fails; its status says why.
    pub async fn add_bundle(&self, caller: &Caller, new: NewBundle) -> Result<RefreshOutcome> {
        self.require_node_admin(caller, "changing trust bundles")?;
        let refresh = new.refresh.unwrap_or(DEFAULT_BUNDLE_REFRESH);
        check_refresh(refresh)?;
        let signer = match &new.signer {
            Some(bytes) => Some(pki::read_signer_certificate(bytes)?.der),
            None => None,
        };
        if self.inner.store.get_bundle(&new.name).await?.is_some() {
            return Err(CoreError::Conflict(format!(
                "trust bundle {} exists; remove it first",
                new.name
            )));
        }
        let def = BundleDefinition {
            name: new.name,
            source: new.source,
            signer,
            refresh,
            origin: BundleOrigin::Runtime,
        };
        // Held from before the bundle exists, so that the scheduler does
        // not start a second first refresh beside this one.
        let _guard = InFlight::enter(self, &def.name);
        if !self.inner.store.put_bundle(&def).await? {
            return Err(CoreError::Conflict(format!(
                "trust bundle {} was added meanwhile",
                def.name
            )));
        }
        info!(bundle = %def.name, source = %def.source, "trust bundle added");
        self.apply_refresh(&def.name).await
    }

    /// Removes a bundle; its anchors go out of force and certificates are
    /// re-judged.
    pub async fn remove_bundle(&self, caller: &Caller, name: &BundleName) -> Result<usize> {
        self.require_node_admin(caller, "changing trust bundles")?;
        self.drop_bundle(name).await
    }

    async fn drop_bundle(&self, name: &BundleName) -> Result<usize> {
        let (seq, removed) = self
            .inner
            .store
            .delete_bundle(name)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("trust bundle {name}")))?;
        self.written(seq);
        if removed > 0 {
            self.anchors_changed().await?;
        }
        info!(bundle = %name, anchors = removed, "trust bundle removed");
        Ok(removed)
    }

    /// Refreshes one bundle now.
    pub async fn refresh_bundle(
        &self,
        caller: &Caller,
        name: &BundleName,
    ) -> Result<RefreshOutcome> {
        self.require_node_admin(caller, "refreshing trust bundles")?;
        self.refresh_one(name).await
    }

    /// Refreshes every bundle now, one after the other.
    pub async fn refresh_all_bundles(&self, caller: &Caller) -> Result<Vec<RefreshOutcome>> {
        self.require_node_admin(caller, "refreshing trust bundles")?;
        let mut out = Vec::new();
        for b in self.inner.store.list_bundles().await? {
            out.push(self.refresh_one(b.name()).await?);
        }
        Ok(out)
    }

    fn refresh_running(&self, name: &BundleName) -> bool {
        self.inner
            .bundles
            .in_flight
            .lock()
            .expect("in-flight lock")
            .contains(name)
    }

    /// A refresh asked for by an operator: it runs even if the scheduler's
    /// is under way, and keeps the scheduler from starting one meanwhile.
    async fn refresh_one(&self, name: &BundleName) -> Result<RefreshOutcome> {
        let _guard = InFlight::enter(self, name);
        self.apply_refresh(name).await
    }

    /// Fetches, checks and applies one bundle, recording the outcome.
    async fn apply_refresh(&self, name: &BundleName) -> Result<RefreshOutcome> {
        let bundle = self.get_bundle(name).await?;
        let def = &bundle.definition;
        let result = self.fetch_and_read(def).await;
        let at = self.now();
        let code = match &result {
            Ok(_) => RefreshCode::Ok,
            Err((code, _)) => *code,
        };
        self.inner
            .metrics
            .bundle_refreshes
            .get_or_create(&BundleLabels {
                bundle: name.to_string(),
                code: code.as_str(),
            })
            .inc();
        let (added, removed) = match result {
            Ok((certificates, detail)) => {
                let status = RefreshStatus {
                    code: RefreshCode::Ok,
                    detail,
                    at,
                };
                let applied = self
                    .inner
                    .store
                    .replace_bundle_anchors(name, &certificates, &status)
                    .await?
                    .ok_or_else(|| CoreError::NotFound(format!("trust bundle {name}")))?;
                self.written(applied.seq);
                if applied.added + applied.removed > 0 {
                    self.anchors_changed().await?;
                }
                info!(
                    bundle = %name,
                    anchors = applied.count,
                    added = applied.added,
                    removed = applied.removed,
                    "trust bundle refreshed"
                );
                (applied.added, applied.removed)
            }
            Err((code, detail)) => {
                warn!(bundle = %name, code = %code, detail = %detail, "trust bundle refresh failed; its anchors stay as they were");
                let status = RefreshStatus { code, detail, at };
                self.inner
                    .store
                    .record_bundle_failure(name, &status)
                    .await?;
                (0, 0)
            }
        };
        Ok(RefreshOutcome {
            bundle: self.get_bundle(name).await?,
            added,
            removed,
        })
    }

    /// The bundle's certificates and a detail line, or why not.
    async fn fetch_and_read(
        &self,
        def: &BundleDefinition,
    ) -> std::result::Result<(Vec<crate::domain::Certificate>, String), Failure> {
        let options = self.bundle_options();
        let fetch = async {
            match &def.source {
                BundleSource::Url(url) => self.fetch_url(url, &options).await,
                BundleSource::File(path) => read_file(path).await,
            }
        };
        let bytes = match tokio::time::timeout(options.fetch_timeout, fetch).await {
            Ok(r) => r?,
            Err(_) => {
                return Err((
                    RefreshCode::Timeout,
                    format!(
                        "no complete answer from {} within {} ms",
                        def.source,
                        options.fetch_timeout.as_millis()
                    ),
                ));
            }
        };
        let signer = match &def.signer {
            Some(der) => Some(pki::parse_certificate_der(der).map_err(|e| {
                (
                    RefreshCode::BadSigner,
                    format!("the configured signer certificate cannot be read: {e}"),
                )
            })?),
            None => None,
        };
        let now = self.now();
        // Signature checks on large bundles are CPU work: keep them off the reactor.
        let contents = tokio::task::spawn_blocking(move || {
            pki::read_bundle(&bytes, signer.as_ref(), now).map(|c| (c, bytes.len()))
        })
        .await
        .map_err(|e| {
            (
                RefreshCode::BadFormat,
                format!("reading the bundle failed: {e}"),
            )
        })?;
        let (contents, size) = contents.map_err(failure)?;
        let n = contents.certificates.len();
        let detail = match contents.signed_by {
            Some(by) => format!("{n} anchors from {size} bytes, signed by {by}"),
            None => format!("{n} anchors from {size} bytes"),
        };
        Ok((contents.certificates, detail))
    }

    fn bundle_http(
        &self,
        options: &BundleOptions,
    ) -> std::result::Result<reqwest::Client, Failure> {
        if let Some(c) = self.inner.bundles.http.get() {
            return Ok(c.clone());
        }
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("ccdir/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| (RefreshCode::Unreachable, format!("HTTP client: {e}")))?;
        Ok(self.inner.bundles.http.get_or_init(|| client).clone())
    }

    async fn fetch_url(
        &self,
        url: &str,
        options: &BundleOptions,
    ) -> std::result::Result<Vec<u8>, Failure> {
        let client = self.bundle_http(options)?;
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                (RefreshCode::Timeout, format!("{url}: timed out"))
            } else if e.is_connect() {
                (
                    RefreshCode::Unreachable,
                    format!("{url}: cannot connect ({})", root_cause(&e)),
                )
            } else {
                (
                    RefreshCode::Unreachable,
                    format!("{url}: {}", root_cause(&e)),
                )
            }
        };
        let mut response = client
            .get(url)
            .timeout(options.fetch_timeout)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err((RefreshCode::NotFound, format!("{url}: HTTP {status}")));
        }
        if !status.is_success() {
            return Err((RefreshCode::Unreachable, format!("{url}: HTTP {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BUNDLE_BYTES {
                return Err((
                    RefreshCode::BadFormat,
                    format!("{url}: the bundle is larger than {MAX_BUNDLE_BYTES} bytes"),
                ));
            }
        }
        Ok(body)
    }
}

/// The innermost error message (reqwest's own is only "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

async fn read_file(path: &Path) -> std::result::Result<Vec<u8>, Failure> {
    let shown = path.display();
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                (RefreshCode::NotFound, format!("{shown} does not exist"))
            }
            _ => (RefreshCode::Unreachable, format!("{shown}: {e}")),
        })?;
    if meta.len() > MAX_BUNDLE_BYTES as u64 {
        return Err((
            RefreshCode::BadFormat,
            format!("{shown} is larger than {MAX_BUNDLE_BYTES} bytes"),
        ));
    }
    tokio::fs::read(path).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => (RefreshCode::NotFound, format!("{shown} does not exist")),
        _ => (RefreshCode::Unreachable, format!("{shown}: {e}")),
    })
}

fn check_refresh(refresh: Duration) -> Result<()> {
    if refresh < MIN_BUNDLE_REFRESH {
        return Err(CoreError::InvalidInput(format!(
            "a bundle refresh interval must be at least {} seconds",
            MIN_BUNDLE_REFRESH.as_secs()
        )));
    }
    Ok(())
}

/// Refreshes each bundle when it is due, each in its own task so that a
/// slow source delays no other; holds the directory only while working.
fn spawn_scheduler(directory: &Directory) {
    let weak = Arc::downgrade(&directory.inner);
    tokio::spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let directory = Directory { inner };
            let options = directory.bundle_options();
            match directory.inner.store.list_bundles().await {
                Ok(bundles) => {
                    let now = directory.now();
                    for b in bundles {
                        if !b.refresh_due(now, options.retry_interval) {
                            continue;
                        }
                        let name = b.name().clone();
                        if directory.refresh_running(&name) {
                            continue;
                        }
                        tokio::spawn(refresh_task(Arc::downgrade(&directory.inner), name));
                    }
                }
                Err(e) => warn!(error = %e, "reading the trust bundles failed"),
            }
            drop(directory);
            tokio::time::sleep(options.check_interval).await;
        }
    });
}

async fn refresh_task(weak: std::sync::Weak<Inner>, name: BundleName) {
    let Some(inner) = weak.upgrade() else { return };
    let directory = Directory { inner };
    let Some(_guard) = InFlight::enter(&directory, &name) else {
        return;
    };
    if let Err(e) = directory.apply_refresh(&name).await {
        warn!(bundle = %name, error = %e, "trust bundle refresh could not be recorded");
    }
}

/// Marks a bundle as being refreshed, until dropped.
struct InFlight<'d> {
    directory: &'d Directory,
    name: BundleName,
}

impl<'d> InFlight<'d> {
    /// `None` when a refresh of this bundle is already running.
    fn enter(directory: &'d Directory, name: &BundleName) -> Option<Self> {
        let fresh = directory
            .inner
            .bundles
            .in_flight
            .lock()
            .expect("in-flight lock")
            .insert(name.clone());
        fresh.then(|| InFlight {
            directory,
            name: name.clone(),
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.directory
            .inner
            .bundles
            .in_flight
            .lock()
            .expect("in-flight lock")
            .remove(&self.name);
    }
}
