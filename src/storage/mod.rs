//! The database: the directory's source of truth.
//!
//! sea-orm over SQLite (the embedded default: one file in the data
//! directory) or PostgreSQL (by URL). The same code and the same migrations
//! serve both. Every public method takes and returns domain types; sea-orm
//! entities and statements stay inside this module.
//!
//! Every write that changes what a reader can see appends to the change
//! sequence in the same transaction (`seq.rs` explains how numbers are
//! handed out in commit order). Derived views (search index, caches) remember the
//! last [`ChangeSeq`] they applied and catch up with
//! [`Store::changes_since`].
//!
//! Layout: one file per resource (`organisations`, `entries`, `import`,
//! `anchors`, `bundles`, `trust`, `changes`, `scan`, and `federation/` for the
//! federation tables), `seq` for write transactions,
//! `convert` for rows ⇄ domain, `direct` for whole-table scans of an SQLite
//! file outside the pool, `entity/` for the sea-orm entities and
//! `consistency` for the self-check.

mod anchors;
mod bundles;
mod changes;
mod checkpoint;
mod consistency;
mod convert;
mod direct;
mod entity;
mod entries;
mod error;
mod federation;
mod fts5;
mod import;
mod organisations;
mod policies;
mod scan;
mod seq;
mod trust;
mod users;

#[path = "../../migrations/mod.rs"]
mod migrations;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    IsolationLevel, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::domain::{ChangeSeq, Clock, EntryCertificate, SystemClock};

pub use bundles::BundleApplied;
pub use error::{DbError, StorageError};
pub use federation::{
    ApplyItem, ApplyOutcome, ApplyPage, AuthorRow, Digest, Effect, GrantRow, LogAppend, LogEntry,
    LogIdentity, LogTip, MerkleNode, MirroredRecord, PeerRow, PeerStatus, ProvenanceRow,
    PublishItem, RejectionRow, Relayable, StoredRecord,
};
pub use fts5::{Fts5Baseline, Fts5Row};
pub use policies::{
    DeadLetterRow, PolicyEventRow, PolicyOutcome, PolicyRow, PolicyWrite, WebhookRow, WebhookWrite,
};
pub use scan::{MAX_PAGE, PublishedRow};

/// How long an SQLite connection waits for another process's write lock
/// before giving up with [`StorageError::Unavailable`].
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite page cache per connection, in KiB (SQLite's default is 2 MiB).
/// Imports insert into the fingerprint and key indexes at random places;
/// once those outgrow the cache every insert reads a page back from the
/// file (from the OS's cache), and large transactions spill pages early.
/// 16 MiB imports 100 k entries as fast as 64 MiB did; reads at random
/// (searches at 1 M entries) fill every connection's cache, and at 64 MiB
/// the pool held 150-250 MiB of pages for no faster search.
const SQLITE_CACHE_KIB: u32 = 16_384;
/// Pages the WAL may grow to before a commit copies it into the database
/// (SQLite's default is 1 000, i.e. 4 MiB). A backstop: a thread copies it
/// every second (`checkpoint.rs`), off the writer's path. Should that fall
/// behind, bulk imports rewrite the same index pages in every batch, and a
/// larger WAL lets one checkpoint copy such a page once instead of once per
/// batch. At a million records (a root's ingest, a node's import) the
/// thread does fall behind, and the WAL grew past it to 91 and 202 MB: see
/// [`SQLITE_WAL_KEEP_BYTES`].
const SQLITE_WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;
/// What the WAL file is cut back to when it starts over
/// (`journal_size_limit`). Without it the file keeps the largest size it
/// ever reached until the last connection closes.
const SQLITE_WAL_KEEP_BYTES: u64 = 64 * 1024 * 1024;
/// SQLite pool: writers are serialised anyway; a few connections let reads
/// run beside a write (WAL). Few, because each may grow a page cache of
/// [`SQLITE_CACHE_KIB`].
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// PostgreSQL pool: enough for a busy node; the server's own default limit
/// is 100 connections, shared with whatever else runs there.
const POSTGRES_MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a pooled connection (and, at start, how
/// long `connect` keeps trying to reach the database) before
/// [`StorageError::Unavailable`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// A file, or memory for throwaway stores.
    Sqlite,
    /// A server, reached by URL.
    Postgres,
}

/// The directory database. Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
    clock: Arc<dyn Clock>,
    /// Serialises this process's writers on SQLite; see `seq.rs`.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// How long this process's write transactions have been open, in all.
    write_time: seq::WriteTime,
    /// The SQLite file, for the whole-table scans of `direct.rs` (none in
    /// memory or on PostgreSQL).
    sqlite_path: Option<std::path::PathBuf>,
    /// Read-only connections to it for the keyed reads of `direct.rs`.
    readers: direct::Readers,
    /// Held by every clone: when the last one goes, the background
    /// checkpoint thread (`checkpoint.rs`) ends.
    _alive: Arc<()>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// What to do with an entry's certificates when the entry is written.
#[derive(Debug, Clone, PartialEq)]
pub enum CertUpdate {
    /// Leave the attached certificates as they are (a new entry gets none).
    Keep,
    /// Make exactly these the entry's certificates, in this order. A
    /// certificate listed twice (same fingerprint) is kept once, first wins.
    Replace(Vec<EntryCertificate>),
}

/// The outcome of writing an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEntry {
    /// The change that recorded the write.
    pub seq: ChangeSeq,
    /// The version the store gave the entry.
    pub version: u64,
    /// True when the entry did not exist before.
    pub created: bool,
}

impl Store {
    /// Connects to `url` and returns a store; does not migrate.
    ///
    /// * `sqlite:///abs/path/ccdir.db?mode=rwc`, `sqlite://relative.db`: a
    ///   file, created if missing (its directory must exist), in WAL mode
    ///   with `synchronous=NORMAL`, foreign keys on and a busy timeout.
    ///   `sqlite::memory:` gives a private in-memory database on a single
    ///   connection.
    /// * `postgres://user@host:port/db` (or `postgresql://`).
    pub async fn connect(url: &str) -> Result<Store, StorageError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            // Only the scheme: the rest may hold a password.
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StorageError::UnsupportedUrl(format!("{scheme}:")));
        };
        if backend == Backend::Sqlite && !url.contains(":memory:") && !url.contains("mode=memory") {
            // Switching a new file to WAL takes an exclusive lock that the
            // busy handler does not wait for: pool connections racing to
            // do it fail with "database is locked". One connection first;
            // WAL then persists in the file and the pool finds it set.
            let mut first = ConnectOptions::new(url);
            first
                .sqlx_logging(false)
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT);
            first.map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
            });
            Database::connect(first).await?.close().await?;
        }
        let mut opt = ConnectOptions::new(url);
        // Statement logging would write every certificate blob to the log.
        opt.sqlx_logging(false).acquire_timeout(ACQUIRE_TIMEOUT);
        match backend {
            Backend::Sqlite => {
                // Every connection to `:memory:` opens a database of its own.
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                opt.max_connections(if in_memory { 1 } else { SQLITE_MAX_CONNECTIONS })
                    .min_connections(1)
                    // Idle SQLite connections cost a file handle, nothing more.
                    .idle_timeout(None::<Duration>)
                    .max_lifetime(None::<Duration>);
                opt.map_sqlx_sqlite_opts(|o| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .foreign_keys(true)
                        .busy_timeout(SQLITE_BUSY_TIMEOUT)
                        .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
                        .pragma("temp_store", "memory")
                        .pragma(
                            "wal_autocheckpoint",
                            SQLITE_WAL_AUTOCHECKPOINT_PAGES.to_string(),
                        )
                        .pragma("journal_size_limit", SQLITE_WAL_KEEP_BYTES.to_string())
                });
            }
            Backend::Postgres => {
                opt.max_connections(POSTGRES_MAX_CONNECTIONS)
                    .min_connections(1);
            }
        }
        let db = Database::connect(opt).await?;
        let sqlite_path = match backend {
            Backend::Sqlite if !url.contains(":memory:") && !url.contains("mode=memory") => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StorageError::from(sea_orm::DbErr::Custom(e.to_string())))?;
                Some(options.get_filename().to_owned())
            }
            _ => None,
        };
        let alive = Arc::new(());
        if let Some(path) = &sqlite_path {
            checkpoint::spawn(path.clone(), Arc::downgrade(&alive));
        }
        Ok(Store {
            db,
            backend,
            _alive: alive,
            sqlite_path,
            readers: direct::Readers::default(),
            clock: Arc::new(SystemClock),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            write_time: seq::WriteTime::default(),
        })
    }

    /// The same store, with `clock` stamping the change log.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Store {
        self.clock = clock;
        self
    }

    /// Applies pending migrations. Safe to call on every start.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        migrations::Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// The name of the newest migration this build knows: what a schema
    /// migrated by this build is at. Saved derived views record it.
    pub fn schema_version() -> String {
        migrations::Migrator::migrations()
            .last()
            .map(|m| m.name().to_owned())
            .unwrap_or_default()
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.db.ping().await?;
        Ok(())
    }

    /// Refreshes the query planner's statistics. Call it after a bulk
    /// import: until statistics exist, PostgreSQL guesses that an `IN (...)`
    /// list matches much of a freshly loaded table and scans it instead of
    /// using the index (autovacuum catches up only after a while), which
    /// makes the search hot path slow by orders of magnitude.
    pub async fn analyze(&self) -> Result<(), StorageError> {
        let sql = match self.backend {
            // Bounded, so that it stays cheap on a large file.
            Backend::Sqlite => "PRAGMA analysis_limit = 1000; ANALYZE",
            Backend::Postgres => "ANALYZE",
        };
        self.db.execute_unprepared(sql).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.db.close_by_ref().await?;
        Ok(())
    }

    /// A read-only transaction that sees one snapshot, so that an entry and
    /// its certificates, read by two statements, belong together. SQLite
    /// gives a snapshot to any transaction; PostgreSQL needs REPEATABLE READ
    /// (READ COMMITTED takes a new snapshot per statement).
    async fn begin_read(&self) -> Result<DatabaseTransaction, StorageError> {
        let tx = match self.backend {
            Backend::Sqlite => self.db.begin().await?,
            Backend::Postgres => {
                self.db
                    .begin_with_config(
                        Some(IsolationLevel::RepeatableRead),
                        Some(AccessMode::ReadOnly),
                    )
                    .await?
            }
        };
        Ok(tx)
    }
}
