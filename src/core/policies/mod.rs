//! Fair-play policies in the core: submitting signed events (any node
//! takes them; the owner's signature is what authorises them), the state
//! derived from them, checks with the signed event as evidence, the feeds
//! (polling, server-sent events, webhooks) and the DNS view.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | submit, read, check; the options and the hub in `Inner` |
//! | `view.rs` | the in-memory view (listings for DNS, recent events for feeds) and the task that keeps it in step |
//! | `webhooks.rs` | webhook subscriptions and their delivery loops |
//!
//! Events submitted here are published in this node's federation log by
//! the publisher (change kind `policy-event`), so they reach the root with
//! the owner's signature intact; events pulled from children are relayed
//! upward like every other record.

mod view;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CoreError, Directory, Result};
use crate::domain::{Listing, NodeId, PolicyId, PolicyKind, PolicyOp, Subject};
use crate::policy::{EventError, SignedEvent};
use crate::storage::{PolicyEventRow, PolicyOutcome, PolicyRow, PolicyWrite};

pub use crate::storage::{DeadLetterRow, WebhookRow};
pub use view::{PolicyAnswer, PolicyHub};
pub use webhooks::WebhookView;

/// The most events one submission may carry.
pub const MAX_SUBMIT_EVENTS: usize = 1000;

/// How the policy feeds deliver. Built by the application from its
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Tries of one event before a webhook dead-letters it and moves on.
    pub webhook_max_attempts: u32,
    /// The wait after the first failed try; doubled after each further one.
    pub webhook_backoff: Duration,
    /// The longest wait between tries.
    pub webhook_backoff_max: Duration,
    /// How long one delivery may take.
    pub webhook_timeout: Duration,
    /// Recent events kept in memory for the feeds.
    pub feed_buffer: usize,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions {
            webhook_max_attempts: 8,
            webhook_backoff: Duration::from_secs(1),
            webhook_backoff_max: Duration::from_secs(300),
            webhook_timeout: Duration::from_secs(10),
            feed_buffer: 4096,
        }
    }
}

/// An accepted event as the feeds, checks and webhooks show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedEvent {
    /// Its place in the all-policies feed.
    pub seq: u64,
    pub policy: PolicyId,
    pub version: u64,
    /// `create`, `list`, `delist`.
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    /// For create: deny-list or allow-list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When the owner signed it.
    pub time: DateTime<Utc>,
    /// The owner key (hex).
    pub owner: String,
    /// SHA-256 of the signed event (hex).
    pub hash: String,
    /// The previous event's hash (hex).
    pub prev: String,
    /// False: kept as evidence that the owner signed two events for this
    /// version; the policy is flagged.
    pub applied: bool,
    /// The child node it came through; absent when submitted here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// When this node accepted it.
    pub accepted_at: DateTime<Utc>,
    /// The owner-signed event, base64: the evidence anyone can verify.
    pub event: String,
    /// This event as JSON, made once for every feed that sends it.
    #[serde(skip)]
    json: std::sync::OnceLock<String>,
}

impl FeedEvent {
    fn from_row(row: &PolicyEventRow) -> Result<FeedEvent> {
        use base64::Engine;
        let signed = SignedEvent::decode_stored(&row.event)
            .map_err(|e| CoreError::Internal(format!("stored policy event: {e}")))?;
        let e = &signed.event;
        let (subject, reason, expires, kind, title) = match &e.op {
            PolicyOp::Create { kind, title, .. } => {
                (None, None, None, Some(kind.as_str()), Some(title.clone()))
            }
            PolicyOp::List {
                subject,
                reason,
                expires,
            } => (
                Some(subject.to_string()),
                Some(reason.clone()),
                *expires,
                None,
                None,
            ),
            PolicyOp::Delist { subject, reason } => (
                Some(subject.to_string()),
                Some(reason.clone()),
                None,
                None,
                None,
            ),
        };
        Ok(FeedEvent {
            seq: row.seq,
            policy: row.policy.clone(),
            version: row.version,
            op: e.op.name(),
            subject,
            reason,
            expires,
            kind,
            title,
            time: e.time,
            owner: e.owner.to_hex(),
            hash: hex::encode(row.hash),
            prev: e.prev.to_hex(),
            applied: row.applied,
            via: row.via.as_ref().map(|v| v.0.clone()),
            accepted_at: row.at,
            event: base64::engine::general_purpose::STANDARD.encode(&row.event),
            json: std::sync::OnceLock::new(),
        })
    }

    /// The JSON the feeds and webhooks carry (the shape of the API's
    /// `PolicyEventDto`), serialised once.
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(self).unwrap_or_default())
    }
}

/// A policy as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub id: PolicyId,
    pub owner: String,
    pub kind: PolicyKind,
    pub title: String,
    pub description: String,
    pub version: u64,
    /// The head event's hash (hex).
    pub head: String,
    pub flagged: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PolicyRow> for PolicyInfo {
    fn from(r: PolicyRow) -> Self {
        PolicyInfo {
            id: r.id,
            owner: r.owner,
            kind: r.kind,
            title: r.title,
            description: r.description,
            version: r.version,
            head: hex::encode(r.head),
            flagged: r.flagged,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What submitting one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitResult {
    pub policy: PolicyId,
    pub version: u64,
    /// Hex.
    pub hash: String,
    /// `applied`, `duplicate` or `equivocation`.
    pub outcome: &'static str,
}

/// The answer to "is this subject listed under this policy?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub policy: PolicyId,
    pub kind: PolicyKind,
    pub subject: String,
    /// Listed and in force now.
    pub listed: bool,
    /// The policy is flagged for equivocation: its state is in doubt.
    pub flagged: bool,
    /// How the subject stands, when an event named it.
    pub listing: Option<Listing>,
    /// The event that set it, signed by the owner.
    pub evidence: Option<FeedEvent>,
}

fn event_error(e: EventError, index: usize) -> CoreError {
    match e {
        EventError::BadSignature { .. } => CoreError::BadSignature(format!("event {index}: {e}")),
        EventError::Malformed(_) => CoreError::Malformed(format!("event {index}: {e}")),
        EventError::Invalid(_) => CoreError::InvalidInput(format!("event {index}: {e}")),
    }
}

/// Decodes and verifies one signed event into what storage writes.
pub(crate) fn policy_write(bytes: &[u8], via: Option<NodeId>) -> Result<PolicyWrite, EventError> {
    let signed = SignedEvent::decode(bytes)?;
    let dns_key = signed.event.op.subject().map(Subject::dns_key);
    Ok(PolicyWrite {
        facts: signed.facts(),
        op: signed.event.op.clone(),
        dns_key,
        bytes: bytes.to_vec(),
        via,
    })
}

impl Directory {
    pub(crate) fn policy_hub(&self) -> &PolicyHub {
        &self.inner.policies
    }

    /// Accepts signed events, in order, all or nothing: each must verify
    /// under its owner's key and follow its policy's chain (events already
    /// held are fine, so a whole history can be submitted again). The
    /// first event refused refuses the batch, with its index and reason.
    pub async fn submit_policy_events(&self, events: &[Vec<u8>]) -> Result<Vec<SubmitResult>> {
        if events.is_empty() {
            return Err(CoreError::InvalidInput("no events to submit".into()));
        }
        if events.len() > MAX_SUBMIT_EVENTS {
            return Err(CoreError::InvalidInput(format!(
                "at most {MAX_SUBMIT_EVENTS} events per submission"
            )));
        }
        let writes = events
            .iter()
            .enumerate()
            .map(|(i, b)| policy_write(b, None).map_err(|e| event_error(e, i)))
            .collect::<Result<Vec<_>>>()?;
        let (outcomes, seq) = match self.inner.store.policy_submit(&writes).await? {
            Ok(done) => done,
            Err((i, r)) => {
                let detail = format!("event {i} ({}): {}", r.code, r.detail);
                self.inner.metrics.policy_events("rejected", 1);
                return Err(match r.code {
                    "wrong-owner" | "policy-exists" => CoreError::Forbidden(detail),
                    "unknown-policy" => CoreError::NotFound(detail),
                    _ => CoreError::Conflict(detail),
                });
            }
        };
        self.written(seq);
        self.policy_hub().wake();
        let results = writes
            .iter()
            .zip(&outcomes)
            .map(|(w, o)| {
                let outcome = match o {
                    PolicyOutcome::Applied(_) => "applied",
                    PolicyOutcome::Equivocation(_) => "equivocation",
                    PolicyOutcome::Duplicate | PolicyOutcome::Rejected(_) => "duplicate",
                };
                self.inner.metrics.policy_events(outcome, 1);
                SubmitResult {
                    policy: w.facts.policy.clone(),
                    version: w.facts.version,
                    hash: hex::encode(w.facts.hash),
                    outcome,
                }
            })
            .collect();
        // Read-your-writes for the feeds and DNS of this process.
        let last = outcomes
            .iter()
            .filter_map(|o| match o {
                PolicyOutcome::Applied(s) | PolicyOutcome::Equivocation(s) => Some(*s),
                _ => None,
            })
            .max();
        if let Some(last) = last {
            self.policy_hub().wait_applied(self, last).await;
        }
        Ok(results)
    }

    /// Every policy.
    pub async fn policies(&self) -> Result<Vec<PolicyInfo>> {
        Ok(self
            .inner
            .store
            .policies()
            .await?
            .into_iter()
            .map(PolicyInfo::from)
            .collect())
    }

    /// One policy.
    pub async fn policy(&self, id: &PolicyId) -> Result<PolicyInfo> {
        self.inner
            .store
            .policy(id)
            .await?
            .map(PolicyInfo::from)
            .ok_or_else(|| CoreError::NotFound(format!("policy {id}")))
    }

    /// The events kept as evidence of equivocation, each after the applied
    /// event it contradicts.
    pub async fn policy_evidence(&self, id: &PolicyId) -> Result<Vec<FeedEvent>> {
        self.inner
            .store
            .policy_evidence(id)
            .await?
            .iter()
            .map(FeedEvent::from_row)
            .collect()
    }

    /// A policy's applied events after `after_version`.
    pub async fn policy_events(
        &self,
        id: &PolicyId,
        after_version: u64,
        limit: u64,
    ) -> Result<Vec<FeedEvent>> {
        self.policy(id).await?;
        self.inner
            .store
            .policy_events(id, after_version, limit.clamp(1, 1000))
            .await?
            .iter()
            .map(FeedEvent::from_row)
            .collect()
    }

    /// The all-policies feed (or one policy's) after position `after`.
    pub async fn policy_feed(
        &self,
        after: u64,
        limit: usize,
        policy: Option<&PolicyId>,
    ) -> Result<Vec<Arc<FeedEvent>>> {
        let limit = limit.clamp(1, 1000);
        if let Some(events) = self.policy_hub().recent_after(after, limit, policy) {
            return Ok(events);
        }
        self.inner
            .store
            .policy_feed(after, limit as u64, policy)
            .await?
            .iter()
            .map(|r| FeedEvent::from_row(r).map(Arc::new))
            .collect()
    }

    /// Waits until the feed has moved past `after` (or `timeout` passes);
    /// returns the feed position now.
    pub async fn wait_policy_feed(&self, after: u64, timeout: Duration) -> u64 {
        self.policy_hub().wait_past(after, timeout).await
    }

    /// The feed position of a policy's event at `version` (0 for version
    /// 0: from the start); past the head, the feed's head (from now on).
    pub async fn policy_seq_of_version(&self, id: &PolicyId, version: u64) -> Result<u64> {
        self.policy(id).await?;
        if version == 0 {
            return Ok(0);
        }
        Ok(match self.inner.store.policy_event_at(id, version).await? {
            Some(e) => e.seq,
            None => self.inner.store.policy_feed_head().await?,
        })
    }

    /// The position of the newest event in the feed.
    pub fn policy_feed_head(&self) -> u64 {
        self.policy_hub().applied()
    }

    /// The subjects listed under a policy now.
    pub async fn policy_listings(&self, id: &PolicyId) -> Result<Vec<Listing>> {
        self.policy(id).await?;
        let now = self.now();
        Ok(self
            .inner
            .store
            .policy_listed(Some(id))
            .await?
            .into_iter()
            .map(|(_, _, l)| l)
            .filter(|l| l.in_force(now))
            .collect())
    }

    /// Is `subject` listed under each of `policies` (every policy when
    /// empty)? With the signed event that decided it as evidence.
    pub async fn check_policies(
        &self,
        policies: &[PolicyId],
        subject: &Subject,
    ) -> Result<Vec<CheckResult>> {
        let rows = if policies.is_empty() {
            self.inner.store.policies().await?
        } else {
            let mut rows = Vec::with_capacity(policies.len());
            for id in policies {
                rows.push(
                    self.inner
                        .store
                        .policy(id)
                        .await?
                        .ok_or_else(|| CoreError::NotFound(format!("policy {id}")))?,
                );
            }
            rows
        };
        let key = subject.to_string();
        let now = self.now();
        let mut out = Vec::with_capacity(rows.len());
        for p in rows {
            let listing = self.inner.store.policy_listing(&p.id, &key).await?;
            let evidence = match &listing {
                Some(l) => self
                    .inner
                    .store
                    .policy_event_at(&p.id, l.version)
                    .await?
                    .map(|r| FeedEvent::from_row(&r))
                    .transpose()?,
                None => None,
            };
            out.push(CheckResult {
                listed: listing.as_ref().is_some_and(|l| l.in_force(now)),
                policy: p.id,
                kind: p.kind,
                subject: key.clone(),
                flagged: p.flagged,
                listing,
                evidence,
            });
        }
        Ok(out)
    }

    /// Starts the policy tasks: the view that follows the feed (DNS, SSE)
    /// and the webhook deliveries.
    pub async fn start_policies(&self, options: PolicyOptions) -> Result<()> {
        self.policy_hub().set_options(options);
        view::start(self).await?;
        webhooks::start(self);
        Ok(())
    }

    /// The policy answer for a DNS name below a policy zone: `policy` is
    /// the label under the zone apex, `key` the labels before it.
    pub fn policy_dns(&self, policy: &str, key: &str) -> PolicyAnswer {
        self.policy_hub().answer(policy, key, self.now())
    }
}
