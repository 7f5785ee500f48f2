//! What can go wrong in storage, and what each failure means to a client.
//!
//! The `Display` text is for the log and may name tables, constraints and
//! driver messages; clients only ever see [`StorageError::kind`], which the
//! front ends turn into a protocol answer through [`crate::error`].

use sea_orm::DbErr;
use sea_orm::sqlx;

use crate::error::ErrorKind;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL names no backend we speak (only `sqlite:` and `postgres:`).
    #[error("unsupported database URL scheme in {0:?} (use sqlite: or postgres:)")]
    UnsupportedUrl(String),
    /// The database cannot be reached, the pool is exhausted, or the database
    /// is too busy to take the write (locked file, serialisation failure).
    /// Worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbError),
    /// A uniqueness or foreign-key rule refused the write, e.g. an entry that
    /// names an organisation that does not exist.
    #[error("constraint violated: {0}")]
    Constraint(#[source] DbError),
    /// The thing the write refers to does not exist.
    #[error("{what} {key:?} not found")]
    NotFound {
        /// What was looked for: `entry`, ...
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// An organisation cannot be deleted while entries still belong to it.
    #[error("organisation {id:?} still has {entries} entries")]
    OrganisationInUse {
        /// The organisation.
        id: String,
        /// How many entries still name it.
        entries: u64,
    },
    /// A number does not fit the column (versions and sequence numbers are
    /// stored as signed 64-bit integers).
    #[error("{field} {value} is out of range")]
    OutOfRange {
        /// Which number.
        field: &'static str,
        /// The value given.
        value: u64,
    },
    /// A row read back does not make a valid domain value; someone wrote to
    /// the database behind our back, or a migration is missing.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// Which kind of value.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// Any other database failure: a bug or an unexpected state.
    #[error("database error: {0}")]
    Database(#[source] DbError),
}

/// A driver error, opaque so that no sea-orm type leaks out of `storage`:
/// it can be logged (`Display`, `source()`), not inspected.
#[derive(Debug)]
pub struct DbError(DbErr);

impl DbError {
    pub(super) fn new(err: DbErr) -> DbError {
        DbError(err)
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl StorageError {
    /// The kind a client is told about; the details stay in the log.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StorageError::NotFound { .. } => ErrorKind::NotFound,
            StorageError::Constraint(_) | StorageError::OrganisationInUse { .. } => {
                ErrorKind::Conflict
            }
            StorageError::OutOfRange { .. } => ErrorKind::InvalidInput,
            StorageError::Unavailable(_) => ErrorKind::Unavailable,
            StorageError::UnsupportedUrl(_)
            | StorageError::Corrupt { .. }
            | StorageError::Database(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        StorageError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        match classify(&err) {
            Class::Transient => StorageError::Unavailable(DbError(err)),
            Class::Constraint => StorageError::Constraint(DbError(err)),
            Class::Other => StorageError::Database(DbError(err)),
        }
    }
}

enum Class {
    Transient,
    Constraint,
    Other,
}

fn classify(err: &DbErr) -> Class {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return Class::Transient,
        DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return Class::Other,
    };
    let sea_orm::RuntimeErr::SqlxError(sqlx_err) = runtime else {
        return Class::Other;
    };
    match &**sqlx_err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Class::Transient,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            let transient = if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_is_transient(&code)
            } else {
                postgres_is_transient(&code)
            };
            if db.is_unique_violation() || db.is_foreign_key_violation() {
                Class::Constraint
            } else if transient {
                Class::Transient
            } else {
                Class::Other
            }
        }
        _ => Class::Other,
    }
}

/// SQLite (extended) result codes that say "try again later": the primary
/// code is the low byte, and SQLITE_BUSY (5) or SQLITE_LOCKED (6) mean
/// another connection held the lock beyond the busy timeout.
fn sqlite_is_transient(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

/// PostgreSQL SQLSTATEs that say "try again later": connection exceptions
/// (08), insufficient resources (53), operator intervention such as a
/// shutdown (57P), serialisation failures and deadlocks (40001, 40P01).
fn postgres_is_transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "40001"
        || code == "40P01"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_clients_see() {
        let nf = StorageError::NotFound {
            what: "entry",
            key: "a@b.org".into(),
        };
        assert_eq!(nf.kind(), ErrorKind::NotFound);
        let busy = StorageError::from(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout));
        assert_eq!(busy.kind(), ErrorKind::Unavailable);
        let other = StorageError::from(DbErr::Custom("x".into()));
        assert_eq!(other.kind(), ErrorKind::Internal);
    }

    #[test]
    fn transient_codes() {
        assert!(sqlite_is_transient("5"));
        assert!(sqlite_is_transient("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(!sqlite_is_transient("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(postgres_is_transient("08006"));
        assert!(postgres_is_transient("40001"));
        assert!(postgres_is_transient("57P01"));
        assert!(!postgres_is_transient("23505"));
        assert!(!postgres_is_transient("42P01"));
    }
}
