//! What this node publishes by name: a derived, in-memory view of the
//! directory for front ends that answer "which certificates live at this
//! name?" (DNS CERT records today). It knows no protocol: names are label
//! sequences ([`NameKey`]) and certificates are DER.
//!
//! # What is published
//!
//! A certificate is published when its entry is public, it is bound
//! (address- or domain-bound), and the node trusts it *now*: its stored
//! verdict is trusted and `not_before <= now <= not_after`. Internal
//! entries and untrusted, expired or not-yet-valid certificates never appear.
//!
//! # Where (PROTOCOLS §2.2)
//!
//! * An address-bound certificate of `local@domain` is published at the
//!   Direct owner name: the `@` becomes a `.` and every dot of the local part
//!   separates labels, lower-cased (`John.Doe@x.org` → `john.doe.x.org`).
//!   When the local part holds dots it is *also* published at the RFC 1035
//!   form that keeps the local part as one label (`john\.doe.x.org`).
//! * A domain-bound certificate is published at its entry's domain.
//! * The Direct mapping is lossy: `john.doe@x.org`, `john@doe.x.org` and the
//!   domain `john.doe.x.org` all map to `john.doe.x.org`. A name serves the
//!   union of the certificates of every candidate that maps to it (as the
//!   Direct reference server does when it tries `@` at each dot); clients
//!   check the certificate's SAN anyway. Identical certificates are served once.
//! * A name that cannot be a DNS name is skipped: a label longer than 63
//!   octets, a name over 255 octets in wire form, or a label that is exactly
//!   `*` (it would read as a wildcard on every secondary).
//!
//! # Memory
//!
//! The view holds names and certificate references (row id and
//! fingerprint), not the certificates: the DER of a name is read from the
//! database the first time the name is asked for ([`Publication::resolve`])
//! and kept in a bounded cache of names (about `cache_bytes` of DER; second
//! chance eviction), so a node of a million entries neither reads every
//! certificate at start nor holds them all. A transfer or zone export reads
//! what it needs without filling the cache ([`Publication::resolve_all`]).
//!
//! # Keeping up
//!
//! Like the search index, the view remembers the last change it applied and
//! catches up from the change log: woken by this process's writes, polled
//! for other processes' (the CLI importing beside a server), and it drops
//! certificates as they expire. [`Publication::version`] increases on every
//! change of what is published; [`Publication::subscribe`] reports it.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use foldhash::{HashMap, HashSet};
use sha2::Digest as _;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::{Directory, Result};
use crate::domain::{Binding, ChangeKind, ChangeSeq, DirectoryAddress, TrustStatus, Visibility};
use crate::storage::PublishedRow;

/// Changes read per round.
const PAGE: u64 = 5000;
/// How often to look for changes made by other processes, and for expiries.
const POLL: Duration = Duration::from_millis(500);

/// A domain name as the sequence of its labels, each prefixed by its length,
/// lower-cased (ASCII), without the empty root label: the RFC 1035 §3.1
/// form minus its final zero octet. Labels are 1–63 octets and may hold any
/// octet, dots included; the whole is at most 254 octets.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey(Box<[u8]>);

impl NameKey {
    /// Builds a key from labels, lower-casing them. `None` when a label is
    /// empty or longer than 63 octets, or the name is too long.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Option<NameKey> {
        let mut out = Vec::with_capacity(64);
        for label in labels {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            out.push(label.len() as u8);
            out.extend(label.iter().map(u8::to_ascii_lowercase));
            if out.len() > 254 {
                return None;
            }
        }
        Some(NameKey(out.into_boxed_slice()))
    }

    /// Parses a dotted name without escapes (`ns1.example.org`, a trailing
    /// dot allowed). `None` for an empty or malformed name; `"."` is the root.
    pub fn parse_dotted(text: &str) -> Option<NameKey> {
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.is_empty() {
            return Some(NameKey(Box::new([])));
        }
        NameKey::from_labels(text.split('.').map(str::as_bytes))
    }

    /// Wraps bytes already in key form (checked: well-formed and lower case).
    pub fn from_key_bytes(bytes: &[u8]) -> Option<NameKey> {
        let key = NameKey::from_labels(LabelIter(bytes))?;
        (*key.0 == *bytes).then_some(key)
    }

    /// The root name (no labels).
    pub fn root() -> NameKey {
        NameKey(Box::new([]))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The labels from the leftmost one.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        LabelIter(&self.0)
    }

    /// How many labels the name has.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// This name with `prefix` labels put in front (`www` + `example.org`).
    pub fn prepend<'a>(&'a self, prefix: impl IntoIterator<Item = &'a [u8]>) -> Option<NameKey> {
        NameKey::from_labels(prefix.into_iter().chain(self.labels()))
    }

    /// True when `self` equals `ancestor` or lies below it.
    pub fn is_within(&self, ancestor: &[u8]) -> bool {
        suffixes(&self.0).any(|s| s == ancestor)
    }

    /// The dotted form with a trailing dot, each octet outside `a-z0-9-_`
    /// written `\DDD` (RFC 1035 §5.1), so it reads back as the same name.
    pub fn to_presentation(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 2);
        for label in self.labels() {
            for &b in label {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("\\{b:03}"));
                }
            }
            out.push('.');
        }
        if out.is_empty() {
            out.push('.');
        }
        out
    }
}

impl Borrow<[u8]> for NameKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameKey({})", self.to_presentation())
    }
}

impl fmt::Display for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_presentation())
    }
}

/// Iterates the labels of a key-form name; stops at anything malformed.
struct LabelIter<'a>(&'a [u8]);

impl<'a> Iterator for LabelIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let len = usize::from(len);
        if len == 0 || len > rest.len() {
            self.0 = &[];
            return None;
        }
        let (label, rest) = rest.split_at(len);
        self.0 = rest;
        Some(label)
    }
}

/// The name itself and each of its ancestors, down to the last label (the
/// root, an empty slice, is not included).
fn suffixes(key: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = Some(0usize);
    std::iter::from_fn(move || {
        let i = at?;
        if i >= key.len() {
            at = None;
            return None;
        }
        let next = i + 1 + usize::from(key[i]);
        at = Some(next);
        key.get(i..)
    })
}

/// What a name holds, as [`Publication::lookup`] reports it.
#[derive(Debug, Clone)]
pub enum NameState {
    /// Certificates are published at the name (DER, sorted, no duplicates).
    Certificates(PublishedCerts),
    /// Certificates are published at the name, but their DER is not in
    /// memory: [`Publication::resolve`] reads it.
    Unresolved(CertRefs),
    /// Nothing is published at the name, but at names below it: the name
    /// exists (an empty non-terminal in DNS terms).
    Ancestor,
    /// Nothing at or below the name.
    Absent,
}

/// The DER certificates published at one name; cheap to clone.
pub type PublishedCerts = Arc<[Arc<[u8]>]>;

/// One published certificate: the row id its DER is read by, and the
/// first eight bytes of its fingerprint, which tell a certificate rewritten
/// under a new id (an entry saved again) from a different one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertRef {
    id: i64,
    digest: u64,
}

/// The certificates published at one name, sorted; cheap to clone.
pub type CertRefs = Arc<[CertRef]>;

/// A name's certificates in [`Publication::names_within`]: the DER when
/// the cache holds it, else what [`Publication::resolve_all`] reads.
#[derive(Debug, Clone)]
pub enum Published {
    Certificates(PublishedCerts),
    Unresolved(CertRefs),
}

/// One certificate an entry puts at one name.
#[derive(Debug, Clone, PartialEq)]
struct Contribution {
    owner: NameKey,
    cert: CertRef,
    not_after: DateTime<Utc>,
}

#[derive(Default)]
struct Owner {
    /// (entry key, certificate) pairs that put something here.
    from: Vec<(Arc<str>, CertRef)>,
    /// What is served: `from`'s certificates, sorted, without duplicates.
    refs: CertRefs,
    /// Their DER, in the same order, when the cache holds it.
    der: Option<PublishedCerts>,
    /// Asked for since the eviction hand last passed.
    used: AtomicBool,
}

/// What a name serves of its certificates' DER: sorted, each once (an
/// identical certificate may be attached to several entries).
fn served(mut certs: Vec<Arc<[u8]>>) -> PublishedCerts {
    certs.sort();
    certs.dedup();
    certs.into()
}

/// The certificates an owner's contributors put there, sorted, each once.
fn refs_of(from: &[(Arc<str>, CertRef)]) -> CertRefs {
    let mut refs: Vec<CertRef> = from.iter().map(|(_, c)| *c).collect();
    refs.sort();
    refs.dedup();
    refs.into()
}

/// Bytes the cache charges for a name's DER.
fn charge(certs: &PublishedCerts) -> usize {
    certs.iter().map(|d| d.len() + 32).sum::<usize>() + 64
}

struct State {
    version: u64,
    applied: ChangeSeq,
    owners: HashMap<NameKey, Owner>,
    /// Proper ancestors of owner names, with how many owners lie below.
    ancestors: HashMap<Box<[u8]>, u32>,
    by_entry: HashMap<Arc<str>, Vec<Contribution>>,
    /// When published certificates expire (stale items are harmless).
    expiries: BinaryHeap<Reverse<(DateTime<Utc>, Arc<str>)>>,
    /// Bytes of DER the names' caches hold, and the most they may.
    cached: usize,
    budget: usize,
    /// Names whose DER is cached, oldest first (stale names are skipped).
    hand: VecDeque<NameKey>,
}

impl Default for State {
    fn default() -> State {
        State {
            version: 0,
            applied: ChangeSeq::default(),
            owners: HashMap::default(),
            ancestors: HashMap::default(),
            by_entry: HashMap::default(),
            expiries: BinaryHeap::new(),
            cached: 0,
            budget: usize::MAX,
            hand: VecDeque::new(),
        }
    }
}

struct Shared {
    state: RwLock<State>,
    version: watch::Sender<u64>,
    /// Absent for a [`Publication::fixed`] view.
    directory: Option<Directory>,
    /// Where [`Publication::resolve_blocking`] runs the database read.
    runtime: Option<tokio::runtime::Handle>,
}

/// The published names and certificates. Cheap to clone; clones share one view.
#[derive(Clone)]
pub struct Publication {
    shared: Arc<Shared>,
}

impl Publication {
    /// Builds the view from the database and keeps it up to date in the
    /// background for as long as a clone of it lives.
    /// `cache_bytes` bounds the DER held in memory.
    pub async fn start(directory: &Directory, cache_bytes: usize) -> Result<Publication> {
        let publication = Publication::load(directory, cache_bytes).await?;
        let weak = Arc::downgrade(&publication.shared);
        let writes = directory.subscribe_writes();
        tokio::spawn(run(weak, writes));
        Ok(publication)
    }

    /// Builds the view once, without following later changes (for exports).
    pub async fn load(directory: &Directory, cache_bytes: usize) -> Result<Publication> {
        let state = State {
            budget: cache_bytes,
            ..State::default()
        };
        let publication = Publication {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                version: watch::Sender::new(0),
                directory: Some(directory.clone()),
                runtime: tokio::runtime::Handle::try_current().ok(),
            }),
        };
        publication.initial_load().await?;
        publication.catch_up().await?;
        Ok(publication)
    }

    /// A view that never changes, holding `certificates` (owner name, DER)
    /// in memory for good: for tests and fuzzing, without a database.
    pub fn fixed(certificates: impl IntoIterator<Item = (NameKey, Vec<u8>)>) -> Publication {
        let mut state = State::default();
        let mut ders: HashMap<i64, Arc<[u8]>> = HashMap::default();
        for (i, (owner, der)) in certificates.into_iter().enumerate() {
            let key: Arc<str> = format!("fixed-{i}").into();
            let id = i as i64;
            let digest = u64::from_be_bytes(
                sha2::Sha256::digest(&der)[..8]
                    .try_into()
                    .unwrap_or_default(),
            );
            let cert = CertRef { id, digest };
            ders.insert(id, der.into());
            state.replace_entry(
                key,
                vec![Contribution {
                    owner,
                    cert,
                    not_after: DateTime::<Utc>::MAX_UTC,
                }],
            );
        }
        let names: Vec<(NameKey, CertRefs)> = state
            .owners
            .iter()
            .map(|(name, owner)| (name.clone(), owner.refs.clone()))
            .collect();
        for (name, refs) in names {
            let certs = served(refs.iter().map(|r| ders[&r.id].clone()).collect());
            state.remember(name.as_bytes(), &refs, certs);
        }
        state.version = 1;
        Publication {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                version: watch::Sender::new(1),
                directory: None,
                runtime: None,
            }),
        }
    }

    /// What is at `name` (key form, see [`NameKey`]). The hot path of a DNS
    /// answer: one read lock and one hash lookup.
    pub fn lookup(&self, name: &[u8]) -> NameState {
        let state = self.read();
        if let Some(owner) = state.owners.get(name) {
            return match &owner.der {
                Some(certs) => {
                    if !owner.used.load(Ordering::Relaxed) {
                        owner.used.store(true, Ordering::Relaxed);
                    }
                    NameState::Certificates(certs.clone())
                }
                None => NameState::Unresolved(owner.refs.clone()),
            };
        }
        if state.ancestors.contains_key(name) {
            NameState::Ancestor
        } else {
            NameState::Absent
        }
    }

    /// What is at `name`, reading its certificates from the database when
    /// the cache does not hold them (and caching them).
    pub async fn resolve(&self, name: &[u8]) -> Result<NameState> {
        let refs = match self.lookup(name) {
            NameState::Unresolved(refs) => refs,
            other => return Ok(other),
        };
        let ders = self.fetch(&refs).await?;
        let found: Vec<Arc<[u8]>> = refs
            .iter()
            .filter_map(|r| ders.get(&r.id).cloned())
            .collect();
        // A row gone since: the entry changed, and the catch-up will
        // replace these references; serve what is left, cache nothing.
        let complete = found.len() == refs.len();
        let certs = served(found);
        if complete {
            self.write().remember(name, &refs, certs.clone());
        }
        Ok(NameState::Certificates(certs))
    }

    /// [`Publication::resolve`] for a thread outside the runtime (the UDP
    /// front end's): runs the read on the runtime and waits for it, at
    /// most `timeout`. `None` when it failed or took too long.
    pub fn resolve_blocking(&self, name: &[u8], timeout: Duration) -> Option<NameState> {
        let runtime = self.shared.runtime.as_ref()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let publication = self.clone();
        let name = name.to_vec();
        runtime.spawn(async move {
            let _ = tx.send(publication.resolve(&name).await);
        });
        match rx.recv_timeout(timeout) {
            Ok(Ok(state)) => Some(state),
            Ok(Err(e)) => {
                warn!(error = %e, "reading published certificates failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Every name at or below `apex` with its certificates, sorted by name:
    /// a consistent snapshot, with the version it was taken at.
    pub fn names_within(&self, apex: &[u8]) -> (u64, Vec<(NameKey, Published)>) {
        let state = self.read();
        let mut names: Vec<(NameKey, Published)> = state
            .owners
            .iter()
            .filter(|(name, _)| name.is_within(apex))
            .map(|(name, owner)| {
                let published = match &owner.der {
                    Some(certs) => Published::Certificates(certs.clone()),
                    None => Published::Unresolved(owner.refs.clone()),
                };
                (name.clone(), published)
            })
            .collect();
        drop(state);
        names.sort_by(|a, b| a.0.cmp(&b.0));
        (self.version(), names)
    }

    /// The certificates of `names` (from [`Publication::names_within`]),
    /// read from the database where the cache does not hold them, without
    /// filling the cache. A certificate gone since is left out.
    pub async fn resolve_all(
        &self,
        names: Vec<(NameKey, Published)>,
    ) -> Result<Vec<(NameKey, PublishedCerts)>> {
        let mut out = Vec::with_capacity(names.len());
        let mut pending: Vec<(NameKey, CertRefs)> = Vec::new();
        let flush = async |pending: &mut Vec<(NameKey, CertRefs)>,
                           out: &mut Vec<(NameKey, PublishedCerts)>|
               -> Result<()> {
            let ids: Vec<CertRef> = pending
                .iter()
                .flat_map(|(_, r)| r.iter().copied())
                .collect();
            let ders = self.fetch(&ids).await?;
            for (name, refs) in pending.drain(..) {
                let certs = refs
                    .iter()
                    .filter_map(|r| ders.get(&r.id).cloned())
                    .collect();
                out.push((name, served(certs)));
            }
            Ok(())
        };
        for (name, published) in names {
            match published {
                Published::Certificates(certs) => {
                    flush(&mut pending, &mut out).await?;
                    out.push((name, certs));
                }
                Published::Unresolved(refs) => {
                    pending.push((name, refs));
                    if pending.len() >= 1000 {
                        flush(&mut pending, &mut out).await?;
                    }
                }
            }
        }
        flush(&mut pending, &mut out).await?;
        Ok(out)
    }

    /// The DER of `refs` by row id, from the database.
    async fn fetch(&self, refs: &[CertRef]) -> Result<HashMap<i64, Arc<[u8]>>> {
        if refs.is_empty() {
            return Ok(HashMap::default());
        }
        let Some(directory) = &self.shared.directory else {
            return Err(super::CoreError::Internal(
                "a fixed publication view has no database".into(),
            ));
        };
        let ids: Vec<i64> = refs.iter().map(|r| r.id).collect();
        Ok(directory
            .inner
            .store
            .certificate_ders(&ids)
            .await?
            .into_iter()
            .map(|(id, der)| (id, der.into()))
            .collect())
    }

    /// Increases on every change of what is published (0 before anything).
    pub fn version(&self) -> u64 {
        *self.shared.version.borrow()
    }

    /// Reports each new [`Publication::version`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.version.subscribe()
    }

    /// The last change of the directory the view has applied.
    pub fn applied(&self) -> ChangeSeq {
        self.read().applied
    }

    /// Applies every change written so far and waits for it (read-your-writes
    /// for tests and tools).
    pub async fn sync(&self) -> Result<ChangeSeq> {
        self.catch_up().await
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that breaks readers (each update is whole), so go on.
        self.shared
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.shared
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn initial_load(&self) -> Result<()> {
        let Some(directory) = &self.shared.directory else {
            return Ok(());
        };
        let store = &directory.inner.store;
        let head = store.head_seq().await?;
        let now = directory.now();
        // Only the published columns of attached certificates, straight
        // into a fresh state on the scan's thread.
        let budget = self.read().budget;
        let fresh = State {
            budget,
            ..State::default()
        };
        let (mut fresh, expiries) = store
            .fold_published((fresh, Vec::new()), move |(state, expiries), row| {
                if row.visibility == Visibility::Public {
                    state.load_row(&row, now, expiries);
                }
            })
            .await?;
        fresh.expiries = BinaryHeap::from(expiries);
        let mut state = self.write();
        *state = fresh;
        state.applied = head;
        state.version += 1;
        let version = state.version;
        drop(state);
        self.shared.version.send_replace(version);
        Ok(())
    }

    /// Applies the changes after the view's position and drops what expired.
    async fn catch_up(&self) -> Result<ChangeSeq> {
        let Some(directory) = &self.shared.directory else {
            return Ok(self.applied());
        };
        let store = &directory.inner.store;
        let mut from = self.applied();
        loop {
            let changes = store.changes_since(from, PAGE).await?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                break;
            };
            let keys: Vec<String> = changes
                .iter()
                .filter(|c| matches!(c.kind, ChangeKind::EntryUpserted | ChangeKind::EntryRemoved))
                .map(|c| c.key.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            // Only the published columns: entries that are gone, internal
            // or without certificates contribute nothing.
            let rows = store.published_of(&keys).await?;
            let now = directory.now();
            let mut by_key: HashMap<&str, (Names, Vec<Contribution>)> = HashMap::default();
            for row in &rows {
                contribute_row(&mut by_key, row.key.as_str(), row, now);
            }
            let mut state = self.write();
            let mut changed = false;
            for key in &keys {
                let contributions = by_key
                    .remove(key.as_str())
                    .map(|(_, c)| c)
                    .unwrap_or_default();
                changed |= state.replace_entry(key.as_str().into(), contributions);
            }
            state.applied = last;
            from = last;
            if changed {
                state.version += 1;
                let version = state.version;
                drop(state);
                self.shared.version.send_replace(version);
                debug!(up_to = last.0, version, "publication caught up");
            }
        }
        self.expire(directory.now());
        Ok(from)
    }

    /// Drops certificates whose validity ended before `now`.
    fn expire(&self, now: DateTime<Utc>) {
        let mut state = self.write();
        let mut changed = false;
        while let Some(Reverse((at, _))) = state.expiries.peek() {
            if *at >= now {
                break;
            }
            let Some(Reverse((_, key))) = state.expiries.pop() else {
                break;
            };
            let Some(current) = state.by_entry.get(&key) else {
                continue;
            };
            let kept: Vec<Contribution> = current
                .iter()
                .filter(|c| c.not_after >= now)
                .cloned()
                .collect();
            changed |= state.replace_entry(key, kept);
        }
        if changed {
            state.version += 1;
            let version = state.version;
            drop(state);
            self.shared.version.send_replace(version);
        }
    }
}

impl State {
    /// Adds what `row` publishes at `now` to a state being loaded from
    /// scratch: what [`State::replace_entry`] of the whole entry would
    /// give, without comparing or recounting anything. Expiries are
    /// gathered in `expiries`, to be heaped once at the end.
    fn load_row(
        &mut self,
        row: &PublishedRow,
        now: DateTime<Utc>,
        expiries: &mut Vec<Reverse<(DateTime<Utc>, Arc<str>)>>,
    ) {
        let mut out = Vec::new();
        let cert = PublishedCert::new(
            row.binding,
            CertRef {
                id: row.id,
                digest: row.fingerprint_prefix,
            },
            row.trust,
            (row.not_before, row.not_after),
            now,
        );
        Names::of(&row.address).contribute(&cert, &mut out);
        if out.is_empty() {
            return;
        }
        let key: Arc<str> = match self.by_entry.get_key_value(row.key.as_str()) {
            Some((key, _)) => key.clone(),
            None => row.key.as_str().into(),
        };
        for c in &out {
            let from = (key.clone(), c.cert);
            match self.owners.get_mut(&c.owner) {
                Some(owner) => {
                    owner.from.push(from);
                    owner.refs = refs_of(&owner.from);
                }
                None => {
                    for ancestor in suffixes(c.owner.as_bytes()).skip(1) {
                        match self.ancestors.get_mut(ancestor) {
                            Some(count) => *count += 1,
                            None => {
                                self.ancestors.insert(ancestor.into(), 1);
                            }
                        }
                    }
                    let owner = Owner {
                        refs: Arc::from([c.cert]),
                        from: vec![from],
                        ..Owner::default()
                    };
                    self.owners.insert(c.owner.clone(), owner);
                }
            }
            expiries.push(Reverse((c.not_after, key.clone())));
        }
        self.by_entry.entry(key).or_default().extend(out);
    }

    /// Caches the DER of `name` if it still publishes exactly `refs`, then
    /// evicts names not asked for since the hand last passed them until the
    /// cache is within its budget.
    fn remember(&mut self, name: &[u8], refs: &CertRefs, certs: PublishedCerts) {
        let Some(owner) = self.owners.get_mut(name) else {
            return;
        };
        if owner.der.is_some() || owner.refs != *refs {
            return;
        }
        self.cached += charge(&certs);
        owner.der = Some(certs);
        owner.used.store(false, Ordering::Relaxed);
        self.hand.push_back(NameKey(name.into()));
        // Each name is passed at most twice: once to clear its bit.
        let mut steps = 2 * self.hand.len();
        while self.cached > self.budget && steps > 0 {
            steps -= 1;
            let Some(oldest) = self.hand.pop_front() else {
                break;
            };
            let Some(owner) = self.owners.get_mut(&oldest) else {
                continue;
            };
            if owner.der.is_none() {
                continue;
            }
            if owner.used.swap(false, Ordering::Relaxed) {
                self.hand.push_back(oldest);
            } else if let Some(certs) = owner.der.take() {
                self.cached -= charge(&certs);
            }
        }
    }

    /// Replaces what entry `key` publishes. Returns whether anything changed.
    fn replace_entry(&mut self, key: Arc<str>, new: Vec<Contribution>) -> bool {
        let old = self.by_entry.remove(&key).unwrap_or_default();
        let same = |a: &Contribution, b: &Contribution| {
            a.owner == b.owner && a.cert.digest == b.cert.digest && a.not_after == b.not_after
        };
        if old.len() == new.len() && old.iter().zip(&new).all(|(a, b)| same(a, b)) {
            // The same certificates, perhaps under new row ids (the entry
            // was saved again): nothing published changes, and cached DER
            // stays valid, but later reads must use the new ids.
            for (a, b) in old.iter().zip(&new) {
                if a.cert == b.cert {
                    continue;
                }
                if let Some(owner) = self.owners.get_mut(&a.owner) {
                    for (k, c) in owner.from.iter_mut() {
                        if *k == key && *c == a.cert {
                            *c = b.cert;
                        }
                    }
                    owner.refs = refs_of(&owner.from);
                }
            }
            if !new.is_empty() {
                self.by_entry.insert(key, new);
            }
            return false;
        }
        let mut touched: HashSet<NameKey> = HashSet::default();
        for c in &old {
            if let Some(owner) = self.owners.get_mut(&c.owner) {
                owner.from.retain(|(k, _)| *k != key);
                touched.insert(c.owner.clone());
            }
        }
        for c in &new {
            let owner = self.owners.entry(c.owner.clone()).or_insert_with(|| {
                for ancestor in suffixes(c.owner.as_bytes()).skip(1) {
                    *self.ancestors.entry(ancestor.into()).or_default() += 1;
                }
                Owner::default()
            });
            owner.from.push((key.clone(), c.cert));
            touched.insert(c.owner.clone());
            self.expiries.push(Reverse((c.not_after, key.clone())));
        }
        for name in touched {
            let Some(owner) = self.owners.get_mut(&name) else {
                continue;
            };
            if owner.from.is_empty() {
                if let Some(certs) = self.owners.remove(&name).and_then(|o| o.der) {
                    self.cached -= charge(&certs);
                }
                for ancestor in suffixes(name.as_bytes()).skip(1) {
                    if let Some(count) = self.ancestors.get_mut(ancestor) {
                        *count -= 1;
                        if *count == 0 {
                            self.ancestors.remove(ancestor);
                        }
                    }
                }
            } else {
                let refs = refs_of(&owner.from);
                if *owner.refs != *refs {
                    owner.refs = refs;
                    if let Some(certs) = owner.der.take() {
                        self.cached -= charge(&certs);
                    }
                }
            }
        }
        if !new.is_empty() {
            self.by_entry.insert(key, new);
        }
        true
    }
}

/// The owner names an entry's certificates are published at (see the
/// module documentation): its address as a name, for address-bound ones,
/// and its domain for domain-bound ones.
struct Names {
    address: Vec<NameKey>,
    domain: Option<NameKey>,
}

/// What publishing one certificate needs of it.
struct PublishedCert {
    binding: Binding,
    cert: CertRef,
    /// Trusted and within its validity now.
    trusted: bool,
    not_after: DateTime<Utc>,
}

impl PublishedCert {
    /// `status` is the trust status last judged; published only while it
    /// is trusted and `now` is within the validity (from, until).
    fn new(
        binding: Binding,
        cert: CertRef,
        status: TrustStatus,
        (not_before, not_after): (DateTime<Utc>, DateTime<Utc>),
        now: DateTime<Utc>,
    ) -> PublishedCert {
        PublishedCert {
            binding,
            cert,
            trusted: status == TrustStatus::Trusted && not_before <= now && now <= not_after,
            not_after,
        }
    }
}

/// Adds what the certificate in `row` publishes at `now` to the
/// contributions of its entry (`key`), whose names are worked out once.
/// Re-judging at `now` (`TrustVerdict::at`) only ever demotes a trusted
/// certificate outside its validity, which [`PublishedCert::new`] checks.
fn contribute_row<K: std::hash::Hash + Eq>(
    by_entry: &mut HashMap<K, (Names, Vec<Contribution>)>,
    key: K,
    row: &PublishedRow,
    now: DateTime<Utc>,
) {
    let cert = PublishedCert::new(
        row.binding,
        CertRef {
            id: row.id,
            digest: row.fingerprint_prefix,
        },
        row.trust,
        (row.not_before, row.not_after),
        now,
    );
    let (names, out) = by_entry
        .entry(key)
        .or_insert_with(|| (Names::of(&row.address), Vec::new()));
    names.contribute(&cert, out);
}

impl Names {
    fn of(address: &DirectoryAddress) -> Names {
        let domain = NameKey::from_labels(address.domain().labels().map(str::as_bytes));
        let mut names = Vec::new();
        if let DirectoryAddress::Mailbox(mailbox) = address {
            let local = mailbox.local().as_bytes();
            let domain: Vec<&[u8]> = address.domain().labels().map(str::as_bytes).collect();
            names.extend(NameKey::from_labels(
                local.split(|b| *b == b'.').chain(domain.iter().copied()),
            ));
            if local.contains(&b'.') {
                names.extend(NameKey::from_labels(
                    std::iter::once(local).chain(domain.iter().copied()),
                ));
            }
        }
        Names {
            address: names,
            domain,
        }
    }

    /// Adds what `cert` contributes (nothing unless it is trusted now).
    fn contribute(&self, cert: &PublishedCert, out: &mut Vec<Contribution>) {
        if !cert.trusted {
            return;
        }
        let names: &[NameKey] = match cert.binding {
            Binding::Address => &self.address,
            Binding::Domain => self.domain.as_slice(),
        };
        for owner in names {
            if owner.labels().any(|l| l == b"*") {
                continue;
            }
            out.push(Contribution {
                owner: owner.clone(),
                cert: cert.cert,
                not_after: cert.not_after,
            });
        }
    }
}

async fn run(weak: Weak<Shared>, mut writes: watch::Receiver<ChangeSeq>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let publication = Publication { shared };
        if let Err(e) = publication.catch_up().await {
            warn!(error = %e, "publication catch-up failed; retrying");
        }
        drop(publication);
        tokio::select! {
            changed = writes.changed() => {
                if changed.is_err() {
                    // The directory is gone; polling still notices other writers.
                    tokio::time::sleep(POLL).await;
                }
            }
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

impl Directory {
    /// Reports the last change this process wrote (for derived views that
    /// catch up after writes).
    pub(super) fn subscribe_writes(&self) -> watch::Receiver<ChangeSeq> {
        self.inner.wrote.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> NameKey {
        NameKey::parse_dotted(s).unwrap()
    }

    #[test]
    fn keys_and_presentation() {
        let k = key("Alice.Example.ORG.");
        assert_eq!(k.as_bytes(), b"\x05alice\x07example\x03org");
        assert_eq!(k.to_presentation(), "alice.example.org.");
        assert!(k.is_within(key("example.org").as_bytes()));
        assert!(!k.is_within(key("ample.org").as_bytes()));
        let dotted = NameKey::from_labels([&b"john.doe"[..], b"x", b"org"]).unwrap();
        assert_eq!(dotted.to_presentation(), "john\\046doe.x.org.");
        assert!(NameKey::from_labels([&[b'a'; 64][..]]).is_none());
        assert!(NameKey::parse_dotted("a..b").is_none());
        assert_eq!(NameKey::root().to_presentation(), ".");
        assert_eq!(
            NameKey::from_key_bytes(k.as_bytes()).unwrap(),
            k,
            "key bytes round-trip"
        );
        assert!(NameKey::from_key_bytes(b"\x05Alice").is_none());
        assert!(NameKey::from_key_bytes(b"\x09abc").is_none());
    }

    #[test]
    fn suffixes_walk_to_the_last_label() {
        let k = key("a.b.c");
        let all: Vec<&[u8]> = suffixes(k.as_bytes()).collect();
        assert_eq!(all, vec![&b"\x01a\x01b\x01c"[..], b"\x01b\x01c", b"\x01c"]);
    }

    fn contribution(owner: &str, der: &[u8]) -> Contribution {
        Contribution {
            owner: key(owner),
            cert: CertRef {
                id: i64::from(der[0]),
                digest: u64::from(der[0]),
            },
            not_after: DateTime::<Utc>::MAX_UTC,
        }
    }

    #[test]
    fn owners_union_and_ancestors_count() {
        let mut s = State::default();
        assert!(s.replace_entry("a@b.x.org".into(), vec![contribution("a.b.x.org", b"1")]));
        assert!(s.replace_entry("a.b@x.org".into(), vec![contribution("a.b.x.org", b"2")]));
        assert!(s.replace_entry("b.x.org".into(), vec![contribution("b.x.org", b"2")]));
        assert!(!s.replace_entry("b.x.org".into(), vec![contribution("b.x.org", b"2")]));
        let owner = &s.owners[key("a.b.x.org").as_bytes()];
        assert_eq!(owner.refs.len(), 2);
        assert_eq!(s.ancestors[key("x.org").as_bytes()], 2);
        assert!(s.replace_entry("a@b.x.org".into(), vec![]));
        assert!(s.replace_entry("a.b@x.org".into(), vec![]));
        assert!(!s.owners.contains_key(key("a.b.x.org").as_bytes()));
        assert_eq!(s.ancestors[key("x.org").as_bytes()], 1);
        assert!(!s.ancestors.contains_key(key("b.x.org").as_bytes()));
        assert!(s.replace_entry("b.x.org".into(), vec![]));
        assert!(s.ancestors.is_empty() && s.owners.is_empty() && s.by_entry.is_empty());
    }

    fn row(address: &str, id: i64, binding: Binding, trust: TrustStatus) -> PublishedRow {
        let address: DirectoryAddress = address.parse().unwrap();
        PublishedRow {
            key: address.key(),
            address,
            visibility: Visibility::Public,
            binding,
            trust,
            not_before: DateTime::<Utc>::MIN_UTC,
            not_after: DateTime::<Utc>::MAX_UTC,
            id,
            fingerprint_prefix: id as u64,
        }
    }

    /// What a state holds, in a comparable form.
    fn contents(s: &State) -> Vec<String> {
        let mut out: Vec<String> = s
            .owners
            .iter()
            .map(|(name, o)| {
                let mut from: Vec<String> = o
                    .from
                    .iter()
                    .map(|(k, c)| format!("{k}:{}", c.id))
                    .collect();
                from.sort();
                format!("{name} {from:?} {:?}", o.refs)
            })
            .collect();
        out.extend(s.ancestors.iter().map(|(a, n)| format!("{a:?}={n}")));
        out.extend(s.by_entry.iter().map(|(k, c)| format!("{k} {c:?}")));
        out.push(format!("expiries {}", s.expiries.len()));
        out.sort();
        out
    }

    #[test]
    fn loading_rows_gives_the_state_of_replacing_whole_entries() {
        use Binding::{Address, Domain};
        let rows = vec![
            row("john.doe@x.org", 1, Address, TrustStatus::Trusted),
            row("john@doe.x.org", 2, Address, TrustStatus::Trusted),
            row("doe.x.org", 3, Domain, TrustStatus::Trusted),
            row("ann@y.org", 4, Address, TrustStatus::Untrusted),
            // An entry's second certificate, not next to its first.
            row("John.Doe@x.org", 5, Address, TrustStatus::Trusted),
            row("ann@y.org", 6, Address, TrustStatus::Trusted),
        ];
        let now = Utc::now();
        let mut loaded = State::default();
        let mut expiries = Vec::new();
        for r in &rows {
            loaded.load_row(r, now, &mut expiries);
        }
        loaded.expiries = BinaryHeap::from(expiries);

        let mut grouped: HashMap<String, (Names, Vec<Contribution>)> = HashMap::default();
        for r in &rows {
            contribute_row(&mut grouped, r.key.clone(), r, now);
        }
        let mut replaced = State::default();
        for (key, (_, contributions)) in grouped {
            replaced.replace_entry(key.into(), contributions);
        }
        assert_eq!(contents(&loaded), contents(&replaced));
        let owner = &loaded.owners[key("john.doe.x.org").as_bytes()];
        assert_eq!(owner.refs.len(), 3, "{:?}", owner.refs);
    }

    #[test]
    fn the_cache_keeps_names_asked_for_and_stays_within_its_budget() {
        let mut s = State {
            budget: 3 * (100 + 32 + 64),
            ..State::default()
        };
        let names: Vec<String> = (0..6).map(|i| format!("n{i}.x.org")).collect();
        for (i, n) in names.iter().enumerate() {
            s.replace_entry(n.as_str().into(), vec![contribution(n, &[i as u8; 100])]);
        }
        let remember = |s: &mut State, n: &str| {
            let name = key(n);
            let refs = s.owners[name.as_bytes()].refs.clone();
            let der: Arc<[u8]> = vec![0u8; 100].into();
            s.remember(name.as_bytes(), &refs, vec![der].into());
        };
        for n in &names[..3] {
            remember(&mut s, n);
        }
        assert_eq!(s.cached, s.budget);
        // n0 is asked for again; the next name pushes out n1, not n0.
        s.owners[key("n0.x.org").as_bytes()]
            .used
            .store(true, Ordering::Relaxed);
        remember(&mut s, &names[3]);
        let held = |s: &State, n: &str| s.owners[key(n).as_bytes()].der.is_some();
        assert!(held(&s, "n0.x.org") && !held(&s, "n1.x.org") && held(&s, "n3.x.org"));
        assert!(s.cached <= s.budget);
        // A change of what a name publishes drops its cached DER.
        s.replace_entry(
            names[0].as_str().into(),
            vec![contribution(&names[0], &[9; 100])],
        );
        assert!(!held(&s, "n0.x.org"));
        assert_eq!(s.cached, 2 * (100 + 32 + 64));
    }

    #[test]
    fn an_entry_saved_again_keeps_what_it_publishes_under_new_ids() {
        let mut s = State::default();
        let first = contribution("a.x.org", b"1");
        assert!(s.replace_entry("a@x.org".into(), vec![first.clone()]));
        let refs = s.owners[key("a.x.org").as_bytes()].refs.clone();
        s.remember(
            key("a.x.org").as_bytes(),
            &refs,
            vec![Arc::from(&b"1"[..])].into(),
        );
        let moved = Contribution {
            cert: CertRef {
                id: 77,
                ..first.cert
            },
            ..first
        };
        assert!(
            !s.replace_entry("a@x.org".into(), vec![moved]),
            "nothing published changed"
        );
        let owner = &s.owners[key("a.x.org").as_bytes()];
        assert_eq!(
            owner.refs.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![77]
        );
        assert!(
            owner.der.is_some(),
            "the cached DER is still the certificate's"
        );
    }
}
