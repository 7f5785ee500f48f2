//! What can go wrong in the search index, and which [`ErrorKind`] each failure is.

use crate::domain::ChangeSeq;
use crate::error::ErrorKind;

/// Errors of the search index. Messages name the rule that was broken and are
/// safe to log; front ends show only the kind's title to clients.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The query text or a parameter breaks a limit (too long, too many words).
    #[error("invalid query: {0}")]
    InvalidQuery(&'static str),
    /// The cursor is not one this index handed out for this query.
    #[error("invalid cursor: {0}")]
    InvalidCursor(&'static str),
    /// An LDAP substring filter would expand to more terms than we are willing to union.
    #[error("filter too broad: more than {limit} distinct values match")]
    TooBroad {
        /// The most distinct values a filter may expand to.
        limit: usize,
    },
    /// A [`BulkWriter`](super::BulkWriter) holds the writer; try again when the rebuild is done.
    #[error("a rebuild of the index is in progress")]
    Busy,
    /// Another process holds the index directory's writer lock.
    #[error("the index directory is locked by another writer")]
    Locked,
    /// The caller tried to record an older change sequence than the one already
    /// committed: two catch-up loops are racing, or the caller lost its place.
    #[error("change {up_to} is older than the applied change {applied}")]
    Stale {
        /// What the index has committed.
        applied: ChangeSeq,
        /// What the caller tried to record.
        up_to: ChangeSeq,
    },
    /// Reading or writing the index directory failed.
    #[error("index i/o failure while {context}")]
    Io {
        /// What the index was doing.
        context: &'static str,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The search engine reported a failure. The source is kept for the log;
    /// its type is deliberately not part of this module's API.
    #[error("search engine failure while {context}")]
    Engine {
        /// What the index was doing.
        context: &'static str,
        /// The engine's error, for the log.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl IndexError {
    /// Which entry of the error table this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IndexError::InvalidQuery(_)
            | IndexError::InvalidCursor(_)
            | IndexError::TooBroad { .. } => ErrorKind::InvalidInput,
            IndexError::Busy | IndexError::Locked => ErrorKind::Unavailable,
            IndexError::Stale { .. } => ErrorKind::Conflict,
            IndexError::Io { .. } | IndexError::Engine { .. } => ErrorKind::Internal,
        }
    }

    /// Wraps an engine error with what we were doing when it happened.
    pub(crate) fn engine(context: &'static str) -> impl FnOnce(tantivy::TantivyError) -> Self {
        move |err| match err {
            tantivy::TantivyError::LockFailure(..) => IndexError::Locked,
            other => IndexError::Engine {
                context,
                source: Box::new(other),
            },
        }
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| IndexError::Io { context, source }
    }
}
