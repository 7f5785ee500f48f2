//! Fair-play policy tables (migration `m20261203_000001_policies`): heads,
//! accepted events with their signed bytes, derived listings, webhook
//! subscriptions and their dead letters.
//!
//! Events are judged *inside* the write transaction ([`accept_events`]),
//! against the head that commits, so two nodes' worth of submissions and
//! pulls can race without two events ever taking one version. Every event
//! accepted emits [`ChangeKind::PolicyEvent`]; its change number is its
//! place in the all-policies feed.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};

use super::convert::{to_i64, to_u64};
use super::seq::WriteTx;
use super::{StorageError, Store};
use crate::domain::{
    ChangeKind, ChangeSeq, EventFacts, Held, Listing, NodeId, PolicyHead, PolicyId, PolicyKind,
    PolicyOp, PolicyRejection, Verdict, judge,
};

type Result<T> = std::result::Result<T, StorageError>;

/// A policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    pub id: PolicyId,
    /// The owner key, hex.
    pub owner: String,
    pub kind: PolicyKind,
    pub title: String,
    pub description: String,
    pub version: u64,
    pub head: [u8; 32],
    /// The owner signed two different events for one version.
    pub flagged: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An accepted event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEventRow {
    /// Its place in the all-policies feed (a change number).
    pub seq: u64,
    pub hash: [u8; 32],
    pub policy: PolicyId,
    pub version: u64,
    /// `create`, `list`, `delist`.
    pub op: String,
    pub subject: Option<String>,
    /// The owner-signed bytes.
    pub event: Vec<u8>,
    /// False: kept as evidence of equivocation, not part of the chain.
    pub applied: bool,
    /// The child it was pulled from; None when submitted here.
    pub via: Option<NodeId>,
    pub at: DateTime<Utc>,
}

/// One authentic event to accept, as the core decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWrite {
    pub facts: EventFacts,
    pub op: PolicyOp,
    /// The subject's DNS key (`Subject::dns_key`), for list and delist.
    pub dns_key: Option<String>,
    pub bytes: Vec<u8>,
    pub via: Option<NodeId>,
}

/// What accepting one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// It is the policy's new head; its feed position.
    Applied(u64),
    /// Kept as evidence and the policy flagged; its feed position.
    Equivocation(u64),
    /// Already held; nothing written.
    Duplicate,
    /// Refused; nothing written.
    Rejected(PolicyRejection),
}

/// A webhook subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: u64,
    /// None: every policy.
    pub policy: Option<PolicyId>,
    pub url: String,
    /// Delivered up to this feed position.
    pub cursor: u64,
    /// Tries of the next event so far.
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub delivered: u64,
    pub dead_letters: u64,
    pub created_at: DateTime<Utc>,
}

/// What one delivery attempt changes in its subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookWrite {
    /// The event at `seq` was delivered: the cursor moves to it.
    Delivered { id: u64, seq: u64 },
    /// A try failed: how many so far, when to try again, why.
    Failed {
        id: u64,
        attempts: u32,
        next_at: DateTime<Utc>,
        error: String,
    },
    /// Given up on the event at `seq`: a dead letter, and the cursor moves on.
    DeadLetter {
        id: u64,
        seq: u64,
        attempts: u32,
        error: String,
    },
}

/// An event a webhook gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRow {
    pub webhook: u64,
    pub event_seq: u64,
    pub attempts: u32,
    pub last_error: String,
    pub at: DateTime<Utc>,
}

#[derive(sea_orm::DeriveIden, Clone, Copy)]
enum Policies {
    Table,
    Id,
    Owner,
    Kind,
    Title,
    Description,
    Version,
    Head,
    Flagged,
    CreatedAt,
    UpdatedAt,
}

#[derive(sea_orm::DeriveIden, Clone, Copy)]
enum PolicyEvents {
    Table,
    Seq,
    Hash,
    PolicyId,
    Version,
    Op,
    Subject,
    Event,
    Applied,
    Via,
    At,
}

#[derive(sea_orm::DeriveIden, Clone, Copy)]
enum PolicyListings {
    Table,
    PolicyId,
    Subject,
    DnsKey,
    Listed,
    Version,
    Reason,
    Expires,
}

#[derive(sea_orm::DeriveIden, Clone, Copy)]
enum PolicyWebhooks {
    Table,
    Id,
    PolicyId,
    Url,
    Cursor,
    Attempts,
    NextAttemptAt,
    LastError,
    Delivered,
    CreatedAt,
}

#[derive(sea_orm::DeriveIden, Clone, Copy)]
enum PolicyDeadLetters {
    Table,
    Id,
    WebhookId,
    EventSeq,
    Attempts,
    LastError,
    At,
}

const POLICY_COLUMNS: [Policies; 10] = [
    Policies::Id,
    Policies::Owner,
    Policies::Kind,
    Policies::Title,
    Policies::Description,
    Policies::Version,
    Policies::Head,
    Policies::Flagged,
    Policies::CreatedAt,
    Policies::UpdatedAt,
];

const EVENT_COLUMNS: [PolicyEvents; 10] = [
    PolicyEvents::Seq,
    PolicyEvents::Hash,
    PolicyEvents::PolicyId,
    PolicyEvents::Version,
    PolicyEvents::Op,
    PolicyEvents::Subject,
    PolicyEvents::Event,
    PolicyEvents::Applied,
    PolicyEvents::Via,
    PolicyEvents::At,
];

fn digest(what: &'static str, bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StorageError::corrupt(what, "not 32 bytes"))
}

fn policy_from_row(row: sea_orm::QueryResult) -> Result<PolicyRow> {
    let id: String = row.try_get("", "id")?;
    let kind: String = row.try_get("", "kind")?;
    Ok(PolicyRow {
        id: id
            .parse()
            .map_err(|e| StorageError::corrupt("policy id", e))?,
        owner: row.try_get("", "owner")?,
        kind: kind
            .parse()
            .map_err(|e| StorageError::corrupt("policy kind", e))?,
        title: row.try_get("", "title")?,
        description: row.try_get("", "description")?,
        version: to_u64("policy version", row.try_get("", "version")?)?,
        head: digest("policy head", row.try_get("", "head")?)?,
        flagged: row.try_get("", "flagged")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

fn event_from_row(row: sea_orm::QueryResult) -> Result<PolicyEventRow> {
    let policy: String = row.try_get("", "policy_id")?;
    Ok(PolicyEventRow {
        seq: to_u64("event seq", row.try_get("", "seq")?)?,
        hash: digest("event hash", row.try_get("", "hash")?)?,
        policy: policy
            .parse()
            .map_err(|e| StorageError::corrupt("policy id", e))?,
        version: to_u64("event version", row.try_get("", "version")?)?,
        op: row.try_get("", "op")?,
        subject: row.try_get("", "subject")?,
        event: row.try_get("", "event")?,
        applied: row.try_get("", "applied")?,
        via: row.try_get::<Option<String>>("", "via")?.map(NodeId),
        at: row.try_get("", "at")?,
    })
}

fn listing_from_row(row: &sea_orm::QueryResult) -> Result<Listing> {
    Ok(Listing {
        subject: row.try_get("", "subject")?,
        listed: row.try_get("", "listed")?,
        version: to_u64("listing version", row.try_get("", "version")?)?,
        reason: row.try_get("", "reason")?,
        expires: row.try_get("", "expires")?,
    })
}

async fn head_of(conn: &impl ConnectionTrait, id: &PolicyId) -> Result<Option<PolicyHead>> {
    let q = Query::select()
        .columns([Policies::Owner, Policies::Version, Policies::Head])
        .from(Policies::Table)
        .and_where(Expr::col(Policies::Id).eq(id.as_str()))
        .to_owned();
    match conn.query_one(&q).await? {
        None => Ok(None),
        Some(row) => Ok(Some(PolicyHead {
            owner: row.try_get("", "owner")?,
            version: to_u64("policy version", row.try_get("", "version")?)?,
            hash: digest("policy head", row.try_get("", "head")?)?,
        })),
    }
}

async fn held(conn: &impl ConnectionTrait, facts: &EventFacts) -> Result<Held> {
    let same = Query::select()
        .column(PolicyEvents::Seq)
        .from(PolicyEvents::Table)
        .and_where(Expr::col(PolicyEvents::Hash).eq(facts.hash.to_vec()))
        .to_owned();
    if conn.query_one(&same).await?.is_some() {
        return Ok(Held::Same);
    }
    let other = Query::select()
        .column(PolicyEvents::Seq)
        .from(PolicyEvents::Table)
        .and_where(Expr::col(PolicyEvents::PolicyId).eq(facts.policy.as_str()))
        .and_where(Expr::col(PolicyEvents::Version).eq(to_i64("version", facts.version)?))
        .and_where(Expr::col(PolicyEvents::Applied).eq(true))
        .to_owned();
    Ok(if conn.query_one(&other).await?.is_some() {
        Held::Other
    } else {
        Held::Nothing
    })
}

async fn insert_event(w: &mut WriteTx<'_>, write: &PolicyWrite, applied: bool) -> Result<u64> {
    let seq = w.change(ChangeKind::PolicyEvent, hex::encode(write.facts.hash));
    let insert = Query::insert()
        .into_table(PolicyEvents::Table)
        .columns(EVENT_COLUMNS)
        .values_panic([
            seq.into(),
            write.facts.hash.to_vec().into(),
            write.facts.policy.as_str().into(),
            to_i64("version", write.facts.version)?.into(),
            write.op.name().into(),
            write.op.subject().map(|s| s.to_string()).into(),
            write.bytes.clone().into(),
            applied.into(),
            write.via.as_ref().map(|v| v.0.clone()).into(),
            w.now().into(),
        ])
        .to_owned();
    w.conn().execute(&insert).await?;
    to_u64("event seq", seq)
}

/// Judges and writes `writes` in order inside `w` (see the module
/// documentation). Rejected events write nothing; the caller decides
/// whether one rejection abandons the whole transaction.
pub(super) async fn accept_events(
    w: &mut WriteTx<'_>,
    writes: &[PolicyWrite],
) -> Result<Vec<PolicyOutcome>> {
    let mut out = Vec::with_capacity(writes.len());
    for write in writes {
        let f = &write.facts;
        let head = head_of(w.conn(), &f.policy).await?;
        let held = held(w.conn(), f).await?;
        let outcome = match judge(head.as_ref(), held, f) {
            Verdict::Duplicate => PolicyOutcome::Duplicate,
            Verdict::Reject(r) => PolicyOutcome::Rejected(r),
            Verdict::Equivocation => {
                let seq = insert_event(w, write, false).await?;
                let q = Query::update()
                    .table(Policies::Table)
                    .value(Policies::Flagged, true)
                    .value(Policies::UpdatedAt, w.now())
                    .and_where(Expr::col(Policies::Id).eq(f.policy.as_str()))
                    .to_owned();
                w.conn().execute(&q).await?;
                PolicyOutcome::Equivocation(seq)
            }
            Verdict::Apply => {
                let seq = insert_event(w, write, true).await?;
                apply(w, write).await?;
                PolicyOutcome::Applied(seq)
            }
        };
        out.push(outcome);
    }
    Ok(out)
}

async fn apply(w: &mut WriteTx<'_>, write: &PolicyWrite) -> Result<()> {
    let f = &write.facts;
    let version = to_i64("version", f.version)?;
    let now = w.now();
    match &write.op {
        PolicyOp::Create {
            kind,
            title,
            description,
        } => {
            let insert = Query::insert()
                .into_table(Policies::Table)
                .columns(POLICY_COLUMNS)
                .values_panic([
                    f.policy.as_str().into(),
                    f.owner.clone().into(),
                    kind.as_str().into(),
                    title.clone().into(),
                    description.clone().into(),
                    version.into(),
                    f.hash.to_vec().into(),
                    false.into(),
                    now.into(),
                    now.into(),
                ])
                .to_owned();
            w.conn().execute(&insert).await?;
            return Ok(());
        }
        PolicyOp::List {
            subject,
            reason,
            expires,
        } => {
            upsert_listing(w, write, &subject.to_string(), true, reason, *expires).await?;
        }
        PolicyOp::Delist { subject, reason } => {
            upsert_listing(w, write, &subject.to_string(), false, reason, None).await?;
        }
    }
    let q = Query::update()
        .table(Policies::Table)
        .value(Policies::Version, version)
        .value(Policies::Head, f.hash.to_vec())
        .value(Policies::UpdatedAt, now)
        .and_where(Expr::col(Policies::Id).eq(f.policy.as_str()))
        .to_owned();
    w.conn().execute(&q).await?;
    Ok(())
}

async fn upsert_listing(
    w: &mut WriteTx<'_>,
    write: &PolicyWrite,
    subject: &str,
    listed: bool,
    reason: &str,
    expires: Option<DateTime<Utc>>,
) -> Result<()> {
    let insert = Query::insert()
        .into_table(PolicyListings::Table)
        .columns([
            PolicyListings::PolicyId,
            PolicyListings::Subject,
            PolicyListings::DnsKey,
            PolicyListings::Listed,
            PolicyListings::Version,
            PolicyListings::Reason,
            PolicyListings::Expires,
        ])
        .values_panic([
            write.facts.policy.as_str().into(),
            subject.into(),
            write.dns_key.clone().unwrap_or_default().into(),
            listed.into(),
            to_i64("version", write.facts.version)?.into(),
            reason.into(),
            expires.map(super::convert::ts).into(),
        ])
        .on_conflict(
            OnConflict::columns([PolicyListings::PolicyId, PolicyListings::Subject])
                .update_columns([
                    PolicyListings::Listed,
                    PolicyListings::Version,
                    PolicyListings::Reason,
                    PolicyListings::Expires,
                ])
                .to_owned(),
        )
        .to_owned();
    w.conn().execute(&insert).await?;
    Ok(())
}

fn webhook_from_row(row: sea_orm::QueryResult) -> Result<WebhookRow> {
    let policy: Option<String> = row.try_get("", "policy_id")?;
    Ok(WebhookRow {
        id: to_u64("webhook id", row.try_get("", "id")?)?,
        policy: policy
            .map(|p| p.parse().map_err(|e| StorageError::corrupt("policy id", e)))
            .transpose()?,
        url: row.try_get("", "url")?,
        cursor: to_u64("webhook cursor", row.try_get("", "cursor")?)?,
        attempts: u32::try_from(row.try_get::<i32>("", "attempts")?).unwrap_or(0),
        next_attempt_at: row.try_get("", "next_attempt_at")?,
        last_error: row.try_get("", "last_error")?,
        delivered: to_u64("delivered", row.try_get("", "delivered")?)?,
        dead_letters: to_u64("dead letters", row.try_get("", "dead_letters")?)?,
        created_at: row.try_get("", "created_at")?,
    })
}

impl Store {
    /// Accepts a batch of authentic events in ONE transaction, all or
    /// nothing: the first rejection abandons the batch and is returned
    /// with its index. Duplicates are fine. Returns the outcomes and the
    /// last change written.
    pub async fn policy_submit(
        &self,
        writes: &[PolicyWrite],
    ) -> Result<std::result::Result<(Vec<PolicyOutcome>, ChangeSeq), (usize, PolicyRejection)>>
    {
        let mut w = WriteTx::begin(self).await?;
        let outcomes = accept_events(&mut w, writes).await?;
        if let Some((i, r)) = outcomes.iter().enumerate().find_map(|(i, o)| match o {
            PolicyOutcome::Rejected(r) => Some((i, r.clone())),
            _ => None,
        }) {
            w.rollback().await?;
            return Ok(Err((i, r)));
        }
        let seq = w.commit().await?;
        Ok(Ok((outcomes, seq)))
    }

    /// Every policy, by id.
    pub async fn policies(&self) -> Result<Vec<PolicyRow>> {
        let q = Query::select()
            .columns(POLICY_COLUMNS)
            .from(Policies::Table)
            .order_by(Policies::Id, Order::Asc)
            .to_owned();
        self.db
            .query_all(&q)
            .await?
            .into_iter()
            .map(policy_from_row)
            .collect()
    }

    /// One policy.
    pub async fn policy(&self, id: &PolicyId) -> Result<Option<PolicyRow>> {
        let q = Query::select()
            .columns(POLICY_COLUMNS)
            .from(Policies::Table)
            .and_where(Expr::col(Policies::Id).eq(id.as_str()))
            .to_owned();
        self.db
            .query_one(&q)
            .await?
            .map(policy_from_row)
            .transpose()
    }

    /// A policy's applied events after `version`, in version order.
    pub async fn policy_events(
        &self,
        id: &PolicyId,
        after_version: u64,
        limit: u64,
    ) -> Result<Vec<PolicyEventRow>> {
        let q = Query::select()
            .columns(EVENT_COLUMNS)
            .from(PolicyEvents::Table)
            .and_where(Expr::col(PolicyEvents::PolicyId).eq(id.as_str()))
            .and_where(Expr::col(PolicyEvents::Applied).eq(true))
            .and_where(Expr::col(PolicyEvents::Version).gt(to_i64("after", after_version)?))
            .order_by(PolicyEvents::Version, Order::Asc)
            .limit(limit)
            .to_owned();
        self.db
            .query_all(&q)
            .await?
            .into_iter()
            .map(event_from_row)
            .collect()
    }

    /// Events of a policy kept as evidence of equivocation, and the
    /// applied events they contradict.
    pub async fn policy_evidence(&self, id: &PolicyId) -> Result<Vec<PolicyEventRow>> {
        let q = Query::select()
            .columns(EVENT_COLUMNS)
            .from(PolicyEvents::Table)
            .and_where(Expr::col(PolicyEvents::PolicyId).eq(id.as_str()))
            .and_where(Expr::col(PolicyEvents::Applied).eq(false))
            .order_by(PolicyEvents::Seq, Order::Asc)
            .to_owned();
        let evidence: Vec<PolicyEventRow> = self
            .db
            .query_all(&q)
            .await?
            .into_iter()
            .map(event_from_row)
            .collect::<Result<_>>()?;
        let mut out = Vec::new();
        for e in evidence {
            if let Some(applied) = self.policy_event_at(id, e.version).await? {
                out.push(applied);
            }
            out.push(e);
        }
        Ok(out)
    }

    /// The applied event at `version`.
    pub async fn policy_event_at(
        &self,
        id: &PolicyId,
        version: u64,
    ) -> Result<Option<PolicyEventRow>> {
        let q = Query::select()
            .columns(EVENT_COLUMNS)
            .from(PolicyEvents::Table)
            .and_where(Expr::col(PolicyEvents::PolicyId).eq(id.as_str()))
            .and_where(Expr::col(PolicyEvents::Version).eq(to_i64("version", version)?))
            .and_where(Expr::col(PolicyEvents::Applied).eq(true))
            .to_owned();
        self.db.query_one(&q).await?.map(event_from_row).transpose()
    }

    /// The event with this hash.
    pub async fn policy_event_by_hash(&self, hash: &[u8; 32]) -> Result<Option<PolicyEventRow>> {
        let q = Query::select()
            .columns(EVENT_COLUMNS)
            .from(PolicyEvents::Table)
            .and_where(Expr::col(PolicyEvents::Hash).eq(hash.to_vec()))
            .to_owned();
        self.db.query_one(&q).await?.map(event_from_row).transpose()
    }

    /// The all-policies feed after `after` (one policy's when `policy`).
    pub async fn policy_feed(
        &self,
        after: u64,
        limit: u64,
        policy: Option<&PolicyId>,
    ) -> Result<Vec<PolicyEventRow>> {
        let mut q = Query::select()
            .columns(EVENT_COLUMNS)
            .from(PolicyEvents::Table)
            .and_where(Expr::col(PolicyEvents::Seq).gt(to_i64("after", after)?))
            .order_by(PolicyEvents::Seq, Order::Asc)
            .limit(limit)
            .to_owned();
        if let Some(p) = policy {
            q.and_where(Expr::col(PolicyEvents::PolicyId).eq(p.as_str()));
        }
        self.db
            .query_all(&q)
            .await?
            .into_iter()
            .map(event_from_row)
            .collect()
    }

    /// The last feed position (0 when there is no event).
    pub async fn policy_feed_head(&self) -> Result<u64> {
        let q = Query::select()
            .expr_as(Expr::col(PolicyEvents::Seq).max(), "m")
            .from(PolicyEvents::Table)
            .to_owned();
        let m: Option<i64> = match self.db.query_one(&q).await? {
            Some(row) => row.try_get("", "m")?,
            None => None,
        };
        to_u64("feed head", m.unwrap_or(0))
    }

    /// How `subject` stands under a policy, if any event named it.
    pub async fn policy_listing(&self, id: &PolicyId, subject: &str) -> Result<Option<Listing>> {
        let q = Query::select()
            .columns([
                PolicyListings::Subject,
                PolicyListings::Listed,
                PolicyListings::Version,
                PolicyListings::Reason,
                PolicyListings::Expires,
            ])
            .from(PolicyListings::Table)
            .and_where(Expr::col(PolicyListings::PolicyId).eq(id.as_str()))
            .and_where(Expr::col(PolicyListings::Subject).eq(subject))
            .to_owned();
        self.db
            .query_one(&q)
            .await?
            .map(|r| listing_from_row(&r))
            .transpose()
    }

    /// Every listed subject of every policy (or of one): (policy, DNS key,
    /// listing). For the DNS view and the listings endpoint.
    pub async fn policy_listed(
        &self,
        policy: Option<&PolicyId>,
    ) -> Result<Vec<(PolicyId, String, Listing)>> {
        let mut q = Query::select()
            .columns([
                PolicyListings::PolicyId,
                PolicyListings::DnsKey,
                PolicyListings::Subject,
                PolicyListings::Listed,
                PolicyListings::Version,
                PolicyListings::Reason,
                PolicyListings::Expires,
            ])
            .from(PolicyListings::Table)
            .and_where(Expr::col(PolicyListings::Listed).eq(true))
            .order_by(PolicyListings::PolicyId, Order::Asc)
            .order_by(PolicyListings::Subject, Order::Asc)
            .to_owned();
        if let Some(p) = policy {
            q.and_where(Expr::col(PolicyListings::PolicyId).eq(p.as_str()));
        }
        let mut out = Vec::new();
        for row in self.db.query_all(&q).await? {
            let id: String = row.try_get("", "policy_id")?;
            out.push((
                id.parse()
                    .map_err(|e| StorageError::corrupt("policy id", e))?,
                row.try_get("", "dns_key")?,
                listing_from_row(&row)?,
            ));
        }
        Ok(out)
    }

    /// Adds a webhook that receives events after feed position `after`.
    pub async fn webhook_add(
        &self,
        policy: Option<&PolicyId>,
        url: &str,
        after: u64,
    ) -> Result<u64> {
        let w = WriteTx::begin(self).await?;
        let q = Query::insert()
            .into_table(PolicyWebhooks::Table)
            .columns([
                PolicyWebhooks::PolicyId,
                PolicyWebhooks::Url,
                PolicyWebhooks::Cursor,
                PolicyWebhooks::Attempts,
                PolicyWebhooks::Delivered,
                PolicyWebhooks::CreatedAt,
            ])
            .values_panic([
                policy.map(|p| p.as_str().to_owned()).into(),
                url.into(),
                to_i64("after", after)?.into(),
                0i32.into(),
                0i64.into(),
                w.now().into(),
            ])
            .returning_col(PolicyWebhooks::Id)
            .to_owned();
        let row = w
            .conn()
            .query_one(&q)
            .await?
            .ok_or_else(|| StorageError::corrupt("webhooks", "insert returned no id"))?;
        let id: i64 = row.try_get("", "id")?;
        w.commit().await?;
        to_u64("webhook id", id)
    }

    fn webhook_select() -> sea_orm::sea_query::SelectStatement {
        let dead = Query::select()
            .expr(Expr::col((PolicyDeadLetters::Table, PolicyDeadLetters::Id)).count())
            .from(PolicyDeadLetters::Table)
            .and_where(
                Expr::col((PolicyDeadLetters::Table, PolicyDeadLetters::WebhookId))
                    .equals((PolicyWebhooks::Table, PolicyWebhooks::Id)),
            )
            .to_owned();
        Query::select()
            .columns(
                [
                    PolicyWebhooks::Id,
                    PolicyWebhooks::PolicyId,
                    PolicyWebhooks::Url,
                    PolicyWebhooks::Cursor,
                    PolicyWebhooks::Attempts,
                    PolicyWebhooks::NextAttemptAt,
                    PolicyWebhooks::LastError,
                    PolicyWebhooks::Delivered,
                    PolicyWebhooks::CreatedAt,
                ]
                .map(|c| (PolicyWebhooks::Table, c)),
            )
            .expr_as(Expr::cust("0").add(dead), "dead_letters")
            .from(PolicyWebhooks::Table)
            .order_by((PolicyWebhooks::Table, PolicyWebhooks::Id), Order::Asc)
            .to_owned()
    }

    /// Every webhook.
    pub async fn webhooks(&self) -> Result<Vec<WebhookRow>> {
        self.db
            .query_all(&Self::webhook_select())
            .await?
            .into_iter()
            .map(webhook_from_row)
            .collect()
    }

    /// One webhook.
    pub async fn webhook(&self, id: u64) -> Result<Option<WebhookRow>> {
        let mut q = Self::webhook_select();
        q.and_where(Expr::col((PolicyWebhooks::Table, PolicyWebhooks::Id)).eq(to_i64("id", id)?));
        self.db
            .query_one(&q)
            .await?
            .map(webhook_from_row)
            .transpose()
    }

    /// Removes a webhook (and its dead letters). True when it existed.
    pub async fn webhook_delete(&self, id: u64) -> Result<bool> {
        let w = WriteTx::begin(self).await?;
        let id = to_i64("id", id)?;
        w.conn()
            .execute(
                &Query::delete()
                    .from_table(PolicyDeadLetters::Table)
                    .and_where(Expr::col(PolicyDeadLetters::WebhookId).eq(id))
                    .to_owned(),
            )
            .await?;
        let r = w
            .conn()
            .execute(
                &Query::delete()
                    .from_table(PolicyWebhooks::Table)
                    .and_where(Expr::col(PolicyWebhooks::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// The event at `seq` was delivered (or given up on, with `dead`:
    /// attempts and last error, recorded as a dead letter): the cursor
    /// moves to it.
    pub async fn webhook_advance(
        &self,
        id: u64,
        seq: u64,
        dead: Option<(u32, &str)>,
    ) -> Result<()> {
        let op = match dead {
            None => WebhookWrite::Delivered { id, seq },
            Some((attempts, error)) => WebhookWrite::DeadLetter {
                id,
                seq,
                attempts,
                error: error.to_owned(),
            },
        };
        self.webhook_apply(&[op]).await
    }

    /// A delivery failed: how many tries so far, when to try again, why.
    pub async fn webhook_failed(
        &self,
        id: u64,
        attempts: u32,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        self.webhook_apply(&[WebhookWrite::Failed {
            id,
            attempts,
            next_at,
            error: error.to_owned(),
        }])
        .await
    }

    /// Records what deliveries did, in order, in ONE transaction (the
    /// delivery tasks hand their outcomes to one writer, which batches
    /// them: a write per delivery would make SQLite the bound).
    pub async fn webhook_apply(&self, ops: &[WebhookWrite]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let w = WriteTx::begin(self).await?;
        for op in ops {
            let mut q = Query::update();
            q.table(PolicyWebhooks::Table);
            let id = match op {
                WebhookWrite::Delivered { id, seq } => {
                    q.value(PolicyWebhooks::Cursor, to_i64("seq", *seq)?)
                        .value(PolicyWebhooks::Attempts, 0i32)
                        .value(PolicyWebhooks::NextAttemptAt, None::<DateTime<Utc>>)
                        .value(PolicyWebhooks::LastError, None::<String>)
                        .value(
                            PolicyWebhooks::Delivered,
                            Expr::col(PolicyWebhooks::Delivered).add(1),
                        );
                    *id
                }
                WebhookWrite::Failed {
                    id,
                    attempts,
                    next_at,
                    error,
                } => {
                    q.value(PolicyWebhooks::Attempts, *attempts as i32)
                        .value(PolicyWebhooks::NextAttemptAt, super::convert::ts(*next_at))
                        .value(PolicyWebhooks::LastError, error.as_str());
                    *id
                }
                WebhookWrite::DeadLetter {
                    id,
                    seq,
                    attempts,
                    error,
                } => {
                    let insert = Query::insert()
                        .into_table(PolicyDeadLetters::Table)
                        .columns([
                            PolicyDeadLetters::WebhookId,
                            PolicyDeadLetters::EventSeq,
                            PolicyDeadLetters::Attempts,
                            PolicyDeadLetters::LastError,
                            PolicyDeadLetters::At,
                        ])
                        .values_panic([
                            to_i64("id", *id)?.into(),
                            to_i64("seq", *seq)?.into(),
                            (*attempts as i32).into(),
                            error.as_str().into(),
                            w.now().into(),
                        ])
                        .to_owned();
                    w.conn().execute(&insert).await?;
                    q.value(PolicyWebhooks::Cursor, to_i64("seq", *seq)?)
                        .value(PolicyWebhooks::Attempts, 0i32)
                        .value(PolicyWebhooks::NextAttemptAt, None::<DateTime<Utc>>);
                    *id
                }
            };
            q.and_where(Expr::col(PolicyWebhooks::Id).eq(to_i64("id", id)?));
            w.conn().execute(&q).await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// A webhook's dead letters, oldest first.
    pub async fn webhook_dead_letters(&self, id: u64) -> Result<Vec<DeadLetterRow>> {
        let q = Query::select()
            .columns([
                PolicyDeadLetters::WebhookId,
                PolicyDeadLetters::EventSeq,
                PolicyDeadLetters::Attempts,
                PolicyDeadLetters::LastError,
                PolicyDeadLetters::At,
            ])
            .from(PolicyDeadLetters::Table)
            .and_where(Expr::col(PolicyDeadLetters::WebhookId).eq(to_i64("id", id)?))
            .order_by(PolicyDeadLetters::Id, Order::Asc)
            .to_owned();
        let mut out = Vec::new();
        for row in self.db.query_all(&q).await? {
            out.push(DeadLetterRow {
                webhook: to_u64("webhook id", row.try_get("", "webhook_id")?)?,
                event_seq: to_u64("event seq", row.try_get("", "event_seq")?)?,
                attempts: u32::try_from(row.try_get::<i32>("", "attempts")?).unwrap_or(0),
                last_error: row.try_get("", "last_error")?,
                at: row.try_get("", "at")?,
            });
        }
        Ok(out)
    }
}
