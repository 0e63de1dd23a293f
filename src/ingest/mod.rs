//! The ingestion pipeline, shared by the HTTP and WebSocket endpoints:
//! validated events → rate limit → grouping → the group-commit writer → answers.

pub(crate) mod decode;
pub(crate) mod inflate;
pub(crate) mod rate_limit;
pub(crate) mod writer;

use crate::grouping;
use crate::model::{Millis, NewEvent};
use crate::store::{EventOutcome, PreparedEvent, ProjectId, new_event_id};
use rate_limit::ProjectRateLimiter;
use std::time::Duration;
use writer::WriterHandle;

/// Why events were not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// Over the project's rate limit.
    #[error("rate limit exceeded for this project")]
    RateLimited(Duration),
    /// The writer's queue is full.
    #[error("server overloaded: too many writes waiting; retry shortly")]
    Overloaded,
    /// The database failed; nothing was committed.
    #[error("{0}")]
    Storage(String),
    /// The server is stopping.
    #[error("server is shutting down; retry shortly")]
    ShuttingDown,
}

/// An accepted event's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Event id.
    pub id: String,
    /// Issue id.
    pub issue_id: i64,
    /// What storage did.
    pub outcome: EventOutcome,
}

/// The pipeline: owns the rate limiter and a writer handle.
pub struct Ingestor {
    limiter: ProjectRateLimiter,
    writer: WriterHandle,
    /// Maps JavaScript frames before grouping (SPEC §10), once the state attaches it.
    sourcemaps: std::sync::OnceLock<std::sync::Arc<crate::sourcemaps::Mapper<crate::store::Store>>>,
}

impl Ingestor {
    /// A pipeline writing through `writer` with `rate_limit` events per project per minute.
    pub fn new(writer: WriterHandle, rate_limit: u32) -> Ingestor {
        Ingestor {
            limiter: ProjectRateLimiter::new(rate_limit),
            writer,
            sourcemaps: std::sync::OnceLock::new(),
        }
    }

    /// Maps events' JavaScript frames through `mapper` before grouping; the first call
    /// counts.
    pub(crate) fn attach_sourcemaps(
        &self,
        mapper: std::sync::Arc<crate::sourcemaps::Mapper<crate::store::Store>>,
    ) {
        let _ = self.sourcemaps.set(mapper);
    }

    /// `--rate-limit`: events per project per 60 s (0: off).
    pub fn rate_limit(&self) -> u32 {
        self.limiter.per_minute()
    }

    /// Events of `project` this node refused for the rate limit (429) in the last hour.
    pub fn rate_limited_last_hour(&self, project: ProjectId) -> u64 {
        self.limiter.refused_last_hour(project)
    }

    /// How the latest group commit went (`/healthz`).
    pub fn commit_health(&self) -> &writer::CommitHealth {
        self.writer.health()
    }

    /// Refuses new events from now on; what is queued is still committed (shutdown).
    pub fn close_intake(&self) {
        self.writer.close_intake();
    }

    /// Stores `events` for `project` (all or nothing) and answers once they are committed.
    pub async fn ingest(
        &self,
        project: ProjectId,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Accepted>, IngestError> {
        let mut events = events;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.limiter
            .check(project, events.len())
            .map_err(IngestError::RateLimited)?;
        if let Some(mapper) = self.sourcemaps.get() {
            mapper.map_new_events(project, &mut events).await;
        }
        let received = Millis::now();
        let prepared: Vec<PreparedEvent> = events
            .into_iter()
            .map(|e| prepare(project, e, received))
            .collect();
        let ids: Vec<String> = prepared.iter().map(|p| p.event_id.clone()).collect();
        let outcomes = self.writer.write(prepared).await?;
        Ok(ids
            .into_iter()
            .zip(outcomes)
            .map(|(id, outcome)| Accepted {
                id,
                issue_id: outcome.issue_id(),
                outcome,
            })
            .collect())
    }
}

/// Settles the id and computes the grouping (pure CPU, done before the writer so that the
/// single writer task only writes).
fn prepare(project: ProjectId, event: NewEvent, received: Millis) -> PreparedEvent {
    PreparedEvent {
        project_id: project,
        event_id: event.event_id.clone().unwrap_or_else(new_event_id),
        id_from_client: event.event_id.is_some(),
        fingerprint: grouping::fingerprint(&event).hash,
        title: grouping::title(&event),
        culprit: grouping::culprit(&event),
        received,
        // On the request's task, like the grouping: the writer only binds the bytes.
        raw_zstd: event.raw.as_deref().map(pack),
        event,
    }
}

/// Raw events shorter than this are stored as they are: zstd's entropy tables cost more
/// than the few bytes they save (measured: 3.5% of single-event ingest of ~100-byte events).
const COMPRESS_FROM: usize = 512;

/// The stored form of a raw event: zstd for SDK-sized events, as is for small ones (the
/// reader tells them apart by zstd's magic number; JSON never starts with it).
fn pack(raw: &[u8]) -> Vec<u8> {
    if raw.len() < COMPRESS_FROM {
        raw.to_vec()
    } else {
        compress(raw)
    }
}

/// zstd's fastest regular level: an SDK event of 16.9 KB packs to the same order of size
/// as at the default level 3, at about half the CPU (measured: level 3 was a tenth of
/// ingesting a Sentry SDK event).
const ZSTD_LEVEL: i32 = 1;

/// One compression context per thread: a fresh context per event (`zstd::bulk::compress`)
/// allocates and initializes its tables each time, which cost a quarter of single-event
/// ingest (measured, docs/benchmarks-history.md, "Events kept whole").
fn compress(raw: &[u8]) -> Vec<u8> {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<zstd::bulk::Compressor<'static>> = std::cell::RefCell::new(
            zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context"),
        );
    }
    COMPRESSOR.with(|c| c.borrow_mut().compress(raw).expect("compressing to memory"))
}
