//! The Redis side of the broker: one task subscribes (and reconnects with backoff), one
//! publishes this node's notices in batches. Neither ever holds up ingestion or local
//! delivery: while Redis is away, notices are dropped (the database keeps the truth and the
//! other nodes catch up when they resubscribe) and the outage is logged once.

use super::merge::Remote;
use super::{CHANNEL, Notice, Packet};
use crate::task::Service;
use futures_util::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Whether this node's subscription to Redis is up (for `/healthz`).
#[derive(Clone, Default)]
pub struct RedisStatus(Arc<AtomicBool>);

impl RedisStatus {
    /// Whether Redis is reachable.
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, up: bool) -> bool {
        self.0.swap(up, Ordering::AcqRel)
    }
}

/// First and longest wait between reconnection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// A Redis command that takes longer counts as a failure.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Notices sent in one Redis message at most.
const PACKET_MAX: usize = 512;

/// Subscribes to the news channel until shutdown, handing other nodes' packets to the
/// merge; after every (re)subscription the merge is told to catch up.
pub(crate) async fn subscribe(
    client: redis::Client,
    node: String,
    to_merge: mpsc::Sender<Remote>,
    status: RedisStatus,
) {
    let mut backoff = BACKOFF.0;
    let mut outage_logged = false;
    loop {
        let attempt = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let mut pubsub = match attempt {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                down(&status, &mut outage_logged, &e.to_string());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
            Err(_) => {
                down(&status, &mut outage_logged, "connection timed out");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        backoff = BACKOFF.0;
        if !status.set(true) && outage_logged {
            tracing::info!("redis is reachable again; catching up from the database");
        }
        outage_logged = false;
        if to_merge.send(Remote::Subscribed).await.is_err() {
            return;
        }
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Packet>(&payload) {
                Ok(p) if p.node != node => {
                    if to_merge.send(Remote::Packet(p)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "ignoring a malformed message on {CHANNEL}"),
            }
        }
        down(&status, &mut outage_logged, "the subscription ended");
    }
}

fn down(status: &RedisStatus, logged: &mut bool, why: &str) {
    status.set(false);
    if !*logged {
        *logged = true;
        tracing::warn!(
            reason = why,
            "redis is unreachable: this node keeps serving its own streams and ingestion, and reconnects by itself"
        );
    }
}

/// The publisher task: owns the merge's queue of this node's notices (a restarted
/// publisher continues with it).
pub(crate) struct Publisher {
    /// Where to publish.
    pub client: redis::Client,
    /// This node, named in every packet so that it skips its own.
    pub node: String,
    /// The notices the merge hands on.
    pub rx: mpsc::Receiver<Notice>,
}

impl Service for Publisher {
    fn run(&mut self) -> impl Future<Output = ()> + Send + '_ {
        publish(&self.client, &self.node, &mut self.rx)
    }
}

/// Publishes this node's notices, batched, until the merge closes the queue.
async fn publish(client: &redis::Client, node: &str, rx: &mut mpsc::Receiver<Notice>) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    while let Some(first) = rx.recv().await {
        let mut notices = vec![first];
        while notices.len() < PACKET_MAX {
            let Ok(n) = rx.try_recv() else { break };
            notices.push(n);
        }
        let packet = Packet {
            node: node.to_owned(),
            notices,
        };
        let payload = serde_json::to_string(&packet).expect("notices serialize");
        // A connection that died with Redis fails once; then a fresh one is tried, so the
        // first notice after Redis returns is not lost. While Redis is away the packet is
        // dropped: the database has the events, and the other nodes read them when they
        // resubscribe or see the next notice.
        for _ in 0..2 {
            if conn.is_none() {
                conn = tokio::time::timeout(
                    COMMAND_TIMEOUT,
                    client.get_multiplexed_async_connection(),
                )
                .await
                .ok()
                .and_then(Result::ok);
            }
            let Some(c) = conn.as_mut() else { break };
            let sent = tokio::time::timeout(
                COMMAND_TIMEOUT,
                redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(&payload)
                    .query_async::<i64>(c),
            )
            .await;
            if matches!(sent, Ok(Ok(_))) {
                break;
            }
            conn = None;
        }
    }
}
