//! SQLite's group commits on a thread of their own, over rusqlite.
//!
//! Why not sqlx here (measured, docs/benchmarks-history.md, issue 14): sqlx's SQLite driver
//! hands every statement to its worker thread and back (two context switches each) and prepares
//! a
//! multi-row insert anew whenever a batch's size changes. This thread owns one connection
//! and runs the shared group commit (`write_core`) with cached prepared statements, one row
//! at a time (a cached insert costs a few microseconds; a big batch's events go several rows
//! per statement), in one transaction per batch.
//! Reads, and the rare other writes, stay on sqlx's pools.

use super::issues::COUNT_UNRESOLVED;
use super::rollups::Rollups;
use super::rows::{self, EVENT_COLUMNS, ISSUE_COLUMNS, ISSUE_COLUMNS_OF_I};
use super::webhooks::HOOKS_OF_ALL;
use super::write_core::{self, BatchStatements, BatchWrites, EventRow, NewIssue, StoredIds};
use super::{BatchResult, PreparedEvent, ProjectId, StoreError};
use crate::model::alert::Raised;
use crate::model::alert::fan_out;
use crate::model::{Issue, IssueStatus, Level, Millis};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Prepared statements kept per connection (the group commit uses about fifteen).
const STATEMENT_CACHE: usize = 64;

type Reply = oneshot::Sender<Result<BatchResult, StoreError>>;

/// The handle: sends batches to the writer thread. Dropping it ends the thread, which
/// closes its connection.
pub(super) struct SqliteWriter {
    jobs: mpsc::UnboundedSender<(Vec<PreparedEvent>, Reply)>,
    /// Dropped with the writer: the checkpoint thread sees it gone and ends.
    _checkpoints: std::sync::mpsc::Sender<()>,
}

/// How often the checkpoint thread copies the WAL's committed pages into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// WAL pages after which the writer's own commit checkpoints (SQLite's default is 1,000).
/// By then the checkpoint thread has copied nearly all of them, so this one copies the
/// last few and lets the next commit start the WAL over: the WAL stays near 16 MiB.
const WRITER_CHECKPOINT_PAGES: u32 = 4_000;

impl SqliteWriter {
    /// Opens the (already migrated) database at `path` and starts the thread.
    pub(super) fn open(path: &Path, mmap_size: u64) -> Result<SqliteWriter, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL was set by the migrating pool and is a property of the file. The page cache
        // stays at SQLite's default: pages are read through the map, and a large cache made
        // every commit slower (measured: `pcache1TruncateUnsafe`, 5% of the server's time
        // with 64 MiB, gone with the default).
        // SQLite checkpoints in the commit that crosses 1,000 WAL pages: copying them into
        // the database and syncing it holds up that batch and every request queued behind
        // it. The checkpoint thread does the copying beside the writer (measured: envelopes
        // 1,871 / 2,764 → 2,678 / 3,661/s, their max latency 81 / 85 → 34 / 57 ms); the
        // writer's own checkpoint, rarer, only finishes it (a passive checkpoint from
        // another thread never catches up with a busy writer, so alone it would let the
        // WAL grow without bound: tests/storage.rs).
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = {mmap_size}; \
             PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES};"
        ))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpoints = Connection::open(path)?;
        checkpoints.busy_timeout(Duration::from_secs(10))?;
        let (jobs, rx) = mpsc::unbounded_channel();
        let (stop, stopped) = std::sync::mpsc::channel();
        let spawn_error = |e: std::io::Error| {
            StoreError::Unsupported(format!("cannot start the SQLite writer: {e}"))
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(spawn_error)?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint(checkpoints, stopped))
            .map_err(spawn_error)?;
        Ok(SqliteWriter {
            jobs,
            _checkpoints: stop,
        })
    }

    /// Stores `events` in one transaction and answers once it is committed.
    pub(super) async fn write_batch(
        &self,
        events: Vec<PreparedEvent>,
    ) -> Result<BatchResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send((events, reply)).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Writer("the writer thread has stopped")
}

/// The thread: one batch at a time, each in its own transaction. A panic inside a batch
/// rolls it back and answers an error; the thread goes on with the next batch.
fn run(mut conn: Connection, mut jobs: mpsc::UnboundedReceiver<(Vec<PreparedEvent>, Reply)>) {
    while let Some((events, reply)) = jobs.blocking_recv() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit_batch(&mut conn, &events)
        }));
        let result = match outcome {
            Ok(r) => r,
            Err(_) => {
                tracing::error!("the SQLite writer panicked in a batch; rolled back");
                Err(StoreError::Writer(
                    "the batch's write panicked; it was rolled back",
                ))
            }
        };
        if result.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // A caller that went away (its request cancelled) still had its batch committed.
        let _ = reply.send(result);
    }
}

/// The checkpoint thread: a passive checkpoint every [`CHECKPOINT_EVERY`] (it copies what
/// is committed without taking the write lock, so the writer never waits for it). Ends
/// when the writer is dropped.
fn checkpoint(conn: Connection, stopped: std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stopped.recv_timeout(CHECKPOINT_EVERY)
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            match crate::log_limit::check("wal checkpoint") {
                crate::log_limit::Emit::First => {
                    tracing::warn!(error = %e, "WAL checkpoint failed")
                }
                crate::log_limit::Emit::Summary(n) => {
                    tracing::warn!(failures = n, error = %e, "WAL checkpoints still failing")
                }
                crate::log_limit::Emit::Quiet => {}
            }
        }
    }
}

/// `BEGIN IMMEDIATE` takes the write lock at once, so the transaction never fails with
/// SQLITE_BUSY halfway.
fn commit_batch(
    conn: &mut Connection,
    events: &[PreparedEvent],
) -> Result<BatchResult, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    // Every statement below completes synchronously, so the future is ready when polled.
    let result =
        futures_executor::block_on(write_core::write_batch(&mut SqliteBatch { conn }, events))?;
    conn.execute_batch("COMMIT")?;
    Ok(result)
}

/// Event rows one insert statement carries in a big batch: a statement's fixed cost
/// (step, reset, the VDBE's entry) is paid per chunk, not per row (measured: bulks of 100,
/// +4–7%).
const ROWS_PER_INSERT: usize = 16;

/// Rows from which a batch is inserted in chunks. Below, one row per statement: the
/// batches of single-event traffic (about 15 rows, a chunk whenever 16 or more) measured
/// 3.5% slower with chunks (runs alternated ABBA).
const CHUNKED_FROM: usize = 64;

/// Parameters of an event row: its columns and `raw`.
const EVENT_PARAMS: usize = 15;

static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| insert_events_sql(1));
static INSERT_EVENT_CHUNK: LazyLock<String> = LazyLock::new(|| insert_events_sql(ROWS_PER_INSERT));

/// The insert of `rows` event rows, their parameters row after row.
fn insert_events_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; EVENT_PARAMS].join(", "));
    format!(
        "INSERT INTO events ({EVENT_COLUMNS}, raw) VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// Binds `r` to the parameters after `offset` (1-based positions `offset + 1 ..`).
fn bind_event(
    st: &mut rusqlite::CachedStatement<'_>,
    offset: usize,
    r: &EventRow<'_>,
) -> rusqlite::Result<()> {
    let at = |i: usize| offset + i;
    st.raw_bind_parameter(at(1), r.p.project_id)?;
    st.raw_bind_parameter(at(2), r.stored.seq)?;
    st.raw_bind_parameter(at(3), r.p.event_id.as_str())?;
    st.raw_bind_parameter(at(4), r.stored.issue_id)?;
    st.raw_bind_parameter(at(5), r.p.event.level.as_str())?;
    st.raw_bind_parameter(at(6), r.stored.environment.as_str())?;
    st.raw_bind_parameter(at(7), r.stored.release.as_deref())?;
    st.raw_bind_parameter(at(8), r.stored.timestamp.0)?;
    st.raw_bind_parameter(at(9), r.p.received.0)?;
    st.raw_bind_parameter(at(10), r.stored.message.as_deref())?;
    st.raw_bind_parameter(at(11), r.stored.title.as_str())?;
    st.raw_bind_parameter(at(12), r.stored.culprit.as_str())?;
    st.raw_bind_parameter(at(13), r.tags.as_str())?;
    st.raw_bind_parameter(at(14), r.detail())?;
    st.raw_bind_parameter(at(15), r.p.raw_zstd.as_deref())
}

/// The writer's statements for the shared group commit.
struct SqliteBatch<'c> {
    conn: &'c mut Connection,
}

fn issue_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Issue, StoreError>> {
    let level: String = r.get(4)?;
    let status: String = r.get(5)?;
    Ok((|| {
        Ok(Issue {
            id: r.get(0)?,
            project_id: r.get(1)?,
            title: r.get(2)?,
            culprit: r.get(3)?,
            level: level.parse::<Level>().map_err(rows::corrupt)?,
            status: status.parse::<IssueStatus>().map_err(rows::corrupt)?,
            event_count: r.get(6)?,
            first_seen: Millis(r.get(7)?),
            last_seen: Millis(r.get(8)?),
            regressed_at: r.get::<_, Option<i64>>(9)?.map(Millis),
        })
    })())
}

impl SqliteBatch<'_> {
    fn insert_events(&self, rows: &[EventRow<'_>]) -> Result<(), StoreError> {
        // A big batch goes ROWS_PER_INSERT rows per statement, what is left one by one.
        let chunked = if rows.len() >= CHUNKED_FROM {
            rows.len() - rows.len() % ROWS_PER_INSERT
        } else {
            0
        };
        let (chunked, rest) = rows.split_at(chunked);
        if !chunked.is_empty() {
            let mut st = self.conn.prepare_cached(&INSERT_EVENT_CHUNK)?;
            for chunk in chunked.chunks(ROWS_PER_INSERT) {
                for (i, r) in chunk.iter().enumerate() {
                    bind_event(&mut st, i * EVENT_PARAMS, r)?;
                }
                st.raw_execute()?;
            }
        }
        if !rest.is_empty() {
            let mut st = self.conn.prepare_cached(&INSERT_EVENT)?;
            for r in rest {
                bind_event(&mut st, 0, r)?;
                st.raw_execute()?;
            }
        }
        Ok(())
    }

    /// Only additions reach here (a batch adds events); retention's subtractions and the
    /// deletes of rows left at zero are the other pool's.
    fn add_rollups(&self, rollups: &Rollups<'_>) -> Result<(), StoreError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO issue_tag_values (issue_id, key, value, count) VALUES (?, ?, ?, ?) \
             ON CONFLICT (issue_id, key, value) DO UPDATE \
             SET count = issue_tag_values.count + excluded.count",
        )?;
        for ((issue, key, value), n) in rollups.tag_counts() {
            st.execute(params![issue, key, value, n])?;
        }
        for (issues, table, owner) in [
            (true, "issue_minutes", "issue_id"),
            (false, "project_minutes", "project_id"),
        ] {
            let mut st = self.conn.prepare_cached(&format!(
                "INSERT INTO {table} ({owner}, minute, level, count) VALUES (?, ?, ?, ?) \
                 ON CONFLICT ({owner}, minute, level) DO UPDATE \
                 SET count = {table}.count + excluded.count"
            ))?;
            for ((id, minute, level), n) in rollups.minute_counts(issues) {
                st.execute(params![id, minute, level, n])?;
            }
        }
        Ok(())
    }

    fn update_issues(&self, issues: &[&Issue]) -> Result<(), StoreError> {
        let mut st = self.conn.prepare_cached(
            "UPDATE issues SET event_count = ?, last_seen = ?, level = ?, status = ?, \
             regressed_at = ? WHERE id = ?",
        )?;
        for i in issues {
            st.execute(params![
                i.event_count,
                i.last_seen.0,
                i.level.as_str(),
                i.status.as_str(),
                i.regressed_at.map(|t| t.0),
                i.id
            ])?;
        }
        Ok(())
    }

    fn set_project_seqs(&self, seqs: &[(ProjectId, i64)]) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE projects SET last_seq = ? WHERE id = ?")?;
        for &(p, seq) in seqs {
            st.execute(params![seq, p])?;
        }
        Ok(())
    }
}

/// Every statement runs on the writer's connection and completes at once (see
/// [`commit_batch`]).
impl BatchStatements for SqliteBatch<'_> {
    async fn project_seqs(
        &mut self,
        projects: &[ProjectId],
    ) -> Result<HashMap<ProjectId, i64>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT last_seq FROM projects WHERE id = ?")?;
        let mut out = HashMap::with_capacity(projects.len());
        for &p in projects {
            if let Some(seq) = st.query_row([p], |r| r.get(0)).optional()? {
                out.insert(p, seq);
            }
        }
        Ok(out)
    }

    async fn stored_event_ids(
        &mut self,
        keys: &[(ProjectId, &str)],
    ) -> Result<StoredIds, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT issue_id FROM events WHERE project_id = ? AND event_id = ?")?;
        let mut out = StoredIds::new();
        for &(p, id) in keys {
            if let Some(issue) = st.query_row(params![p, id], |r| r.get(0)).optional()? {
                out.entry(p).or_default().insert(id.to_owned(), issue);
            }
        }
        Ok(out)
    }

    async fn issues_by_fingerprint(
        &mut self,
        keys: &[(ProjectId, &str)],
    ) -> Result<Vec<(String, Issue)>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ISSUE_COLUMNS_OF_I} FROM issue_fingerprints f \
             JOIN issues i ON i.id = f.issue_id WHERE f.project_id = ? AND f.fingerprint = ?"
        ))?;
        let mut out = Vec::with_capacity(keys.len());
        for &(p, fp) in keys {
            if let Some(issue) = st.query_row(params![p, fp], issue_row).optional()? {
                out.push((fp.to_owned(), issue?));
            }
        }
        Ok(out)
    }

    async fn insert_issues(
        &mut self,
        issues: &[NewIssue<'_>],
    ) -> Result<Vec<(String, Issue)>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "INSERT INTO issues (project_id, fingerprint, title, culprit, level, status, \
             event_count, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, 'unresolved', 0, ?, ?) \
             RETURNING {ISSUE_COLUMNS}"
        ))?;
        let mut out = Vec::with_capacity(issues.len());
        for i in issues {
            let issue = st.query_row(
                params![
                    i.project_id,
                    i.fingerprint,
                    i.title.as_ref(),
                    i.culprit.as_ref(),
                    i.level.as_str(),
                    i.received.0,
                    i.received.0
                ],
                issue_row,
            )??;
            out.push((i.fingerprint.to_owned(), issue));
        }
        drop(st);
        // Each new issue answers to its own fingerprint (the lookup goes through them).
        let own: Vec<_> = out
            .iter()
            .map(|(f, i)| (i.project_id, f.as_str(), i.id))
            .collect();
        self.add_fingerprints(&own).await?;
        Ok(out)
    }

    async fn add_fingerprints(
        &mut self,
        fingerprints: &[(ProjectId, &str, i64)],
    ) -> Result<(), StoreError> {
        // A row left by a deleted issue (none should be: they go with their issue) would
        // otherwise fail the batch.
        let mut st = self.conn.prepare_cached(
            "INSERT INTO issue_fingerprints (project_id, fingerprint, issue_id) VALUES (?, ?, ?) \
             ON CONFLICT (project_id, fingerprint) DO UPDATE SET issue_id = excluded.issue_id",
        )?;
        for &(p, fp, issue) in fingerprints {
            st.execute(params![p, fp, issue])?;
        }
        Ok(())
    }

    async fn count_unresolved(&mut self, project: ProjectId) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(COUNT_UNRESOLVED)?
            .query_row([project], |r| r.get(0))?)
    }

    async fn raise_alerts(&mut self, raised: &[Raised], now: Millis) -> Result<(), StoreError> {
        let hooks: Vec<(i64, i64, String)> = self
            .conn
            .prepare_cached(HOOKS_OF_ALL)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut st = self
            .conn
            .prepare_cached("INSERT INTO alerts (webhook_id, created, alert) VALUES (?, ?, ?)")?;
        for (hook, alert) in fan_out(raised, &hooks) {
            st.execute(params![hook, now.0, alert])?;
        }
        Ok(())
    }

    async fn write(&mut self, batch: &BatchWrites<'_, '_>) -> Result<(), StoreError> {
        self.insert_events(batch.rows)?;
        self.add_rollups(batch.rollups)?;
        self.update_issues(batch.issues)?;
        self.set_project_seqs(batch.seqs)
    }
}
