//! SQLite: one file, WAL, `synchronous=FULL` (a 202 survives power loss, not only a
//! crash), a busy timeout so the CLI and the server can share the file.

use super::sqlite_writer::SqliteWriter;
use super::{BatchResult, PreparedEvent, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Bytes of the database file each connection maps (reads go through the page cache
/// without a copy).
const MMAP_SIZE: u64 = 1 << 30;

/// An open SQLite database (see [`super::db`]).
pub(crate) struct SqliteDb {
    /// Where reads go.
    pub(super) pool: SqlitePool,
    /// The one connection the other write transactions use (see [`SqliteDb::open`]).
    writer: SqlitePool,
    /// The group commits' own connection, on its thread.
    batches: SqliteWriter,
}

impl SqliteDb {
    /// SQLite's write transactions hold the whole database's lock: row locking clauses
    /// are left out.
    pub(super) fn locking(&self, _clause: &'static str) -> &'static str {
        ""
    }

    /// Opens `url` (`sqlite://path`), creating the file if missing, and migrates it.
    pub(super) async fn open(url: &str) -> Result<SqliteDb, StoreError> {
        // Pages are read through a memory map, not copied in by `pread`: a third of the
        // write thread's time was the kernel copying pages it had just written.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("mmap_size", MMAP_SIZE.to_string());
        create_private(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        // Group commits run on their own connection and thread (`sqlite_writer`); the other
        // writes (status changes, retention, webhooks and deliveries) share one connection,
        // so they queue for it here rather than for SQLite's write lock.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let batches = SqliteWriter::open(options.get_filename(), MMAP_SIZE)?;
        Ok(SqliteDb {
            pool,
            writer,
            batches,
        })
    }

    /// Starts a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`),
    /// so that a read-then-write transaction never fails with SQLITE_BUSY halfway.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Where single write statements go: the writer connection, like transactions, so
    /// that they neither wait for the write lock on another connection nor make the
    /// writer's page cache stale.
    pub(super) fn write_pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// SQLite's text holds any string.
    pub(super) fn fit_text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(s)
    }

    /// One group commit, on the writer thread.
    pub(super) async fn write_batch(
        &self,
        events: Vec<PreparedEvent>,
    ) -> Result<BatchResult, StoreError> {
        self.batches.write_batch(events).await
    }

    /// SQLite's commits cost the server's own CPU: waiting for more requests leaves the
    /// core idle and loses (docs/BENCHMARKS.md, "Durable ingest on PostgreSQL").
    pub(super) fn commit_delay(&self) -> Duration {
        Duration::ZERO
    }
}

/// Creates the database file readable by its owner only (0600) before SQLite does (with
/// 0644 under the usual umask): it holds ingest keys and webhook secrets. SQLite gives its
/// `-wal` and `-shm` files the database file's mode. An existing file keeps its mode; one
/// that others may read is named in a warning.
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "the database file may be read by other users (it holds ingest keys and webhook secrets): chmod 600 it"
                );
            }
            Ok(())
        }
        // A directory that does not exist, or cannot be written: SQLite's own error says so.
        Err(_) => Ok(()),
    }
}
