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
//! The same goes for the reads every search makes (a page of hits with
//! their certificates, one statement of a few dozen rows, and their
//! provenance) and for the catch-ups of the search index and the views
//! (the changes and the entries that changed, thousands a round): they are
//! stepped on a kept read-only connection ([`Readers`]) on a blocking
//! thread, one handoff per read instead of one per row.
//!
//! The rebuild protocol of [`super::scan`] is unchanged: read
//! [`Store::head_seq`] first, scan, then apply `changes_since(head)`.
//! PostgreSQL and in-memory SQLite use the paged scans instead.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sea_orm::DbErr;

use super::convert::{entry_from_row, parse};
use super::entity::{certificate, entry};
use super::entries::record_of;
use super::scan::fingerprint_prefix;
use super::{DbError, MAX_PAGE, PublishedRow, SQLITE_BUSY_TIMEOUT, StorageError, Store};
use crate::domain::{Entry, EntryNames, EntryRecord, OrgId};

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

/// An entry's columns, as [`entry_model`] reads them.
macro_rules! entry_columns {
    () => {
        "e.id, e.key, e.address, e.kind, e.display_name, e.given_name, e.surname, \
         e.organisation_id, e.unit, e.title, e.profession, e.specialty, e.identifiers, \
         e.locality, e.region, e.country, e.postal_code, e.phone, e.visibility, e.origin, \
         e.version, e.updated_at, e.change_seq"
    };
}

/// Entries by key with their certificates (the columns of [`entry_model`]
/// and [`certificate_model`]), an entry's rows together; the key list
/// follows.
const RECORDS: &str = concat!(
    "SELECT ",
    entry_columns!(),
    ", c.id, c.entry_id, c.fingerprint, c.der, c.subject, c.issuer, c.serial, \
     c.not_before, c.not_after, c.email_addresses, c.dns_names, c.key_usage, \
     c.extended_key_usage, c.policies, c.assurance, c.key_algorithm, c.is_ca, \
     c.binding, c.trust_status, c.trust_reason, c.trust_evaluated_at, c.chain \
     FROM entries e LEFT JOIN certificates c ON c.entry_id = e.id WHERE e.key IN "
);

/// Entries by key without their certificates; the key list follows.
const ENTRIES: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM entries e WHERE e.key IN "
);

/// Provenance rows by entry key (the columns of [`ProvenanceColumns`]);
/// the key list follows.
const PROVENANCE: &str = "SELECT key, author, author_seq, via, record_hash, chain, at \
     FROM fed_provenance WHERE key IN ";

/// A `fed_provenance` row as read: key, author, author's sequence number,
/// via, record hash, chain (JSON), when applied.
pub(super) type ProvenanceColumns = (String, String, i64, String, Vec<u8>, String, DateTime<Utc>);

/// Changes after a number, in order, at most so many.
const CHANGES: &str = "SELECT seq, kind, key FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2";

/// Where the certificate's columns start in a row of [`RECORDS`].
const CERTIFICATE_AT: usize = 23;

/// The most keys read through [`Readers`] in one statement (the size of a
/// page of search hits, and of the pieces of a longer list).
const MAX_KEYED: usize = 256;

/// Read-only connections to the SQLite file kept between keyed reads
/// (opening one and reading the schema costs more than a search's read).
#[derive(Clone, Default)]
pub(super) struct Readers(std::sync::Arc<std::sync::Mutex<Vec<Connection>>>);

impl Readers {
    /// Kept at most: one per core reading at once is plenty.
    const KEPT: usize = 8;

    /// Runs `read` on a kept connection to `path`, or a new one.
    fn with<T>(&self, path: &Path, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let lock = || {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let kept = lock().pop();
        let conn = match kept {
            Some(conn) => conn,
            None => {
                let conn = open(path)?;
                conn.set_prepared_statement_cache_capacity(64);
                conn
            }
        };
        let out = read(&conn);
        let mut kept = lock();
        if kept.len() < Readers::KEPT {
            kept.push(conn);
        }
        out
    }
}

impl Store {
    /// [`Store::get_entries`] of a page of keys (lower-case, at most
    /// [`MAX_KEYED`]) from an SQLite file: one statement on a kept
    /// read-only connection, on a blocking thread. `None` for other stores
    /// and longer lists. Entries come in no particular order.
    pub(super) fn records_direct(
        &self,
        keys: &[String],
    ) -> Option<impl std::future::Future<Output = Result<Vec<EntryRecord>>> + use<>> {
        if keys.len() > MAX_KEYED {
            return None;
        }
        self.keyed(keys, RECORDS, " ORDER BY e.id, c.id", |rows| {
            let mut out: Vec<(entry::Model, Vec<certificate::Model>)> = Vec::new();
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                if out.last().is_none_or(|(e, _)| e.id != id) {
                    out.push((entry_model(row)?, Vec::new()));
                }
                if let ValueRef::Integer(_) = row.get_ref(CERTIFICATE_AT)?
                    && let Some((_, certs)) = out.last_mut()
                {
                    certs.push(certificate_model(row)?);
                }
            }
            out.into_iter().map(|(e, c)| record_of(e, c)).collect()
        })
    }

    /// [`Store::get_entries_only`] of keys (lower-case) from an SQLite
    /// file, [`MAX_KEYED`] at a time on one kept connection (each piece is
    /// a snapshot of its own). `None` for other stores. Entries come in no
    /// particular order.
    pub(super) fn entries_direct(
        &self,
        keys: &[String],
    ) -> Option<impl std::future::Future<Output = Result<Vec<Entry>>> + use<>> {
        self.keyed(
            keys,
            ENTRIES,
            "",
            each_row(|row| entry_from_row(entry_model(row)?)),
        )
    }

    /// The `(seq, kind, key)` of up to `limit` changes after `after`, in
    /// order (the rows of [`Store::changes_since`]) from an SQLite file: one
    /// statement on a kept read-only connection, on a blocking thread.
    /// `None` for other stores.
    pub(super) fn changes_direct(
        &self,
        after: i64,
        limit: i64,
    ) -> Option<impl std::future::Future<Output = Result<Vec<(i64, String, String)>>> + use<>> {
        self.on_reader(move |conn| {
            let mut stmt = conn.prepare_cached(CHANGES)?;
            let rows = stmt.query_map([after, limit], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The provenance rows of these keys (those from elsewhere) from an
    /// SQLite file, as [`Store::entries_direct`] reads entries: every
    /// search asks, also on a node that has no children. `None` for other
    /// stores.
    pub(super) fn provenance_direct(
        &self,
        keys: &[String],
    ) -> Option<impl std::future::Future<Output = Result<Vec<ProvenanceColumns>>> + use<>> {
        self.keyed(
            keys,
            PROVENANCE,
            "",
            each_row(|row| {
                Ok((
                    text(row, 0, "provenance key")?.to_owned(),
                    text(row, 1, "provenance author")?.to_owned(),
                    row.get(2)?,
                    text(row, 3, "provenance via")?.to_owned(),
                    row.get(4)?,
                    text(row, 5, "provenance chain")?.to_owned(),
                    time(row, 6, "provenance time")?,
                ))
            }),
        )
    }

    /// Steps `head (?, ...) tail` for each piece of `keys` on a kept
    /// read-only connection to the SQLite file, on a blocking thread, and
    /// gathers what `read` makes of each piece's rows.
    fn keyed<T, R>(
        &self,
        keys: &[String],
        head: &'static str,
        tail: &'static str,
        read: R,
    ) -> Option<impl std::future::Future<Output = Result<Vec<T>>> + use<T, R>>
    where
        T: Send + 'static,
        R: Fn(&mut rusqlite::Rows<'_>) -> Result<Vec<T>> + Send + 'static,
    {
        let keys = keys.to_vec();
        self.on_reader(move |conn| {
            let mut out = Vec::with_capacity(keys.len());
            for piece in keys.chunks(MAX_KEYED) {
                let mut sql = String::with_capacity(head.len() + 2 * piece.len() + 32);
                sql.push_str(head);
                sql.push('(');
                for i in 0..piece.len() {
                    sql.push_str(if i == 0 { "?" } else { ",?" });
                }
                sql.push(')');
                sql.push_str(tail);
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(piece))?;
                out.extend(read(&mut rows)?);
            }
            Ok(out)
        })
    }

    /// Runs `read` on a kept read-only connection to the SQLite file, on a
    /// blocking thread. `None` for other stores.
    fn on_reader<T, R>(
        &self,
        read: R,
    ) -> Option<impl std::future::Future<Output = Result<T>> + use<T, R>>
    where
        T: Send + 'static,
        R: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let path = self.sqlite_file()?;
        let readers = self.readers.clone();
        Some(async move {
            tokio::task::spawn_blocking(move || readers.with(&path, read))
                .await
                .map_err(|e| driver(format!("read thread: {e}")))?
        })
    }

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

/// An entry's columns of a row of [`RECORDS`].
fn entry_model(row: &rusqlite::Row<'_>) -> Result<entry::Model> {
    let owned = |i, what| text(row, i, what).map(str::to_owned);
    let optional = |i, what| optional_text(row, i, what).map(|t| t.map(str::to_owned));
    Ok(entry::Model {
        id: row.get(0)?,
        key: owned(1, "entry key")?,
        address: owned(2, "entry address")?,
        kind: owned(3, "entry kind")?,
        display_name: owned(4, "entry display name")?,
        given_name: optional(5, "entry given name")?,
        surname: optional(6, "entry surname")?,
        organisation_id: optional(7, "entry organisation")?,
        unit: optional(8, "entry unit")?,
        title: optional(9, "entry title")?,
        profession: optional(10, "entry profession")?,
        specialty: optional(11, "entry specialty")?,
        identifiers: owned(12, "entry identifiers")?,
        locality: optional(13, "entry locality")?,
        region: optional(14, "entry region")?,
        country: optional(15, "entry country")?,
        postal_code: optional(16, "entry postal code")?,
        phone: optional(17, "entry phone")?,
        visibility: owned(18, "entry visibility")?,
        origin: owned(19, "entry origin")?,
        version: row.get(20)?,
        updated_at: time(row, 21, "entry updated_at")?,
        change_seq: row.get(22)?,
    })
}

/// A certificate's columns of a row of [`RECORDS`].
fn certificate_model(row: &rusqlite::Row<'_>) -> Result<certificate::Model> {
    let at = CERTIFICATE_AT;
    let owned = |i, what| text(row, at + i, what).map(str::to_owned);
    Ok(certificate::Model {
        id: row.get(at)?,
        entry_id: row.get(at + 1)?,
        fingerprint: owned(2, "certificate fingerprint")?,
        der: row.get(at + 3)?,
        subject: owned(4, "certificate subject")?,
        issuer: owned(5, "certificate issuer")?,
        serial: owned(6, "certificate serial")?,
        not_before: time(row, at + 7, "certificate not_before")?,
        not_after: time(row, at + 8, "certificate not_after")?,
        email_addresses: owned(9, "certificate email addresses")?,
        dns_names: owned(10, "certificate dns names")?,
        key_usage: owned(11, "certificate key usage")?,
        extended_key_usage: owned(12, "certificate extended key usage")?,
        policies: owned(13, "certificate policies")?,
        assurance: optional_text(row, at + 14, "certificate assurance")?.map(str::to_owned),
        key_algorithm: owned(15, "certificate key algorithm")?,
        is_ca: row.get(at + 16)?,
        binding: owned(17, "certificate binding")?,
        trust_status: owned(18, "certificate trust status")?,
        trust_reason: owned(19, "certificate trust reason")?,
        trust_evaluated_at: time(row, at + 20, "certificate trust evaluated at")?,
        chain: owned(21, "certificate chain")?,
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

/// Reads every row of a statement with `map`.
fn each_row<T>(
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T> + Send + 'static,
) -> impl Fn(&mut rusqlite::Rows<'_>) -> Result<Vec<T>> + Send + 'static {
    move |rows| {
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    }
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
