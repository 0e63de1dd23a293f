//! Supervised background tasks: each runs in its own tokio task; a panic is logged, counted
//! and followed by a restart (with a short backoff). A task that returns normally is done.
//!
//! A task is a [`Service`]: a value that owns its state, receivers included. A run borrows
//! it, so when a run panics the supervisor still holds the service and runs it again with
//! the same queue: nothing queued is lost to the restart, and no receiver is shared.

use futures_util::FutureExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
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

    /// Runs `service` as the task `name`, and runs it again whenever a run panics.
    pub fn start<S: Service>(&self, name: &'static str, service: S) {
        let handle = tokio::spawn(supervise(
            name,
            service,
            self.shutdown.clone(),
            self.restarts.clone(),
        ));
        self.handles
            .lock()
            .expect("task handles poisoned")
            .push(handle);
    }

    /// Runs `make()` as the task `name`, and runs it again whenever it panics: for tasks
    /// whose state is all shared handles.
    pub fn spawn<F, Fut>(&self, name: &'static str, make: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.start(name, Restart(make));
    }

    /// Like [`Supervisor::spawn`], for a task that would run forever: it ends at shutdown.
    pub fn spawn_until_shutdown<F, Fut>(&self, name: &'static str, make: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.start(
            name,
            UntilShutdown {
                service: Restart(make),
                stop: self.shutdown.clone(),
            },
        );
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

/// A long-lived background task that owns its state. The supervisor calls `run` again on
/// the same value after a run panics.
pub trait Service: Send + 'static {
    /// Runs until the task is done.
    fn run(&mut self) -> impl Future<Output = ()> + Send + '_;
}

/// A service whose every run is a fresh future from a function.
struct Restart<F>(F);

impl<F, Fut> Service for Restart<F>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn run(&mut self) -> impl Future<Output = ()> + Send + '_ {
        (self.0)()
    }
}

/// A service that also ends at shutdown.
struct UntilShutdown<S> {
    service: S,
    stop: CancellationToken,
}

impl<S: Service> Service for UntilShutdown<S> {
    async fn run(&mut self) {
        tokio::select! {
            _ = self.service.run() => {}
            _ = self.stop.cancelled() => {}
        }
    }
}

/// Runs `service` until a run returns; after a panic, counts it and runs it again after a
/// backoff that grows with the panics (unless shutdown has begun).
async fn supervise<S: Service>(
    name: &'static str,
    mut service: S,
    shutdown: CancellationToken,
    restarts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
) {
    let mut attempt: u32 = 0;
    loop {
        // The run borrows the service: after a panic, its state (its receivers) is still
        // here for the next run.
        let outcome = AssertUnwindSafe(service.run()).catch_unwind().await;
        if outcome.is_ok() {
            tracing::debug!(task = name, "background task finished");
            return;
        }
        attempt = attempt.saturating_add(1);
        metrics::counter!(crate::telemetry::TASK_RESTARTS, "task" => name).increment(1);
        let total = {
            let mut r = restarts.lock().expect("restart counts poisoned");
            let n = r.entry(name).or_default();
            *n += 1;
            *n
        };
        if shutdown.is_cancelled() {
            tracing::error!(task = name, "background task panicked during shutdown");
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

    /// Panics on its first two messages; counts what it received.
    struct Picky {
        rx: tokio::sync::mpsc::Receiver<u32>,
        seen: Arc<AtomicU32>,
    }

    impl Service for Picky {
        async fn run(&mut self) {
            while let Some(n) = self.rx.recv().await {
                self.seen.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    panic!("boom");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_restarted_service_keeps_its_receiver() {
        let sup = Supervisor::new(CancellationToken::new());
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        for n in 0..4 {
            tx.send(n).await.unwrap();
        }
        drop(tx);
        let seen = Arc::new(AtomicU32::new(0));
        sup.start(
            "picky",
            Picky {
                rx,
                seen: seen.clone(),
            },
        );
        sup.join(Duration::from_secs(5)).await;
        assert_eq!(seen.load(Ordering::SeqCst), 4);
        assert_eq!(sup.restarts("picky"), 2);
    }
}
