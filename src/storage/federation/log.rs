//! This node's own log: its tip (last record and Merkle frontier), pages
//! of it, Merkle nodes for proofs, and appends. Every append runs inside a
//! [`WriteTx`], which serialises writers, and is handed the tip as of that
//! transaction.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, OnConflict, Order, Query};

use super::super::convert::{to_i64, to_u64};
use super::super::seq::{WriteTx, rows_per_insert};
use super::super::{StorageError, Store};
use super::state::{state_get, state_set};
use super::{Digest, FedLog, FedMerkle, FedPublished, digest, now_ts};
use crate::domain::{ChangeSeq, NodeId};

type Result<T> = std::result::Result<T, StorageError>;

/// The name in `fed_state` of the publisher's position in the change sequence.
pub(super) const PUBLISH_CURSOR: &str = "publish_cursor";

/// A perfect subtree of the log's Merkle tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerkleNode {
    /// Height (0 = leaf).
    pub level: u8,
    /// Position among subtrees of this height.
    pub index: u64,
    /// Its hash.
    pub hash: Digest,
}

/// The end of the log as a transaction sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTip {
    /// Number of records (the last sequence number).
    pub size: u64,
    /// Hash of the last record; zeros for an empty log.
    pub last_hash: Digest,
    /// The Merkle frontier for `size`: one node per one-bit, highest first.
    pub frontier: Vec<MerkleNode>,
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Must continue the log: tip size + 1, + 2, ...
    pub seq: u64,
    /// SHA-256 of `bytes`.
    pub hash: Digest,
    /// The signed record.
    pub bytes: Vec<u8>,
    /// Its body type.
    pub body_type: u16,
    /// Who authored what it says.
    pub author: NodeId,
    /// The author's sequence number for it.
    pub author_seq: u64,
    /// Entry key or organisation id, for people.
    pub subject: Option<String>,
}

/// What an append writes: records and the Merkle nodes they complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogAppend {
    /// New records, in order.
    pub records: Vec<LogEntry>,
    /// Perfect subtrees the new leaves complete.
    pub nodes: Vec<MerkleNode>,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
    /// The signed record.
    pub bytes: Vec<u8>,
}

/// One thing the publisher has (re)published or withdrawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishItem {
    /// `e:<entry key>` or `o:<organisation id>`.
    pub key: String,
    /// Digest of what was published; `None` when withdrawn.
    pub digest: Option<Digest>,
}

/// The Merkle frontier positions for a tree of `size` leaves, highest first.
fn frontier_refs(size: u64) -> Vec<(u8, u64)> {
    (0..64u8)
        .rev()
        .filter(|l| size >> l & 1 == 1)
        .map(|l| (l, (size >> l) - 1))
        .collect()
}

async fn read_nodes(
    conn: &impl ConnectionTrait,
    refs: &[(u8, u64)],
) -> Result<HashMap<(u8, u64), Digest>> {
    let mut out = HashMap::with_capacity(refs.len());
    for chunk in refs.chunks(200) {
        let mut any = Condition::any();
        for &(level, index) in chunk {
            any = any.add(
                Expr::col(FedMerkle::Level)
                    .eq(i32::from(level))
                    .and(Expr::col(FedMerkle::Idx).eq(to_i64("merkle index", index)?)),
            );
        }
        let q = Query::select()
            .columns([FedMerkle::Level, FedMerkle::Idx, FedMerkle::Hash])
            .from(FedMerkle::Table)
            .cond_where(any)
            .to_owned();
        for row in conn.query_all(&q).await? {
            let level: i16 = row.try_get("", "level")?;
            let index: i64 = row.try_get("", "idx")?;
            let level = u8::try_from(level)
                .map_err(|_| StorageError::corrupt("merkle node", "bad level"))?;
            out.insert(
                (level, to_u64("merkle index", index)?),
                digest("merkle node", row.try_get("", "hash")?)?,
            );
        }
    }
    Ok(out)
}

pub(super) async fn read_tip(conn: &impl ConnectionTrait) -> Result<LogTip> {
    let q = Query::select()
        .columns([FedLog::Seq, FedLog::Hash])
        .from(FedLog::Table)
        .order_by(FedLog::Seq, Order::Desc)
        .limit(1)
        .to_owned();
    let (size, last_hash) = match conn.query_one(&q).await? {
        Some(row) => (
            to_u64("log seq", row.try_get("", "seq")?)?,
            digest("log hash", row.try_get("", "hash")?)?,
        ),
        None => (0, [0; 32]),
    };
    let refs = frontier_refs(size);
    let nodes = read_nodes(conn, &refs).await?;
    let frontier = refs
        .into_iter()
        .map(|(level, index)| {
            nodes
                .get(&(level, index))
                .map(|&hash| MerkleNode { level, index, hash })
                .ok_or_else(|| {
                    StorageError::corrupt(
                        "merkle frontier",
                        format!("node {level}/{index} missing"),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LogTip {
        size,
        last_hash,
        frontier,
    })
}

/// Writes `append` after `tip` inside `w`; refuses records that do not
/// continue the log.
pub(super) async fn write_append(w: &WriteTx<'_>, tip: &LogTip, append: LogAppend) -> Result<()> {
    let at = now_ts(w.now());
    for (expected, r) in (tip.size + 1..).zip(&append.records) {
        if r.seq != expected {
            return Err(StorageError::corrupt(
                "log append",
                format!("record {} does not continue the log at {expected}", r.seq),
            ));
        }
    }
    let cols = [
        FedLog::Seq,
        FedLog::Hash,
        FedLog::Record,
        FedLog::BodyType,
        FedLog::Author,
        FedLog::AuthorSeq,
        FedLog::Subject,
        FedLog::At,
    ];
    for chunk in append.records.chunks(rows_per_insert(cols.len()).min(500)) {
        let mut insert = Query::insert();
        insert.into_table(FedLog::Table).columns(cols);
        for r in chunk {
            insert.values_panic([
                to_i64("log seq", r.seq)?.into(),
                r.hash.to_vec().into(),
                r.bytes.clone().into(),
                i32::from(r.body_type).into(),
                r.author.0.clone().into(),
                to_i64("author seq", r.author_seq)?.into(),
                r.subject.clone().into(),
                at.into(),
            ]);
        }
        w.conn().execute(&insert).await?;
    }
    for chunk in append.nodes.chunks(rows_per_insert(3)) {
        let mut insert = Query::insert();
        insert.into_table(FedMerkle::Table).columns([
            FedMerkle::Level,
            FedMerkle::Idx,
            FedMerkle::Hash,
        ]);
        for n in chunk {
            insert.values_panic([
                i32::from(n.level).into(),
                to_i64("merkle index", n.index)?.into(),
                n.hash.to_vec().into(),
            ]);
        }
        w.conn().execute(&insert).await?;
    }
    Ok(())
}

fn stored(row: sea_orm::QueryResult) -> Result<StoredRecord> {
    Ok(StoredRecord {
        seq: to_u64("log seq", row.try_get("", "seq")?)?,
        hash: digest("log hash", row.try_get("", "hash")?)?,
        bytes: row.try_get("", "record")?,
    })
}

impl Store {
    /// The tip of this node's log.
    pub async fn fed_log_tip(&self) -> Result<LogTip> {
        read_tip(&self.db).await
    }

    /// Up to `limit` records after `after`, and the tip read in the same
    /// snapshot (so the tip is never behind the records).
    pub async fn fed_log_page(
        &self,
        after: u64,
        limit: u64,
    ) -> Result<(Vec<StoredRecord>, LogTip)> {
        let tx = self.begin_read().await?;
        let q = Query::select()
            .columns([FedLog::Seq, FedLog::Hash, FedLog::Record])
            .from(FedLog::Table)
            .and_where(Expr::col(FedLog::Seq).gt(to_i64("log seq", after)?))
            .order_by(FedLog::Seq, Order::Asc)
            .limit(limit.clamp(1, super::super::MAX_PAGE))
            .to_owned();
        let records = tx
            .query_all(&q)
            .await?
            .into_iter()
            .map(stored)
            .collect::<Result<Vec<_>>>()?;
        let tip = read_tip(&tx).await?;
        tx.commit().await?;
        Ok((records, tip))
    }

    /// The record at `seq`, if the log is that long.
    pub async fn fed_log_record(&self, seq: u64) -> Result<Option<StoredRecord>> {
        let q = Query::select()
            .columns([FedLog::Seq, FedLog::Hash, FedLog::Record])
            .from(FedLog::Table)
            .and_where(Expr::col(FedLog::Seq).eq(to_i64("log seq", seq)?))
            .to_owned();
        self.db.query_one(&q).await?.map(stored).transpose()
    }

    /// The Merkle nodes asked for (those that exist).
    pub async fn fed_merkle_nodes(&self, refs: &[(u8, u64)]) -> Result<HashMap<(u8, u64), Digest>> {
        read_nodes(&self.db, refs).await
    }

    /// Appends what `build` makes of the tip, in one transaction; returns
    /// the tip before the append.
    pub async fn fed_append(
        &self,
        build: impl FnOnce(&LogTip) -> std::result::Result<LogAppend, String>,
    ) -> Result<LogTip> {
        let w = WriteTx::begin(self).await?;
        let tip = read_tip(w.conn()).await?;
        let append = build(&tip).map_err(|e| StorageError::corrupt("log append", e))?;
        write_append(&w, &tip, append).await?;
        w.commit().await?;
        Ok(tip)
    }

    /// The publisher's position in the change sequence.
    pub async fn fed_publish_cursor(&self) -> Result<ChangeSeq> {
        Ok(ChangeSeq(
            state_get(&self.db, PUBLISH_CURSOR)
                .await?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Of the entries with these keys, those that are public and whose
    /// origin is one of `origins` (this node's keys): what the publisher
    /// may publish. One indexed query, no certificates read.
    pub async fn fed_local_public(
        &self,
        keys: &[String],
        origins: &[NodeId],
    ) -> Result<Vec<String>> {
        use super::super::entity::entry;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        let mut out = Vec::new();
        for chunk in keys.chunks(rows_per_insert(1) - origins.len()) {
            let rows: Vec<String> = entry::Entity::find()
                .select_only()
                .column(entry::Column::Key)
                .filter(entry::Column::Key.is_in(chunk.iter().cloned()))
                .filter(entry::Column::Visibility.eq("public"))
                .filter(entry::Column::Origin.is_in(origins.iter().map(|o| o.0.clone())))
                .into_tuple()
                .all(&self.db)
                .await?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// What was last published for `keys` (see [`PublishItem::key`]).
    pub async fn fed_published(&self, keys: &[String]) -> Result<HashMap<String, Digest>> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(rows_per_insert(1)) {
            let q = Query::select()
                .columns([FedPublished::Key, FedPublished::Digest])
                .from(FedPublished::Table)
                .and_where(Expr::col(FedPublished::Key).is_in(chunk.iter().cloned()))
                .to_owned();
            for row in self.db.query_all(&q).await? {
                out.insert(
                    row.try_get("", "key")?,
                    digest("published digest", row.try_get("", "digest")?)?,
                );
            }
        }
        Ok(out)
    }

    /// Publishes: moves the publisher's cursor from `from` to `to`, records
    /// `items`, and appends what `build` makes, all in one transaction.
    /// `None` (and nothing written) when the cursor was no longer `from`:
    /// another publisher got there first.
    pub async fn fed_publish(
        &self,
        from: ChangeSeq,
        to: ChangeSeq,
        items: &[PublishItem],
        build: impl FnOnce(&LogTip) -> std::result::Result<LogAppend, String>,
    ) -> Result<Option<LogTip>> {
        let w = WriteTx::begin(self).await?;
        let current = state_get(w.conn(), PUBLISH_CURSOR)
            .await?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if current != from.0 {
            w.rollback().await?;
            return Ok(None);
        }
        let tip = read_tip(w.conn()).await?;
        let append = build(&tip).map_err(|e| StorageError::corrupt("log append", e))?;
        write_append(&w, &tip, append).await?;
        let (withdrawn, published): (Vec<_>, Vec<_>) =
            items.iter().partition(|i| i.digest.is_none());
        for chunk in withdrawn.chunks(rows_per_insert(1)) {
            let q = Query::delete()
                .from_table(FedPublished::Table)
                .and_where(Expr::col(FedPublished::Key).is_in(chunk.iter().map(|i| i.key.clone())))
                .to_owned();
            w.conn().execute(&q).await?;
        }
        for chunk in published.chunks(rows_per_insert(2)) {
            let mut insert = Query::insert();
            insert
                .into_table(FedPublished::Table)
                .columns([FedPublished::Key, FedPublished::Digest])
                .on_conflict(
                    OnConflict::column(FedPublished::Key)
                        .update_column(FedPublished::Digest)
                        .to_owned(),
                );
            for i in chunk {
                insert.values_panic([
                    i.key.clone().into(),
                    i.digest.unwrap_or_default().to_vec().into(),
                ]);
            }
            w.conn().execute(&insert).await?;
        }
        state_set(w.conn(), PUBLISH_CURSOR, &to.0.to_string()).await?;
        w.commit().await?;
        Ok(Some(tip))
    }
}

#[cfg(test)]
mod tests {
    use super::frontier_refs;

    #[test]
    fn frontier_positions() {
        assert_eq!(frontier_refs(0), vec![]);
        assert_eq!(frontier_refs(6), vec![(2, 0), (1, 2)]);
        assert_eq!(frontier_refs(7), vec![(2, 0), (1, 2), (0, 6)]);
    }
}
