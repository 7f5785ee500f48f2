//! Webhook subscriptions: each one is delivered by its own task, so a
//! receiver that is down, slow or failing never holds up another. One
//! event at a time, in feed order; the cursor moves (in the database) only
//! after a 2xx, so a restart re-delivers at most the event in flight, with
//! the same `Idempotency-Key` (at-least-once). A failed try waits
//! `backoff · 2^(tries-1)` (capped); after `max_attempts` the event is
//! dead-lettered, visible in the subscription's status, and the next one
//! goes.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{debug, info};

use super::FeedEvent;
use crate::core::{CoreError, Directory, Inner, Result};
use crate::domain::{Caller, PolicyId};
use crate::policy::sign_delivery;
use crate::policy::webhook::{NODE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::storage::{DeadLetterRow, WebhookRow, WebhookWrite};

/// A subscription as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookView {
    pub subscription: WebhookRow,
    pub dead_letters: Vec<DeadLetterRow>,
}

fn check_url(url: &str) -> Result<()> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CoreError::InvalidInput(format!("webhook url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(CoreError::InvalidInput(format!(
            "webhook url {url:?}: must be http:// or https:// with a host"
        )));
    }
    Ok(())
}

fn require_admin(caller: &Caller) -> Result<()> {
    if !matches!(caller, Caller::Anonymous) {
        Ok(())
    } else {
        Err(CoreError::Unauthenticated(
            "managing webhooks needs a token".into(),
        ))
    }
}

impl Directory {
    /// Subscribes `url` to a policy's events (every policy's when `None`)
    /// from feed position `after` (default: from now on).
    pub async fn add_webhook(
        &self,
        caller: &Caller,
        policy: Option<&PolicyId>,
        url: &str,
        after: Option<u64>,
    ) -> Result<WebhookView> {
        require_admin(caller)?;
        check_url(url)?;
        if let Some(p) = policy {
            self.policy(p).await?;
        }
        let after = match after {
            Some(a) => a,
            None => self.inner.store.policy_feed_head().await?,
        };
        let id = self.inner.store.webhook_add(policy, url, after).await?;
        self.policy_hub().webhooks_changed.notify_one();
        info!(id, url, "webhook added");
        self.webhook(caller, id).await
    }

    /// Every subscription.
    pub async fn webhooks(&self, caller: &Caller) -> Result<Vec<WebhookRow>> {
        require_admin(caller)?;
        Ok(self.inner.store.webhooks().await?)
    }

    /// One subscription with its dead letters.
    pub async fn webhook(&self, caller: &Caller, id: u64) -> Result<WebhookView> {
        require_admin(caller)?;
        let subscription = self
            .inner
            .store
            .webhook(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("webhook {id}")))?;
        let dead_letters = self.inner.store.webhook_dead_letters(id).await?;
        Ok(WebhookView {
            subscription,
            dead_letters,
        })
    }

    /// Ends a subscription.
    pub async fn delete_webhook(&self, caller: &Caller, id: u64) -> Result<()> {
        require_admin(caller)?;
        if !self.inner.store.webhook_delete(id).await? {
            return Err(CoreError::NotFound(format!("webhook {id}")));
        }
        if let Some(task) = self
            .policy_hub()
            .webhooks
            .lock()
            .expect("webhook tasks")
            .remove(&id)
        {
            task.abort();
        }
        Ok(())
    }
}

/// Starts the supervisor that keeps one delivery task per subscription,
/// and the writer of their outcomes.
pub(super) fn start(directory: &Directory) {
    let weak = Arc::downgrade(&directory.inner);
    tokio::spawn(supervise(weak.clone()));
    let rx = directory
        .policy_hub()
        .webhook_writes_rx
        .lock()
        .expect("webhook writes")
        .take();
    if let Some(rx) = rx {
        tokio::spawn(write_outcomes(weak, rx));
    }
}

/// Writes delivery outcomes in the order they happened, a batch per
/// transaction: what arrives while one batch is written goes in the next.
/// A crash loses at most the last batch: those events are delivered again,
/// with the same Idempotency-Key (at least once).
async fn write_outcomes(
    weak: Weak<Inner>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<WebhookWrite>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 10_000).await > 0 {
        let Some(inner) = weak.upgrade() else { return };
        while let Err(e) = inner.store.webhook_apply(&batch).await {
            tracing::warn!(error = %e, "recording webhook deliveries failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        batch.clear();
    }
}

async fn supervise(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let directory = Directory { inner };
        if let Ok(rows) = directory.inner.store.webhooks().await {
            let mut tasks = directory
                .policy_hub()
                .webhooks
                .lock()
                .expect("webhook tasks");
            let ids: std::collections::HashSet<u64> = rows.iter().map(|r| r.id).collect();
            tasks.retain(|id, t| {
                let keep = ids.contains(id) && !t.is_finished();
                if !keep {
                    t.abort();
                }
                keep
            });
            for row in rows {
                tasks.entry(row.id).or_insert_with(|| {
                    tokio::spawn(deliver(Arc::downgrade(&directory.inner), row.id)).abort_handle()
                });
            }
        }
        let inner = directory.inner.clone();
        drop(directory);
        tokio::select! {
            _ = inner.policies.webhooks_changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(max)
}

/// Delivers one subscription's events until it is deleted or the node
/// stops. The subscription is read once; this task is the only writer of
/// its cursor and tries afterwards, so it keeps them in step itself.
async fn deliver(weak: Weak<Inner>, id: u64) {
    let mut row = loop {
        let Some(inner) = weak.upgrade() else { return };
        match inner.store.webhook(id).await {
            Ok(Some(row)) => break row,
            Ok(None) => return,
            Err(_) => {
                drop(inner);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let directory = Directory { inner };
        // The head first: every event up to it is readable below.
        let head = directory.policy_feed_head();
        let next = directory
            .policy_feed(row.cursor, 1, row.policy.as_ref())
            .await
            .ok()
            .and_then(|mut v| v.pop());
        let Some(event) = next else {
            // Nothing to send: wait for the feed to move.
            let d = directory.clone();
            drop(directory);
            d.wait_policy_feed(head.max(row.cursor), Duration::from_secs(1))
                .await;
            continue;
        };
        if let Some(at) = row.next_attempt_at {
            let wait = (at - directory.now()).to_std().unwrap_or_default();
            if !wait.is_zero() {
                drop(directory);
                tokio::time::sleep(wait).await;
                row.next_attempt_at = None;
                continue;
            }
        }
        let outcome = post(&directory, &row, &event).await;
        let o = directory.policy_hub().options();
        let write = match outcome {
            Ok(()) => {
                directory.inner.metrics.webhook_delivery("delivered");
                debug!(id, seq = event.seq, "webhook delivered");
                row.cursor = event.seq;
                row.attempts = 0;
                WebhookWrite::Delivered { id, seq: event.seq }
            }
            Err(why) => {
                let attempts = row.attempts + 1;
                if attempts >= o.webhook_max_attempts {
                    directory.inner.metrics.webhook_delivery("dead-letter");
                    info!(id, seq = event.seq, attempts, error = %why, "webhook event dead-lettered");
                    row.cursor = event.seq;
                    row.attempts = 0;
                    WebhookWrite::DeadLetter {
                        id,
                        seq: event.seq,
                        attempts,
                        error: why,
                    }
                } else {
                    directory.inner.metrics.webhook_delivery("failed");
                    let wait = backoff(o.webhook_backoff, o.webhook_backoff_max, attempts);
                    let at: DateTime<Utc> =
                        directory.now() + chrono::Duration::from_std(wait).unwrap_or_default();
                    debug!(id, seq = event.seq, attempts, error = %why, "webhook delivery failed");
                    row.attempts = attempts;
                    row.next_attempt_at = Some(at);
                    WebhookWrite::Failed {
                        id,
                        attempts,
                        next_at: at,
                        error: why,
                    }
                }
            }
        };
        let _ = directory.policy_hub().webhook_writes.send(write);
    }
}

async fn post(
    directory: &Directory,
    row: &WebhookRow,
    event: &FeedEvent,
) -> std::result::Result<(), String> {
    let body = event.json().as_bytes().to_vec();
    let timestamp = directory.now().timestamp();
    let signature = sign_delivery(&directory.inner.node_key, timestamp, &body);
    let client = directory.http().map_err(|e| e.to_string())?;
    let timeout = directory.policy_hub().options().webhook_timeout;
    let response = client
        .post(&row.url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", format!("{}-{}", row.id, event.hash))
        .header(SIGNATURE_HEADER, signature)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(NODE_HEADER, directory.node_id().0.as_str())
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} ms", timeout.as_millis())
            } else {
                format!("unreachable: {e}")
            }
        })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = |n| backoff(Duration::from_secs(1), Duration::from_secs(60), n);
        assert_eq!(b(1), Duration::from_secs(1));
        assert_eq!(b(2), Duration::from_secs(2));
        assert_eq!(b(4), Duration::from_secs(8));
        assert_eq!(b(10), Duration::from_secs(60));
        assert_eq!(b(40), Duration::from_secs(60));
    }
}
