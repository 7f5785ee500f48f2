//! The children this node pulls: their cursors and status, failures and
//! stops, rejections with their reasons, and their mirrored logs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};

use super::super::convert::{to_i64, to_u64};
use super::super::seq::{WriteTx, rows_per_insert};
use super::super::{StorageError, Store};
use super::{Digest, FedMirror, FedPeers, FedRejections, digest, node, now_ts};
use crate::domain::NodeId;

type Result<T> = std::result::Result<T, StorageError>;

/// Whether a child is being pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// Pulled on schedule and when it pings.
    Active,
    /// Its log contradicted what we hold (fork, rollback, broken chain):
    /// not pulled until an operator resumes it.
    Stopped,
}

impl PeerStatus {
    /// `active` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerStatus::Active => "active",
            PeerStatus::Stopped => "stopped",
        }
    }
}

/// A child as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// Its log key.
    pub peer: NodeId,
    /// Its base URL.
    pub url: String,
    /// A name for people.
    pub name: Option<String>,
    /// The last of its records applied.
    pub cursor: u64,
    /// That record's hash.
    pub cursor_hash: Digest,
    /// The key it signs with after the cursor.
    pub signer: NodeId,
    /// The longest head it has shown.
    pub head_seen: u64,
    /// Active or stopped.
    pub status: PeerStatus,
    /// Why it was stopped: code and detail.
    pub stop: Option<(String, String)>,
    /// When it was last asked.
    pub last_pull_at: Option<DateTime<Utc>>,
    /// When a pull last succeeded.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// The last failure: code and detail (cleared by a success).
    pub last_error: Option<(String, String)>,
    /// Failures since the last success.
    pub failures: u32,
}

/// A refusal as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionRow {
    /// Order of recording.
    pub id: i64,
    /// The child it concerns.
    pub peer: NodeId,
    /// The child's record, when one record was refused.
    pub seq: Option<u64>,
    /// The author of that record.
    pub author: Option<NodeId>,
    /// The author's sequence number.
    pub author_seq: Option<u64>,
    /// Stable code.
    pub code: String,
    /// For people.
    pub detail: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A record of a child's log as mirrored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredRecord {
    /// Its sequence number in the child's log.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
    /// The record.
    pub bytes: Vec<u8>,
    /// applied, quarantined.
    pub status: String,
    /// Who wrote what it says.
    pub author: NodeId,
    /// The author's sequence number.
    pub author_seq: u64,
}

const PEER_COLUMNS: [FedPeers; 15] = [
    FedPeers::Peer,
    FedPeers::Url,
    FedPeers::Name,
    FedPeers::Cursor,
    FedPeers::CursorHash,
    FedPeers::Signer,
    FedPeers::HeadSeen,
    FedPeers::Status,
    FedPeers::StopCode,
    FedPeers::StopDetail,
    FedPeers::LastPullAt,
    FedPeers::LastOkAt,
    FedPeers::LastErrorCode,
    FedPeers::LastError,
    FedPeers::Failures,
];

fn peer_from_row(row: sea_orm::QueryResult) -> Result<PeerRow> {
    let status: String = row.try_get("", "status")?;
    let pair = |a: Option<String>, b: Option<String>| a.map(|a| (a, b.unwrap_or_default()));
    Ok(PeerRow {
        peer: node(row.try_get("", "peer")?),
        url: row.try_get("", "url")?,
        name: row.try_get("", "name")?,
        cursor: to_u64("peer cursor", row.try_get("", "cursor")?)?,
        cursor_hash: digest("cursor hash", row.try_get("", "cursor_hash")?)?,
        signer: node(row.try_get("", "signer")?),
        head_seen: to_u64("head seen", row.try_get("", "head_seen")?)?,
        status: if status == "stopped" {
            PeerStatus::Stopped
        } else {
            PeerStatus::Active
        },
        stop: pair(
            row.try_get("", "stop_code")?,
            row.try_get("", "stop_detail")?,
        ),
        last_pull_at: row.try_get("", "last_pull_at")?,
        last_ok_at: row.try_get("", "last_ok_at")?,
        last_error: pair(
            row.try_get("", "last_error_code")?,
            row.try_get("", "last_error")?,
        ),
        failures: u32::try_from(row.try_get::<i32>("", "failures")?).unwrap_or(0),
    })
}

pub(super) async fn insert_rejections(
    conn: &impl ConnectionTrait,
    rows: &[RejectionRow],
) -> Result<()> {
    let cols = [
        FedRejections::Peer,
        FedRejections::Seq,
        FedRejections::Author,
        FedRejections::AuthorSeq,
        FedRejections::Code,
        FedRejections::Detail,
        FedRejections::At,
    ];
    for chunk in rows.chunks(rows_per_insert(cols.len())) {
        let mut insert = Query::insert();
        insert.into_table(FedRejections::Table).columns(cols);
        for r in chunk {
            insert.values_panic([
                r.peer.0.clone().into(),
                r.seq.map(|s| to_i64("seq", s)).transpose()?.into(),
                r.author.as_ref().map(|a| a.0.clone()).into(),
                r.author_seq.map(|s| to_i64("seq", s)).transpose()?.into(),
                r.code.clone().into(),
                r.detail.clone().into(),
                now_ts(r.at).into(),
            ]);
        }
        conn.execute(&insert).await?;
    }
    Ok(())
}

impl Store {
    /// Adds a child to pull, or changes its URL and name (its cursor stays).
    /// Returns true when it is new.
    pub async fn fed_add_peer(
        &self,
        peer: &NodeId,
        url: &str,
        name: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let w = WriteTx::begin(self).await?;
        let exists = w
            .conn()
            .query_one(
                &Query::select()
                    .column(FedPeers::Peer)
                    .from(FedPeers::Table)
                    .and_where(Expr::col(FedPeers::Peer).eq(peer.0.as_str()))
                    .to_owned(),
            )
            .await?
            .is_some();
        if exists {
            let q = Query::update()
                .table(FedPeers::Table)
                .value(FedPeers::Url, url)
                .value(FedPeers::Name, name.map(str::to_owned))
                .and_where(Expr::col(FedPeers::Peer).eq(peer.0.as_str()))
                .to_owned();
            w.conn().execute(&q).await?;
        } else {
            let q = Query::insert()
                .into_table(FedPeers::Table)
                .columns([
                    FedPeers::Peer,
                    FedPeers::Url,
                    FedPeers::Name,
                    FedPeers::Cursor,
                    FedPeers::CursorHash,
                    FedPeers::Signer,
                    FedPeers::HeadSeen,
                    FedPeers::Status,
                    FedPeers::Failures,
                    FedPeers::AddedAt,
                ])
                .values_panic([
                    peer.0.clone().into(),
                    url.into(),
                    name.map(str::to_owned).into(),
                    0i64.into(),
                    vec![0u8; 32].into(),
                    peer.0.clone().into(),
                    0i64.into(),
                    PeerStatus::Active.as_str().into(),
                    0i32.into(),
                    now_ts(at).into(),
                ])
                .to_owned();
            w.conn().execute(&q).await?;
        }
        w.commit().await?;
        Ok(!exists)
    }

    /// Every child, by key.
    pub async fn fed_peers(&self) -> Result<Vec<PeerRow>> {
        let q = Query::select()
            .columns(PEER_COLUMNS)
            .from(FedPeers::Table)
            .order_by(FedPeers::Peer, Order::Asc)
            .to_owned();
        self.db
            .query_all(&q)
            .await?
            .into_iter()
            .map(peer_from_row)
            .collect()
    }

    /// One child.
    pub async fn fed_peer(&self, peer: &NodeId) -> Result<Option<PeerRow>> {
        let q = Query::select()
            .columns(PEER_COLUMNS)
            .from(FedPeers::Table)
            .and_where(Expr::col(FedPeers::Peer).eq(peer.0.as_str()))
            .to_owned();
        self.db.query_one(&q).await?.map(peer_from_row).transpose()
    }

    /// A pull found nothing new: the child answered at `at` with a head of
    /// `head_seen` records.
    pub async fn fed_peer_polled(
        &self,
        peer: &NodeId,
        head_seen: u64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let w = WriteTx::begin(self).await?;
        let q = Query::update()
            .table(FedPeers::Table)
            .value(FedPeers::HeadSeen, to_i64("head", head_seen)?)
            .value(FedPeers::LastPullAt, now_ts(at))
            .value(FedPeers::LastOkAt, now_ts(at))
            .value(FedPeers::LastErrorCode, None::<String>)
            .value(FedPeers::LastError, None::<String>)
            .value(FedPeers::Failures, 0i32)
            .and_where(Expr::col(FedPeers::Peer).eq(peer.0.as_str()))
            .to_owned();
        w.conn().execute(&q).await?;
        w.commit().await?;
        Ok(())
    }

    /// A pull failed with nothing applied. The reason is recorded as a
    /// rejection unless it repeats the last failure word for word.
    pub async fn fed_peer_failed(
        &self,
        peer: &NodeId,
        code: &str,
        detail: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let w = WriteTx::begin(self).await?;
        let current = w
            .conn()
            .query_one(
                &Query::select()
                    .columns([FedPeers::LastErrorCode, FedPeers::LastError])
                    .from(FedPeers::Table)
                    .and_where(Expr::col(FedPeers::Peer).eq(peer.0.as_str()))
                    .to_owned(),
            )
            .await?;
        let repeat = match current {
            Some(row) => {
                row.try_get::<Option<String>>("", "last_error_code")?
                    .as_deref()
                    == Some(code)
                    && row.try_get::<Option<String>>("", "last_error")?.as_deref() == Some(detail)
            }
            None => false,
        };
        let q = Query::update()
            .table(FedPeers::Table)
            .value(FedPeers::LastPullAt, now_ts(at))
            .value(FedPeers::LastErrorCode, code)
            .value(FedPeers::LastError, detail)
            .value(FedPeers::Failures, Expr::col(FedPeers::Failures).add(1))
            .and_where(Expr::col(FedPeers::Peer).eq(peer.0.as_str()))
            .to_owned();
        w.conn().execute(&q).await?;
        if !repeat {
            insert_rejections(
                w.conn(),
                &[RejectionRow {
                    id: 0,
                    peer: peer.clone(),
                    seq: None,
                    author: None,
                    author_seq: None,
                    code: code.into(),
                    detail: detail.into(),
                    at,
                }],
            )
            .await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Stops pulling a child and records why.
    pub async fn fed_peer_stop(
        &self,
        peer: &NodeId,
        code: &str,
        detail: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let w = WriteTx::begin(self).await?;
        let q = Query::update()
            .table(FedPeers::Table)
            .value(FedPeers::Status, PeerStatus::Stopped.as_str())
            .value(FedPeers::StopCode, code)
            .value(FedPeers::StopDetail, detail)
            .value(FedPeers::LastPullAt, now_ts(at))
            .value(FedPeers::LastErrorCode, code)
            .value(FedPeers::LastError, detail)
            .and_where(Expr::col(FedPeers::Peer).eq(peer.0.as_str()))
            .to_owned();
        w.conn().execute(&q).await?;
        insert_rejections(
            w.conn(),
            &[RejectionRow {
                id: 0,
                peer: peer.clone(),
                seq: None,
                author: None,
                author_seq: None,
                code: code.into(),
                detail: detail.into(),
                at,
            }],
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Resumes a stopped child (an operator's decision after a fork or
    /// rollback has been dealt with). Its cursor is unchanged.
    pub async fn fed_peer_resume(&self, peer: &NodeId) -> Result<bool> {
        let w = WriteTx::begin(self).await?;
        let q = Query::update()
            .table(FedPeers::Table)
            .value(FedPeers::Status, PeerStatus::Active.as_str())
            .value(FedPeers::StopCode, None::<String>)
            .value(FedPeers::StopDetail, None::<String>)
            .value(FedPeers::Failures, 0i32)
            .and_where(Expr::col(FedPeers::Peer).eq(peer.0.as_str()))
            .to_owned();
        let done = w.conn().execute(&q).await?.rows_affected() > 0;
        w.commit().await?;
        Ok(done)
    }

    /// The latest `limit` rejections, newest first, of one child or all.
    pub async fn fed_rejections(
        &self,
        peer: Option<&NodeId>,
        limit: u64,
    ) -> Result<Vec<RejectionRow>> {
        let mut q = Query::select()
            .columns([
                FedRejections::Id,
                FedRejections::Peer,
                FedRejections::Seq,
                FedRejections::Author,
                FedRejections::AuthorSeq,
                FedRejections::Code,
                FedRejections::Detail,
                FedRejections::At,
            ])
            .from(FedRejections::Table)
            .order_by(FedRejections::Id, Order::Desc)
            .limit(limit.clamp(1, super::super::MAX_PAGE))
            .to_owned();
        if let Some(p) = peer {
            q.and_where(Expr::col(FedRejections::Peer).eq(p.0.as_str()));
        }
        self.db
            .query_all(&q)
            .await?
            .into_iter()
            .map(|row| {
                Ok(RejectionRow {
                    id: row.try_get("", "id")?,
                    peer: node(row.try_get("", "peer")?),
                    seq: row
                        .try_get::<Option<i64>>("", "seq")?
                        .map(|s| to_u64("seq", s))
                        .transpose()?,
                    author: row.try_get::<Option<String>>("", "author")?.map(node),
                    author_seq: row
                        .try_get::<Option<i64>>("", "author_seq")?
                        .map(|s| to_u64("seq", s))
                        .transpose()?,
                    code: row.try_get("", "code")?,
                    detail: row.try_get("", "detail")?,
                    at: row.try_get("", "at")?,
                })
            })
            .collect()
    }

    /// The hashes of a child's mirrored records at these sequence numbers.
    pub async fn fed_mirror_hashes(
        &self,
        peer: &NodeId,
        seqs: &[u64],
    ) -> Result<HashMap<u64, Digest>> {
        let mut out = HashMap::new();
        let seqs: Vec<i64> = seqs
            .iter()
            .map(|s| to_i64("seq", *s))
            .collect::<Result<_>>()?;
        for chunk in seqs.chunks(rows_per_insert(1)) {
            let q = Query::select()
                .columns([FedMirror::Seq, FedMirror::Hash])
                .from(FedMirror::Table)
                .and_where(Expr::col(FedMirror::Peer).eq(peer.0.as_str()))
                .and_where(Expr::col(FedMirror::Seq).is_in(chunk.iter().copied()))
                .to_owned();
            for row in self.db.query_all(&q).await? {
                out.insert(
                    to_u64("seq", row.try_get("", "seq")?)?,
                    digest("mirror hash", row.try_get("", "hash")?)?,
                );
            }
        }
        Ok(out)
    }

    /// Up to `limit` mirrored records of a child after `after`, in order.
    pub async fn fed_mirror_page(
        &self,
        peer: &NodeId,
        after: u64,
        limit: u64,
    ) -> Result<Vec<MirroredRecord>> {
        let q = Query::select()
            .columns([
                FedMirror::Seq,
                FedMirror::Hash,
                FedMirror::Record,
                FedMirror::Status,
                FedMirror::Author,
                FedMirror::AuthorSeq,
            ])
            .from(FedMirror::Table)
            .and_where(Expr::col(FedMirror::Peer).eq(peer.0.as_str()))
            .and_where(Expr::col(FedMirror::Seq).gt(to_i64("seq", after)?))
            .order_by(FedMirror::Seq, Order::Asc)
            .limit(limit.clamp(1, super::super::MAX_PAGE))
            .to_owned();
        self.db
            .query_all(&q)
            .await?
            .into_iter()
            .map(|row| {
                Ok(MirroredRecord {
                    seq: to_u64("seq", row.try_get("", "seq")?)?,
                    hash: digest("mirror hash", row.try_get("", "hash")?)?,
                    bytes: row.try_get("", "record")?,
                    status: row.try_get("", "status")?,
                    author: node(row.try_get("", "author")?),
                    author_seq: to_u64("seq", row.try_get("", "author_seq")?)?,
                })
            })
            .collect()
    }

    /// How many of a child's mirrored records were applied and quarantined.
    pub async fn fed_mirror_counts(&self, peer: &NodeId) -> Result<(u64, u64)> {
        let q = Query::select()
            .column(FedMirror::Status)
            .expr_as(Expr::col(FedMirror::Seq).count(), "n")
            .from(FedMirror::Table)
            .and_where(Expr::col(FedMirror::Peer).eq(peer.0.as_str()))
            .group_by_col(FedMirror::Status)
            .to_owned();
        let (mut applied, mut quarantined) = (0, 0);
        for row in self.db.query_all(&q).await? {
            let status: String = row.try_get("", "status")?;
            let n = to_u64("count", row.try_get("", "n")?)?;
            if status == "applied" {
                applied += n;
            } else {
                quarantined += n;
            }
        }
        Ok((applied, quarantined))
    }
}
