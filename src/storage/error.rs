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
    NotFound { what: &'static str, key: String },
    /// An organisation cannot be deleted while entries still belong to it.
    #[error("organisation {id:?} still has {entries} entries")]
    OrganisationInUse { id: String, entries: u64 },
    /// A number does not fit the column (versions and sequence numbers are
    /// stored as signed 64-bit integers).
    #[error("{field} {value} is out of range")]
    OutOfRange { field: &'static str, value: u64 },
    /// A row read back does not make a valid domain value; someone wrote to
    /// the database behind our back, or a migration is missing.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// Any other database failure: a bug or an unexpected state.
    #[error("database error: {0}")]
    Database(#[source] DbError),
}

/// A driver error, opaque so that no sea-orm type leaks out of `storage`:
/// it can be logged (`Display`, `source()`), not inspected.
#[derive(Debug)]
pub struct DbError(DbErr);

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
            if db.is_unique_violation() || db.is_foreign_key_violation() {
                Class::Constraint
            } else if is_transient_code(&db.code().unwrap_or_default()) {
                Class::Transient
            } else {
                Class::Other
            }
        }
        _ => Class::Other,
    }
}

/// Database error codes that say "try again later" rather than "this is wrong".
fn is_transient_code(code: &str) -> bool {
    // SQLite reports (extended) result codes as decimal numbers; the primary
    // code is the low byte. SQLITE_BUSY (5) and SQLITE_LOCKED (6) mean another
    // connection holds the lock beyond the busy timeout.
    if let Ok(n) = code.parse::<u32>() {
        return matches!(n & 0xff, 5 | 6);
    }
    // PostgreSQL SQLSTATEs: connection exceptions (08), insufficient resources
    // (53), operator intervention such as a shutdown (57P), serialisation
    // failures and deadlocks (40001, 40P01).
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
        assert!(is_transient_code("5"));
        assert!(is_transient_code("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(!is_transient_code("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(is_transient_code("08006"));
        assert!(is_transient_code("40001"));
        assert!(!is_transient_code("23505"));
    }
}
