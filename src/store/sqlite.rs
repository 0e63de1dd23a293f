//! The SQLite store: one file, WAL, `synchronous=FULL` (a 202 survives power loss, not
//! only a crash), a busy timeout so the CLI and the server can share the file.

use super::rollups::{self, DELETED_COLUMNS, DeletedEvent, Rollups};
use super::{
    BatchResult, CreatedProject, EventPage, PreparedEvent, Project, ProjectId, PurgeResult,
    StatusChange, Store, StoreError, StoredEvent, TagBreakdown, hash_token, new_ingest_key,
    new_token, rows,
};
use crate::model::DomainMessage;
use crate::model::{Issue, IssueCommand, IssueStatus, Millis};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use std::str::FromStr;
use std::time::Duration;

use super::sqlite_writer::{COUNT_UNRESOLVED, ISSUE_COLUMNS};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const EVENT_COLUMNS: &str = "project_id, seq, event_id, issue_id, level, environment, release, \
     timestamp, received, message, title, culprit, tags, detail";
/// Rows one retention statement deletes, so that ingestion never waits long for the lock.
const PURGE_CHUNK: i64 = 5_000;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection write transactions use (see [`SqliteStore::open`]).
    writer: SqlitePool,
    /// The group commits' own connection, on its thread.
    batches: super::sqlite_writer::SqliteWriter,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://path`), creating the file if missing, and migrates it.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        // Pages are read through a memory map, not copied in by `pread` (measured: a third
        // of the write thread's time was the kernel copying pages it had just written).
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
        let batches = super::sqlite_writer::SqliteWriter::open(options.get_filename(), MMAP_SIZE)?;
        Ok(SqliteStore {
            pool,
            writer,
            batches,
        })
    }

    /// Starts a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`),
    /// so that a read-then-write transaction never fails with SQLITE_BUSY halfway. A
    /// transaction dropped unfinished (its task cancelled) is rolled back, so the one
    /// writer connection never goes back to the pool holding the write lock.
    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Commits on success, rolls back on failure.
    async fn finish<T>(
        tx: Transaction<'static, Sqlite>,
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

    /// Where single write statements go: the writer connection, like transactions, so
    /// that they neither wait for the write lock on another connection nor make the
    /// writer's page cache stale.
    fn write_pool(&self) -> &SqlitePool {
        &self.writer
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

async fn count_unresolved(
    conn: &mut SqliteConnection,
    project: ProjectId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(COUNT_UNRESOLVED)
        .bind(project)
        .fetch_one(conn)
        .await?)
}

/// Bytes of the database file each connection maps (reads go through the page cache
/// without a copy).
const MMAP_SIZE: u64 = 1 << 30;

async fn change_status_tx(
    conn: &mut SqliteConnection,
    issue_id: i64,
    command: IssueCommand,
) -> Result<Option<StatusChange>, StoreError> {
    let Some(row) = sqlx::query(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ?"))
        .bind(issue_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let issue = rows::issue(&row)?;
    let Some((next, action)) = command.apply(issue.status) else {
        return Ok(Some(StatusChange {
            issue,
            action: None,
            count: None,
        }));
    };
    let row = sqlx::query(&format!(
        "UPDATE issues SET status = ? WHERE id = ? RETURNING {ISSUE_COLUMNS}"
    ))
    .bind(next.as_str())
    .bind(issue_id)
    .fetch_one(&mut *conn)
    .await?;
    let updated = rows::issue(&row)?;
    let count = if (issue.status == IssueStatus::Unresolved) != (next == IssueStatus::Unresolved) {
        Some(count_unresolved(conn, updated.project_id).await?)
    } else {
        None
    };
    SqliteStore::raise_alerts(
        conn,
        &[crate::model::alert::alert(action, &updated, None)],
        Millis::now(),
    )
    .await?;
    Ok(Some(StatusChange {
        issue: updated,
        action: Some(action),
        count,
    }))
}

super::alerts::alert_methods!(SqliteStore, SqliteConnection, sqlite_sql);

/// SQLite takes the `?` placeholders as written.
fn sqlite_sql(sql: &str) -> &str {
    sql
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_project(&self, name: &str) -> Result<CreatedProject, StoreError> {
        let ingest_key = new_ingest_key();
        let token = new_token();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO projects (name, ingest_key, token_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(&ingest_key)
        .bind(hash_token(&token))
        .bind(Millis::now().0)
        .fetch_one(&self.pool)
        .await?;
        Ok(CreatedProject {
            project: Project {
                id,
                name: name.to_owned(),
                ingest_key,
            },
            token,
        })
    }

    async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        let rows = sqlx::query("SELECT id, name, ingest_key FROM projects ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::project).collect()
    }

    async fn rotate_token(&self, id: ProjectId) -> Result<Option<CreatedProject>, StoreError> {
        let token = new_token();
        let row = sqlx::query(
            "UPDATE projects SET token_hash = ? WHERE id = ? RETURNING id, name, ingest_key",
        )
        .bind(hash_token(&token))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CreatedProject {
                project: rows::project(&r)?,
                token,
            })
        })
        .transpose()
    }

    async fn rotate_ingest_key(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        let row = sqlx::query(
            "UPDATE projects SET ingest_key = ? WHERE id = ? RETURNING id, name, ingest_key",
        )
        .bind(new_ingest_key())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::project).transpose()
    }

    async fn project_credentials(&self) -> Result<Vec<super::ProjectCredentials>, StoreError> {
        Ok(sqlx::query_as(super::PROJECT_CREDENTIALS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn project_by_ingest_key(&self, key: &str) -> Result<Option<ProjectId>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM projects WHERE ingest_key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn project_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ProjectId>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM projects WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn project_exists(&self, id: ProjectId) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn write_batch(&self, events: Vec<PreparedEvent>) -> Result<BatchResult, StoreError> {
        self.batches.write_batch(events).await
    }

    async fn list_issues(
        &self,
        project: ProjectId,
        status: Option<IssueStatus>,
        limit: u32,
    ) -> Result<Vec<Issue>, StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {ISSUE_COLUMNS} FROM issues WHERE project_id = ? AND status = ? \
                 ORDER BY last_seen DESC, id DESC LIMIT ?"
                ))
                .bind(project)
                .bind(s.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {ISSUE_COLUMNS} FROM issues WHERE project_id = ? \
                 ORDER BY last_seen DESC, id DESC LIMIT ?"
                ))
                .bind(project)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(rows::issue).collect()
    }

    async fn search_issues(
        &self,
        project: ProjectId,
        terms: &[crate::model::Term],
        sort: crate::model::IssueSort,
        limit: u32,
    ) -> Result<Vec<Issue>, StoreError> {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new("");
        super::search::issues_query(&mut q, project, terms, sort, limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(rows::issue).collect()
    }

    async fn get_issue(&self, id: i64) -> Result<Option<Issue>, StoreError> {
        sqlx::query(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::issue)
            .transpose()
    }

    async fn event_by_id(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(StoredEvent, Option<Vec<u8>>)>, StoreError> {
        let row = super::search::event_by_id::<Sqlite>(EVENT_COLUMNS, project, event_id)
            .build()
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((rows::event(&r)?, rows::raw(&r)?)))
            .transpose()
    }

    async fn events_per_minute(
        &self,
        project: ProjectId,
        issue: Option<i64>,
        since: Millis,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let rows = super::rollups::per_minute_query::<Sqlite>(project, issue, since.0)
            .build_query_as()
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    async fn issue_tags(&self, issue: i64) -> Result<Vec<TagBreakdown>, StoreError> {
        let rows = super::rollups::tag_breakdown_query::<Sqlite>(issue)
            .build_query_as()
            .fetch_all(&self.pool)
            .await?;
        Ok(super::rollups::tag_breakdowns(rows))
    }

    async fn issue_events(
        &self,
        issue: i64,
        page: EventPage,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = super::search::issue_events::<Sqlite>(EVENT_COLUMNS, issue, page, limit)
            .build()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::event).collect()
    }

    async fn events_since(
        &self,
        project: ProjectId,
        since: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE project_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(project)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::event).collect()
    }

    async fn latest_seq(&self, project: ProjectId) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM projects WHERE id = ?")
            .bind(project)
            .fetch_optional(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn unresolved_count(&self, project: ProjectId) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        count_unresolved(&mut conn, project).await
    }

    async fn change_issue_status(
        &self,
        issue: i64,
        command: IssueCommand,
    ) -> Result<Option<StatusChange>, StoreError> {
        let mut conn = self.begin().await?;
        let result = change_status_tx(&mut conn, issue, command).await;
        Self::finish(conn, result).await
    }

    async fn purge_before(&self, cutoff: Millis) -> Result<PurgeResult, StoreError> {
        let mut result = PurgeResult::default();
        let mut progress = super::Progress::new("retention: old events deleted");
        loop {
            // Each chunk's events and the counts they held go in one transaction, so the
            // rollups always equal what is stored.
            let mut tx = self.begin().await?;
            let chunk = async {
                let deleted: Vec<DeletedEvent> = sqlx::query_as(&format!(
                "DELETE FROM events WHERE (project_id, seq) IN \
                 (SELECT project_id, seq FROM events WHERE received < ? LIMIT ?) RETURNING {DELETED_COLUMNS}"
                ))
                .bind(cutoff.0)
                .bind(PURGE_CHUNK)
                .fetch_all(&mut *tx)
                .await?;
                let tags = rollups::deleted_tags(&deleted);
                for mut q in Rollups::removed(&deleted, &tags).statements::<Sqlite>() {
                    q.build().execute(&mut *tx).await?;
                }
                Ok::<_, StoreError>(deleted.len() as u64)
            }
            .await;
            let deleted = Self::finish(tx, chunk).await?;
            result.events += deleted;
            progress.report(result.events);
            if deleted < PURGE_CHUNK as u64 {
                break;
            }
        }
        let mut conn = self.begin().await?;
        let tx = async {
            const ORPHANS: &str = "status != 'discarded' AND last_seen < ? AND NOT EXISTS \
                 (SELECT 1 FROM events e WHERE e.issue_id = issues.id)";
            let projects: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT DISTINCT project_id FROM issues WHERE status = 'unresolved' AND {ORPHANS}"
            ))
            .bind(cutoff.0)
            .fetch_all(&mut *conn)
            .await?;
            let issues = sqlx::query(&format!("DELETE FROM issues WHERE {ORPHANS}"))
                .bind(cutoff.0)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if issues > 0 {
                sqlx::query(
                    "DELETE FROM issue_tag_values WHERE NOT EXISTS \
                     (SELECT 1 FROM issues WHERE issues.id = issue_tag_values.issue_id)",
                )
                .execute(&mut *conn)
                .await?;
            }
            let mut messages = Vec::new();
            for project_id in projects {
                let count = count_unresolved(&mut conn, project_id).await?;
                messages.push(DomainMessage::CountChanged { project_id, count });
            }
            Ok::<_, StoreError>((issues, messages))
        }
        .await;
        let (issues, messages) = Self::finish(conn, tx).await?;
        result.issues = issues;
        result.messages = messages;
        Ok(result)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
