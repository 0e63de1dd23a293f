//! Supervised background tasks: each runs in its own tokio task; a panic is logged, counted
//! and followed by a restart (with a short backoff), as the old Mesher restarted its drain
//! ticker with the services. A task that returns normally is done.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TrackedFuture;

/// Starts and watches the background tasks; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    shutdown: CancellationToken,
    restarts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// WebSocket connections (streams and ingest), which shutdown waits for so that each
    /// can say 1001 before the process exits.
    sockets: TaskTracker,
}

impl Supervisor {
    /// A supervisor whose tasks stop restarting once `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Supervisor {
        Supervisor {
            shutdown,
            restarts: Arc::default(),
            handles: Arc::default(),
            sockets: TaskTracker::new(),
        }
    }

    /// Wraps a WebSocket connection's future so that [`Supervisor::wait_sockets`] waits
    /// for it.
    pub fn track_socket<F: Future>(&self, connection: F) -> TrackedFuture<F> {
        self.sockets.track_future(connection)
    }

    /// Waits up to `limit` for every tracked WebSocket connection to end; false if some
    /// were still open.
    pub async fn wait_sockets(&self, limit: Duration) -> bool {
        self.sockets.close();
        tokio::time::timeout(limit, self.sockets.wait())
            .await
            .is_ok()
    }

    /// The shutdown token the tasks watch.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Runs `make()` as the task `name`, and runs it again whenever it panics.
    pub fn spawn<F, Fut>(&self, name: &'static str, make: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        let restarts = self.restarts.clone();
        let handle = tokio::spawn(async move {
            let mut attempt: u32 = 0;
            loop {
                match tokio::spawn(make()).await {
                    Ok(()) => {
                        tracing::debug!(task = name, "background task finished");
                        return;
                    }
                    Err(e) if e.is_panic() => {
                        attempt = attempt.saturating_add(1);
                        metrics::counter!(crate::telemetry::TASK_RESTARTS, "task" => name)
                            .increment(1);
                        let total = {
                            let mut r = restarts.lock().expect("restart counts poisoned");
                            let n = r.entry(name).or_default();
                            *n += 1;
                            *n
                        };
                        if shutdown.is_cancelled() {
                            tracing::error!(
                                task = name,
                                "background task panicked during shutdown"
                            );
                            return;
                        }
                        let backoff = Duration::from_millis(50 * u64::from(attempt.min(100)));
                        tracing::error!(
                            task = name,
                            restarts = total,
                            backoff_ms = backoff.as_millis() as u64,
                            "background task panicked; restarting it"
                        );
                        tokio::time::sleep(backoff).await;
                    }
                    Err(_) => return,
                }
            }
        });
        self.handles
            .lock()
            .expect("task handles poisoned")
            .push(handle);
    }

    /// How many times the task `name` has been restarted.
    pub fn restarts(&self, name: &str) -> u64 {
        self.restarts
            .lock()
            .expect("restart counts poisoned")
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Waits for every task to finish, at most `limit`.
    pub async fn join(&self, limit: Duration) {
        let handles: Vec<_> =
            std::mem::take(&mut *self.handles.lock().expect("task handles poisoned"));
        let all = futures_util::future::join_all(handles);
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("background tasks did not stop within {limit:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_panicking_task_is_restarted() {
        let sup = Supervisor::new(CancellationToken::new());
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn("flaky", move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom");
                }
            }
        });
        sup.join(Duration::from_secs(5)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(sup.restarts("flaky"), 2);
    }
}
