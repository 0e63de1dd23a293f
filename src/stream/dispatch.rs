//! The dispatcher task: turns the bus's domain messages into stream messages, encodes each
//! once and publishes it to the project's room. It also coalesces `issue_count` to at most
//! one per [`COUNT_INTERVAL`] per project, always sending the last value.

use super::hub::{Hub, Offer};
use super::messages::{EventFields, count_frame, domain_frame};
use crate::bus::DomainMessage;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

/// At most four counts per second per project.
pub const COUNT_INTERVAL: Duration = Duration::from_millis(250);

/// Messages published between two yields to the scheduler.
///
/// Measured (docs/BENCHMARKS.md): without it the dispatcher ran until tokio's budget of
/// 128 receives forced a yield, so a burst (a group commit after a slow fsync) put more
/// than `max_buffer` (100) frames in every outbox before any writer ran, and even reading
/// subscribers saw `lagged`. Yielding lets the writers drain while frames still batch.
const YIELD_EVERY: u32 = 32;

/// The bus receiver, shared so that a restarted dispatcher continues with it.
pub type BusQueue = Arc<Mutex<mpsc::Receiver<DomainMessage>>>;

#[derive(Default)]
struct CountState {
    last_sent: Option<Instant>,
    pending: Option<i64>,
}

/// Publishes one domain message (counts excepted) to its room.
pub fn publish(hub: &Hub, msg: &DomainMessage) {
    let frame = Arc::new(domain_frame(msg));
    match msg {
        DomainMessage::EventStored(e) => {
            let fields = EventFields {
                level: e.level,
                environment: e.environment.clone(),
                release: e.release.clone(),
                tags: e.tags.clone(),
            };
            hub.publish(
                e.project_id,
                &Offer {
                    frame: &frame,
                    event: Some(&fields),
                },
                None,
            );
        }
        DomainMessage::IssueChanged { issue, origin, .. } => {
            let except = origin.as_deref().and_then(|o| hub.find(o));
            hub.publish(
                issue.project_id,
                &Offer {
                    frame: &frame,
                    event: None,
                },
                except,
            );
        }
        DomainMessage::CountChanged { project_id, .. } => {
            hub.publish(
                *project_id,
                &Offer {
                    frame: &frame,
                    event: None,
                },
                None,
            );
        }
    }
}

fn send_count(hub: &Hub, project: i64, count: i64) {
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

/// Runs until the bus closes.
pub async fn run(hub: Arc<Hub>, queue: BusQueue) {
    let mut rx = queue.lock().await;
    let mut counts: HashMap<i64, CountState> = HashMap::new();
    let mut since_yield = 0u32;
    loop {
        since_yield += 1;
        if since_yield >= YIELD_EVERY {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
        let due = counts
            .values()
            .filter(|c| c.pending.is_some())
            .filter_map(|c| c.last_sent.map(|t| t + COUNT_INTERVAL))
            .min();
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { return };
                if let DomainMessage::CountChanged { project_id, count } = msg {
                    let state = counts.entry(project_id).or_default();
                    let now = Instant::now();
                    if state.last_sent.is_none_or(|t| now >= t + COUNT_INTERVAL) {
                        send_count(&hub, project_id, count);
                        state.last_sent = Some(now);
                        state.pending = None;
                    } else {
                        state.pending = Some(count);
                    }
                } else {
                    publish(&hub, &msg);
                }
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let now = Instant::now();
                for (project, state) in counts.iter_mut() {
                    if let (Some(count), Some(t)) = (state.pending, state.last_sent)
                        && now >= t + COUNT_INTERVAL
                    {
                        send_count(&hub, *project, count);
                        state.last_sent = Some(now);
                        state.pending = None;
                    }
                }
            }
        }
    }
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
        let task = tokio::spawn(run(hub.clone(), Arc::new(Mutex::new(rx))));
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
        let v: serde_json::Value = serde_json::from_slice(&out[0].bytes).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "issue_count", "project_id": 7, "count": 20})
        );
        drop(tx);
        task.await.unwrap();
    }
}
