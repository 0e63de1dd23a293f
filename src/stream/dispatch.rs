//! The dispatcher task: turns the bus's domain messages into stream messages, encodes each
//! once and publishes it to the project's room. It also coalesces `issue_count` to at most
//! one per [`COUNT_INTERVAL`] per project, always sending the last value.

use super::conn::{Flushed, Offer, StreamConn};
use super::hub::Hub;
use super::messages::{EventFields, count_frame, domain_frame};
use crate::bus::DomainMessage;
use crate::task::Service;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// At most four counts per second per project.
pub(crate) const COUNT_INTERVAL: Duration = Duration::from_millis(250);

/// Messages taken from the bus before the connections are flushed, at most.
///
/// Every connection gets one write for the whole batch (the fan-out cost is then a queue
/// push per message plus a share of one `writev`), so under load, when messages pile up
/// behind a flush, batches grow and deliveries get cheaper; a lone message at a low rate
/// is written at once. Bounded below the outbox size so that a burst (a group commit after
/// a slow fsync) does not drop frames from outboxes of clients that read: half of
/// `--max-buffer`, and at most this.
const MAX_BATCH: usize = 64;

/// Connections written between two yields to the scheduler (see [`flush`]).
const FLUSH_CHUNK: usize = 16;

/// The dispatcher task: owns the bus receiver (a restarted dispatcher continues with it).
pub(crate) struct Dispatcher {
    hub: Arc<Hub>,
    rx: mpsc::Receiver<DomainMessage>,
}

impl Dispatcher {
    /// A dispatcher of `rx`'s messages to `hub`'s rooms.
    pub(crate) fn new(hub: Arc<Hub>, rx: mpsc::Receiver<DomainMessage>) -> Dispatcher {
        Dispatcher { hub, rx }
    }
}

impl Service for Dispatcher {
    fn run(&mut self) -> impl Future<Output = ()> + Send + '_ {
        run(&self.hub, &mut self.rx)
    }
}

#[derive(Default)]
struct CountState {
    last_sent: Option<Instant>,
    pending: Option<i64>,
}

/// Queues one domain message (counts excepted) in its room; returns the project, whose
/// connections the caller flushes.
pub(crate) fn publish(hub: &Hub, msg: &DomainMessage) -> i64 {
    let project = msg.project_id();
    // Nobody watches: nothing to encode (measured: encoding every event's frame was 8% of
    // single-event ingest with no dashboard open). Replay reads the store, not frames.
    if !hub.has_members(project) {
        return project;
    }
    let frame = Arc::new(domain_frame(msg));
    let (fields, except) = match msg {
        DomainMessage::EventStored(e) => (
            Some(EventFields {
                level: e.level,
                environment: e.environment.clone(),
                release: e.release.clone(),
                tags: e.tags.clone(),
            }),
            None,
        ),
        DomainMessage::IssueChanged { origin, .. } | DomainMessage::IssuesMerged { origin, .. } => {
            (None, origin.as_deref().and_then(|o| hub.find(o)))
        }
        DomainMessage::CountChanged { .. } => (None, None),
    };
    hub.publish(
        project,
        &Offer {
            frame: &frame,
            event: fields.as_ref(),
        },
        except,
    );
    project
}

fn queue_count(hub: &Hub, project: i64, count: i64) {
    let frame = Arc::new(count_frame(project, count));
    hub.publish(
        project,
        &Offer {
            frame: &frame,
            event: None,
        },
        None,
    );
}

/// Queues a message, or coalesces it if it is a count; returns the project to flush.
fn take(hub: &Hub, counts: &mut HashMap<i64, CountState>, msg: DomainMessage) -> Option<i64> {
    let DomainMessage::CountChanged { project_id, count } = msg else {
        return Some(publish(hub, &msg));
    };
    let state = counts.entry(project_id).or_default();
    let now = Instant::now();
    if state.last_sent.is_none_or(|t| now >= t + COUNT_INTERVAL) {
        queue_count(hub, project_id, count);
        state.last_sent = Some(now);
        state.pending = None;
        Some(project_id)
    } else {
        state.pending = Some(count);
        None
    }
}

/// Queues every held-back count whose interval has passed, noting its project to flush.
fn queue_due_counts(hub: &Hub, counts: &mut HashMap<i64, CountState>, touched: &mut Vec<i64>) {
    let now = Instant::now();
    for (project, state) in counts.iter_mut() {
        if let (Some(count), Some(t)) = (state.pending, state.last_sent)
            && now >= t + COUNT_INTERVAL
        {
            queue_count(hub, *project, count);
            state.last_sent = Some(now);
            state.pending = None;
            note(touched, Some(*project));
        }
    }
}

/// Runs until the bus closes.
async fn run(hub: &Hub, rx: &mut mpsc::Receiver<DomainMessage>) {
    let mut counts: HashMap<i64, CountState> = HashMap::new();
    let batch = (hub.max_buffer() / 2).clamp(1, MAX_BATCH);
    let mut touched: Vec<i64> = Vec::new();
    let mut conns: Vec<Arc<StreamConn>> = Vec::new();
    // When the last round of writes began, and the time its writes took.
    let mut last_round: Option<(Instant, Duration)> = None;
    loop {
        let due = counts
            .values()
            .filter(|c| c.pending.is_some())
            .filter_map(|c| c.last_sent.map(|t| t + COUNT_INTERVAL))
            .min();
        let mut queued = 0;
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { return };
                queued += 1;
                note(&mut touched, take(hub, &mut counts, msg));
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                queue_due_counts(hub, &mut counts, &mut touched);
            }
        }
        // Under load, the next round waits for company (see `next_round`); a message after
        // a quiet spell goes at once.
        if let Some(at) = last_round.map(next_round).filter(|at| *at > Instant::now()) {
            let linger = tokio::time::sleep_until(at);
            tokio::pin!(linger);
            while queued < batch {
                tokio::select! {
                    biased;
                    msg = rx.recv() => {
                        let Some(msg) = msg else { break };
                        queued += 1;
                        note(&mut touched, take(hub, &mut counts, msg));
                    }
                    _ = &mut linger => break,
                }
            }
        }
        // Whatever else is already waiting goes in the same writes.
        while queued < batch {
            let Ok(msg) = rx.try_recv() else { break };
            queued += 1;
            note(&mut touched, take(hub, &mut counts, msg));
        }
        for project in touched.drain(..) {
            hub.members(project, &mut conns);
        }
        let started = Instant::now();
        let took = flush(hub, &mut conns).await;
        last_round = Some((started, took));
    }
}

/// How long a round of writes may be delayed for company, in multiples of the last round's
/// write time.
///
/// A write costs about the same few µs of kernel work for one frame or for thirty
/// (measured: ≈ 7 µs per `writev` on loopback, both ends, 56% of the server's samples at
/// 200 events/s to 1,000 subscribers), so frames per write is what sets the cost per
/// delivery. When writing at once would give writes more than half the core (the last
/// round took more than half the time since it began), the next round waits until writes
/// are a third of it, and everything that arrives meanwhile shares its writes. A message
/// after a quiet spell, or with few subscribers (a short round), goes at once.
const ROUND_SPACING: u32 = 3;

/// The longest a message waits for company.
const MAX_LINGER: Duration = Duration::from_millis(20);

/// When the round after one that began at `started` and wrote for `took` may begin.
fn next_round((started, took): (Instant, Duration)) -> Instant {
    if Instant::now().duration_since(started) >= took * 2 {
        return started;
    }
    started + (took * ROUND_SPACING).min(MAX_LINGER)
}

/// Adds a project to flush, once.
fn note(touched: &mut Vec<i64>, project: Option<i64>) {
    if let Some(p) = project
        && !touched.contains(&p)
    {
        touched.push(p);
    }
}

/// Writes what waits for `conns` to their sockets, [`FLUSH_CHUNK`] at a time.
///
/// Between chunks the dispatcher yields: the server's runtime has one worker per core
/// (one, pinned, in the benchmarks), and a round of 1,000 writes takes milliseconds.
/// Measured (docs/benchmarks-history.md, issue 11): flushing a round in one turn made every
/// ingest request wait behind it (4 publishers: 1.6 events per round, 160 events/s), so nothing
/// piled
/// up to coalesce; letting requests commit meanwhile makes the next round carry them all.
///
/// The writes run outside tokio's cooperative budget: each socket write spends one unit,
/// and once the 128 units of a turn are gone every write answers `Pending` without a
/// syscall (measured: 90% of connections were then handed to their own tasks, a wake-up
/// per connection per event).
///
/// Returns the time spent writing (yields excluded).
async fn flush(hub: &Hub, conns: &mut Vec<Arc<StreamConn>>) -> Duration {
    let mut took = Duration::ZERO;
    for chunk in conns.chunks(FLUSH_CHUNK) {
        let started = Instant::now();
        let failed = tokio::task::unconstrained(async {
            chunk
                .iter()
                .filter(|c| c.flush_now() == Flushed::Failed)
                .count()
        })
        .await;
        took += started.elapsed();
        if failed > 0 {
            hub.remove_closed();
        }
        tokio::task::yield_now().await;
    }
    conns.clear();
    took
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Filters;

    #[tokio::test(start_paused = true)]
    async fn counts_are_coalesced_and_the_last_one_is_sent() {
        let hub = Arc::new(Hub::new(100));
        let conn = hub.register(7, Filters::default());
        let (tx, rx) = mpsc::channel(64);
        let mut dispatcher = Dispatcher::new(hub.clone(), rx);
        let task = tokio::spawn(async move { dispatcher.run().await });
        for count in 1..=20 {
            tx.send(DomainMessage::CountChanged {
                project_id: 7,
                count,
            })
            .await
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut out = Vec::new();
        conn.take(100, &mut out);
        assert_eq!(out.len(), 1, "the first is sent at once, the rest wait");
        tokio::time::sleep(COUNT_INTERVAL).await;
        out.clear();
        conn.take(100, &mut out);
        assert_eq!(out.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(out[0].text()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "issue_count", "project_id": 7, "count": 20})
        );
        drop(tx);
        task.await.unwrap();
    }
}
