//! Reading the change sequence.
//!
//! Numbers are handed out in commit order (see `seq`), so a reader that
//! pages with `changes_since(last_applied, n)` never misses a change that
//! commits later with a smaller number. Numbers may have gaps; readers must
//! not wait for a missing number.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::convert::{to_i64, to_u64};
use super::entity::{change, counter};
use super::seq::CHANGE_COUNTER;
use super::{MAX_PAGE, StorageError, Store};
use crate::domain::{Change, ChangeSeq};

type Result<T> = std::result::Result<T, StorageError>;

impl Store {
    /// The number of the last committed change (`ChangeSeq(0)` before any).
    pub async fn head_seq(&self) -> Result<ChangeSeq> {
        let row = counter::Entity::find_by_id(CHANGE_COUNTER.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                StorageError::corrupt(
                    "counters",
                    "the change counter row is missing; run migrations",
                )
            })?;
        Ok(ChangeSeq(to_u64("change counter", row.value)?))
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) changes after `after`, in order.
    pub async fn changes_since(&self, after: ChangeSeq, limit: u64) -> Result<Vec<Change>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let after = to_i64("change sequence", after.0)?;
        // Readers catch up thousands of changes a round: on an SQLite file
        // they are read outside the pool (see `direct.rs`).
        let rows = match self.changes_direct(after, to_i64("change page", limit)?) {
            Some(read) => read.await?,
            None => change::Entity::find()
                .filter(change::Column::Seq.gt(after))
                .order_by_asc(change::Column::Seq)
                .limit(limit)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|r| (r.seq, r.kind, r.key))
                .collect(),
        };
        rows.into_iter()
            .map(|(seq, kind, key)| {
                Ok(Change {
                    seq: ChangeSeq(to_u64("change sequence", seq)?),
                    kind: kind
                        .parse()
                        .map_err(|e| StorageError::corrupt("change kind", e))?,
                    key,
                })
            })
            .collect()
    }
}
