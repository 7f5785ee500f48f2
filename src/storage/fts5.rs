//! An SQLite FTS5 yardstick for `ccdir bench`: the same entries and the
//! same name queries as the Tantivy index answers, so its speed can be
//! reported as a ratio. Not used by the service.
//!
//! Semantics are kept as close as FTS5 allows: every query word must match
//! (AND), each as a prefix (`word*`), ranked by FTS5's bm25 with the same
//! column weights as the index (name 3, organisation 2, role 1.5, place 1).
//! FTS5 has no typo tolerance, so misspelt queries find less; the bench
//! reports hit counts beside latencies.

use std::path::Path;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
    TransactionTrait, Value,
};

use super::StorageError;

/// One row of the yardstick table.
#[derive(Debug, Clone)]
pub struct Fts5Row {
    pub key: String,
    pub name: String,
    pub organisation: String,
    pub role: String,
    pub place: String,
}

/// An FTS5 table in its own SQLite file.
pub struct Fts5Baseline {
    db: DatabaseConnection,
}

impl Fts5Baseline {
    /// Creates (replacing) the table in the SQLite file at `path`.
    pub async fn create(path: &Path) -> Result<Fts5Baseline, StorageError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut options = ConnectOptions::new(url);
        options.sqlx_logging(false);
        let db = Database::connect(options).await?;
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
             DROP TABLE IF EXISTS fts;
             CREATE VIRTUAL TABLE fts USING fts5(key UNINDEXED, name, org, role, place,
                 tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3');",
        )
        .await?;
        Ok(Fts5Baseline { db })
    }

    /// Adds rows in one transaction.
    pub async fn insert(&self, rows: &[Fts5Row]) -> Result<(), StorageError> {
        let tx = self.db.begin().await?;
        for chunk in rows.chunks(150) {
            let placeholders = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let values: Vec<Value> = chunk
                .iter()
                .flat_map(|r| {
                    [&r.key, &r.name, &r.organisation, &r.role, &r.place]
                        .map(|s| Value::from(s.clone()))
                })
                .collect();
            tx.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("INSERT INTO fts (key, name, org, role, place) VALUES {placeholders}"),
                values,
            ))
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Keys of the best `limit` matches for `text`.
    pub async fn search(&self, text: &str, limit: u64) -> Result<Vec<String>, StorageError> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| format!("\"{}\"*", w.to_lowercase()))
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "SELECT key FROM fts WHERE fts MATCH ? ORDER BY bm25(fts, 0.0, 3.0, 2.0, 1.5, 1.0) LIMIT ?",
                [Value::from(words.join(" AND ")), Value::from(limit as i64)],
            ))
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String>("", "key").map_err(StorageError::from))
            .collect()
    }
}
