//! Whole-table scans of an SQLite file on a connection of their own,
//! stepped on a blocking thread (rusqlite over the same bundled SQLite).
//!
//! The pool's driver (sqlx) hands every row from its worker thread to the
//! async caller through a channel: a wake-up, a context switch and a few
//! allocations per row. The derived views built at start (the attribute
//! view, the DNS publication view) read every row once, and at 1 M entries
//! that handoff was most of a cold start. Here one `SELECT` is stepped in a
//! loop and its values are read from SQLite's buffers; the statement is its
//! own read transaction, so the scan sees one snapshot while the pool goes
//! on writing (WAL).
//!
//! The rebuild protocol of [`super::scan`] is unchanged: read
//! [`Store::head_seq`] first, scan, then apply `changes_since(head)`.
//! PostgreSQL and in-memory SQLite use the paged scans instead.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sea_orm::DbErr;

use super::convert::parse;
use super::scan::fingerprint_prefix;
use super::{DbError, MAX_PAGE, PublishedRow, SQLITE_BUSY_TIMEOUT, StorageError, Store};
use crate::domain::{EntryNames, OrgId};

type Result<T> = std::result::Result<T, StorageError>;

/// Every entry's names, in id order (the columns of
/// [`Store::scan_entry_names`]).
const ENTRY_NAMES: &str = "SELECT key, kind, visibility, organisation_id, display_name, \
     given_name, surname FROM entries ORDER BY id";

/// Every attached certificate with its entry's key and visibility (the
/// rows of [`Store::scan_published`]), in entry order: read from the
/// covering index `ix_certificates_published` rather than the table, whose
/// pages carry every certificate's DER (a tenth of the pages to read).
const PUBLISHED: &str = "SELECT e.key, e.visibility, c.binding, c.trust_status, \
     c.not_before, c.not_after, c.id, c.fingerprint \
     FROM certificates c INDEXED BY ix_certificates_published \
     JOIN entries e ON e.id = c.entry_id ORDER BY c.entry_id";

impl Store {
    /// Every entry's [`EntryNames`], in id order: the rows of
    /// [`Store::scan_entry_names`] in one pass.
    pub async fn all_entry_names(&self) -> Result<Vec<EntryNames>> {
        if let Some(path) = self.sqlite_file() {
            return blocking(path, |conn| {
                let mut out = Vec::new();
                let mut stmt = conn.prepare(ENTRY_NAMES)?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    out.push(EntryNames {
                        key: text(row, 0, "entry key")?.to_owned(),
                        kind: parse("entry kind", text(row, 1, "entry kind")?)?,
                        visibility: parse("entry visibility", text(row, 2, "entry visibility")?)?,
                        organisation: optional_text(row, 3, "entry organisation")?
                            .map(|o| parse::<OrgId>("entry organisation", o))
                            .transpose()?,
                        display_name: text(row, 4, "entry display name")?.to_owned(),
                        given_name: optional_text(row, 5, "entry given name")?.map(str::to_owned),
                        surname: optional_text(row, 6, "entry surname")?.map(str::to_owned),
                    });
                }
                Ok(out)
            })
            .await;
        }
        let mut out = Vec::new();
        let mut cursor = 0;
        loop {
            let (page, next) = self.scan_entry_names(cursor, MAX_PAGE).await?;
            out.extend(page);
            match next {
                Some(n) => cursor = n,
                None => return Ok(out),
            }
        }
    }

    /// Folds every attached certificate's [`PublishedRow`] into `state`, in
    /// no order to rely on: the rows of [`Store::scan_published`] in one
    /// pass, without holding them all at once. From an SQLite file, rows
    /// are read and decoded on one thread and folded on another, so that
    /// the two halves of a cold start's largest scan overlap.
    pub async fn fold_published<S, F>(&self, mut state: S, mut visit: F) -> Result<S>
    where
        S: Send + 'static,
        F: FnMut(&mut S, PublishedRow) + Send + 'static,
    {
        if let Some(path) = self.sqlite_file() {
            return blocking(path, move |conn| {
                const BATCH: usize = 1024;
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<PublishedRow>>(16);
                let folder = std::thread::Builder::new()
                    .name("ccdir-fold".into())
                    .spawn(move || {
                        for batch in rx {
                            for row in batch {
                                visit(&mut state, row);
                            }
                        }
                        state
                    })
                    .map_err(|e| driver(format!("starting the fold thread: {e}")))?;
                let scanned = (|| -> Result<()> {
                    let mut stmt = conn.prepare(PUBLISHED)?;
                    let mut rows = stmt.query([])?;
                    let mut batch = Vec::with_capacity(BATCH);
                    while let Some(row) = rows.next()? {
                        batch.push(published_row(row)?);
                        if batch.len() == BATCH {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                            if tx.send(full).is_err() {
                                break;
                            }
                        }
                    }
                    let _ = tx.send(batch);
                    Ok(())
                })();
                drop(tx);
                let state = folder
                    .join()
                    .map_err(|_| driver("the fold thread panicked".into()))?;
                scanned.map(|()| state)
            })
            .await;
        }
        let mut cursor = 0;
        loop {
            let (page, next) = self.scan_published(cursor, MAX_PAGE).await?;
            for row in page {
                visit(&mut state, row);
            }
            match next {
                Some(n) => cursor = n,
                None => return Ok(state),
            }
        }
    }

    /// The SQLite file when the store is one (not in memory).
    fn sqlite_file(&self) -> Option<PathBuf> {
        self.sqlite_path.clone()
    }
}

/// One row of [`PUBLISHED`].
fn published_row(row: &rusqlite::Row<'_>) -> Result<PublishedRow> {
    Ok(PublishedRow {
        key: text(row, 0, "entry key")?.to_owned(),
        visibility: parse("entry visibility", text(row, 1, "entry visibility")?)?,
        binding: parse("certificate binding", text(row, 2, "certificate binding")?)?,
        trust: parse("trust status", text(row, 3, "trust status")?)?,
        not_before: time(row, 4, "certificate not_before")?,
        not_after: time(row, 5, "certificate not_after")?,
        id: row.get(6)?,
        fingerprint_prefix: fingerprint_prefix(text(row, 7, "certificate fingerprint")?)?,
    })
}

/// Runs `scan` on a fresh read-only connection to `path` on a blocking thread.
async fn blocking<T, F>(path: PathBuf, scan: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(move || scan(&open(&path)?))
        .await
        .map_err(|e| driver(format!("scan thread: {e}")))?
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
    Ok(conn)
}

fn text<'a>(row: &'a rusqlite::Row<'_>, i: usize, what: &'static str) -> Result<&'a str> {
    optional_text(row, i, what)?.ok_or_else(|| StorageError::corrupt(what, "NULL"))
}

fn optional_text<'a>(
    row: &'a rusqlite::Row<'_>,
    i: usize,
    what: &'static str,
) -> Result<Option<&'a str>> {
    match row.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(Some)
            .map_err(|e| StorageError::corrupt(what, e.to_string())),
        other => Err(StorageError::corrupt(
            what,
            format!("{:?} instead of text", other.data_type()),
        )),
    }
}

/// A timestamp as the pool's driver writes it (RFC 3339).
fn time(row: &rusqlite::Row<'_>, i: usize, what: &'static str) -> Result<DateTime<Utc>> {
    let text = text(row, i, what)?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StorageError::corrupt(what, format!("{text:?}: {e}")))
}

fn driver(message: String) -> StorageError {
    StorageError::Database(DbError::new(DbErr::Custom(message)))
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> StorageError {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        let e = DbError::new(DbErr::Custom(format!("direct scan: {e}")));
        if busy {
            StorageError::Unavailable(e)
        } else {
            StorageError::Database(e)
        }
    }
}
