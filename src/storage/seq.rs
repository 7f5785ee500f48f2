//! Write transactions and the change sequence.
//!
//! Every write goes through [`WriteTx`]. Its first statement is
//!
//! ```sql
//! UPDATE counters SET value = value + 0 WHERE name = 'change' RETURNING value
//! ```
//!
//! which takes the counter row's lock (PostgreSQL) or the database write lock
//! (SQLite, where the transaction is `BEGIN IMMEDIATE` anyway) and reads the
//! current head. The lock is held until commit, so writers run one after the
//! other and each numbers its changes `head + 1, head + 2, ...`. At commit
//! the counter is set to the last number used and the `changes` rows are
//! inserted, in the same transaction as the data they describe.
//!
//! Why not a database sequence or autoincrement: on PostgreSQL those hand out
//! numbers in *start* order. Transaction A takes 5, B takes 6 and commits
//! first; a reader that has applied 6 would never see 5 appear. With the row
//! lock, B cannot even read the head until A has committed, so number order
//! is commit order on both backends, and a reader that has applied N never
//! later sees a committed change below N. Readers still treat the sequence as
//! gap-tolerant: nothing promises that every number is used.
//!
//! The same lock makes read-modify-write inside a write transaction safe
//! (reading an entry's version, then writing version + 1): no other writer
//! can run between the read and the write, at READ COMMITTED on PostgreSQL
//! and on SQLite alike.
//!
//! On SQLite the store also serialises its own writers with an in-process
//! mutex before `BEGIN IMMEDIATE`, so that they queue in Tokio rather than
//! spin in SQLite's busy handler (which sleeps in steps of up to 100 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use tokio::sync::MutexGuard;

use super::convert::ts;
use super::entity::{change, counter};
use super::{Backend, StorageError, Store};
use crate::domain::{ChangeKind, ChangeSeq};

type Result<T> = std::result::Result<T, StorageError>;

/// The name of the counter row that numbers changes.
pub const CHANGE_COUNTER: &str = "change";

/// Bound parameters per statement: below SQLite's limit of 32 766 and
/// PostgreSQL's 65 535, and large enough that per-statement overhead
/// disappears in bulk writes.
const MAX_PARAMS: usize = 30_000;

/// How many rows of `columns` columns fit one multi-row `INSERT`.
pub const fn rows_per_insert(columns: usize) -> usize {
    MAX_PARAMS / columns
}

/// An open write transaction holding the change counter.
pub struct WriteTx<'s> {
    // Field order matters: the transaction is dropped (rolled back) before
    // the in-process write lock is released.
    tx: DatabaseTransaction,
    head: i64,
    pending: Vec<(ChangeKind, String)>,
    at: DateTime<Utc>,
    _serial: Option<MutexGuard<'s, ()>>,
    _open: Open,
}

/// The time write transactions have been open, summed (shared by a
/// store's clones). On SQLite, where they run one at a time, set against
/// the wall time it says how busy the single writer is.
#[derive(Clone, Default)]
pub(super) struct WriteTime(Arc<AtomicU64>);

impl WriteTime {
    fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// Adds the time from its making to its drop to a [`WriteTime`].
struct Open {
    since: Instant,
    total: WriteTime,
}

impl Drop for Open {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        (self.total.0).fetch_add(nanos, Ordering::Relaxed);
    }
}

impl Store {
    /// How long this process's write transactions have been open, in all
    /// (from taking the write lock to commit or rollback).
    pub fn write_time(&self) -> Duration {
        self.write_time.get()
    }
}

impl<'s> WriteTx<'s> {
    /// Begins a write transaction and takes the counter lock.
    pub async fn begin(store: &'s Store) -> Result<Self> {
        let serial = match store.backend {
            Backend::Sqlite => Some(store.write_lock.lock().await),
            Backend::Postgres => None,
        };
        let open = Open {
            since: Instant::now(),
            total: store.write_time.clone(),
        };
        let tx = store
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        let head = bump_counter(&tx, Expr::col(counter::Column::Value)).await?;
        Ok(WriteTx {
            tx,
            head,
            pending: Vec::new(),
            at: ts(store.clock.now()),
            _serial: serial,
            _open: open,
        })
    }

    /// The connection to run statements on.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.tx
    }

    /// The time this write is recorded at.
    pub fn now(&self) -> DateTime<Utc> {
        self.at
    }

    /// Records a change and returns the number it will carry.
    pub fn change(&mut self, kind: ChangeKind, key: String) -> i64 {
        self.pending.push((kind, key));
        self.head + self.pending.len() as i64
    }

    /// Writes the counter and the change rows, and commits. Returns the last
    /// change of this transaction, or the current head if there was none.
    pub async fn commit(self) -> Result<ChangeSeq> {
        let last = self.head + self.pending.len() as i64;
        if !self.pending.is_empty() {
            bump_counter(&self.tx, Expr::val(last)).await?;
            let rows = rows_per_insert(4);
            for (i, chunk) in self.pending.chunks(rows).enumerate() {
                let first = self.head + 1 + (i * rows) as i64;
                let mut insert = Query::insert();
                insert.into_table(change::Entity).columns([
                    change::Column::Seq,
                    change::Column::Kind,
                    change::Column::Key,
                    change::Column::At,
                ]);
                for (j, (kind, key)) in chunk.iter().enumerate() {
                    insert.values_panic([
                        (first + j as i64).into(),
                        kind.as_str().into(),
                        key.clone().into(),
                        self.at.into(),
                    ]);
                }
                self.tx.execute(&insert).await?;
            }
        }
        self.tx.commit().await?;
        Ok(ChangeSeq(last as u64))
    }

    /// Abandons the transaction: nothing it did, counter included, remains.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// `UPDATE counters SET value = <to> WHERE name = 'change' RETURNING value`.
async fn bump_counter(tx: &DatabaseTransaction, to: Expr) -> Result<i64> {
    let stmt = Query::update()
        .table(counter::Entity)
        .value(counter::Column::Value, to)
        .and_where(Expr::col(counter::Column::Name).eq(CHANGE_COUNTER))
        .returning_col(counter::Column::Value)
        .to_owned();
    let row = tx.query_one(&stmt).await?.ok_or_else(|| {
        StorageError::corrupt(
            "counters",
            "the change counter row is missing; run migrations",
        )
    })?;
    Ok(row.try_get::<i64>("", "value")?)
}
