//! Pulling children. For each child, a loop asks for the page after its
//! cursor (starting one record early, so the first record must be the one
//! we hold), checks it (`federation::page`: signatures, hash chain,
//! sequence, head — forks and rollbacks stop the child), judges each
//! record (`federation::authority` plus certificate binding and trust
//! here), and applies the page, its relays and the new cursor in one
//! transaction (`Store::fed_apply`). A page that cannot be trusted or read
//! applies nothing and is retried with exponential backoff; the reason is
//! recorded. Children are independent: one failing never holds up another.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rayon::prelude::*;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::{Draft, short};
use crate::core::certificates::prepare;
use crate::core::{CoreError, Directory, Inner};
use crate::domain::{EntryRecord, NodeId};
use crate::error::ErrorKind;
use crate::federation::wire::{NotifyJson, PageJson};
use crate::federation::{
    AuthorState, Body, Cursor, Evaluation, Evaluator, FederationError, Hash, Key, RejectCode,
    Rejection, Severity, SignedHead, body_type, decode_record, verify_decoded,
};
use crate::pki::TrustStore;
use crate::storage::{ApplyItem, ApplyPage, AuthorRow, Effect, PeerStatus, StorageError};

/// Why a pull did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The child's answer was refused (see [`Rejection::code`]).
    #[error("{0}")]
    Rejected(Rejection),
    /// Something failed here (database, a bug).
    #[error(transparent)]
    Local(#[from] CoreError),
}

impl From<StorageError> for PullError {
    fn from(e: StorageError) -> Self {
        PullError::Local(e.into())
    }
}

impl From<Rejection> for PullError {
    fn from(r: Rejection) -> Self {
        PullError::Rejected(r)
    }
}

/// How far one pull got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutcome {
    /// A page was applied and the child has more.
    More,
    /// Nothing left to pull.
    CaughtUp,
    /// The child is stopped (fork, rollback) until an operator resumes it.
    Stopped,
    /// The child is not (or no longer) known.
    Unknown,
}

fn transport(timeout: Duration) -> impl Fn(reqwest::Error) -> Rejection {
    move |e| {
        if e.is_timeout() {
            Rejection::new(
                RejectCode::Timeout,
                format!("no complete answer within {} ms", timeout.as_millis()),
            )
        } else {
            Rejection::new(RejectCode::Unreachable, e.to_string())
        }
    }
}

fn head_rejection(e: FederationError) -> Rejection {
    match e {
        FederationError::BadSignature { what } => Rejection::new(
            RejectCode::BadSignature,
            format!("{what}: the signature does not verify"),
        ),
        other => Rejection::new(RejectCode::MalformedPage, format!("head: {other}")),
    }
}

/// What a judged record does here: its certificates are parsed, bound to
/// the address and judged against this node's trust anchors.
fn effect_of(e: &Evaluation, trust: &TrustStore, now: chrono::DateTime<chrono::Utc>) -> Effect {
    let quarantine = |code: RejectCode, detail: String| Effect::Quarantine {
        code: code.as_str().into(),
        detail,
    };
    let accepted = match &e.outcome {
        Err(r) => return quarantine(r.code, r.detail.clone()),
        Ok(a) => a,
    };
    match &accepted.body {
        Body::EntryUpsert(p) => {
            let certificates = if p.certificates.is_empty() {
                Vec::new()
            } else {
                let blobs: Vec<Vec<u8>> = p
                    .certificates
                    .iter()
                    .flat_map(|c| std::iter::once(c.der.clone()).chain(c.chain.iter().cloned()))
                    .collect();
                match prepare(trust, &p.entry.address, &blobs, now) {
                    Ok(c) => c,
                    Err(err) => {
                        let code = if err.kind() == ErrorKind::CertificateNotBound {
                            RejectCode::CertificateNotBound
                        } else {
                            RejectCode::InvalidCertificate
                        };
                        return quarantine(code, err.public_detail());
                    }
                }
            };
            Effect::Upsert {
                record: Box::new(EntryRecord {
                    entry: p.entry.clone(),
                    certificates,
                }),
                chain: accepted.chain.iter().map(Hash::to_hex).collect(),
            }
        }
        Body::EntryRemoval(a) => Effect::Remove(a.clone()),
        Body::OrganisationUpsert(o) => Effect::UpsertOrganisation(o.clone()),
        Body::OrganisationRemoval(id) => Effect::RemoveOrganisation(id.clone()),
        Body::Delegation(_) | Body::KeyRotation(_) => Effect::Accept,
        // The owner's signature is checked here, whoever relayed the event;
        // its place in the policy's chain inside the apply transaction.
        Body::PolicyEvent(bytes) => match crate::core::policies::policy_write(bytes, None) {
            Ok(write) => Effect::Policy(Box::new(write)),
            Err(e @ crate::policy::EventError::BadSignature { .. }) => {
                quarantine(RejectCode::BadSignature, e.to_string())
            }
            Err(e) => quarantine(RejectCode::InvalidRecord, e.to_string()),
        },
        Body::Relay(_) => quarantine(RejectCode::InvalidRecord, "a relay in a relay".into()),
    }
}

fn author_state(row: &AuthorRow) -> Option<AuthorState> {
    Some(AuthorState {
        log: Key::from_node_id(&row.author).ok()?,
        signer: Key::from_node_id(&row.signer).ok()?,
        lineage: row
            .lineage
            .iter()
            .filter_map(|k| Key::from_node_id(k).ok())
            .collect(),
        last_seq: row.last_seq,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoreError::Internal(format!("worker: {e}")))
}

impl Directory {
    /// Fetches one page of a child's log: the signed head and the raw
    /// records, with every transport and format fault as a rejection.
    pub(crate) async fn fetch_page(
        &self,
        url: &str,
        after: u64,
        limit: u64,
    ) -> Result<(SignedHead, Vec<Vec<u8>>), Rejection> {
        let o = self.federation_options();
        let client = self
            .http()
            .map_err(|e| Rejection::new(RejectCode::Unreachable, e.to_string()))?;
        let endpoint = format!(
            "{}/federation/v1/log?after={after}&limit={limit}",
            url.trim_end_matches('/')
        );
        let mut response = client
            .get(&endpoint)
            .send()
            .await
            .map_err(transport(o.request_timeout))?;
        if !response.status().is_success() {
            return Err(Rejection::new(
                RejectCode::Unreachable,
                format!("HTTP {} from {endpoint}", response.status()),
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(transport(o.request_timeout))?
        {
            if body.len() + chunk.len() > o.max_page_bytes {
                return Err(Rejection::new(
                    RejectCode::OversizedPage,
                    format!("the page is larger than {} bytes", o.max_page_bytes),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let page: PageJson = serde_json::from_slice(&body).map_err(|e| {
            if e.is_eof() {
                Rejection::new(
                    RejectCode::TruncatedPage,
                    format!("the page ends after {} bytes: {e}", body.len()),
                )
            } else {
                Rejection::new(RejectCode::MalformedPage, format!("not a page: {e}"))
            }
        })?;
        if page.records.len() as u64 > limit.saturating_add(1) {
            return Err(Rejection::new(
                RejectCode::OversizedPage,
                format!(
                    "the page holds {} records; at most {limit} were asked for",
                    page.records.len()
                ),
            ));
        }
        let head = page.head.verify().map_err(head_rejection)?;
        let records = page
            .records
            .iter()
            .map(|r| {
                r.bytes()
                    .map_err(|e| Rejection::new(RejectCode::MalformedPage, e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((head, records))
    }

    /// Pulls and applies one page of a child's log.
    pub async fn pull_child(&self, peer: &NodeId) -> Result<PullOutcome, PullError> {
        let store = &self.inner.store;
        let Some(row) = store.fed_peer(peer).await? else {
            return Ok(PullOutcome::Unknown);
        };
        if row.status == PeerStatus::Stopped {
            return Ok(PullOutcome::Stopped);
        }
        let log = Key::from_node_id(peer).map_err(|e| CoreError::Internal(e.to_string()))?;
        let cursor = Cursor {
            log,
            seq: row.cursor,
            hash: Hash(row.cursor_hash),
            signer: Key::from_node_id(&row.signer).unwrap_or(log),
        };
        let o = self.federation_options();
        let metrics = &self.inner.metrics;
        let fetching = metrics.time_federation_stage("fetch");
        let (head, raw) = self
            .fetch_page(&row.url, cursor.seq.saturating_sub(1), o.page_size)
            .await?;
        drop(fetching);
        let checking = metrics.time_federation_stage("check");

        // Checking signatures is the costly part: decode in parallel.
        let decoded =
            blocking(move || raw.par_iter().map(|b| decode_record(b)).collect::<Vec<_>>()).await?;
        let old: Vec<u64> = decoded
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| r.header.seq)
            .filter(|s| *s <= cursor.seq)
            .collect();
        let held = store.fed_mirror_hashes(peer, &old).await?;
        let verified =
            verify_decoded(&cursor, decoded, &head, &|s| held.get(&s).map(|h| Hash(*h)))?;
        if verified.records.is_empty() {
            store
                .fed_peer_polled(peer, verified.head_size, self.now())
                .await?;
            return Ok(PullOutcome::CaughtUp);
        }

        // Judge every record, in order.
        let mut authors: HashSet<Key> = HashSet::new();
        for r in &verified.records {
            authors.insert(r.header.log);
            if let Some(inner) = r.peek_relayed_log() {
                authors.insert(inner);
            }
        }
        let ids: Vec<NodeId> = authors.iter().map(Key::node_id).collect();
        let stored: Vec<AuthorState> = store
            .fed_authors(&ids)
            .await?
            .iter()
            .filter_map(author_state)
            .collect();
        let book = self.grant_book().await?;
        let now = self.now();
        let records = verified.records;
        let (records, evaluations, states, grants) = blocking(move || {
            let mut ev = Evaluator::new(book, stored, now);
            let evaluations: Vec<Evaluation> = records.iter().map(|r| ev.evaluate(r)).collect();
            let states: Vec<AuthorState> = ev.authors().cloned().collect();
            let grants = ev.new_grants().to_vec();
            (records, evaluations, states, grants)
        })
        .await?;
        let trust = self.trust_store();
        let (records, evaluations, effects) = blocking(move || {
            let effects: Vec<Effect> = evaluations
                .par_iter()
                .map(|e| effect_of(e, &trust, now))
                .collect();
            (records, evaluations, effects)
        })
        .await?;

        let items: Vec<ApplyItem> = records
            .into_iter()
            .zip(evaluations)
            .zip(effects)
            .map(|((record, e), effect)| ApplyItem {
                seq: record.header.seq,
                hash: record.hash().0,
                author: e.author.node_id(),
                author_seq: e.author_seq,
                authored: e
                    .authored
                    .map(|a| (a.bytes().to_vec(), a.hash().0, a.body_type)),
                effect,
                bytes: record.into_bytes(),
            })
            .collect();
        let count = items.len();
        let page = ApplyPage {
            peer: peer.clone(),
            expected_cursor: cursor.seq,
            cursor: verified.cursor.seq,
            cursor_hash: verified.cursor.hash.0,
            signer: verified.cursor.signer.node_id(),
            head_seen: verified.head_size,
            at: now,
            items,
            authors: states
                .iter()
                .map(|s| AuthorRow {
                    author: s.log.node_id(),
                    signer: s.signer.node_id(),
                    lineage: s.lineage.iter().map(Key::node_id).collect(),
                    last_seq: s.last_seq,
                    via: peer.clone(),
                })
                .collect(),
            grants: grants.iter().map(|g| super::grant_row(g, false)).collect(),
        };
        drop(checking);
        let applying = metrics.time_federation_stage("apply");
        let identity = self.log_identity().await?;
        let outcome = store
            .fed_apply(page, |tip, relayables| {
                let drafts = relayables
                    .iter()
                    .map(|r| Draft {
                        body_type: body_type::RELAY,
                        payload: Body::relay_payload(&r.bytes),
                        author: Some((r.author.clone(), r.author_seq)),
                        subject: r.subject.clone(),
                    })
                    .collect();
                self.sign_drafts(&identity, tip, drafts)
            })
            .await?;
        drop(applying);
        let Some(outcome) = outcome else {
            // The cursor moved under us (another process pulled); read again.
            return Ok(PullOutcome::More);
        };
        self.remember_grants(&grants);
        self.written(outcome.seq);
        for (what, n) in [
            ("applied", outcome.applied),
            ("quarantined", outcome.quarantined),
            ("relayed", outcome.relayed),
        ] {
            metrics.federation_records(what, n as u64);
        }
        if outcome.relayed > 0 {
            self.fed().wake_notifier.notify_one();
        }
        debug!(
            child = short(peer),
            records = count,
            applied = outcome.applied,
            quarantined = outcome.quarantined,
            cursor = verified.cursor.seq,
            head = verified.head_size,
            "applied a page"
        );
        Ok(if verified.cursor.seq < verified.head_size {
            PullOutcome::More
        } else {
            PullOutcome::CaughtUp
        })
    }

    /// Pulls a child until it is caught up or fails; records a failure
    /// (and stops the child on a fork or rollback). For the CLI and tests.
    pub async fn sync_child(&self, peer: &NodeId) -> Result<PullOutcome, PullError> {
        loop {
            match self.pull_child(peer).await {
                Ok(PullOutcome::More) => continue,
                Ok(other) => return Ok(other),
                Err(PullError::Rejected(r)) => {
                    self.record_failure(peer, &r).await?;
                    return Err(PullError::Rejected(r));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn record_failure(&self, peer: &NodeId, r: &Rejection) -> Result<(), CoreError> {
        let store = &self.inner.store;
        self.inner.metrics.federation_rejection(r.code.as_str());
        if r.code.severity() == Severity::StopChild {
            warn!(child = short(peer), reason = %r, "stopped pulling the child");
            store
                .fed_peer_stop(peer, r.code.as_str(), &r.detail, self.now())
                .await?;
        } else {
            info!(child = short(peer), reason = %r, "refused the child's page");
            store
                .fed_peer_failed(peer, r.code.as_str(), &r.detail, self.now())
                .await?;
        }
        Ok(())
    }
}

/// The loop that pulls one child, with backoff after failures.
async fn child_loop(weak: Weak<Inner>, peer: NodeId, wake: Arc<Notify>) {
    let mut failures: u32 = 0;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let directory = Directory { inner };
        let o = directory.federation_options();
        let wait = match directory.pull_child(&peer).await {
            Ok(PullOutcome::More) => {
                failures = 0;
                continue;
            }
            Ok(PullOutcome::CaughtUp) => {
                failures = 0;
                Some(o.pull_interval)
            }
            Ok(PullOutcome::Stopped) => Some(o.pull_interval),
            Ok(PullOutcome::Unknown) => return,
            Err(PullError::Rejected(r)) => {
                if let Err(e) = directory.record_failure(&peer, &r).await {
                    warn!(error = %e, "recording a pull failure failed");
                }
                if r.code.severity() == Severity::StopChild {
                    Some(o.pull_interval)
                } else {
                    failures = failures.saturating_add(1);
                    None
                }
            }
            Err(PullError::Local(e)) => {
                warn!(child = short(&peer), error = %e, "pulling failed here; retrying");
                failures = failures.saturating_add(1);
                None
            }
        };
        drop(directory);
        match wait {
            Some(interval) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(interval) => {}
                }
            }
            // Backing off: a ping does not cut the wait short.
            None => {
                let factor = 1u32 << failures.saturating_sub(1).min(16);
                let wait = o.backoff_initial.saturating_mul(factor).min(o.backoff_max);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Starts a loop per child, and picks up children added at run time.
pub(super) fn spawn_supervisor(directory: &Directory) {
    let weak = Arc::downgrade(&directory.inner);
    tokio::spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let directory = Directory { inner };
            match directory.inner.store.fed_peers().await {
                Ok(peers) => {
                    let mut loops = directory.fed().pullers.lock().expect("pullers lock");
                    for p in peers {
                        if !loops.contains_key(&p.peer) {
                            let wake = Arc::new(Notify::new());
                            loops.insert(p.peer.clone(), wake.clone());
                            tokio::spawn(child_loop(
                                Arc::downgrade(&directory.inner),
                                p.peer,
                                wake,
                            ));
                        }
                    }
                }
                Err(e) => warn!(error = %e, "reading the children failed"),
            }
            let interval = directory
                .federation_options()
                .pull_interval
                .min(Duration::from_secs(1));
            drop(directory);
            tokio::time::sleep(interval).await;
        }
    });
}

/// Pings the parent whenever this node's log has grown.
pub(super) fn spawn_notifier(directory: &Directory) {
    let weak = Arc::downgrade(&directory.inner);
    tokio::spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let wake = {
                let inner = inner.clone();
                async move { inner.fed.wake_notifier.notified().await }
            };
            drop(inner);
            wake.await;
            let Some(inner) = weak.upgrade() else { return };
            let directory = Directory { inner };
            let Some(parent) = directory.federation_options().parent_url.clone() else {
                continue;
            };
            let Ok(identity) = directory.log_identity().await else {
                continue;
            };
            let Ok(client) = directory.http() else {
                continue;
            };
            let url = format!("{}/federation/v1/notify", parent.trim_end_matches('/'));
            let body = NotifyJson {
                log: identity.log.0.clone(),
            };
            match client
                .post(&url)
                .timeout(Duration::from_secs(5))
                .json(&body)
                .send()
                .await
            {
                Ok(r) => debug!(status = %r.status(), "pinged the parent"),
                Err(e) => debug!(error = %e, "could not ping the parent"),
            }
        }
    });
}

/// The per-child wake-ups, for the notify endpoint.
pub(super) fn wake(directory: &Directory, log: &NodeId) -> bool {
    match directory
        .fed()
        .pullers
        .lock()
        .expect("pullers lock")
        .get(log)
    {
        Some(w) => {
            w.notify_one();
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::Accepted;
    use crate::policy::testkit::{Chain, owner};

    fn judged(body: Body) -> Evaluation {
        Evaluation {
            authored: None,
            author: Key([1; 32]),
            author_seq: 1,
            outcome: Ok(Accepted {
                body,
                chain: Vec::new(),
            }),
        }
    }

    #[test]
    fn policy_events_are_verified_whoever_relayed_them() {
        let trust = TrustStore::new(&[]);
        let now = chrono::Utc::now();
        let mut chain = Chain::new(owner(1), "direct-p1");
        let good = chain.create();
        match effect_of(
            &judged(Body::PolicyEvent(good.bytes().to_vec())),
            &trust,
            now,
        ) {
            Effect::Policy(w) => assert_eq!(w.facts.hash, good.hash().0),
            other => panic!("{other:?}"),
        }
        let mut forged = good.bytes().to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        match effect_of(&judged(Body::PolicyEvent(forged)), &trust, now) {
            Effect::Quarantine { code, .. } => assert_eq!(code, "bad-signature"),
            other => panic!("{other:?}"),
        }
        match effect_of(&judged(Body::PolicyEvent(b"junk".to_vec())), &trust, now) {
            Effect::Quarantine { code, .. } => assert_eq!(code, "invalid-record"),
            other => panic!("{other:?}"),
        }
    }
}
