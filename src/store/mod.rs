//! Storage on SQLite or PostgreSQL, behind one [`Store`] handle.
//!
//! Writes of new events go through [`Store::write_batch`], which the group-commit writer
//! calls with many requests' events at once: one transaction, one fsync.

mod artifacts;
mod db;
mod events;
mod issues;
mod merge;
mod postgres;
mod projects;
mod retention;
mod rollups;
mod rows;
mod search;
mod sqlite;
mod sqlite_writer;
mod stats;
mod users;
mod webhooks;
mod write_core;

pub use crate::model::batch::{BatchResult, EventOutcome, PreparedEvent};
pub use crate::model::issue::StatusChange;
pub use crate::model::message::DomainMessage;
pub use crate::model::project::{
    CreatedProject, Project, ProjectCredentials, ProjectId, hash_token, new_event_id,
    new_ingest_key, new_token,
};
pub use crate::model::stored::{
    EventPage, EventSummary, ListedEvent, StoredEvent, TOP_TAG_VALUES, TagBreakdown, TagValue,
};
pub use merge::MergeOutcome;
pub(crate) use users::SESSION_LIFETIME;
pub use users::{ApiToken, MemberChange, UserAdded};

use crate::config::DatabaseUrl;
use crate::progress::Progress;
use db::{Db, PgDb, SqliteDb};
use std::sync::Arc;

/// What a retention pass removed.
#[derive(Debug, Default)]
pub struct PurgeResult {
    /// Events deleted.
    pub events: u64,
    /// Issues deleted (left without events; discarded issues are kept as tombstones).
    pub issues: u64,
    /// New unresolved counts of the projects that lost unresolved issues.
    pub messages: Vec<DomainMessage>,
}

/// Storage failures. Handlers answer them 503: the client may retry, nothing was
/// acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite writer's connection failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite writer thread could not take the batch (it stopped, or the batch's
    /// write panicked and was rolled back).
    #[error("SQLite writer: {0}")]
    Writer(&'static str),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A URL this build cannot open.
    #[error("{0}")]
    Unsupported(String),
    /// A stored row could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A batch named a project that does not exist; nothing of it was stored.
    #[error("project {0} does not exist")]
    UnknownProject(ProjectId),
}

/// The store: a cheap handle (clone it freely) on the one database, SQLite or
/// PostgreSQL. Its queries live by domain in this module's files (`projects`, `issues`,
/// `events`, `stats`, `retention`, `webhooks`), each written once for both databases
/// (see `db`).
#[derive(Clone)]
pub struct Store {
    db: Arc<Db>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &DatabaseUrl) -> Result<Store, StoreError> {
        let db = match url {
            DatabaseUrl::Sqlite(u) => Db::Sqlite(SqliteDb::open(u).await?),
            DatabaseUrl::Postgres(u) => Db::Postgres(PgDb::open(u).await?),
        };
        Ok(Store { db: Arc::new(db) })
    }

    fn db(&self) -> &Db {
        &self.db
    }
}

/// Opens (creating if needed) and migrates the database at `url`.
pub async fn open(url: &DatabaseUrl) -> Result<Store, StoreError> {
    Store::open(url).await
}

/// Commits on success, rolls back on failure. A transaction dropped unfinished (its task
/// cancelled) is rolled back by sqlx before its connection is reused, so no lock outlives
/// it.
async fn finish<DB: sqlx::Database, T>(
    tx: sqlx::Transaction<'static, DB>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}
