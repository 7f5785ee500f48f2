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
//! The view is kept by entry, not by name: each public entry that publishes
//! something holds its key and its certificate references (row id and
//! fingerprint prefix), and a name asked for is worked out from the
//! question by each way of reading it as an address ([`State`]). So the
//! several names of an entry (both forms of a dotted local part, and the
//! empty non-terminals above them) are never stored, and a node of a
//! million entries holds about 200 MB for the view, not a gigabyte. The
//! DER of a name is read from the database the first time the name is
//! asked for ([`Publication::resolve`]) and kept in a bounded cache of
//! names (about `cache_bytes` of DER; second chance eviction), so a node
//! neither reads every certificate at start nor holds them all. A transfer
//! or zone export reads what it needs without filling the cache
//! ([`Publication::resolve_all`]).
//!
//! # Keeping up
//!
//! Like the search index, the view remembers the last change it applied and
//! catches up from the change log: woken by this process's writes, polled
//! for other processes' (the CLI importing beside a server), and it drops
//! certificates as they expire. [`Publication::version`] increases on every
//! change of what is published; [`Publication::subscribe`] reports it.
//!
//! # Saved between runs
//!
//! A serving view is saved to a file (see `snapshot.rs`) when it stops,
//! after it was loaded from the database, and as changes accumulate
//! ([`SavePlan`]). The next start loads that file (on two threads, see
//! [`load_saved_rows`]), checks that it belongs to this database (the
//! change it was saved at is there, with the same key; the schema is the
//! same) and catches up from the changes after it, as a running view
//! does; otherwise it scans the database.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use std::hash::BuildHasher as _;

use chrono::{DateTime, Utc};
use foldhash::{HashMap, HashSet};
use sha2::Digest as _;
use smallvec::SmallVec;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{Directory, Result};
use crate::domain::{Binding, ChangeKind, ChangeSeq, TrustStatus, Visibility};
use crate::storage::{PublishedRow, Store};

mod snapshot;

/// Changes read per round.
const PAGE: u64 = 5000;
/// Where a serving view saves itself, and how often besides at stop.
#[derive(Debug, Clone)]
pub struct SavePlan {
    /// The file (`snapshot.rs` has its layout).
    pub path: std::path::PathBuf,
    /// Changes applied since the last save after which the view saves
    /// itself again...
    pub after_changes: u64,
    /// ...but not sooner than this after the last save.
    pub interval: Duration,
}

impl SavePlan {
    /// Changes after which a view saves itself again, by default: at a
    /// few thousand changes a second, about once a minute.
    pub const AFTER_CHANGES: u64 = 100_000;
    /// The shortest time between two such saves, by default.
    pub const INTERVAL: Duration = Duration::from_secs(60);

    /// Saves at `path` with the default cadence.
    pub fn at(path: std::path::PathBuf) -> SavePlan {
        SavePlan {
            path,
            after_changes: SavePlan::AFTER_CHANGES,
            interval: SavePlan::INTERVAL,
        }
    }
}
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
        encode(labels).map(|key| NameKey(key.as_slice().into()))
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

/// One published certificate as the view keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    cert: CertRef,
    /// The end of its validity, in seconds since the epoch: it is dropped
    /// once that has passed.
    not_after: i64,
}

impl Held {
    /// The same certificate published until the same moment, perhaps
    /// under another row id (its entry was saved again).
    fn same(&self, other: &Held) -> bool {
        self.cert.digest == other.cert.digest && self.not_after == other.not_after
    }
}

/// What one entry publishes of one binding; nearly always one certificate.
type Held1 = SmallVec<[Held; 1]>;

/// The domain-bound certificates at one name, each with its entry's key.
type DomainHeld = SmallVec<[(Arc<str>, Held); 1]>;

/// A name's DER in the cache.
struct Cached {
    /// What the name published when its DER was read.
    refs: CertRefs,
    der: PublishedCerts,
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

/// Bytes the cache charges for a name's DER.
fn charge(certs: &PublishedCerts) -> usize {
    certs.iter().map(|d| d.len() + 32).sum::<usize>() + 64
}

/// An entry key's local part (none for a domain entry) and domain.
fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.rfind('@') {
        Some(at) => (Some(&key[..at]), &key[at + 1..]),
        None => (None, key),
    }
}

/// A name in key form, on the stack for the names of addresses.
type KeyBytes = SmallVec<[u8; 96]>;

/// `labels` in key form (see [`NameKey`]); `None` when a label is empty or
/// longer than 63 octets, or the name is too long.
fn encode<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Option<KeyBytes> {
    let mut out = KeyBytes::new();
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        let at = out.len();
        out.extend_from_slice(label);
        out[at..].make_ascii_lowercase();
        if out.len() > 254 {
            return None;
        }
    }
    Some(out)
}

/// [`encode`], unless the name cannot be published: a label is exactly
/// `*` (it would read as a wildcard on every secondary).
fn publishable<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Option<KeyBytes> {
    let key = encode(labels)?;
    let wildcard = LabelIter(&key).any(|l| l == b"*");
    (!wildcard).then_some(key)
}

/// The name a domain-bound certificate of an entry in `domain` is published at.
fn domain_name(domain: &str) -> Option<NameKey> {
    publishable(domain.split('.').map(str::as_bytes)).map(|k| NameKey(k.as_slice().into()))
}

/// The names an address-bound certificate of `local@domain` is published
/// at (key form): every dot of the local part a label boundary, and, when
/// it holds dots, the local part as one label (module documentation).
/// Worked out without allocating: the view derives them for every entry
/// it loads and every name it is asked for.
struct AddressNames {
    /// `john.doe.x.org` for `john.doe@x.org`.
    dotted: Option<KeyBytes>,
    /// `john\.doe.x.org`, only when the local part holds dots.
    single: Option<KeyBytes>,
    /// How many labels the local part gives the dotted name.
    local_labels: usize,
}

impl AddressNames {
    fn of(local: &str, domain: &str) -> AddressNames {
        fn labels(text: &str) -> impl Iterator<Item = &[u8]> {
            text.as_bytes().split(|&b| b == b'.')
        }
        let local_labels = labels(local).count();
        let dotted = publishable(labels(local).chain(labels(domain)));
        let single = if local_labels > 1 {
            publishable(std::iter::once(local.as_bytes()).chain(labels(domain)))
        } else {
            None
        };
        AddressNames {
            dotted,
            single,
            local_labels,
        }
    }

    /// The names, in key form.
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.dotted.iter().chain(&self.single).map(|k| k.as_slice())
    }

    /// The domain in key form, when some name is published.
    fn domain(&self) -> Option<&[u8]> {
        let dotted = self.dotted.as_ref().map(|k| (k, self.local_labels));
        let single = self.single.as_ref().map(|k| (k, 1));
        let (name, skip) = dotted.or(single)?;
        suffixes(name).nth(skip)
    }

    /// The proper ancestors of the dotted name that lie within the local
    /// part (`doe.x.org` for `john.doe@x.org`): names that exist only
    /// because of this entry's local part.
    fn local_ancestors(&self) -> impl Iterator<Item = &[u8]> {
        self.dotted
            .iter()
            .flat_map(|n| suffixes(n).skip(1))
            .take(self.local_labels.saturating_sub(1))
    }
}

/// Entries per key, names by what lies below them, and the cache of DER.
///
/// The view is kept by entry rather than by owner name: an owner name is
/// worked out from the question (each way of splitting it into local part
/// and domain, see [`State::refs_at`]), so the names themselves, several
/// per entry, are never stored. Whether a name has something below it (an
/// empty non-terminal) is counted per domain for the names the domains
/// account for, and by a 64-bit keyed hash for the ancestors that lie
/// within local parts (`doe.x.org` for `john.doe@x.org`), which are nearly
/// one per entry: a collision could only make a name that holds nothing
/// answer NODATA instead of NXDOMAIN, with odds of about n / 2^64.
struct State {
    version: u64,
    applied: ChangeSeq,
    /// Address-bound certificates published now, by entry key; only
    /// entries that publish some.
    mailboxes: HashMap<Arc<str>, Held1>,
    /// Domain-bound certificates published now at each name, with the key
    /// of the entry that holds each.
    domains: HashMap<NameKey, DomainHeld>,
    /// What has something published below it.
    counts: Counts,
    /// When published certificates expire (stale items are harmless; the
    /// heap is rebuilt when they outnumber the live ones).
    expiries: BinaryHeap<Reverse<(i64, Arc<str>)>>,
    /// DER of names asked for, within `budget` bytes (`cached` now).
    cache: HashMap<NameKey, Cached>,
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
            mailboxes: HashMap::default(),
            domains: HashMap::default(),
            counts: Counts::default(),
            expiries: BinaryHeap::new(),
            cache: HashMap::default(),
            cached: 0,
            budget: usize::MAX,
            hand: VecDeque::new(),
        }
    }
}

/// The names with something published below them, counted (see [`State`]).
#[derive(Default)]
struct Counts {
    /// How many entries of [`State::mailboxes`] each domain holds.
    mailboxes_at: HashMap<NameKey, u32>,
    /// For a name, how many domains with something published below them
    /// account for it: a domain in `mailboxes_at` for itself and its
    /// ancestors, a name in [`State::domains`] for its proper ancestors.
    below: HashMap<NameKey, u32>,
    /// Ancestors within local parts (see [`AddressNames::local_ancestors`])
    /// by keyed hash, with how many entries give each.
    local_below: HashMap<u64, u32>,
    /// Keys the hashes of `local_below`, per process.
    seed: foldhash::quality::RandomState,
}

impl Counts {
    /// Whether something is published strictly below `name`.
    fn has_below(&self, name: &[u8]) -> bool {
        self.below.contains_key(name) || self.local_below.contains_key(&self.seed.hash_one(name))
    }

    /// Counts (`delta` 1) or uncounts (-1) a mailbox entry that starts or
    /// stops publishing: its domain and the ancestors within its local part.
    fn count_mailbox(&mut self, names: &AddressNames, delta: i32) {
        let Some(domain) = names.domain() else { return };
        if bump_name(&mut self.mailboxes_at, domain, delta) {
            // The domain itself and its ancestors have a name below them.
            for s in suffixes(domain) {
                bump_name(&mut self.below, s, delta);
            }
        }
        for s in names.local_ancestors() {
            bump_hash(&mut self.local_below, self.seed.hash_one(s), delta);
        }
    }

    /// Counts (`delta` 1) or uncounts (-1) the proper ancestors of a name
    /// that starts or stops holding domain-bound certificates.
    fn count_domain(&mut self, name: &[u8], delta: i32) {
        for s in suffixes(name).skip(1) {
            bump_name(&mut self.below, s, delta);
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.mailboxes_at.is_empty() && self.below.is_empty() && self.local_below.is_empty()
    }
}

struct Shared {
    state: RwLock<State>,
    version: watch::Sender<u64>,
    /// Absent for a [`Publication::fixed`] view.
    directory: Option<Directory>,
    /// Where [`Publication::resolve_blocking`] runs the database read.
    runtime: Option<tokio::runtime::Handle>,
    /// Where a serving view is saved between runs, and how often.
    save: Option<SavePlan>,
    /// The change the saved file holds the view at, and when it was
    /// written or read; `None` until then.
    last_save: std::sync::Mutex<Option<(ChangeSeq, std::time::Instant)>>,
    /// Held while saving.
    saving: tokio::sync::Mutex<()>,
}

/// Where a view's starting state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A scan of the database.
    Database,
    /// The view saved by an earlier run, taken at this change.
    Saved(ChangeSeq),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Database => f.write_str("the database"),
            Origin::Saved(at) => write!(f, "the saved view (at change {})", at.0),
        }
    }
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
    /// With `save`, the view starts from the file an earlier run saved
    /// there when it can (module documentation), and saves itself there.
    pub async fn start(
        directory: &Directory,
        cache_bytes: usize,
        save: Option<SavePlan>,
    ) -> Result<Publication> {
        let publication = Publication::build(directory, cache_bytes, save).await?;
        if publication.last_save().is_none() {
            // Scanned: saved now, so that the next start, even after a
            // crash, need not scan (nothing for a view that is not saved).
            let p = publication.clone();
            tokio::spawn(async move { p.save_logged().await });
        }
        let weak = Arc::downgrade(&publication.shared);
        let writes = directory.subscribe_writes();
        tokio::spawn(run(weak, writes));
        Ok(publication)
    }

    /// Builds the view once from the database, without following later
    /// changes (for exports).
    pub async fn load(directory: &Directory, cache_bytes: usize) -> Result<Publication> {
        Publication::build(directory, cache_bytes, None).await
    }

    /// Builds the view once as [`Publication::start`] does, from the file
    /// at `saved_at` when it fits the database, without following later
    /// changes or saving (`ccdir bench view` times it).
    pub async fn load_at(
        directory: &Directory,
        cache_bytes: usize,
        saved_at: std::path::PathBuf,
    ) -> Result<Publication> {
        Publication::build(directory, cache_bytes, Some(SavePlan::at(saved_at))).await
    }

    async fn build(
        directory: &Directory,
        cache_bytes: usize,
        save: Option<SavePlan>,
    ) -> Result<Publication> {
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
                save,
                last_save: std::sync::Mutex::new(None),
                saving: tokio::sync::Mutex::new(()),
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
            let id = i as i64;
            let digest = u64::from_be_bytes(
                sha2::Sha256::digest(&der)[..8]
                    .try_into()
                    .unwrap_or_default(),
            );
            ders.insert(id, der.into());
            let held = Held {
                cert: CertRef { id, digest },
                not_after: i64::MAX,
            };
            state.attach_domain_bound(owner, format!("fixed-{i}").into(), held);
        }
        let names: Vec<NameKey> = state.domains.keys().cloned().collect();
        for name in names {
            let refs: CertRefs = state.refs_at(name.as_bytes()).into();
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
                save: None,
                last_save: std::sync::Mutex::new(None),
                saving: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// What is at `name` (key form, see [`NameKey`]). The hot path of a DNS
    /// answer: one read lock and, for a name whose DER is cached, one hash
    /// lookup; otherwise one per way of splitting the name into an address.
    pub fn lookup(&self, name: &[u8]) -> NameState {
        let state = self.read();
        if let Some(cached) = state.cache.get(name) {
            if !cached.used.load(Ordering::Relaxed) {
                cached.used.store(true, Ordering::Relaxed);
            }
            return NameState::Certificates(cached.der.clone());
        }
        let refs = state.refs_at(name);
        if !refs.is_empty() {
            NameState::Unresolved(refs.into())
        } else if state.counts.has_below(name) {
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
    /// a consistent snapshot, with the version it was taken at. Works every
    /// name out from its entries: a walk of the whole view.
    pub fn names_within(&self, apex: &[u8]) -> (u64, Vec<(NameKey, Published)>) {
        let state = self.read();
        let mut refs: HashMap<NameKey, Vec<CertRef>> = HashMap::default();
        for (key, held) in &state.mailboxes {
            let (Some(local), domain) = split_key(key) else {
                continue;
            };
            for name in AddressNames::of(local, domain).iter() {
                if suffixes(name).any(|s| s == apex) {
                    let at = refs.entry(NameKey(name.into())).or_default();
                    at.extend(held.iter().map(|h| h.cert));
                }
            }
        }
        for (name, held) in &state.domains {
            if name.is_within(apex) {
                let at = refs.entry(name.clone()).or_default();
                at.extend(held.iter().map(|(_, h)| h.cert));
            }
        }
        let mut names: Vec<(NameKey, Published)> = refs
            .into_iter()
            .map(|(name, mut refs)| {
                refs.sort_unstable();
                refs.dedup();
                let published = match state.cache.get(name.as_bytes()) {
                    Some(cached) if *cached.refs == *refs => {
                        Published::Certificates(cached.der.clone())
                    }
                    _ => Published::Unresolved(refs.into()),
                };
                (name, published)
            })
            .collect();
        let version = state.version;
        drop(state);
        names.sort_by(|a, b| a.0.cmp(&b.0));
        (version, names)
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

    /// Saves the view where the next start looks for it (nothing for a
    /// view that is not saved). Returns the change it was saved at.
    pub async fn save(&self) -> Result<Option<ChangeSeq>> {
        let (Some(directory), Some(SavePlan { path, .. })) =
            (&self.shared.directory, &self.shared.save)
        else {
            return Ok(None);
        };
        // One save at a time: they share the temporary file.
        let _saving = self.shared.saving.lock().await;
        let started = std::time::Instant::now();
        // Under the read lock only long enough to copy out the rows.
        let (applied, rows) = {
            let state = self.read();
            if self.last_save().is_some_and(|(at, _)| at == state.applied) {
                return Ok(Some(state.applied));
            }
            (state.applied, state.saved_rows())
        };
        let Some(change_key) = change_key_at(&directory.inner.store, applied).await? else {
            return Err(super::CoreError::Internal(format!(
                "change {}, which the publication view applied, is not in the database",
                applied.0
            )));
        };
        let header = snapshot::Header {
            applied,
            change_key,
            schema: Store::schema_version(),
        };
        let path = path.clone();
        let count = rows.len();
        let written = tokio::task::spawn_blocking(move || {
            let bytes = snapshot::encode(&header, rows.iter().map(saved_row));
            snapshot::write_atomically(&path, &bytes).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        written
            .map_err(|e| super::CoreError::Internal(format!("saving the publication view: {e}")))?;
        *self.last_save() = Some((applied, std::time::Instant::now()));
        debug!(certificates = count, up_to = applied.0, elapsed = ?started.elapsed(), "publication view saved");
        Ok(Some(applied))
    }

    /// [`Publication::save`], a failure logged: the next start then scans.
    pub async fn save_logged(&self) {
        if let Err(e) = self.save().await {
            warn!(error = %e, "saving the publication view failed; the next start scans the database");
        }
    }

    /// How many entries publish address-bound certificates, and at how
    /// many names domain-bound ones are published.
    pub fn sizes(&self) -> (usize, usize) {
        let state = self.read();
        (state.mailboxes.len(), state.domains.len())
    }

    /// The change the view last saved its file at or loaded it from;
    /// none when it has done neither (it scanned the database).
    pub fn saved_change(&self) -> Option<ChangeSeq> {
        self.last_save().map(|(at, _)| at)
    }

    fn last_save(&self) -> std::sync::MutexGuard<'_, Option<(ChangeSeq, std::time::Instant)>> {
        self.shared
            .last_save
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether enough changed since the last save to save again (the
    /// first save follows the start, see [`Publication::start`]).
    fn save_due(&self) -> bool {
        let Some((at, when)) = *self.last_save() else {
            return false;
        };
        self.shared.save.as_ref().is_some_and(|plan| {
            self.applied().0.saturating_sub(at.0) >= plan.after_changes
                && when.elapsed() >= plan.interval
        })
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
        let now = directory.now();
        let started = std::time::Instant::now();
        let budget = self.read().budget;
        let saved = match &self.shared.save {
            Some(plan) => load_saved(store, &plan.path, now, budget).await?,
            None => None,
        };
        let (fresh, applied, origin) = match saved {
            Some((state, at)) => (state, at, Origin::Saved(at)),
            None => {
                let head = store.head_seq().await?;
                // Only the published columns of attached certificates,
                // straight into a fresh state on the scan's thread.
                let fresh = State {
                    budget,
                    ..State::default()
                };
                let mut fresh = store
                    .fold_published(fresh, move |state, row| state.load_row(&row, now))
                    .await?;
                fresh.finish_load();
                (fresh, head, Origin::Database)
            }
        };
        info!(
            entries = fresh.mailboxes.len(),
            domains = fresh.domains.len(),
            from = %origin,
            elapsed = ?started.elapsed(),
            "publication view loaded"
        );
        if origin != Origin::Database {
            *self.last_save() = Some((applied, std::time::Instant::now()));
        }
        let mut state = self.write();
        *state = fresh;
        state.applied = applied;
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
            // or without certificates publish nothing.
            let rows = store.published_of(&keys).await?;
            let now = directory.now();
            let mut by_key: HashMap<&str, (Held1, Held1)> = HashMap::default();
            for row in &rows {
                if let Some((binding, held)) = published(row, now) {
                    let (address, domain) = by_key.entry(row.key.as_str()).or_default();
                    match binding {
                        Binding::Address => address.push(held),
                        Binding::Domain => domain.push(held),
                    }
                }
            }
            let mut state = self.write();
            let mut changed = false;
            for key in &keys {
                let (address, domain) = by_key.remove(key.as_str()).unwrap_or_default();
                changed |= state.replace_entry(key, address, domain);
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
        if state.expire(now.timestamp()) {
            state.version += 1;
            let version = state.version;
            drop(state);
            self.shared.version.send_replace(version);
        }
    }
}

/// One row of [`State::saved_rows`] as the saved view writes it.
fn saved_row((key, binding, held): &(Arc<str>, Binding, Held)) -> snapshot::SavedRow<'_> {
    snapshot::SavedRow {
        key,
        binding: *binding,
        id: held.cert.id,
        digest: held.cert.digest,
        not_after: held.not_after,
    }
}

/// The key of change `at` ("" for 0, before any change); `None` when the
/// database holds no change `at`.
async fn change_key_at(store: &Store, at: ChangeSeq) -> Result<Option<String>> {
    if at.0 == 0 {
        return Ok(Some(String::new()));
    }
    let there = store.changes_since(ChangeSeq(at.0 - 1), 1).await?;
    Ok(there.into_iter().find(|c| c.seq == at).map(|c| c.key))
}

/// The view saved at `path` by an earlier run, loaded at `now`, with the
/// change it was saved at; `None` (and why, logged) when there is none or
/// it cannot be used for this database.
async fn load_saved(
    store: &Store,
    path: &std::path::Path,
    now: DateTime<Utc>,
    budget: usize,
) -> Result<Option<(State, ChangeSeq)>> {
    let file = path.to_owned();
    let opened = tokio::task::spawn_blocking(move || snapshot::SavedView::open_file(&file))
        .await
        .map_err(|e| super::CoreError::Internal(format!("reading the saved view: {e}")))?;
    let unusable = |why: &str| {
        warn!(path = %path.display(), reason = why, "not using the saved publication view; scanning the database");
    };
    let view = match opened {
        None => return Ok(None),
        Some(Err(e)) => {
            unusable(&e);
            return Ok(None);
        }
        Some(Ok(view)) => view,
    };
    let header = view.header().clone();
    if header.schema != Store::schema_version() {
        unusable(&format!(
            "saved over schema {}, the database is at {}",
            header.schema,
            Store::schema_version()
        ));
        return Ok(None);
    }
    let head = store.head_seq().await?;
    let at = header.applied;
    if at > head {
        unusable(&format!(
            "saved at change {}, beyond the database's last change {}",
            at.0, head.0
        ));
        return Ok(None);
    }
    if change_key_at(store, at).await?.as_ref() != Some(&header.change_key) {
        unusable(&format!(
            "change {} of this database is not the one the view was saved at",
            at.0
        ));
        return Ok(None);
    }
    // Catching up reads each changed entry on its own; far behind, one
    // scan is cheaper.
    let behind = head.0 - at.0;
    if behind > view.count() / 4 + 10_000 {
        unusable(&format!("{behind} changes behind the database"));
        return Ok(None);
    }
    // Rows are loaded as the file is read; the state counts only once the
    // whole file proved sound.
    let loaded = tokio::task::spawn_blocking(move || load_saved_rows(view, now, budget))
        .await
        .map_err(|e| super::CoreError::Internal(format!("loading the saved view: {e}")))?;
    match loaded {
        Ok(state) => Ok(Some((state, at))),
        Err(e) => {
            unusable(&e);
            Ok(None)
        }
    }
}

/// Entry keys handed from the thread that reads a saved view to the one
/// that counts their names, in one buffer.
#[derive(Default)]
struct KeyBatch {
    text: String,
    ends: Vec<usize>,
}

impl KeyBatch {
    const LEN: usize = 4096;

    fn keys(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.text[a..b])
    }
}

/// The state a saved view holds, on two threads: this one reads the rows
/// and keeps the entries, a second counts the names of each new mailbox
/// entry ([`Counts::count_mailbox`], half the work) as the keys arrive.
/// Gives what [`State::load_row`] of every row would, relying on the
/// order [`Publication::save`] writes: an entry's rows together.
fn load_saved_rows<R: std::io::Read>(
    view: snapshot::SavedView<R>,
    now: DateTime<Utc>,
    budget: usize,
) -> std::result::Result<State, String> {
    let mut state = State {
        budget,
        ..State::default()
    };
    // Sized once for the rows the file holds (bounded by its length).
    let rows = usize::try_from(view.count()).unwrap_or(usize::MAX);
    state.mailboxes.reserve(rows);
    state.expiries.reserve(rows);
    let mut counts = Counts::default();
    counts.local_below.reserve(rows);
    let (to_counter, batches) = std::sync::mpsc::sync_channel::<KeyBatch>(8);
    std::thread::scope(|scope| {
        let counter = scope.spawn(move || {
            let mut unpublishable = Vec::new();
            for batch in batches {
                for key in batch.keys() {
                    let (Some(local), domain) = split_key(key) else {
                        continue;
                    };
                    let names = AddressNames::of(local, domain);
                    match names.domain() {
                        Some(_) => counts.count_mailbox(&names, 1),
                        None => unpublishable.push(key.to_owned()),
                    }
                }
            }
            (counts, unpublishable)
        });
        let mut current: Option<(Arc<str>, Held1)> = None;
        let mut batch = KeyBatch::default();
        let mut flush =
            move |state: &mut State, current: &mut Option<(Arc<str>, Held1)>, last: bool| {
                if let Some((key, set)) = current.take() {
                    batch.text.push_str(&key);
                    batch.ends.push(batch.text.len());
                    if state.mailboxes.insert(key.clone(), set).is_some() {
                        return Err(format!("the rows of {key} are not together"));
                    }
                }
                if batch.ends.len() >= KeyBatch::LEN || last {
                    // The counter only stops early by panicking, which the join reports.
                    let _ = to_counter.send(std::mem::take(&mut batch));
                }
                Ok(())
            };
        let read = view.rows(|row| {
            let Some((binding, held)) = published(row, now) else {
                return Ok(());
            };
            let (local, _) = split_key(&row.key);
            match binding {
                Binding::Address if local.is_some() => {
                    if let Some((key, set)) = &mut current
                        && **key == *row.key
                    {
                        state.expiries.push(Reverse((held.not_after, key.clone())));
                        set.push(held);
                        return Ok(());
                    }
                    flush(&mut state, &mut current, false)?;
                    let key: Arc<str> = row.key.as_str().into();
                    state.expiries.push(Reverse((held.not_after, key.clone())));
                    current = Some((key, smallvec::smallvec![held]));
                }
                Binding::Address => {}
                Binding::Domain => {
                    flush(&mut state, &mut current, false)?;
                    state.load_domain_bound(&row.key, held);
                }
            }
            Ok(())
        });
        let flushed = read.and_then(|()| flush(&mut state, &mut current, true));
        drop(flush); // and with it the channel: the counter finishes
        let (mut counted, unpublishable) = counter
            .join()
            .map_err(|_| "counting the names of the saved view failed".to_owned())?;
        flushed?;
        state.drop_unpublishable(&unpublishable);
        // Domain-bound certificates were counted on this thread.
        for (name, n) in std::mem::take(&mut state.counts.below) {
            *counted.below.entry(name).or_default() += n;
        }
        state.counts = counted;
        state.finish_load();
        Ok(state)
    })
}

/// What the certificate of `row` publishes at `now`, if anything: its
/// entry must be public, and the certificate trusted (its stored verdict)
/// and within its validity. Re-judging at `now` (`TrustVerdict::at`) only
/// ever demotes a trusted certificate outside its validity, which this checks.
fn published(row: &PublishedRow, now: DateTime<Utc>) -> Option<(Binding, Held)> {
    let trusted = row.visibility == Visibility::Public
        && row.trust == TrustStatus::Trusted
        && row.not_before <= now
        && now <= row.not_after;
    trusted.then(|| {
        let cert = CertRef {
            id: row.id,
            digest: row.fingerprint_prefix,
        };
        let not_after = row.not_after.timestamp();
        (row.binding, Held { cert, not_after })
    })
}

impl State {
    /// Every certificate the view publishes, with its entry's key and
    /// binding: what [`Publication::save`] writes.
    fn saved_rows(&self) -> Vec<(Arc<str>, Binding, Held)> {
        let mut rows = Vec::with_capacity(self.mailboxes.len() + self.domains.len());
        for (key, set) in &self.mailboxes {
            rows.extend(set.iter().map(|h| (key.clone(), Binding::Address, *h)));
        }
        for list in self.domains.values() {
            rows.extend(
                list.iter()
                    .map(|(key, h)| (key.clone(), Binding::Domain, *h)),
            );
        }
        rows
    }

    /// The certificates published at `name`, sorted, each once: those of
    /// the entries whose address gives the name (each way of reading it
    /// as `local@domain` that the naming rules allow) and the domain-bound
    /// ones at it.
    fn refs_at(&self, name: &[u8]) -> Vec<CertRef> {
        let mut out = Vec::new();
        let labels: SmallVec<[&[u8]; 8]> = LabelIter(name).collect();
        if labels.is_empty() || labels.iter().any(|l| *l == b"*") {
            return out;
        }
        if let Some(held) = self.domains.get(name) {
            out.extend(held.iter().map(|(_, h)| h.cert));
        }
        // Domains have no dots in their labels; only the single-label form
        // of a local part has, and then it is the whole local part.
        if labels.len() >= 2 && !labels[1..].iter().any(|l| l.contains(&b'.')) {
            // The name as dotted text: `a.b.x.org`; each split into an
            // address turns one dot into `@`.
            let mut text = SmallVec::<[u8; 256]>::new();
            let mut dots = SmallVec::<[usize; 8]>::new();
            for (i, label) in labels.iter().enumerate() {
                if i > 0 {
                    dots.push(text.len());
                    text.push(b'.');
                }
                text.extend_from_slice(label);
            }
            let splits = if labels[0].contains(&b'.') {
                &dots[..1]
            } else {
                &dots[..]
            };
            for &at in splits {
                text[at] = b'@';
                if let Ok(key) = std::str::from_utf8(&text)
                    && let Some(held) = self.mailboxes.get(key)
                {
                    out.extend(held.iter().map(|h| h.cert));
                }
                text[at] = b'.';
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// What entry `key` publishes now: address-bound, domain-bound.
    fn held_by(&self, key: &str) -> (Held1, Held1) {
        let address = self.mailboxes.get(key).cloned().unwrap_or_default();
        let domain = domain_name(split_key(key).1)
            .and_then(|d| self.domains.get(&d))
            .map(|held| {
                held.iter()
                    .filter(|(k, _)| **k == *key)
                    .map(|(_, h)| *h)
                    .collect()
            })
            .unwrap_or_default();
        (address, domain)
    }

    /// Adds one domain-bound certificate at `name`, held by entry `key`.
    fn attach_domain_bound(&mut self, name: NameKey, key: Arc<str>, held: Held) {
        self.expiries.push(Reverse((held.not_after, key.clone())));
        match self.domains.get_mut(name.as_bytes()) {
            Some(list) => list.push((key, held)),
            None => {
                self.counts.count_domain(name.as_bytes(), 1);
                self.domains.insert(name, smallvec::smallvec![(key, held)]);
            }
        }
    }

    /// Adds what `row` publishes at `now` to a state being loaded from
    /// scratch: what [`State::replace_entry`] of the whole entry would
    /// give, without comparing anything. [`State::finish_load`] ends it.
    fn load_row(&mut self, row: &PublishedRow, now: DateTime<Utc>) {
        let Some((binding, held)) = published(row, now) else {
            return;
        };
        let (local, domain) = split_key(&row.key);
        match binding {
            Binding::Address => {
                let Some(local) = local else { return };
                if let Some(set) = self.mailboxes.get_mut(row.key.as_str()) {
                    set.push(held);
                    if let Some((key, _)) = self.mailboxes.get_key_value(row.key.as_str()) {
                        self.expiries.push(Reverse((held.not_after, key.clone())));
                    }
                    return;
                }
                let names = AddressNames::of(local, domain);
                if names.domain().is_none() {
                    return;
                }
                self.counts.count_mailbox(&names, 1);
                let key: Arc<str> = row.key.as_str().into();
                self.expiries.push(Reverse((held.not_after, key.clone())));
                self.mailboxes.insert(key, smallvec::smallvec![held]);
            }
            Binding::Domain => self.load_domain_bound(&row.key, held),
        }
    }

    /// Adds a domain-bound certificate of entry `key`, judged published,
    /// to a state being loaded (the entry's key shared with its mailbox
    /// when it has one).
    fn load_domain_bound(&mut self, key: &str, held: Held) {
        let Some(name) = domain_name(split_key(key).1) else {
            return;
        };
        let key = match self.mailboxes.get_key_value(key) {
            Some((key, _)) => key.clone(),
            None => key.into(),
        };
        self.attach_domain_bound(name, key, held);
    }

    /// Takes out of a state being loaded the mailbox entries whose names
    /// turned out not to be publishable, and their expiries.
    fn drop_unpublishable(&mut self, keys: &[String]) {
        // The expiries of each key's address-bound certificates.
        let mut gone: HashMap<&str, Vec<i64>> = HashMap::default();
        for key in keys {
            if let Some(set) = self.mailboxes.remove(key.as_str()) {
                gone.insert(key, set.iter().map(|h| h.not_after).collect());
            }
        }
        if gone.is_empty() {
            return;
        }
        self.expiries.retain(|Reverse((at, key))| {
            let Some(left) = gone.get_mut(&**key) else {
                return true;
            };
            match left.iter().position(|t| t == at) {
                Some(i) => {
                    left.swap_remove(i);
                    false
                }
                None => true,
            }
        });
    }

    /// Ends a load: each entry's certificates in the order
    /// [`State::replace_entry`] keeps them.
    fn finish_load(&mut self) {
        for set in self.mailboxes.values_mut().filter(|s| s.len() > 1) {
            set.sort_unstable_by_key(order);
        }
        for list in self.domains.values_mut().filter(|l| l.len() > 1) {
            list.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(order(&a.1).cmp(&order(&b.1))));
        }
    }

    /// Replaces what entry `key` publishes with `address` (address-bound)
    /// and `domain` (domain-bound) certificates. Returns whether anything
    /// published changed.
    fn replace_entry(&mut self, key: &str, mut address: Held1, mut domain: Held1) -> bool {
        let (local, domain_text) = split_key(key);
        let names = local.map(|l| AddressNames::of(l, domain_text));
        let zone_name = domain_name(domain_text);
        if names.as_ref().is_none_or(|n| n.domain().is_none()) {
            address.clear();
        }
        if zone_name.is_none() {
            domain.clear();
        }
        for set in [&mut address, &mut domain] {
            set.sort_unstable_by_key(order);
            set.dedup();
        }
        let (old_address, old_domain) = self.held_by(key);
        let same =
            |a: &[Held], b: &[Held]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y));
        if same(&old_address, &address) && same(&old_domain, &domain) {
            // The same certificates, perhaps under new row ids (the entry
            // was saved again): nothing published changes, and cached DER
            // stays valid, but later reads must use the new ids.
            if old_address != address
                && let Some(set) = self.mailboxes.get_mut(key)
            {
                *set = address;
            }
            if old_domain != domain
                && let Some(list) = zone_name.as_ref().and_then(|d| self.domains.get_mut(d))
            {
                let mut fresh = domain.iter();
                for (_, h) in list.iter_mut().filter(|(k, _)| **k == *key) {
                    if let Some(new) = fresh.next() {
                        *h = *new;
                    }
                }
            }
            return false;
        }
        let shared: Arc<str> = match self.mailboxes.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => key.into(),
        };
        if let Some(names) = &names
            && old_address.is_empty() != address.is_empty()
        {
            self.counts
                .count_mailbox(names, if address.is_empty() { -1 } else { 1 });
        }
        for h in address.iter().chain(&domain) {
            self.expiries.push(Reverse((h.not_after, shared.clone())));
        }
        if address.is_empty() {
            self.mailboxes.remove(key);
        } else {
            self.mailboxes.insert(shared.clone(), address);
        }
        if let Some(zone) = &zone_name {
            let was = self.domains.get(zone).is_some_and(|l| !l.is_empty());
            let list = self.domains.entry(zone.clone()).or_default();
            list.retain(|(k, _)| **k != *key);
            list.extend(domain.iter().map(|h| (shared.clone(), *h)));
            list.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(order(&a.1).cmp(&order(&b.1))));
            let is = !list.is_empty();
            if !is {
                self.domains.remove(zone);
            }
            if was != is {
                self.counts
                    .count_domain(zone.as_bytes(), if is { 1 } else { -1 });
            }
            self.forget(zone.as_bytes());
        }
        for name in names.iter().flat_map(AddressNames::iter) {
            self.forget(name);
        }
        self.trim_expiries();
        true
    }

    /// Drops certificates whose validity ended before `now` (seconds since
    /// the epoch). Returns whether anything published changed.
    fn expire(&mut self, now: i64) -> bool {
        let mut changed = false;
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at >= now {
                break;
            }
            let Some(Reverse((_, key))) = self.expiries.pop() else {
                break;
            };
            let (address, domain) = self.held_by(&key);
            if address.is_empty() && domain.is_empty() {
                continue;
            }
            let keep =
                |set: Held1| -> Held1 { set.into_iter().filter(|h| h.not_after >= now).collect() };
            changed |= self.replace_entry(&key, keep(address), keep(domain));
        }
        changed
    }

    /// Rebuilds the expiry heap when stale items (from entries changed or
    /// removed since) outnumber the live ones.
    fn trim_expiries(&mut self) {
        // At least one live item per entry and name: a cheap first test.
        if self.expiries.len() <= 4 * (self.mailboxes.len() + self.domains.len()) + 1024 {
            return;
        }
        let live = self.mailboxes.values().map(|s| s.len()).sum::<usize>()
            + self.domains.values().map(|l| l.len()).sum::<usize>();
        if self.expiries.len() <= 2 * live + 1024 {
            return;
        }
        let mut items = Vec::with_capacity(live);
        for (key, set) in &self.mailboxes {
            items.extend(set.iter().map(|h| Reverse((h.not_after, key.clone()))));
        }
        for list in self.domains.values() {
            items.extend(list.iter().map(|(k, h)| Reverse((h.not_after, k.clone()))));
        }
        self.expiries = BinaryHeap::from(items);
    }

    /// Drops the cached DER of `name`.
    fn forget(&mut self, name: &[u8]) {
        if let Some(cached) = self.cache.remove(name) {
            self.cached -= charge(&cached.der);
        }
    }

    /// Caches the DER of `name` if it still publishes exactly `refs`, then
    /// evicts names not asked for since the hand last passed them until the
    /// cache is within its budget.
    fn remember(&mut self, name: &[u8], refs: &CertRefs, certs: PublishedCerts) {
        if self.cache.contains_key(name) || *self.refs_at(name) != **refs {
            return;
        }
        self.cached += charge(&certs);
        let name = NameKey(name.into());
        self.cache.insert(
            name.clone(),
            Cached {
                refs: refs.clone(),
                der: certs,
                used: AtomicBool::new(false),
            },
        );
        self.hand.push_back(name);
        // Each name is passed at most twice: once to clear its bit.
        let mut steps = 2 * self.hand.len();
        while self.cached > self.budget && steps > 0 {
            steps -= 1;
            let Some(oldest) = self.hand.pop_front() else {
                break;
            };
            let Some(cached) = self.cache.get(&oldest) else {
                continue;
            };
            if cached.used.swap(false, Ordering::Relaxed) {
                self.hand.push_back(oldest);
            } else {
                self.forget(oldest.as_bytes());
            }
        }
        // Names forgotten by changes stay in the hand until it passes them.
        if self.hand.len() > 2 * self.cache.len() + 64 {
            let cache = &self.cache;
            self.hand.retain(|n| cache.contains_key(n));
        }
    }
}

/// The order an entry's certificates are kept in.
fn order(h: &Held) -> (u64, i64, i64) {
    (h.cert.digest, h.not_after, h.cert.id)
}

/// Adds `delta` to the count of `name`, dropping it at zero; true when it
/// went from or to zero.
fn bump_name(map: &mut HashMap<NameKey, u32>, name: &[u8], delta: i32) -> bool {
    // Most calls count a name already held up or down: one lookup.
    if let Some(count) = map.get_mut(name) {
        *count = count.saturating_add_signed(delta);
        if *count > 0 {
            return false;
        }
        map.remove(name);
        return true;
    }
    let after = 0u32.saturating_add_signed(delta);
    if after > 0 {
        map.insert(NameKey(name.into()), after);
    }
    after > 0
}

/// [`bump_name`] for a hashed name.
fn bump_hash(map: &mut HashMap<u64, u32>, hash: u64, delta: i32) {
    let count = map.entry(hash).or_default();
    *count = count.saturating_add_signed(delta);
    if *count == 0 {
        map.remove(&hash);
    }
}

async fn run(weak: Weak<Shared>, mut writes: watch::Receiver<ChangeSeq>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let publication = Publication { shared };
        if let Err(e) = publication.catch_up().await {
            warn!(error = %e, "publication catch-up failed; retrying");
        }
        if publication.save_due() {
            publication.save_logged().await;
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
    use std::collections::{BTreeMap, BTreeSet};

    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::domain::DirectoryAddress;

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

    fn held(id: i64) -> Held {
        Held {
            cert: CertRef {
                id,
                digest: id as u64,
            },
            not_after: i64::MAX,
        }
    }

    fn set(ids: &[i64]) -> Held1 {
        ids.iter().map(|&id| held(id)).collect()
    }

    /// What `name` holds, as ids, "ancestor" or "absent".
    fn at(s: &State, name: &NameKey) -> String {
        let refs = s.refs_at(name.as_bytes());
        if !refs.is_empty() {
            format!("{:?}", refs.iter().map(|r| r.id).collect::<Vec<_>>())
        } else if s.counts.has_below(name.as_bytes()) {
            "ancestor".into()
        } else {
            "absent".into()
        }
    }

    fn at_text(s: &State, name: &str) -> String {
        at(s, &key(name))
    }

    #[test]
    fn owners_union_and_ancestors_count() {
        let mut s = State::default();
        assert!(s.replace_entry("a@b.x.org", set(&[1]), set(&[])));
        assert!(s.replace_entry("a.b@x.org", set(&[2]), set(&[])));
        assert!(s.replace_entry("b.x.org", set(&[]), set(&[3])));
        assert!(!s.replace_entry("b.x.org", set(&[]), set(&[3])));
        assert_eq!(at_text(&s, "a.b.x.org"), "[1, 2]");
        let single = NameKey::from_labels([&b"a.b"[..], b"x", b"org"]).unwrap();
        assert_eq!(at(&s, &single), "[2]", "the local part as one label");
        assert_eq!(at_text(&s, "b.x.org"), "[3]");
        assert_eq!(at_text(&s, "x.org"), "ancestor");
        assert_eq!(at_text(&s, "org"), "ancestor");
        assert_eq!(at_text(&s, "c.x.org"), "absent");
        assert_eq!(at_text(&s, "a.x.org"), "absent");
        assert!(s.replace_entry("a@b.x.org", set(&[]), set(&[])));
        assert_eq!(at_text(&s, "a.b.x.org"), "[2]");
        assert!(s.replace_entry("a.b@x.org", set(&[]), set(&[])));
        assert_eq!(at_text(&s, "a.b.x.org"), "absent");
        assert_eq!(at_text(&s, "x.org"), "ancestor", "b.x.org is below it");
        assert!(s.replace_entry("b.x.org", set(&[]), set(&[])));
        assert_eq!(at_text(&s, "x.org"), "absent");
        assert!(s.mailboxes.is_empty() && s.domains.is_empty());
        assert!(s.counts.is_empty());
    }

    #[test]
    fn names_that_cannot_be_published_are_not() {
        let mut s = State::default();
        // A `*` label would read as a wildcard: only the single-label form.
        assert!(s.replace_entry("*.bob@x.org", set(&[1]), set(&[])));
        assert_eq!(at_text(&s, "bob.x.org"), "absent");
        let single = NameKey::from_labels([&b"*.bob"[..], b"x", b"org"]).unwrap();
        assert_eq!(at(&s, &single), "[1]");
        // The local part as one label would be over 63 octets: only the
        // dotted form, and its ancestor within the local part.
        let local = format!("{}.{}", "a".repeat(40), "b".repeat(40));
        assert!(s.replace_entry(&format!("{local}@y.org"), set(&[2]), set(&[])));
        assert_eq!(at_text(&s, &format!("{local}.y.org")), "[2]");
        assert_eq!(
            at_text(&s, &format!("{}.y.org", "b".repeat(40))),
            "ancestor"
        );
        // Nothing at all: nothing counted.
        assert!(!s.replace_entry(&format!("{}@z.org", "c".repeat(64)), set(&[3]), set(&[])));
        assert_eq!(at_text(&s, "z.org"), "absent");
        assert_eq!(at_text(&s, "*.x.org"), "absent");
    }

    /// The naming rules of the module documentation, applied naively to
    /// every entry: each owner name with its certificates, and every
    /// proper ancestor of an owner name.
    fn model(
        entries: &BTreeMap<String, (Vec<i64>, Vec<i64>)>,
    ) -> (BTreeMap<NameKey, BTreeSet<i64>>, BTreeSet<NameKey>) {
        let mut owners: BTreeMap<NameKey, BTreeSet<i64>> = BTreeMap::new();
        for (k, (address, domain)) in entries {
            let (local, dom) = match k.rsplit_once('@') {
                Some((l, d)) => (Some(l), d),
                None => (None, k.as_str()),
            };
            let ok = |n: Option<NameKey>| n.filter(|n| n.labels().all(|l| l != b"*"));
            let mut names = Vec::new();
            if let Some(local) = local {
                let dotted = format!("{local}.{dom}");
                names.extend(ok(NameKey::from_labels(
                    dotted.split('.').map(str::as_bytes),
                )));
                if local.contains('.') {
                    let labels = std::iter::once(local).chain(dom.split('.'));
                    names.extend(ok(NameKey::from_labels(labels.map(str::as_bytes))));
                }
            }
            for name in names {
                owners.entry(name).or_default().extend(address);
            }
            if let Some(name) = ok(NameKey::from_labels(dom.split('.').map(str::as_bytes))) {
                owners.entry(name).or_default().extend(domain);
            }
        }
        owners.retain(|_, certs| !certs.is_empty());
        let ancestors = owners
            .keys()
            .flat_map(|n| suffixes(n.as_bytes()).skip(1).map(|s| NameKey(s.into())))
            .collect();
        (owners, ancestors)
    }

    #[test]
    fn lookups_agree_with_the_naming_rules_through_random_changes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let locals = ["a", "b", "c", "a.b", "b.c", "a.b.c", "*.a", "c.*", "x"];
        let domains = [
            "x.org",
            "b.x.org",
            "a.b.x.org",
            "c.x.org",
            "y.org",
            "b.c.x.org",
        ];
        let mut entries: BTreeMap<String, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
        let mut s = State::default();
        // Every name the model could ever hold, and their ancestors.
        let mut universe: BTreeSet<NameKey> = BTreeSet::new();
        for _ in 0..2000 {
            let domain = domains[rng.random_range(0..domains.len())];
            let k = if rng.random_bool(0.2) {
                domain.to_owned()
            } else {
                format!("{}@{domain}", locals[rng.random_range(0..locals.len())])
            };
            let ids = |rng: &mut rand_chacha::ChaCha8Rng, p: f64| -> Vec<i64> {
                (1..4).filter(|_| rng.random_bool(p)).collect()
            };
            let (address, domain_bound) = if rng.random_bool(0.3) {
                (Vec::new(), Vec::new())
            } else {
                (ids(&mut rng, 0.5), ids(&mut rng, 0.2))
            };
            s.replace_entry(&k, set(&address), set(&domain_bound));
            entries.insert(k, (address, domain_bound));
            let (owners, ancestors) = model(&entries);
            universe.extend(owners.keys().cloned());
            universe.extend(ancestors.iter().cloned());
            for name in &universe {
                let want = match owners.get(name) {
                    Some(certs) => format!("{:?}", certs.iter().collect::<Vec<_>>()),
                    None if ancestors.contains(name) => "ancestor".into(),
                    None => "absent".into(),
                };
                assert_eq!(at(&s, name), want, "{name} after {entries:?}");
            }
        }
        // Removing everything leaves nothing behind.
        for k in entries.keys() {
            s.replace_entry(k, set(&[]), set(&[]));
        }
        assert!(s.mailboxes.is_empty() && s.domains.is_empty());
        assert!(s.counts.is_empty());
    }

    fn row(address: &str, id: i64, binding: Binding, trust: TrustStatus) -> PublishedRow {
        let address: DirectoryAddress = address.parse().unwrap();
        PublishedRow {
            key: address.key(),
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
            .mailboxes
            .iter()
            .map(|(k, set)| format!("{k} {set:?}"))
            .collect();
        out.extend(s.domains.iter().map(|(n, l)| format!("{n} {l:?}")));
        out.extend(
            s.counts
                .mailboxes_at
                .iter()
                .map(|(n, c)| format!("at {n}={c}")),
        );
        out.extend(s.counts.below.iter().map(|(n, c)| format!("below {n}={c}")));
        let mut local: Vec<u32> = s.counts.local_below.values().copied().collect();
        local.sort();
        out.push(format!("local {local:?}"));
        out.push(format!("expiries {}", s.expiries.len()));
        out.sort();
        out
    }

    /// Rows of entries whose names overlap, a certificate not trusted, and
    /// an entry's second certificate not next to its first.
    fn sample_rows() -> Vec<PublishedRow> {
        use Binding::{Address, Domain};
        vec![
            row("john.doe@x.org", 1, Address, TrustStatus::Trusted),
            row("john@doe.x.org", 2, Address, TrustStatus::Trusted),
            row("doe.x.org", 3, Domain, TrustStatus::Trusted),
            row("ann@y.org", 4, Address, TrustStatus::Untrusted),
            row("John.Doe@x.org", 5, Address, TrustStatus::Trusted),
            row("ann@y.org", 6, Address, TrustStatus::Trusted),
            row("bob@y.org", 7, Domain, TrustStatus::Trusted),
            row("y.org", 8, Domain, TrustStatus::Trusted),
        ]
    }

    /// A state loaded from `rows` at `now`, as the start-up scan loads it.
    fn loaded(rows: &[PublishedRow], now: DateTime<Utc>) -> State {
        let mut s = State::default();
        for r in rows {
            s.load_row(r, now);
        }
        s.finish_load();
        s
    }

    #[test]
    fn loading_rows_gives_the_state_of_replacing_whole_entries() {
        use Binding::{Address, Domain};
        let rows = sample_rows();
        let now = Utc::now();
        let loaded = loaded(&rows, now);

        let mut grouped: BTreeMap<String, (Held1, Held1)> = BTreeMap::new();
        for r in &rows {
            let (address, domain) = grouped.entry(r.key.clone()).or_default();
            if let Some((binding, h)) = published(r, now) {
                match binding {
                    Address => address.push(h),
                    Domain => domain.push(h),
                }
            }
        }
        let mut replaced = State::default();
        for (key, (address, domain)) in grouped {
            replaced.replace_entry(&key, address, domain);
        }
        assert_eq!(contents(&loaded), contents(&replaced));
        assert_eq!(at_text(&loaded, "john.doe.x.org"), "[1, 2, 5]");
        assert_eq!(at_text(&loaded, "y.org"), "[7, 8]");
    }

    #[test]
    fn a_saved_view_loads_back_as_the_same_state() {
        let now = Utc::now();
        let mut rows = sample_rows();
        rows.push(row("eve@z.org", 9, Binding::Address, TrustStatus::Trusted));
        rows.push(row(
            "john@doe.x.org",
            10,
            Binding::Address,
            TrustStatus::Trusted,
        ));
        rows[1].not_after = now + chrono::Duration::days(3);
        rows[8].not_after = now + chrono::Duration::seconds(30);
        let load = loaded;
        let original = load(&rows, now);
        let header = snapshot::Header {
            applied: ChangeSeq(9),
            change_key: "eve@z.org".into(),
            schema: "schema".into(),
        };
        let saved = original.saved_rows();
        assert_eq!(saved.len(), 9, "all but the untrusted certificate");
        let bytes = snapshot::encode(&header, saved.iter().map(saved_row));
        let (back_header, back) = snapshot::decode(&bytes).unwrap();
        assert_eq!(back_header, header);
        assert_eq!(contents(&load(&back, now)), contents(&original));
        assert_eq!(
            contents(&from_saved(&bytes, now).unwrap()),
            contents(&original)
        );
        // Loaded later, what expired meanwhile is left out, as a scan would.
        let later = now + chrono::Duration::minutes(1);
        let reloaded = from_saved(&bytes, later).unwrap();
        assert_eq!(contents(&reloaded), contents(&load(&rows, later)));
        assert_eq!(at_text(&reloaded, "eve.z.org"), "absent");
        assert_eq!(at_text(&reloaded, "john.doe.x.org"), "[1, 2, 5, 10]");
    }

    /// Loads a saved view from `bytes` as a start does.
    fn from_saved(bytes: &[u8], now: DateTime<Utc>) -> Result<State, String> {
        let view = snapshot::SavedView::open(bytes, bytes.len() as u64)?;
        load_saved_rows(view, now, usize::MAX)
    }

    fn saved_file(rows: &[PublishedRow]) -> Vec<u8> {
        let header = snapshot::Header {
            applied: ChangeSeq(1),
            change_key: "k".into(),
            schema: "schema".into(),
        };
        let saved = rows.iter().map(|r| snapshot::SavedRow {
            key: &r.key,
            binding: r.binding,
            id: r.id,
            digest: r.fingerprint_prefix,
            not_after: r.not_after.timestamp(),
        });
        snapshot::encode(&header, saved)
    }

    #[test]
    fn a_saved_view_is_loaded_as_its_rows_would_be() {
        use Binding::{Address, Domain};
        let now = Utc::now();
        let trusted = |key: &str, id, binding| row(key, id, binding, TrustStatus::Trusted);
        // Entries with several certificates, domain-bound ones, an address
        // whose names cannot be published (`*` as a label), and more keys
        // than one batch to the counting thread holds.
        let mut rows = vec![
            trusted("*@x.org", 1, Address),
            trusted("*@x.org", 2, Address),
            trusted("a.b@x.org", 3, Address),
            trusted("a.b@x.org", 4, Address),
            trusted("b@x.org", 5, Address),
        ];
        rows.extend((0..5000).map(|i| trusted(&format!("p{i}.q{}@y.org", i % 7), 10 + i, Address)));
        rows.push(trusted("x.org", 6, Domain));
        rows.push(trusted("*@x.org", 7, Domain));
        rows.push(trusted("sub.y.org", 8, Domain));
        let state = from_saved(&saved_file(&rows), now).unwrap();
        assert_eq!(contents(&state), contents(&loaded(&rows, now)));
        assert_eq!(at_text(&state, "a.b.x.org"), "[3, 4]");
        assert_eq!(at_text(&state, "x.org"), "[6, 7]");
        assert_eq!(at_text(&state, "q3.y.org"), "ancestor");
        assert_eq!(at_text(&state, "p3.q3.y.org"), "[13]");
        assert_eq!(at_text(&state, "y.org"), "ancestor");
    }

    #[test]
    fn a_saved_view_with_an_entrys_rows_apart_is_refused() {
        use Binding::Address;
        let rows = [
            row("a@x.org", 1, Address, TrustStatus::Trusted),
            row("b@x.org", 2, Address, TrustStatus::Trusted),
            row("a@x.org", 3, Address, TrustStatus::Trusted),
        ];
        let err = from_saved(&saved_file(&rows), Utc::now()).err().unwrap();
        assert!(
            err.contains("the rows of a@x.org are not together"),
            "{err}"
        );
        // A damaged file is refused however far the load got.
        let mut bytes = saved_file(&rows[..2]);
        let at = bytes.len() - 40;
        bytes[at] ^= 1;
        let err = from_saved(&bytes, Utc::now()).err().unwrap();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn the_cache_keeps_names_asked_for_and_stays_within_its_budget() {
        let mut s = State {
            budget: 3 * (100 + 32 + 64),
            ..State::default()
        };
        let names: Vec<String> = (0..6).map(|i| format!("n{i}.x.org")).collect();
        for (i, n) in names.iter().enumerate() {
            s.replace_entry(n, set(&[]), set(&[i as i64]));
        }
        let remember = |s: &mut State, n: &str| {
            let name = key(n);
            let refs: CertRefs = s.refs_at(name.as_bytes()).into();
            let der: Arc<[u8]> = vec![0u8; 100].into();
            s.remember(name.as_bytes(), &refs, vec![der].into());
        };
        for n in &names[..3] {
            remember(&mut s, n);
        }
        assert_eq!(s.cached, s.budget);
        // n0 is asked for again; the next name pushes out n1, not n0.
        s.cache[key("n0.x.org").as_bytes()]
            .used
            .store(true, Ordering::Relaxed);
        remember(&mut s, &names[3]);
        let held = |s: &State, n: &str| s.cache.contains_key(key(n).as_bytes());
        assert!(held(&s, "n0.x.org") && !held(&s, "n1.x.org") && held(&s, "n3.x.org"));
        assert!(s.cached <= s.budget);
        // A change of what a name publishes drops its cached DER.
        s.replace_entry(&names[0], set(&[]), set(&[9]));
        assert!(!held(&s, "n0.x.org"));
        assert_eq!(s.cached, 2 * (100 + 32 + 64));
        // DER read before a change is not cached after it.
        let stale: CertRefs = vec![held_ref(1)].into();
        s.remember(
            key("n1.x.org").as_bytes(),
            &stale,
            vec![Arc::from(&b"x"[..])].into(),
        );
        assert!(held(&s, "n1.x.org"), "n1 still publishes exactly that");
        s.remember(
            key("n4.x.org").as_bytes(),
            &stale,
            vec![Arc::from(&b"x"[..])].into(),
        );
        assert!(!held(&s, "n4.x.org"), "n4 publishes another certificate");
    }

    fn held_ref(id: i64) -> CertRef {
        held(id).cert
    }

    #[test]
    fn an_entry_saved_again_keeps_what_it_publishes_under_new_ids() {
        let mut s = State::default();
        assert!(s.replace_entry("a@x.org", set(&[1]), set(&[])));
        let name = key("a.x.org");
        let refs: CertRefs = s.refs_at(name.as_bytes()).into();
        s.remember(name.as_bytes(), &refs, vec![Arc::from(&b"1"[..])].into());
        let moved = Held {
            cert: CertRef {
                id: 77,
                ..held(1).cert
            },
            ..held(1)
        };
        assert!(
            !s.replace_entry("a@x.org", smallvec::smallvec![moved], set(&[])),
            "nothing published changed"
        );
        assert_eq!(at_text(&s, "a.x.org"), "[77]");
        assert!(
            s.cache.contains_key(name.as_bytes()),
            "the cached DER is still the certificate's"
        );
    }

    #[test]
    fn expired_certificates_are_dropped_and_the_heap_stays_bounded() {
        let mut s = State::default();
        let until = |id: i64, not_after: i64| Held {
            not_after,
            ..held(id)
        };
        assert!(s.replace_entry(
            "a@x.org",
            smallvec::smallvec![until(1, 100), until(2, 300)],
            set(&[])
        ));
        assert!(s.replace_entry("x.org", set(&[]), smallvec::smallvec![until(3, 200)]));
        assert!(!s.expire(100));
        assert!(s.expire(150));
        assert_eq!(at_text(&s, "a.x.org"), "[2]");
        assert!(s.expire(250));
        assert_eq!(at_text(&s, "x.org"), "ancestor");
        assert!(s.expire(301));
        assert_eq!(at_text(&s, "x.org"), "absent");
        assert!(s.mailboxes.is_empty() && s.counts.below.is_empty());
        // Rewriting one entry again and again does not grow the heap for good.
        for i in 0..10_000 {
            s.replace_entry("b@x.org", set(&[i % 2 + 1]), set(&[]));
        }
        assert!(s.expiries.len() < 2 * 1024 + 4, "{}", s.expiries.len());
    }
}
