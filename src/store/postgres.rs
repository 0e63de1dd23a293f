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

use super::rows::{self, EVENT_COLUMNS, ISSUE_COLUMNS, ISSUE_COLUMNS_OF_I};
use super::webhooks::{HOOKS_OF_ALL, alert_inserts};
use super::write_core::{self, BatchStatements, BatchWrites, NewIssue, StoredIds};
use super::{BatchResult, PreparedEvent, ProjectId, StoreError};
use crate::model::Issue;
use crate::model::Millis;
use crate::model::alert::Raised;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node. With several nodes, the server's `max_connections` must cover
/// them all.
const MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a connection: when the database is down, requests fail
/// within seconds (503) instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// An open PostgreSQL database (see [`super::db`]).
pub(crate) struct PgDb {
    /// Where reads and writes go.
    pub(super) pool: PgPool,
}

impl PgDb {
    /// A row locking clause (`FOR UPDATE`, …) as written: see the module's docs.
    pub(super) fn locking(&self, clause: &'static str) -> &'static str {
        clause
    }

    /// Connects to `url` (`postgres://...`) and migrates the database (concurrent nodes
    /// may do so at once: sqlx serializes migrations with an advisory lock).
    pub(super) async fn open(url: &str) -> Result<PgDb, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgDb { pool })
    }

    /// Starts a transaction (READ COMMITTED, the server's default).
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Where single write statements go (one pool serves everything here).
    pub(super) fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    /// `s` as PostgreSQL `TEXT` can hold it.
    pub(super) fn fit_text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        fit_text(s)
    }

    /// One group commit.
    pub(super) async fn write_batch(
        &self,
        events: Vec<PreparedEvent>,
    ) -> Result<BatchResult, StoreError> {
        // A generic plan for the batch's statements: the same few statements run for every
        // batch, and planning them anew each time (PostgreSQL's choice for array
        // parameters) was 10% of its CPU. Set in BEGIN's own round trip, for this
        // transaction only: the read queries keep their custom plans.
        let mut tx = self
            .pool
            .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
            .await?;
        let result = write_core::write_batch(&mut PgBatch { conn: &mut tx }, &events).await;
        super::finish(tx, result).await
    }

    /// A batch costs about the same five round trips whatever its size, and the server's
    /// core is mostly idle meanwhile, so waiting for the clients just answered pays
    /// (docs/BENCHMARKS.md, "Durable ingest on PostgreSQL").
    pub(super) fn commit_delay(&self) -> Duration {
        Duration::from_micros(300)
    }
}

/// `s` as PostgreSQL `TEXT` can hold it: U+0000 becomes U+FFFD.
fn fit_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// PostgreSQL's statements for the shared group commit (`write_core`): each takes the
/// whole batch in one statement (arrays through `UNNEST`), since every statement is a
/// network round trip.
struct PgBatch<'c> {
    conn: &'c mut PgConnection,
}

/// The statement of `PgBatch::write`: the batch's six writes
/// as data-modifying `WITH`s over 35 `UNNEST`ed arrays, built once.
static WRITE_STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH ev AS (INSERT INTO events ({EVENT_COLUMNS}, raw) \
     SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], \
     $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::TEXT[], $11::TEXT[], \
     $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::BYTEA[])), \
     iss AS (UPDATE issues SET event_count = u.event_count, last_seen = u.last_seen, \
     level = u.level, status = u.status, regressed_at = u.regressed_at \
     FROM UNNEST($16::BIGINT[], $17::BIGINT[], $18::BIGINT[], $19::TEXT[], $20::TEXT[], \
     $35::BIGINT[]) \
     AS u(id, event_count, last_seen, level, status, regressed_at) WHERE issues.id = u.id), \
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
     SET count = project_minutes.count + excluded.count"
    )
});

impl BatchStatements for PgBatch<'_> {
    fn fit_text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        fit_text(s)
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
            "SELECT {ISSUE_COLUMNS_OF_I}, f.fingerprint FROM issue_fingerprints f \
             JOIN issues i ON i.id = f.issue_id WHERE (f.project_id, f.fingerprint) IN \
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
        // The issues and the fingerprints they answer to, in one round trip.
        let rows = sqlx::query(&format!(
            "WITH i AS (INSERT INTO issues (project_id, fingerprint, title, culprit, level, status, \
             event_count, first_seen, last_seen) \
             SELECT project_id, fingerprint, title, culprit, level, 'unresolved', 0, received, received \
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[]) \
             AS u(project_id, fingerprint, title, culprit, level, received) \
             RETURNING {ISSUE_COLUMNS}, fingerprint), \
             f AS (INSERT INTO issue_fingerprints (project_id, fingerprint, issue_id) \
             SELECT project_id, fingerprint, id FROM i \
             ON CONFLICT (project_id, fingerprint) DO UPDATE SET issue_id = excluded.issue_id) \
             SELECT * FROM i"
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

    async fn add_fingerprints(
        &mut self,
        fingerprints: &[(ProjectId, &str, i64)],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO issue_fingerprints (project_id, fingerprint, issue_id) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[]) \
             ON CONFLICT (project_id, fingerprint) DO UPDATE SET issue_id = excluded.issue_id",
        )
        .bind(fingerprints.iter().map(|f| f.0).collect::<Vec<_>>())
        .bind(fingerprints.iter().map(|f| f.1).collect::<Vec<_>>())
        .bind(fingerprints.iter().map(|f| f.2).collect::<Vec<_>>())
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// Everything in one statement ([`WRITE_STATEMENT`]): one round trip instead of six.
    /// Every key appears once in its upsert (the counts are summed in memory), as
    /// `ON CONFLICT DO UPDATE` requires within one statement. Its 35 arrays are bound in
    /// the statement's order.
    #[rustfmt::skip] // one bind a line, in the statement's order
    async fn write(&mut self, batch: &BatchWrites<'_, '_>) -> Result<(), StoreError> {
        let rows = batch.rows;
        let tags: Vec<_> = batch.rollups.tag_counts().collect();
        let issue_minutes: Vec<_> = batch.rollups.minute_counts(true).collect();
        let project_minutes: Vec<_> = batch.rollups.minute_counts(false).collect();
        sqlx::query(&WRITE_STATEMENT)
        .bind(rows.iter().map(|r| r.p.project_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.p.event_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored.issue_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.p.event.level.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored.environment.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored.release.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored.timestamp.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.p.received.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored.message.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored.title.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stored.culprit.as_str()).collect::<Vec<_>>())
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
        .bind(batch.issues.iter().map(|i| i.regressed_at.map(|t| t.0)).collect::<Vec<_>>())
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn count_unresolved(&mut self, project: ProjectId) -> Result<i64, StoreError> {
        super::issues::count_unresolved(&mut *self.conn, project).await
    }

    async fn raise_alerts(&mut self, raised: &[Raised], now: Millis) -> Result<(), StoreError> {
        if raised.is_empty() {
            return Ok(());
        }
        let hooks: Vec<(i64, i64, String)> = sqlx::query_as(HOOKS_OF_ALL)
            .fetch_all(&mut *self.conn)
            .await?;
        for mut q in alert_inserts(raised, &hooks, now) {
            q.build().execute(&mut *self.conn).await?;
        }
        Ok(())
    }
}
