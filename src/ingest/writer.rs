//! The storage writer: one task that commits events in groups.
//!
//! Requests queue on a bounded channel; the writer takes the first, then everything else
//! already waiting (up to `--commit-batch` events), and commits them in one transaction, so
//! concurrent requests share one fsync; after a busy commit it may first wait
//! `--commit-delay-us` for more ([`Store::commit_delay`]). Only after the commit does each
//! request get its answer, and only then are the batch's domain messages published on the
//! bus, in commit order. A full queue is refused at once (503), never buffered without
//! bound. At shutdown the intake is closed: new requests are refused (503) and what is
//! queued is committed.

use super::IngestError;
use crate::bus::Bus;
use crate::log_limit::Emit;
use crate::store::{BatchResult, EventOutcome, PreparedEvent, Store, StoreError};
use crate::task::Service;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

type Reply = oneshot::Sender<Result<Vec<EventOutcome>, IngestError>>;

/// One request's events and where to send their outcomes.
pub(crate) struct WriteRequest {
    events: Vec<PreparedEvent>,
    reply: Reply,
}

/// The outcome of the latest group commit, for `/healthz`: the server is degraded while
/// commits fail (a full disk, a database gone) even though the database still answers a
/// read, and healthy again once one succeeds.
#[derive(Debug, Default)]
pub struct CommitHealth {
    /// Whether the latest commit failed (read without the lock on every commit).
    failing: AtomicBool,
    /// Its error.
    error: std::sync::Mutex<Option<String>>,
}

impl CommitHealth {
    /// The latest commit's error, if it failed.
    pub fn failure(&self) -> Option<String> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn succeeded(&self) {
        if self.failing.load(Ordering::Acquire) {
            *self.error.lock().unwrap_or_else(|e| e.into_inner()) = None;
            self.failing.store(false, Ordering::Release);
        }
    }

    fn failed(&self, error: String) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        self.failing.store(true, Ordering::Release);
    }
}

/// The sending side: cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<WriteRequest>,
    intake_closed: CancellationToken,
    health: Arc<CommitHealth>,
}

/// The receiving side, owned by the [`Writer`] (a restarted writer keeps it).
pub(crate) struct WriterQueue {
    rx: mpsc::Receiver<WriteRequest>,
    intake_closed: CancellationToken,
    health: Arc<CommitHealth>,
}

/// A writer queue of `capacity` requests.
pub(crate) fn channel(capacity: usize) -> (WriterHandle, WriterQueue) {
    let (tx, rx) = mpsc::channel(capacity);
    let intake_closed = CancellationToken::new();
    let health = Arc::new(CommitHealth::default());
    (
        WriterHandle {
            tx,
            intake_closed: intake_closed.clone(),
            health: health.clone(),
        },
        WriterQueue {
            rx,
            intake_closed,
            health,
        },
    )
}

impl WriterHandle {
    /// How the latest commit went.
    pub fn health(&self) -> &CommitHealth {
        &self.health
    }

    /// Refuses new requests from now on; the writer commits what is queued, then ends.
    /// Shutdown calls this once the HTTP server has drained, so that a request stuck
    /// mid-body cannot keep the writer (and the process) alive.
    pub fn close_intake(&self) {
        self.intake_closed.cancel();
    }

    /// Queues `events` and waits until they are committed.
    pub async fn write(
        &self,
        events: Vec<PreparedEvent>,
    ) -> Result<Vec<EventOutcome>, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(WriteRequest { events, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => IngestError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => IngestError::ShuttingDown,
            })?;
        // A dropped reply means the writer died before answering: the client must retry.
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }
}

/// The writer task: commits its queue's requests in groups into `store`, then publishes
/// their domain messages on `bus`.
pub(crate) struct Writer {
    store: Store,
    queue: WriterQueue,
    bus: Bus,
    /// Events in one commit at most (`--commit-batch`).
    max_batch: usize,
    /// How long a commit after a busy one waits for company (`--commit-delay-us`).
    delay: Duration,
}

impl Writer {
    /// A writer of `queue`'s requests.
    pub(crate) fn new(
        store: Store,
        queue: WriterQueue,
        bus: Bus,
        max_batch: usize,
        delay: Duration,
    ) -> Writer {
        Writer {
            store,
            queue,
            bus,
            max_batch,
            delay,
        }
    }
}

impl Service for Writer {
    fn run(&mut self) -> impl Future<Output = ()> + Send + '_ {
        run(self)
    }
}

/// Runs the writer until the intake is closed (or every [`WriterHandle`] is gone) and the
/// queue is empty.
async fn run(writer: &mut Writer) {
    let Writer {
        store,
        queue,
        bus,
        max_batch,
        delay,
    } = writer;
    let (max_batch, delay) = (*max_batch, *delay);
    // Requests in the previous commit: whether the clients are busy enough to wait for.
    let mut last_requests = 0;
    while let Some(first) = next_request(queue).await {
        let batch = collect_batch(&mut queue.rx, first, max_batch, delay, last_requests).await;
        last_requests = batch.replies.len();
        commit(store, bus, &queue.health, batch).await;
    }
}

/// One group commit: its requests' events in queue order, and each request's reply with
/// how many of those events are its own.
struct Batch {
    events: Vec<PreparedEvent>,
    replies: Vec<(Reply, usize)>,
}

/// Waits for the next request; `None` once the intake is closed (or every
/// [`WriterHandle`] is gone) and nothing is left queued.
async fn next_request(queue: &mut WriterQueue) -> Option<WriteRequest> {
    let WriterQueue {
        rx, intake_closed, ..
    } = queue;
    loop {
        tokio::select! {
            biased;
            m = rx.recv() => return m,
            // Closing keeps what is queued: `recv` answers it, then `None`.
            _ = intake_closed.cancelled(), if !rx.is_closed() => rx.close(),
        }
    }
}

/// The batch that starts with `first`: every request already queued behind it, and, when
/// the previous commit was busy ([`waits`]), those that come during `delay` too.
async fn collect_batch(
    rx: &mut mpsc::Receiver<WriteRequest>,
    first: WriteRequest,
    max_batch: usize,
    delay: Duration,
    last_requests: usize,
) -> Batch {
    let mut batch = Batch {
        replies: vec![(first.reply, first.events.len())],
        events: first.events,
    };
    take_waiting(rx, &mut batch, max_batch);
    if waits(delay, last_requests, batch.events.len(), max_batch) {
        wait_commit_delay(delay).await;
        take_waiting(rx, &mut batch, max_batch);
    }
    batch
}

/// Sleeps `delay` without holding up the runtime.
async fn wait_commit_delay(delay: Duration) {
    // tokio's timer counts whole milliseconds; a few hundred microseconds need a thread's
    // sleep (the blocking pool's, so the runtime goes on meanwhile).
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
}

/// Commits `batch` in one transaction, records how it went, and answers its requests.
async fn commit(store: &Store, bus: &Bus, health: &CommitHealth, batch: Batch) {
    let Batch { events, replies } = batch;
    metrics::histogram!(crate::telemetry::COMMIT_BATCH).record(events.len() as f64);
    let count = events.len();
    let started = std::time::Instant::now();
    let written = store.write_batch(events).await;
    metrics::histogram!(crate::telemetry::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    match written {
        Ok(result) => {
            health.succeeded();
            answer_committed(bus, result, replies).await;
        }
        Err(e) => {
            log_commit_failure(&e, count);
            health.failed(e.to_string());
            answer_failed(&e, replies);
        }
    }
}

/// Gives each request its events' outcomes, then publishes the batch's domain messages on
/// the bus, in commit order.
async fn answer_committed(bus: &Bus, result: BatchResult, replies: Vec<(Reply, usize)>) {
    let stored = result
        .outcomes
        .iter()
        .filter(|o| matches!(o, EventOutcome::Stored { .. }))
        .count();
    metrics::counter!(crate::telemetry::EVENTS_INGESTED).increment(stored as u64);
    let mut outcomes = result.outcomes.into_iter();
    for (reply, n) in replies {
        // A client that went away still had its events committed.
        let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
    }
    for msg in result.messages {
        bus.publish(msg).await;
    }
}

/// Logs a failed commit, rate-limited: a database gone fails every commit until it is back.
fn log_commit_failure(e: &StoreError, count: usize) {
    match crate::log_limit::check("group commit") {
        Emit::First => {
            tracing::error!(error = %e, events = count, "group commit failed")
        }
        Emit::Summary(n) => tracing::error!(
            failures = n,
            error = %e,
            "group commits still failing: {n} in the last {:?}",
            crate::log_limit::WINDOW
        ),
        Emit::Quiet => {}
    }
}

/// Answers every request of a failed commit with the storage error: none of its events
/// were stored.
fn answer_failed(e: &StoreError, replies: Vec<(Reply, usize)>) {
    let reason = store_reason(e);
    for (reply, _) in replies {
        let _ = reply.send(Err(IngestError::Storage(reason.clone())));
    }
}

/// Requests in a commit from which the next commit may wait for company (`--commit-delay-us`):
/// below it the clients are few or idle, and waiting would only add latency.
const BUSY_REQUESTS: usize = 8;

/// Adds every request already queued to the batch, up to `max_batch` events.
fn take_waiting(rx: &mut mpsc::Receiver<WriteRequest>, batch: &mut Batch, max_batch: usize) {
    while batch.events.len() < max_batch {
        let Ok(next) = rx.try_recv() else { break };
        batch.replies.push((next.reply, next.events.len()));
        batch.events.extend(next.events);
    }
}

/// Whether a batch of `events` waits `delay` for more before it commits: only after a
/// commit of at least [`BUSY_REQUESTS`] requests (PostgreSQL's `commit_delay` waits only
/// when enough other transactions are active, for the same reason) and while it has room.
fn waits(delay: Duration, last_requests: usize, events: usize, max_batch: usize) -> bool {
    !delay.is_zero() && last_requests >= BUSY_REQUESTS && events < max_batch
}

fn store_reason(e: &StoreError) -> String {
    format!("storage unavailable: {e}")
}

#[cfg(test)]
mod tests {
    use super::{BUSY_REQUESTS, CommitHealth, Duration, waits};

    #[test]
    fn health_follows_the_latest_commit() {
        let h = CommitHealth::default();
        assert_eq!(h.failure(), None);
        h.failed("database or disk is full".into());
        assert_eq!(h.failure().as_deref(), Some("database or disk is full"));
        h.failed("disk I/O error".into());
        assert_eq!(h.failure().as_deref(), Some("disk I/O error"));
        h.succeeded();
        assert_eq!(h.failure(), None);
    }

    #[test]
    fn a_commit_waits_only_after_a_busy_one_and_with_room() {
        let d = Duration::from_micros(300);
        assert!(waits(d, BUSY_REQUESTS, 5, 512));
        assert!(waits(d, 40, 511, 512));
        // Few clients: no wait, whatever the delay.
        assert!(!waits(d, BUSY_REQUESTS - 1, 5, 512));
        assert!(!waits(d, 0, 1, 512));
        // A full batch commits at once.
        assert!(!waits(d, 40, 512, 512));
        // No delay configured (SQLite's default).
        assert!(!waits(Duration::ZERO, 40, 5, 512));
    }
}
