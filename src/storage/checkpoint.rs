//! Copying an SQLite file's write-ahead log into the database, on a thread
//! of its own.
//!
//! By default SQLite checkpoints in the connection whose commit takes the
//! log past `wal_autocheckpoint` pages: the writer, which on this store is
//! the one path every write waits for. At a root pulling many children,
//! such checkpoints were an eighth of the writer's time. Here a thread
//! runs `PRAGMA wal_checkpoint(PASSIVE)` every [`EVERY`] on a connection of
//! its own: a passive checkpoint neither waits for nor blocks the writer or
//! the readers, and it fsyncs the database file off the writer's path.
//! The pool keeps its `wal_autocheckpoint` as a backstop, should this
//! thread fall behind.

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tracing::{debug, warn};

/// How often the log is copied. Pages written again within this time are
/// copied once.
const EVERY: Duration = Duration::from_secs(1);

/// Starts the thread for the file at `path`; it ends once `alive` has no
/// strong reference left (the last clone of the store is dropped).
pub(super) fn spawn(path: PathBuf, alive: Weak<()>) {
    let spawned = std::thread::Builder::new()
        .name("ccdir-checkpoint".into())
        .spawn(move || {
            let mut conn: Option<Connection> = None;
            loop {
                std::thread::sleep(EVERY);
                if alive.strong_count() == 0 {
                    return;
                }
                let c = match conn.take() {
                    Some(c) => c,
                    None => match open(&path) {
                        Ok(c) => c,
                        Err(e) => {
                            debug!(error = %e, "the checkpoint connection did not open");
                            continue;
                        }
                    },
                };
                match checkpoint(&c) {
                    Ok(()) => conn = Some(c),
                    // Dropped: the next round opens a fresh connection.
                    Err(e) => debug!(error = %e, "a background checkpoint failed"),
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "no background checkpoint thread; SQLite checkpoints on commit");
    }
}

/// One passive checkpoint: copies what no reader still needs.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

fn open(path: &PathBuf) -> rusqlite::Result<Connection> {
    // Checkpointing writes the database file: read-write, never create.
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_file_len(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    /// What a writer left in the log reaches the database file.
    #[test]
    fn a_passive_checkpoint_copies_the_log_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
                 CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);",
            )
            .unwrap();
        let before = db_file_len(&path);
        checkpoint(&open(&path).unwrap()).unwrap();
        assert!(db_file_len(&path) > before, "the table's pages were copied");
    }

    /// A store on a file runs the thread: its writes reach the database
    /// file although the log is far below the pool's own threshold.
    #[tokio::test]
    async fn a_store_checkpoints_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ccdir.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = crate::storage::Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        // The migrations' pages may already have been copied; wait for that.
        tokio::time::sleep(EVERY * 2).await;
        let before = db_file_len(&path);
        for i in 0..200 {
            let org = crate::domain::Organisation {
                id: format!("checkpointed-{i}").parse().unwrap(),
                name: format!("Checkpointed {i}"),
                domains: Vec::new(),
                description: Some("x".repeat(500)),
                locality: None,
                region: None,
                country: None,
                origin: crate::domain::NodeId("here".into()),
                updated_at: chrono::Utc::now(),
            };
            store.put_organisation(&org).await.unwrap();
        }
        let deadline = std::time::Instant::now() + EVERY * 5;
        while db_file_len(&path) <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was copied into the database file"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.close().await.unwrap();
    }

    /// The pool's connections cut the log back once it starts over, so a
    /// WAL that a burst of writes grew does not keep its size.
    #[tokio::test]
    async fn the_pool_limits_what_the_log_keeps() {
        use sea_orm::{ConnectionTrait, Statement};
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ccdir.db").display()
        );
        let store = crate::storage::Store::connect(&url).await.unwrap();
        let limit = store
            .db
            .query_one_raw(Statement::from_string(
                store.db.get_database_backend(),
                "PRAGMA journal_size_limit",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        assert_eq!(
            u64::try_from(limit).unwrap(),
            crate::storage::SQLITE_WAL_KEEP_BYTES
        );
        store.close().await.unwrap();
    }
}
