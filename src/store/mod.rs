//! Storage: one trait, with SQLite and PostgreSQL implementations.
//!
//! Handlers and background tasks see only [`Store`]. Writes of new events go through
//! [`Store::write_batch`], which the group-commit writer calls with many requests' events
//! at once: one transaction, one fsync.

pub mod alerts;
mod postgres;
mod rollups;
mod rows;
mod search;
mod sqlite;
mod sqlite_writer;
mod write_core;

pub use crate::model::message::DomainMessage;
pub use crate::model::stored::{EventSummary, ListedEvent, StoredEvent};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::config::DatabaseUrl;
use crate::model::{Issue, IssueCommand, IssueStatus, Millis, NewEvent};
use async_trait::async_trait;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A project's id (positive; Sentry SDKs need a number).
pub type ProjectId = i64;

/// A project as listed (no secrets but the ingest key, which may only send events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    /// Project id.
    pub id: ProjectId,
    /// Display name.
    pub name: String,
    /// The key that authenticates ingestion: 32 lowercase hex digits.
    pub ingest_key: String,
}

/// A project just created (or re-keyed), with the one copy of its token.
#[derive(Clone, Debug)]
pub struct CreatedProject {
    /// The project.
    pub project: Project,
    /// The read token in clear; only its hash is stored.
    pub token: String,
}

/// A project's credentials as stored: `(id, ingest key, SHA-256 of the token)`.
pub type ProjectCredentials = (ProjectId, String, String);

/// The key directory's reload, the same text for both databases.
pub(crate) const PROJECT_CREDENTIALS: &str = "SELECT id, ingest_key, token_hash FROM projects";

/// An event ready to store: validated, grouped, with its id settled.
#[derive(Clone, Debug)]
pub struct PreparedEvent {
    /// Owning project.
    pub project_id: ProjectId,
    /// 32 lowercase hex digits.
    pub event_id: String,
    /// Whether the client chose the id (only then can it repeat an earlier event's).
    pub id_from_client: bool,
    /// The grouping key.
    pub fingerprint: String,
    /// Title for a new issue.
    pub title: String,
    /// Culprit for a new issue.
    pub culprit: String,
    /// When the server received it.
    pub received: Millis,
    /// The validated event.
    pub event: NewEvent,
    /// `event.raw` as stored: compressed with zstd from 512 bytes on, else as is.
    pub raw_zstd: Option<Vec<u8>>,
}

/// What storage did with one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored with this seq.
    Stored {
        /// The issue it grouped into.
        issue_id: i64,
        /// Its per-project sequence number.
        seq: i64,
    },
    /// An event with this id was stored before; nothing was written.
    Duplicate {
        /// The issue of the earlier copy.
        issue_id: i64,
    },
    /// The issue is discarded; the event was accepted and dropped.
    Dropped {
        /// The discarded issue.
        issue_id: i64,
    },
}

impl EventOutcome {
    /// The issue the event belongs to.
    pub fn issue_id(self) -> i64 {
        match self {
            EventOutcome::Stored { issue_id, .. }
            | EventOutcome::Duplicate { issue_id }
            | EventOutcome::Dropped { issue_id } => issue_id,
        }
    }
}

/// The result of one group-commit transaction.
#[derive(Debug, Default)]
pub struct BatchResult {
    /// One outcome per input event, in input order.
    pub outcomes: Vec<EventOutcome>,
    /// What to publish once the transaction is committed, in commit order.
    pub messages: Vec<DomainMessage>,
}

/// How an issue's events spread over one tag's values (SPEC §3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagBreakdown {
    /// The tag (or `environment`, `release`).
    pub key: String,
    /// Events that carry it.
    pub total: i64,
    /// The most frequent values, most frequent first (ties by value).
    pub values: Vec<TagValue>,
}

/// One value of a tag and how many events carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagValue {
    /// The value.
    pub value: String,
    /// Events with it.
    pub count: i64,
}

/// Most values listed per tag.
pub const TOP_TAG_VALUES: usize = 10;

/// Where a page of an issue's events starts: how the issue view steps to older and newer
/// events without counting offsets (a seek on `events_by_issue`, however many events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventPage {
    /// The newest events, newest first.
    Newest,
    /// Events with a seq below this one, newest first.
    Before(i64),
    /// Events with a seq above this one, oldest first (the next newer ones).
    After(i64),
}

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

/// The result of an issue state change.
#[derive(Debug)]
pub struct StatusChange {
    /// The issue after the change.
    pub issue: Issue,
    /// What changed; `None` when the issue already had that status.
    pub action: Option<crate::model::IssueAction>,
    /// The project's new unresolved count, when it changed.
    pub count: Option<i64>,
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

/// Webhooks and the alert outbox (SPEC §7), part of every [`Store`]; both stores implement
/// it with the one body in `store::alerts`.
#[async_trait]
pub trait AlertOutbox: Send + Sync {
    /// Adds a webhook unless the project is missing or has
    /// [`MAX_WEBHOOKS`](crate::model::webhook::MAX_WEBHOOKS) already. The URL is stored as
    /// given: checking where it leads is the caller's (and the delivery's) job.
    async fn create_webhook(
        &self,
        project: ProjectId,
        url: &str,
        on: &[crate::model::IssueAction],
        format: crate::model::webhook::WebhookFormat,
        secret: &str,
    ) -> Result<alerts::WebhookAdded, StoreError>;
    /// Every webhook (of one project), by id.
    async fn list_webhooks(
        &self,
        project: Option<ProjectId>,
    ) -> Result<Vec<crate::model::webhook::Webhook>, StoreError>;
    /// Removes a webhook with its alerts and deliveries; false when there was none.
    async fn remove_webhook(&self, id: i64) -> Result<bool, StoreError>;
    /// Claims, for `node`, every webhook with a delivery due whose lease is free.
    async fn claim_webhooks(
        &self,
        node: &str,
        now: Millis,
    ) -> Result<Vec<crate::model::webhook::Webhook>, StoreError>;
    /// Extends a claimed webhook's lease; false when it is no longer this node's.
    async fn renew_lease(&self, id: i64, node: &str, now: Millis) -> Result<bool, StoreError>;
    /// Gives a claimed webhook's lease back.
    async fn release_webhook(&self, id: i64, node: &str) -> Result<(), StoreError>;
    /// The webhook's next delivery: its pending one when due, else a new one of up to 100
    /// waiting alerts (`body` makes its body from their JSON); `None` when nothing is due or
    /// the lease was lost. Renews the lease.
    async fn next_delivery(
        &self,
        webhook: &crate::model::webhook::Webhook,
        node: &str,
        now: Millis,
        body: &(dyn for<'b> Fn(&'b [String]) -> String + Send + Sync),
    ) -> Result<Option<alerts::Delivery>, StoreError>;
    /// Records how an attempt ended.
    async fn finish_delivery(
        &self,
        id: &str,
        outcome: alerts::DeliveryOutcome,
        now: Millis,
    ) -> Result<(), StoreError>;
    /// Alerts not yet delivered (waiting, or in a pending delivery).
    async fn alerts_waiting(&self) -> Result<i64, StoreError>;
    /// Deletes deliveries finished before `cutoff`, with their alerts.
    async fn purge_deliveries(&self, cutoff: Millis) -> Result<u64, StoreError>;
}

/// Everything the server needs from a database.
#[async_trait]
pub trait Store: AlertOutbox + Send + Sync + 'static {
    /// Creates a project with a fresh ingest key and token.
    async fn create_project(&self, name: &str) -> Result<CreatedProject, StoreError>;
    /// Every project, by id.
    async fn list_projects(&self) -> Result<Vec<Project>, StoreError>;
    /// Replaces a project's token; `None` for an unknown project.
    async fn rotate_token(&self, id: ProjectId) -> Result<Option<CreatedProject>, StoreError>;
    /// Replaces a project's ingest key; the project with its new key, `None` when unknown.
    async fn rotate_ingest_key(&self, id: ProjectId) -> Result<Option<Project>, StoreError>;
    /// Every project's credentials, in one query ([`PROJECT_CREDENTIALS`]): what the key
    /// directory (`crate::credentials`) reloads.
    async fn project_credentials(&self) -> Result<Vec<ProjectCredentials>, StoreError>;
    /// The project an ingest key belongs to.
    async fn project_by_ingest_key(&self, key: &str) -> Result<Option<ProjectId>, StoreError>;
    /// The project whose token hashes to `token_hash`.
    async fn project_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ProjectId>, StoreError>;
    /// Whether a project exists.
    async fn project_exists(&self, id: ProjectId) -> Result<bool, StoreError>;
    /// Stores a batch of events in one transaction (group commit).
    async fn write_batch(&self, events: Vec<PreparedEvent>) -> Result<BatchResult, StoreError>;
    /// How long a group commit waits for more requests after a busy one, unless
    /// `--commit-delay-us` says otherwise (`ingest::writer`). Zero: never.
    fn commit_delay(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// Issues of a project, most recently seen first.
    async fn list_issues(
        &self,
        project: ProjectId,
        status: Option<IssueStatus>,
        limit: u32,
    ) -> Result<Vec<Issue>, StoreError>;
    /// A project's issues matching every search term (SPEC §3.1), in `sort` order.
    async fn search_issues(
        &self,
        project: ProjectId,
        terms: &[crate::model::Term],
        sort: crate::model::IssueSort,
        limit: u32,
    ) -> Result<Vec<Issue>, StoreError>;
    /// One issue.
    async fn get_issue(&self, id: i64) -> Result<Option<Issue>, StoreError>;
    /// One event of `project` by its id, with the event as it was received.
    async fn event_by_id(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(StoredEvent, Option<Vec<u8>>)>, StoreError>;
    /// Stored events per minute of receipt and level since `since` (of one issue, or of the
    /// whole project): `(minute start in unix ms, level, count)`.
    async fn events_per_minute(
        &self,
        project: ProjectId,
        issue: Option<i64>,
        since: Millis,
    ) -> Result<Vec<(i64, String, i64)>, StoreError>;
    /// How the issue's stored events spread over each tag, `environment` and `release`.
    async fn issue_tags(&self, issue: i64) -> Result<Vec<TagBreakdown>, StoreError>;
    /// A page of an issue's events: newest first, or from `page`'s seq on (see [`EventPage`]).
    async fn issue_events(
        &self,
        issue: i64,
        page: EventPage,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// A project's events with a seq above `since`, in seq order.
    async fn events_since(
        &self,
        project: ProjectId,
        since: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The project's latest seq (0 before its first event).
    async fn latest_seq(&self, project: ProjectId) -> Result<i64, StoreError>;
    /// The project's unresolved issue count.
    async fn unresolved_count(&self, project: ProjectId) -> Result<i64, StoreError>;
    /// Applies a state change; `None` for an unknown issue.
    async fn change_issue_status(
        &self,
        issue: i64,
        command: IssueCommand,
    ) -> Result<Option<StatusChange>, StoreError>;
    /// Deletes events received before `cutoff`, then issues left without events.
    async fn purge_before(&self, cutoff: Millis) -> Result<PurgeResult, StoreError>;
    /// Answers when the database does.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens (creating if needed) and migrates the database at `url`.
pub async fn open(url: &DatabaseUrl) -> Result<Arc<dyn Store>, StoreError> {
    match url {
        DatabaseUrl::Sqlite(u) => Ok(Arc::new(SqliteStore::open(u).await?)),
        DatabaseUrl::Postgres(u) => Ok(Arc::new(PgStore::open(u).await?)),
    }
}

/// A progress line for long passes over many rows (retention): logged at most every few
/// seconds, and only once a pass has run that long.
pub(crate) struct Progress {
    what: &'static str,
    every: std::time::Duration,
    started: std::time::Instant,
    last: std::time::Instant,
}

impl Progress {
    pub(crate) fn new(what: &'static str) -> Progress {
        Self::every(what, std::time::Duration::from_secs(5))
    }

    fn every(what: &'static str, every: std::time::Duration) -> Progress {
        let now = std::time::Instant::now();
        Progress {
            what,
            every,
            started: now,
            last: now,
        }
    }

    /// Logs `done` so far if the last line is old enough.
    pub(crate) fn report(&mut self, done: u64) {
        if self.last.elapsed() >= self.every {
            self.last = std::time::Instant::now();
            tracing::info!(
                done,
                elapsed_s = self.started.elapsed().as_secs(),
                "{} so far",
                self.what
            );
        }
    }
}

/// Hashes a project token for storage. Tokens are 256 random bits, so a plain SHA-256
/// suffices (a slow password hash protects low-entropy secrets, which these are not).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new ingest key: 32 lowercase hex digits.
pub fn new_ingest_key() -> String {
    random_hex(16)
}

/// A new project token: 64 lowercase hex digits.
pub fn new_token() -> String {
    random_hex(32)
}

/// A new event id: 32 lowercase hex digits laid out as a UUIDv7 — the time in ms, then 74
/// random bits — so that the ids of one batch sort together and their inserts into the
/// `(project, event id)` index land on its last pages, not on one random page each.
pub fn new_event_id() -> String {
    let ms = (Millis::now().0.max(0) as u64).to_be_bytes();
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms[2..]);
    rand::rng().fill_bytes(&mut b[6..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::Progress;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Collects what a `tracing` subscriber writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(work: impl FnOnce()) -> String {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, work);
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_long_pass_logs_its_progress_and_a_short_one_stays_quiet() {
        let out = logged(|| {
            let mut p = Progress::every("retention: old events deleted", Duration::ZERO);
            p.report(5000);
            p.report(10000);
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].contains("retention: old events deleted so far"),
            "{out}"
        );
        assert!(
            lines[0].contains("done=5000") && lines[1].contains("done=10000"),
            "{out}"
        );
        let quiet = logged(|| Progress::new("retention: old events deleted").report(5000));
        assert_eq!(quiet, "");
    }
}
