//! Fair-play policies over REST: submit signed events (anyone: the owner's
//! signature is the authority), read policies, their listings and events,
//! check subjects with the signed event as evidence, and follow changes by
//! polling or server-sent events (`Accept: text/event-stream`, resumable
//! with `Last-Event-ID`). Webhooks are in `webhooks.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::{ApiError, Problem};
use crate::core::{CheckResult, Directory, FeedEvent, PolicyInfo, SubmitResult};
use crate::domain::{Listing, PolicyId, Subject};
use crate::error::ErrorKind;

/// An accepted policy event. `event` (base64 of the owner-signed bytes,
/// see docs/policies.md) is the evidence; the other fields repeat it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "seq": 812, "policy": "direct-p1", "version": 7, "op": "list",
    "subject": "domain:spam.example", "reason": "relays unsigned mail",
    "time": "2026-12-02T10:00:00Z", "owner": "5d1e…", "hash": "a9f0…", "prev": "33c1…",
    "applied": true, "accepted_at": "2026-12-02T10:00:01Z", "event": "Y2NkaXIvcG9saWN5…"
}))]
pub struct PolicyEventDto {
    /// Position in the all-policies feed of this node.
    pub seq: u64,
    pub policy: String,
    /// Position in the policy's chain, from 1 (the create event).
    pub version: u64,
    /// create, list or delist.
    pub op: String,
    /// cert:<sha256>, addr:<address> or domain:<domain>.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A listing lapses at this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    /// create: deny-list or allow-list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// create: the policy's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When the owner signed it.
    pub time: DateTime<Utc>,
    /// The owner's Ed25519 key (hex).
    pub owner: String,
    /// SHA-256 of the signed event (hex).
    pub hash: String,
    /// The previous event's hash (hex).
    pub prev: String,
    /// False: kept as evidence that the owner signed two events for one
    /// version (the policy is flagged).
    pub applied: bool,
    /// The child node it came through (absent when submitted here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub accepted_at: DateTime<Utc>,
    /// Base64 of the owner-signed event.
    pub event: String,
}

impl From<&FeedEvent> for PolicyEventDto {
    fn from(e: &FeedEvent) -> Self {
        PolicyEventDto {
            seq: e.seq,
            policy: e.policy.to_string(),
            version: e.version,
            op: e.op.into(),
            subject: e.subject.clone(),
            reason: e.reason.clone(),
            expires: e.expires,
            kind: e.kind.map(str::to_owned),
            title: e.title.clone(),
            time: e.time,
            owner: e.owner.clone(),
            hash: e.hash.clone(),
            prev: e.prev.clone(),
            applied: e.applied,
            via: e.via.clone(),
            accepted_at: e.accepted_at,
            event: e.event.clone(),
        }
    }
}

/// A policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDto {
    pub id: String,
    /// The owner's Ed25519 key (hex): every event must be signed by it.
    pub owner: String,
    /// deny-list or allow-list.
    pub kind: String,
    pub title: String,
    pub description: String,
    /// The version of the head event.
    pub version: u64,
    /// The head event's hash (hex): the next event's `prev`.
    pub head: String,
    /// The owner signed two different events for one version.
    pub flagged: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When flagged: each contradicting pair of events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<PolicyEventDto>,
}

impl PolicyDto {
    fn new(p: PolicyInfo, evidence: &[FeedEvent]) -> Self {
        PolicyDto {
            id: p.id.to_string(),
            owner: p.owner,
            kind: p.kind.as_str().into(),
            title: p.title,
            description: p.description,
            version: p.version,
            head: p.head,
            flagged: p.flagged,
            created_at: p.created_at,
            updated_at: p.updated_at,
            evidence: evidence.iter().map(PolicyEventDto::from).collect(),
        }
    }
}

/// Signed events to submit, in chain order (a whole history may be sent
/// again: events already held are skipped).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// Base64 of each owner-signed event (`ccdir policy list|delist` writes them).
    pub events: Vec<String>,
}

/// What submitting one event did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitResultDto {
    pub policy: String,
    pub version: u64,
    pub hash: String,
    /// applied, duplicate (already held) or equivocation (a second event
    /// for a version already held: kept as evidence, policy flagged).
    pub outcome: String,
}

impl From<&SubmitResult> for SubmitResultDto {
    fn from(r: &SubmitResult) -> Self {
        SubmitResultDto {
            policy: r.policy.to_string(),
            version: r.version,
            hash: r.hash.clone(),
            outcome: r.outcome.into(),
        }
    }
}

/// How a subject stands under a policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListingDto {
    pub subject: String,
    pub listed: bool,
    /// The version of the event that set it.
    pub version: u64,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
}

impl From<&Listing> for ListingDto {
    fn from(l: &Listing) -> Self {
        ListingDto {
            subject: l.subject.clone(),
            listed: l.listed,
            version: l.version,
            reason: l.reason.clone(),
            expires: l.expires,
        }
    }
}

/// The answer for one policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckDto {
    pub policy: String,
    /// deny-list or allow-list: what being listed means.
    pub kind: String,
    pub subject: String,
    /// Listed now (a lapsed listing is not).
    pub listed: bool,
    /// The policy is flagged for equivocation; its state is in doubt.
    pub flagged: bool,
    /// The last event that named the subject, owner-signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<PolicyEventDto>,
}

impl From<&CheckResult> for CheckDto {
    fn from(c: &CheckResult) -> Self {
        CheckDto {
            policy: c.policy.to_string(),
            kind: c.kind.as_str().into(),
            subject: c.subject.clone(),
            listed: c.listed,
            flagged: c.flagged,
            evidence: c.evidence.as_ref().map(PolicyEventDto::from),
        }
    }
}

/// `?subject=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckParams {
    /// cert:<sha256 hex>, addr:<address> or domain:<domain>.
    #[param(example = "domain:spam.example")]
    pub subject: String,
}

/// `?subject=&policies=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MultiCheckParams {
    /// cert:<sha256 hex>, addr:<address> or domain:<domain>.
    #[param(example = "addr:alice@cardio.example.org")]
    pub subject: String,
    /// Policy ids separated by commas; every policy when absent.
    #[param(example = "direct-p1,anti-abuse")]
    pub policies: Option<String>,
}

/// `?after=&limit=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Events after this version (0: from the create event). With
    /// `Accept: text/event-stream`, `Last-Event-ID` takes precedence.
    pub after: Option<u64>,
    /// Page size (default 100, at most 1000); polling only.
    pub limit: Option<u64>,
}

/// `?after=&limit=&policy=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Events after this feed position (0: from the first).
    pub after: Option<u64>,
    /// Page size (default 100, at most 1000); polling only.
    pub limit: Option<usize>,
    /// Only this policy's events.
    pub policy: Option<String>,
}

fn wants_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

fn last_event_id(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    match req.headers().get("Last-Event-ID") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::InvalidInput,
                    "Last-Event-ID must be the id of an event this stream sent",
                )
            }),
    }
}

/// Submit signed policy events (anyone; the owner's signature authorises them).
///
/// All or nothing: the first event that does not verify or does not follow
/// its policy's chain refuses the submission, with its index and reason.
/// Accepted events are published in this node's federation log and reach
/// the root with the owner's signature intact.
#[utoipa::path(
    tag = "policies",
    request_body = SubmitBody,
    responses(
        (status = 200, description = "What each event did", body = Vec<SubmitResultDto>),
        (status = 400, description = "Not an event, or a field breaks a rule (subject form, reason size)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Signed by another key than the policy's owner, or the name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown policy (submit from its create event)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Version gap, or not following the head", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Signature does not verify", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/api/v1/policy-events")]
pub async fn submit_events(
    directory: web::Data<Directory>,
    body: web::Json<SubmitBody>,
) -> Result<HttpResponse, ApiError> {
    let events = body
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            STANDARD
                .decode(e.trim())
                .map_err(|_| ApiError::new(ErrorKind::Malformed, format!("event {i}: not base64")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let results = directory.submit_policy_events(&events).await?;
    Ok(HttpResponse::Ok().json(
        results
            .iter()
            .map(SubmitResultDto::from)
            .collect::<Vec<_>>(),
    ))
}

/// The all-policies feed: poll with `?after=<seq>`, or stream it with
/// `Accept: text/event-stream` (event ids are feed positions).
#[utoipa::path(
    tag = "policies",
    params(FeedParams),
    responses(
        (status = 200, description = "Events after `after`, or a text/event-stream", content(
            (Vec<PolicyEventDto> = "application/json"),
            (String = "text/event-stream"),
        )),
    ),
)]
#[get("/api/v1/policy-events")]
pub async fn feed(
    req: HttpRequest,
    directory: web::Data<Directory>,
    params: web::Query<FeedParams>,
) -> Result<HttpResponse, ApiError> {
    let policy = params
        .policy
        .as_deref()
        .map(str::parse::<PolicyId>)
        .transpose()?;
    if let Some(p) = &policy {
        directory.policy(p).await?;
    }
    let after = last_event_id(&req)?.or(params.after).unwrap_or(0);
    if wants_stream(&req) {
        return Ok(stream(
            directory.get_ref().clone(),
            after,
            policy,
            IdMode::Seq,
        ));
    }
    let events = directory
        .policy_feed(after, params.limit.unwrap_or(100), policy.as_ref())
        .await?;
    Ok(HttpResponse::Ok().json(
        events
            .iter()
            .map(|e| PolicyEventDto::from(e.as_ref()))
            .collect::<Vec<_>>(),
    ))
}

/// Every policy.
#[utoipa::path(
    tag = "policies",
    responses((status = 200, description = "Policies", body = Vec<PolicyDto>)),
)]
#[get("/api/v1/policies")]
pub async fn list_policies(directory: web::Data<Directory>) -> Result<HttpResponse, ApiError> {
    let all = directory.policies().await?;
    Ok(HttpResponse::Ok().json(
        all.into_iter()
            .map(|p| PolicyDto::new(p, &[]))
            .collect::<Vec<_>>(),
    ))
}

/// One policy; when flagged, with the contradicting events as evidence.
#[utoipa::path(
    tag = "policies",
    params(("id" = String, Path, description = "Policy id", example = "direct-p1")),
    responses(
        (status = 200, description = "The policy", body = PolicyDto),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/policies/{id}")]
pub async fn get_policy(
    directory: web::Data<Directory>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: PolicyId = id.parse()?;
    let policy = directory.policy(&id).await?;
    let evidence = if policy.flagged {
        directory.policy_evidence(&id).await?
    } else {
        Vec::new()
    };
    Ok(HttpResponse::Ok().json(PolicyDto::new(policy, &evidence)))
}

/// A policy's events: poll with `?after=<version>`, or stream them with
/// `Accept: text/event-stream` (event ids are versions; resume with
/// `Last-Event-ID`). Equivocation evidence streams as `event: equivocation`.
#[utoipa::path(
    tag = "policies",
    params(("id" = String, Path, description = "Policy id"), EventParams),
    responses(
        (status = 200, description = "Events after `after`, or a text/event-stream", content(
            (Vec<PolicyEventDto> = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/policies/{id}/events")]
pub async fn policy_events(
    req: HttpRequest,
    directory: web::Data<Directory>,
    id: web::Path<String>,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    let id: PolicyId = id.parse()?;
    let after = last_event_id(&req)?.or(params.after).unwrap_or(0);
    if wants_stream(&req) {
        let seq = directory.policy_seq_of_version(&id, after).await?;
        return Ok(stream(
            directory.get_ref().clone(),
            seq,
            Some(id),
            IdMode::Version,
        ));
    }
    let events = directory
        .policy_events(&id, after, params.limit.unwrap_or(100))
        .await?;
    Ok(HttpResponse::Ok().json(events.iter().map(PolicyEventDto::from).collect::<Vec<_>>()))
}

/// The subjects listed under a policy now.
#[utoipa::path(
    tag = "policies",
    params(("id" = String, Path, description = "Policy id")),
    responses(
        (status = 200, description = "Listed subjects", body = Vec<ListingDto>),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/policies/{id}/listings")]
pub async fn listings(
    directory: web::Data<Directory>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: PolicyId = id.parse()?;
    let all = directory.policy_listings(&id).await?;
    Ok(HttpResponse::Ok().json(all.iter().map(ListingDto::from).collect::<Vec<_>>()))
}

/// Is the subject listed under this policy? With the signed event as evidence.
#[utoipa::path(
    tag = "policies",
    params(("id" = String, Path, description = "Policy id"), CheckParams),
    responses(
        (status = 200, description = "Listed or not", body = CheckDto),
        (status = 400, description = "Malformed subject", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/policies/{id}/check")]
pub async fn check(
    directory: web::Data<Directory>,
    id: web::Path<String>,
    params: web::Query<CheckParams>,
) -> Result<HttpResponse, ApiError> {
    let id: PolicyId = id.parse()?;
    let subject: Subject = params.subject.parse()?;
    let results = directory.check_policies(&[id], &subject).await?;
    let first = results
        .first()
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "no check result"))?;
    Ok(HttpResponse::Ok().json(CheckDto::from(first)))
}

/// Is the subject listed under each of several policies (or all)?
#[utoipa::path(
    tag = "policies",
    params(MultiCheckParams),
    responses(
        (status = 200, description = "One answer per policy", body = Vec<CheckDto>),
        (status = 400, description = "Malformed subject or policy id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A policy named does not exist", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/policy-check")]
pub async fn check_many(
    directory: web::Data<Directory>,
    params: web::Query<MultiCheckParams>,
) -> Result<HttpResponse, ApiError> {
    let subject: Subject = params.subject.parse()?;
    let ids = params
        .policies
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse::<PolicyId>)
        .collect::<Result<Vec<_>, _>>()?;
    let results = directory.check_policies(&ids, &subject).await?;
    Ok(HttpResponse::Ok().json(results.iter().map(CheckDto::from).collect::<Vec<_>>()))
}

/// Which number a stream's event ids carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdMode {
    /// Feed positions (the all-policies feed).
    Seq,
    /// Policy versions (one policy's feed).
    Version,
}

/// How long a quiet stream waits before a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct StreamState {
    directory: Directory,
    cursor: u64,
    policy: Option<PolicyId>,
    mode: IdMode,
    pending: VecDeque<Arc<FeedEvent>>,
    started: bool,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        self.directory.metrics().sse_streams.dec();
    }
}

fn sse_frame(e: &FeedEvent, mode: IdMode) -> String {
    // The core's JSON of the event has the shape of `PolicyEventDto`
    // (a test checks); made once, not once per stream.
    let data = e.json();
    match (mode, e.applied) {
        (IdMode::Version, false) => format!("event: equivocation\ndata: {data}\n\n"),
        (IdMode::Version, true) => {
            format!("id: {}\nevent: policy-event\ndata: {data}\n\n", e.version)
        }
        (IdMode::Seq, applied) => format!(
            "id: {}\nevent: {}\ndata: {data}\n\n",
            e.seq,
            if applied {
                "policy-event"
            } else {
                "equivocation"
            }
        ),
    }
}

fn stream(
    directory: Directory,
    after: u64,
    policy: Option<PolicyId>,
    mode: IdMode,
) -> HttpResponse {
    directory.metrics().sse_streams.inc();
    let state = StreamState {
        directory,
        cursor: after,
        policy,
        mode,
        pending: VecDeque::new(),
        started: false,
    };
    let body = futures::stream::unfold(state, |mut s| async move {
        if !s.started {
            s.started = true;
            return Some((
                Ok::<_, actix_web::Error>(web::Bytes::from_static(b"retry: 2000\n\n")),
                s,
            ));
        }
        loop {
            if let Some(e) = s.pending.pop_front() {
                s.cursor = e.seq;
                return Some((Ok(web::Bytes::from(sse_frame(&e, s.mode))), s));
            }
            // The head first: every event up to it is readable below.
            let head = s.directory.policy_feed_head();
            match s
                .directory
                .policy_feed(s.cursor, 100, s.policy.as_ref())
                .await
            {
                Ok(events) if !events.is_empty() => s.pending.extend(events),
                Ok(_) => {
                    if head > s.cursor {
                        // Events of other policies only: skip past them.
                        s.cursor = head;
                        continue;
                    }
                    let now = s.directory.wait_policy_feed(s.cursor, KEEP_ALIVE).await;
                    if now <= s.cursor {
                        return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), s));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "policy stream ended");
                    return None;
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}
