//! The in-memory view of the policies: which subjects are listed (for DNS,
//! answered without touching the database) and the most recent events
//! (for the feeds, so a thousand subscribers cost one read). A derived
//! view like the search index: it records the last feed position it
//! applied, is loaded from the database at start, and follows new events
//! — woken by this process's writes, and by a timer for writes of other
//! processes sharing the database (federation pulls included).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tracing::warn;

use super::{FeedEvent, PolicyOptions};
use crate::core::{Directory, Inner, Result};
use crate::domain::{PolicyId, PolicyKind};

/// How often to look for events nobody told us about.
const POLL: Duration = Duration::from_millis(250);
/// Events read per round.
const PAGE: u64 = 1000;

/// What a DNS name below a policy zone means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    /// No policy by that name here.
    UnknownPolicy,
    /// The name is not a key this zone can hold (not base32 of a SHA-256,
    /// nor a domain).
    Malformed,
    /// `test.<policy>`: listed, as RFC 5782 asks of every list.
    Test,
    /// Not listed (`invalid.<policy>` included): NXDOMAIN.
    NotListed,
    /// The policy's own name: exists, holds no records.
    PolicyApex,
    /// Listed now.
    Listed {
        /// The policy is flagged for equivocation.
        flagged: bool,
        kind: PolicyKind,
        reason: String,
        expires: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone)]
struct Listed {
    reason: String,
    expires: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct PolicyMeta {
    kind: PolicyKind,
    flagged: bool,
}

#[derive(Debug, Default)]
struct State {
    policies: HashMap<String, PolicyMeta>,
    /// (policy, DNS key) → listing in force unless expired.
    listed: HashMap<(String, String), Listed>,
    recent: VecDeque<Arc<FeedEvent>>,
    /// Set once loaded: `recent` holds every event after this position.
    complete_after: Option<u64>,
}

/// The policy state every `Directory` clone shares.
pub struct PolicyHub {
    state: RwLock<State>,
    applied: watch::Sender<u64>,
    wake: Notify,
    options: RwLock<Arc<PolicyOptions>>,
    catching_up: tokio::sync::Mutex<()>,
    pub(super) webhooks: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
    pub(super) webhooks_changed: Notify,
    /// Delivery outcomes, in order, for the one task that writes them.
    pub(super) webhook_writes: tokio::sync::mpsc::UnboundedSender<crate::storage::WebhookWrite>,
    pub(super) webhook_writes_rx:
        Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<crate::storage::WebhookWrite>>>,
}

impl Default for PolicyHub {
    fn default() -> Self {
        let (webhook_writes, rx) = tokio::sync::mpsc::unbounded_channel();
        PolicyHub {
            webhook_writes,
            webhook_writes_rx: Mutex::new(Some(rx)),
            state: RwLock::new(State::default()),
            applied: watch::Sender::new(0),
            wake: Notify::new(),
            options: RwLock::new(Arc::new(PolicyOptions::default())),
            catching_up: tokio::sync::Mutex::new(()),
            webhooks: Mutex::new(HashMap::new()),
            webhooks_changed: Notify::new(),
        }
    }
}

fn is_hash_label(key: &str) -> bool {
    key.len() == 52
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

impl PolicyHub {
    pub(super) fn set_options(&self, o: PolicyOptions) {
        *self.options.write().expect("options lock") = Arc::new(o);
    }

    pub(super) fn options(&self) -> Arc<PolicyOptions> {
        self.options.read().expect("options lock").clone()
    }

    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    /// The last feed position applied to the view.
    pub(super) fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    pub(super) async fn wait_applied(&self, directory: &Directory, seq: u64) {
        if self
            .state
            .read()
            .expect("policy view")
            .complete_after
            .is_none()
        {
            return; // not following (a command, not a server)
        }
        let _ = directory.policy_catch_up().await;
        let mut rx = self.applied.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|a| *a >= seq)).await;
    }

    pub(super) async fn wait_past(&self, after: u64, timeout: Duration) -> u64 {
        let mut rx = self.applied.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|a| *a > after)).await;
        *rx.borrow()
    }

    /// Events after `after` from memory, when memory holds all of them.
    pub(super) fn recent_after(
        &self,
        after: u64,
        limit: usize,
        policy: Option<&PolicyId>,
    ) -> Option<Vec<Arc<FeedEvent>>> {
        let s = self.state.read().expect("policy view");
        if after < s.complete_after? {
            return None;
        }
        let start = s.recent.partition_point(|e| e.seq <= after);
        Some(
            s.recent
                .iter()
                .skip(start)
                .filter(|e| policy.is_none_or(|p| &e.policy == p))
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    pub(super) fn answer(&self, policy: &str, key: &str, now: DateTime<Utc>) -> PolicyAnswer {
        let s = self.state.read().expect("policy view");
        let Some(meta) = s.policies.get(policy) else {
            return PolicyAnswer::UnknownPolicy;
        };
        match key {
            "" => return PolicyAnswer::PolicyApex,
            "test" => return PolicyAnswer::Test,
            "invalid" => return PolicyAnswer::NotListed,
            _ => {}
        }
        if !is_hash_label(key) && key.parse::<crate::domain::DomainName>().is_err() {
            return PolicyAnswer::Malformed;
        }
        match s.listed.get(&(policy.to_owned(), key.to_owned())) {
            Some(l) if l.expires.is_none_or(|e| e > now) => PolicyAnswer::Listed {
                flagged: meta.flagged,
                kind: meta.kind,
                reason: l.reason.clone(),
                expires: l.expires,
            },
            _ => PolicyAnswer::NotListed,
        }
    }

    fn apply(&self, events: Vec<FeedEvent>, buffer: usize) {
        let mut s = self.state.write().expect("policy view");
        let mut last = None;
        for e in events {
            let id = e.policy.as_str().to_owned();
            match (e.op, e.applied) {
                (_, false) => {
                    if let Some(m) = s.policies.get_mut(&id) {
                        m.flagged = true;
                    }
                }
                ("create", true) => {
                    let kind = e
                        .kind
                        .and_then(|k| k.parse().ok())
                        .unwrap_or(PolicyKind::DenyList);
                    s.policies.entry(id).or_insert(PolicyMeta {
                        kind,
                        flagged: false,
                    });
                }
                (op, true) => {
                    if let Some(key) = e.subject.as_deref().and_then(dns_key) {
                        if op == "list" {
                            s.listed.insert(
                                (id, key),
                                Listed {
                                    reason: e.reason.clone().unwrap_or_default(),
                                    expires: e.expires,
                                },
                            );
                        } else {
                            s.listed.remove(&(id, key));
                        }
                    }
                }
            }
            last = Some(e.seq);
            s.recent.push_back(Arc::new(e));
        }
        while s.recent.len() > buffer.max(1) {
            if let Some(gone) = s.recent.pop_front() {
                s.complete_after = s.complete_after.map(|c| c.max(gone.seq));
            }
        }
        drop(s);
        if let Some(seq) = last {
            self.applied.send_if_modified(|a| {
                let newer = seq > *a;
                if newer {
                    *a = seq;
                }
                newer
            });
        }
    }
}

fn dns_key(subject: &str) -> Option<String> {
    subject
        .parse::<crate::domain::Subject>()
        .ok()
        .map(|s| s.dns_key())
}

impl Directory {
    /// Applies every event after the view's position; returns how many.
    pub(super) async fn policy_catch_up(&self) -> Result<usize> {
        let hub = self.policy_hub();
        let _one = hub.catching_up.lock().await;
        let buffer = hub.options().feed_buffer;
        let mut total = 0;
        loop {
            let after = hub.applied();
            let rows = self.inner.store.policy_feed(after, PAGE, None).await?;
            if rows.is_empty() {
                return Ok(total);
            }
            total += rows.len();
            let events = rows
                .iter()
                .map(FeedEvent::from_row)
                .collect::<Result<Vec<_>>>()?;
            hub.apply(events, buffer);
        }
    }
}

/// Loads the view from the database and starts following the feed.
pub(super) async fn start(directory: &Directory) -> Result<()> {
    let hub = directory.policy_hub();
    {
        // The head first, then the state: the state then reflects at least
        // the head, and replaying later events in order changes nothing
        // they did not change.
        let head = directory.inner.store.policy_feed_head().await?;
        let policies = directory.inner.store.policies().await?;
        let listed = directory.inner.store.policy_listed(None).await?;
        let mut s = hub.state.write().expect("policy view");
        s.policies = policies
            .into_iter()
            .map(|p| {
                (
                    p.id.as_str().to_owned(),
                    PolicyMeta {
                        kind: p.kind,
                        flagged: p.flagged,
                    },
                )
            })
            .collect();
        s.listed = listed
            .into_iter()
            .map(|(p, key, l)| {
                (
                    (p.as_str().to_owned(), key),
                    Listed {
                        reason: l.reason,
                        expires: l.expires,
                    },
                )
            })
            .collect();
        s.recent.clear();
        s.complete_after = Some(head);
        drop(s);
        hub.applied.send_replace(head);
    }
    let weak = Arc::downgrade(&directory.inner);
    tokio::spawn(follow(weak));
    Ok(())
}

async fn follow(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let directory = Directory { inner };
        if let Err(e) = directory.policy_catch_up().await {
            warn!(error = %e, "policy view catch-up failed; retrying");
        }
        let mut wrote = directory.inner.wrote.subscribe();
        let inner = directory.inner.clone();
        drop(directory);
        tokio::select! {
            _ = inner.policies.wake.notified() => {}
            _ = wrote.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
