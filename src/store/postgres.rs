//! The PostgreSQL store: the same schema and behaviour as the SQLite store, for one or
//! several Mesher nodes sharing one database.
//!
//! Concurrency between nodes rests on row locks in READ COMMITTED: every transaction that
//! writes a project's issues or events first locks the project's row (`FOR UPDATE`, several
//! projects in ascending id order, so there is no deadlock). Transactions of one project
//! therefore serialize: its `seq` stays gap-free and only grows, a client event id is seen
//! by the next writer once committed, and issue rows read after the lock are current, so
//! no counter update is lost. The unique indexes (project, event id), (project, fingerprint)
//! and the events primary key (project, seq) back this up.
//!
//! PostgreSQL `TEXT` cannot hold U+0000, which SQLite stores as is; the few free-text
//! columns outside the JSON ones (message, environment, release, title, culprit, project
//! name) have it replaced by U+FFFD, so that one such event cannot fail its whole batch.

use super::rollups::{self, DELETED_COLUMNS, DeletedEvent, Rollups};
use super::write_core::{self, BatchStatements, BatchWrites, NewIssue, StoredIds};
use super::{
    BatchResult, CreatedProject, EventPage, PreparedEvent, Project, ProjectId, PurgeResult,
    StatusChange, Store, StoreError, StoredEvent, TagBreakdown, hash_token, new_ingest_key,
    new_token, rows,
};
use crate::model::DomainMessage;
use crate::model::alert::Raised;
use crate::model::{Issue, IssueCommand, IssueStatus, Millis};
use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const ISSUE_COLUMNS: &str =
    "id, project_id, title, culprit, level, status, event_count, first_seen, last_seen";
const EVENT_COLUMNS: &str = "project_id, seq, event_id, issue_id, level, environment, release, \
     timestamp, received, message, title, culprit, tags, detail";
/// Rows one retention statement deletes, so that no statement runs long.
const PURGE_CHUNK: i64 = 5_000;
/// Connections per node. With several nodes, the server's `max_connections` must cover
/// them all.
const MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a connection: when the database is down, requests fail
/// within seconds (503) instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://...`) and migrates the database (concurrent nodes
    /// may do so at once: sqlx serializes migrations with an advisory lock).
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Starts a transaction (READ COMMITTED, the server's default). A transaction dropped
    /// unfinished (e.g. its future cancelled) is rolled back before the connection is
    /// reused, so no lock outlives it.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Where single write statements go (one pool serves everything here).
    fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    /// Commits on success, rolls back on failure (a connection that fails even that is
    /// closed by the pool when it is returned).
    async fn finish<T>(
        tx: Transaction<'static, Postgres>,
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
}

/// `s` as PostgreSQL `TEXT` can hold it: U+0000 becomes U+FFFD.
fn pg_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

async fn count_unresolved(conn: &mut PgConnection, project: ProjectId) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM issues WHERE project_id = $1 AND status = 'unresolved'",
    )
    .bind(project)
    .fetch_one(conn)
    .await?)
}

/// PostgreSQL's statements for the shared group commit (`write_core`): each takes the
/// whole batch in one statement (arrays through `UNNEST`), since every statement is a
/// network round trip.
struct PgBatch<'c> {
    conn: &'c mut PgConnection,
}

#[async_trait]
impl BatchStatements for PgBatch<'_> {
    fn fit_text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        pg_text(s)
    }

    /// Locks the batch's projects in id order; their seqs start from the locked values.
    async fn project_seqs(
        &mut self,
        projects: &[ProjectId],
    ) -> Result<HashMap<ProjectId, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, last_seq FROM projects WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(projects)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("last_seq")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn stored_event_ids(
        &mut self,
        keys: &[(ProjectId, &str)],
    ) -> Result<StoredIds, StoreError> {
        let (projects, ids): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
        let rows = sqlx::query(
            "SELECT project_id, event_id, issue_id FROM events WHERE (project_id, event_id) IN \
             (SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[]))",
        )
        .bind(&projects)
        .bind(&ids)
        .fetch_all(&mut *self.conn)
        .await?;
        let mut out = StoredIds::new();
        for r in rows {
            out.entry(r.try_get("project_id")?)
                .or_default()
                .insert(r.try_get("event_id")?, r.try_get("issue_id")?);
        }
        Ok(out)
    }

    /// Current: the projects are locked.
    async fn issues_by_fingerprint(
        &mut self,
        keys: &[(ProjectId, &str)],
    ) -> Result<Vec<(String, Issue)>, StoreError> {
        let (projects, fingerprints): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
        let rows = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS}, fingerprint FROM issues WHERE (project_id, fingerprint) IN \
             (SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[]))"
        ))
        .bind(&projects)
        .bind(&fingerprints)
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("fingerprint")?, rows::issue(r)?)))
            .collect()
    }

    async fn insert_issues(
        &mut self,
        issues: &[NewIssue<'_>],
    ) -> Result<Vec<(String, Issue)>, StoreError> {
        let rows = sqlx::query(&format!(
            "INSERT INTO issues (project_id, fingerprint, title, culprit, level, status, \
             event_count, first_seen, last_seen) \
             SELECT project_id, fingerprint, title, culprit, level, 'unresolved', 0, received, received \
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[]) \
             AS u(project_id, fingerprint, title, culprit, level, received) \
             RETURNING {ISSUE_COLUMNS}, fingerprint"
        ))
        .bind(issues.iter().map(|i| i.project_id).collect::<Vec<_>>())
        .bind(issues.iter().map(|i| i.fingerprint).collect::<Vec<_>>())
        .bind(issues.iter().map(|i| i.title.as_ref()).collect::<Vec<_>>())
        .bind(issues.iter().map(|i| i.culprit.as_ref()).collect::<Vec<_>>())
        .bind(issues.iter().map(|i| i.level.as_str()).collect::<Vec<_>>())
        .bind(issues.iter().map(|i| i.received.0).collect::<Vec<_>>())
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("fingerprint")?, rows::issue(r)?)))
            .collect()
    }

    /// Everything in one statement (data-modifying `WITH`s, each over `UNNEST`ed arrays):
    /// one round trip instead of six. Every key appears once in its upsert (the counts
    /// are summed in memory), as `ON CONFLICT DO UPDATE` requires within one statement.
    async fn write(&mut self, batch: &BatchWrites<'_, '_>) -> Result<(), StoreError> {
        let rows = batch.rows;
        let tags: Vec<_> = batch.rollups.tag_counts().collect();
        let issue_minutes: Vec<_> = batch.rollups.minute_counts(true).collect();
        let project_minutes: Vec<_> = batch.rollups.minute_counts(false).collect();
        sqlx::query(
            "WITH ev AS (INSERT INTO events (project_id, seq, event_id, issue_id, level, \
             environment, release, timestamp, received, message, title, culprit, tags, detail, raw) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], \
             $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::TEXT[], $11::TEXT[], \
             $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::BYTEA[])), \
             iss AS (UPDATE issues SET event_count = u.event_count, last_seen = u.last_seen, \
             level = u.level, status = u.status \
             FROM UNNEST($16::BIGINT[], $17::BIGINT[], $18::BIGINT[], $19::TEXT[], $20::TEXT[]) \
             AS u(id, event_count, last_seen, level, status) WHERE issues.id = u.id), \
             prj AS (UPDATE projects SET last_seq = u.last_seq \
             FROM UNNEST($21::BIGINT[], $22::BIGINT[]) AS u(id, last_seq) WHERE projects.id = u.id), \
             tv AS (INSERT INTO issue_tag_values (issue_id, key, value, count) \
             SELECT * FROM UNNEST($23::BIGINT[], $24::TEXT[], $25::TEXT[], $26::BIGINT[]) \
             ON CONFLICT (issue_id, key, value) DO UPDATE \
             SET count = issue_tag_values.count + excluded.count), \
             im AS (INSERT INTO issue_minutes (issue_id, minute, level, count) \
             SELECT * FROM UNNEST($27::BIGINT[], $28::BIGINT[], $29::TEXT[], $30::BIGINT[]) \
             ON CONFLICT (issue_id, minute, level) DO UPDATE \
             SET count = issue_minutes.count + excluded.count) \
             INSERT INTO project_minutes (project_id, minute, level, count) \
             SELECT * FROM UNNEST($31::BIGINT[], $32::BIGINT[], $33::TEXT[], $34::BIGINT[]) \
             ON CONFLICT (project_id, minute, level) DO UPDATE \
             SET count = project_minutes.count + excluded.count",
        )
        .bind(rows.iter().map(|r| r.p.project_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.p.event_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.issue_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.p.event.level.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.environment.as_ref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.release.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.timestamp.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.p.received.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.message.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.title.as_ref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.culprit.as_ref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.tags.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.detail()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.p.raw_zstd.as_deref()).collect::<Vec<_>>())
        .bind(batch.issues.iter().map(|i| i.id).collect::<Vec<_>>())
        .bind(batch.issues.iter().map(|i| i.event_count).collect::<Vec<_>>())
        .bind(batch.issues.iter().map(|i| i.last_seen.0).collect::<Vec<_>>())
        .bind(batch.issues.iter().map(|i| i.level.as_str()).collect::<Vec<_>>())
        .bind(batch.issues.iter().map(|i| i.status.as_str()).collect::<Vec<_>>())
        .bind(batch.seqs.iter().map(|s| s.0).collect::<Vec<_>>())
        .bind(batch.seqs.iter().map(|s| s.1).collect::<Vec<_>>())
        .bind(tags.iter().map(|t| t.0.0).collect::<Vec<_>>())
        .bind(tags.iter().map(|t| t.0.1).collect::<Vec<_>>())
        .bind(tags.iter().map(|t| t.0.2).collect::<Vec<_>>())
        .bind(tags.iter().map(|t| t.1).collect::<Vec<_>>())
        .bind(issue_minutes.iter().map(|t| t.0.0).collect::<Vec<_>>())
        .bind(issue_minutes.iter().map(|t| t.0.1).collect::<Vec<_>>())
        .bind(issue_minutes.iter().map(|t| t.0.2).collect::<Vec<_>>())
        .bind(issue_minutes.iter().map(|t| t.1).collect::<Vec<_>>())
        .bind(project_minutes.iter().map(|t| t.0.0).collect::<Vec<_>>())
        .bind(project_minutes.iter().map(|t| t.0.1).collect::<Vec<_>>())
        .bind(project_minutes.iter().map(|t| t.0.2).collect::<Vec<_>>())
        .bind(project_minutes.iter().map(|t| t.1).collect::<Vec<_>>())
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn count_unresolved(&mut self, project: ProjectId) -> Result<i64, StoreError> {
        count_unresolved(self.conn, project).await
    }

    async fn raise_alerts(&mut self, raised: &[Raised], now: Millis) -> Result<(), StoreError> {
        PgStore::raise_alerts(self.conn, raised, now).await
    }
}

async fn change_status_tx(
    conn: &mut PgConnection,
    issue_id: i64,
    command: IssueCommand,
) -> Result<Option<StatusChange>, StoreError> {
    // The project's lock first, as writers take it: a concurrent batch on another node
    // then either committed before (and is read below) or waits for this change.
    let project: Option<i64> = sqlx::query_scalar(
        "SELECT p.id FROM projects p JOIN issues i ON i.project_id = p.id WHERE i.id = $1 \
         FOR UPDATE OF p",
    )
    .bind(issue_id)
    .fetch_optional(&mut *conn)
    .await?;
    if project.is_none() {
        return Ok(None);
    }
    let Some(row) = sqlx::query(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $1"))
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
        "UPDATE issues SET status = $1 WHERE id = $2 RETURNING {ISSUE_COLUMNS}"
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
    PgStore::raise_alerts(
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

/// Issues retention may delete: left without events, not seen since the cutoff (`$1`),
/// not discarded (those are kept as tombstones).
const ORPHANS: &str = "status != 'discarded' AND last_seen < $1 AND NOT EXISTS \
     (SELECT 1 FROM events e WHERE e.issue_id = issues.id)";

/// The second half of a retention pass: deletes orphaned issues under their projects'
/// locks (so that no batch is adding an event to one meanwhile) and returns how many,
/// with the new unresolved counts.
async fn purge_issues_tx(
    conn: &mut PgConnection,
    cutoff: Millis,
) -> Result<(u64, Vec<DomainMessage>), StoreError> {
    let locked: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM projects WHERE id IN (SELECT project_id FROM issues WHERE {ORPHANS}) \
         ORDER BY id FOR UPDATE"
    ))
    .bind(cutoff.0)
    .fetch_all(&mut *conn)
    .await?;
    if locked.is_empty() {
        return Ok((0, Vec::new()));
    }
    let projects: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT project_id FROM issues WHERE project_id = ANY($2) \
         AND status = 'unresolved' AND {ORPHANS} ORDER BY project_id"
    ))
    .bind(cutoff.0)
    .bind(&locked)
    .fetch_all(&mut *conn)
    .await?;
    let issues = sqlx::query(&format!(
        "DELETE FROM issues WHERE project_id = ANY($2) AND {ORPHANS}"
    ))
    .bind(cutoff.0)
    .bind(&locked)
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
        let count = count_unresolved(conn, project_id).await?;
        messages.push(DomainMessage::CountChanged { project_id, count });
    }
    Ok((issues, messages))
}

super::alerts::alert_methods!(PgStore, PgConnection, super::alerts::numbered);

#[async_trait]
impl Store for PgStore {
    async fn create_project(&self, name: &str) -> Result<CreatedProject, StoreError> {
        let name = pg_text(name);
        let ingest_key = new_ingest_key();
        let token = new_token();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO projects (name, ingest_key, token_hash, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name.as_ref())
        .bind(&ingest_key)
        .bind(hash_token(&token))
        .bind(Millis::now().0)
        .fetch_one(&self.pool)
        .await?;
        Ok(CreatedProject {
            project: Project {
                id,
                name: name.into_owned(),
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
            "UPDATE projects SET token_hash = $1 WHERE id = $2 RETURNING id, name, ingest_key",
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
            "UPDATE projects SET ingest_key = $1 WHERE id = $2 RETURNING id, name, ingest_key",
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
            sqlx::query_scalar("SELECT id FROM projects WHERE ingest_key = $1")
                .bind(pg_text(key))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn project_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ProjectId>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM projects WHERE token_hash = $1")
                .bind(pg_text(token_hash))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn project_exists(&self, id: ProjectId) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn write_batch(&self, events: Vec<PreparedEvent>) -> Result<BatchResult, StoreError> {
        // A generic plan for the batch's statements: the same few statements run for every
        // batch, and planning them anew each time (PostgreSQL's choice for array
        // parameters) was 10% of its CPU. Set in BEGIN's own round trip, for this
        // transaction only: the read queries keep their custom plans.
        let mut tx = self
            .pool
            .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
            .await?;
        let result = write_core::write_batch(&mut PgBatch { conn: &mut tx }, &events).await;
        let committed = Self::finish(tx, result).await?;
        Ok(committed)
    }

    /// A batch costs about the same five round trips whatever its size, and the server's
    /// core is mostly idle meanwhile, so waiting for the clients just answered pays
    /// (measured, 32 clients: 16 → 31 events per commit, single events +30%;
    /// docs/BENCHMARKS.md, "Durable ingest on PostgreSQL"). SQLite's commits cost the server's
    /// own CPU instead: there the wait leaves the core idle and loses (−7%), so it does not
    /// wait.
    fn commit_delay(&self) -> std::time::Duration {
        std::time::Duration::from_micros(300)
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
                    "SELECT {ISSUE_COLUMNS} FROM issues WHERE project_id = $1 AND status = $2 \
                     ORDER BY last_seen DESC, id DESC LIMIT $3"
                ))
                .bind(project)
                .bind(s.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {ISSUE_COLUMNS} FROM issues WHERE project_id = $1 \
                     ORDER BY last_seen DESC, id DESC LIMIT $2"
                ))
                .bind(project)
                .bind(i64::from(limit))
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
        let mut q = sqlx::QueryBuilder::<Postgres>::new("");
        super::search::issues_query(&mut q, project, terms, sort, limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(rows::issue).collect()
    }

    async fn get_issue(&self, id: i64) -> Result<Option<Issue>, StoreError> {
        sqlx::query(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $1"))
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
        let row = super::search::event_by_id::<Postgres>(EVENT_COLUMNS, project, event_id)
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
        let rows = super::rollups::per_minute_query::<Postgres>(project, issue, since.0)
            .build_query_as()
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    async fn issue_tags(&self, issue: i64) -> Result<Vec<TagBreakdown>, StoreError> {
        let rows = super::rollups::tag_breakdown_query::<Postgres>(issue)
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
        let rows = super::search::issue_events::<Postgres>(EVENT_COLUMNS, issue, page, limit)
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
            "SELECT {EVENT_COLUMNS} FROM events WHERE project_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        ))
        .bind(project)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::event).collect()
    }

    async fn latest_seq(&self, project: ProjectId) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM projects WHERE id = $1")
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
        let mut tx = self.begin().await?;
        let result = change_status_tx(&mut tx, issue, command).await;
        Self::finish(tx, result).await
    }

    async fn purge_before(&self, cutoff: Millis) -> Result<PurgeResult, StoreError> {
        let mut result = PurgeResult::default();
        // Chunked by primary key; SKIP LOCKED lets passes on several nodes share the work
        // instead of waiting on each other's rows (the events are never updated, so only
        // another purge locks them).
        let mut progress = super::Progress::new("retention: old events deleted");
        loop {
            // Each chunk's events and the counts they held go in one transaction, so the
            // rollups always equal what is stored.
            let mut tx = self.begin().await?;
            let chunk = async {
                let deleted: Vec<DeletedEvent> = sqlx::query_as(&format!(
                    "DELETE FROM events WHERE (project_id, seq) IN \
                 (SELECT project_id, seq FROM events WHERE received < $1 LIMIT $2 \
                  FOR UPDATE SKIP LOCKED) RETURNING {DELETED_COLUMNS}"
                ))
                .bind(cutoff.0)
                .bind(PURGE_CHUNK)
                .fetch_all(&mut *tx)
                .await?;
                let tags: Vec<std::collections::BTreeMap<String, String>> =
                    rollups::deleted_tags(&deleted)
                        .into_iter()
                        .map(|t| {
                            t.into_iter()
                                .map(|(k, v)| (pg_text(&k).into_owned(), pg_text(&v).into_owned()))
                                .collect()
                        })
                        .collect();
                for mut q in Rollups::removed(&deleted, &tags).statements::<Postgres>() {
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
        let mut tx = self.begin().await?;
        let purged = purge_issues_tx(&mut tx, cutoff).await;
        let (issues, messages) = Self::finish(tx, purged).await?;
        result.issues = issues;
        result.messages = messages;
        Ok(result)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
