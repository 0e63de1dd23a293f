//! Building and running the server: [`run`] is the one entry point, used by `main` and by
//! the tests (on port 0).

use crate::bus::Bus;
use crate::config::ServeConfig;
use crate::ingest::{Ingestor, writer};
use crate::state::{AppState, StreamSettings};
use crate::store::{self, Store};
use crate::stream::{Hub, dispatch};
use crate::task::Supervisor;
use crate::{http, retention};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Time given to background tasks (the writer flushing its queue) after the HTTP server
/// has stopped.
const STOP_GRACE: Duration = Duration::from_secs(8);

/// Domain messages waiting for the stream dispatcher; when full, the writer waits.
const BUS_CAPACITY: usize = 8192;

/// Builds the state and starts the supervised background tasks.
pub fn start(config: &ServeConfig, store: Arc<dyn Store>, shutdown: CancellationToken) -> AppState {
    let supervisor = Supervisor::new(shutdown.clone());
    let bus = Bus::new();
    let (writer_handle, queue) = writer::channel(config.write_queue as usize);
    {
        let (store, bus, max_batch) = (store.clone(), bus.clone(), config.commit_batch as usize);
        supervisor.spawn("writer", move || {
            writer::run(store.clone(), queue.clone(), bus.clone(), max_batch)
        });
    }
    {
        let (store, bus, days, token) = (
            store.clone(),
            bus.clone(),
            config.retention_days,
            shutdown.clone(),
        );
        supervisor.spawn("retention", move || {
            retention::run(store.clone(), bus.clone(), days, token.clone())
        });
    }
    let hub = Arc::new(Hub::new(config.max_buffer as usize));
    {
        let (hub, queue) = (
            hub.clone(),
            Arc::new(tokio::sync::Mutex::new(bus.subscribe(BUS_CAPACITY))),
        );
        supervisor.spawn("dispatcher", move || {
            dispatch::run(hub.clone(), queue.clone())
        });
    }
    let ingestor = Ingestor::new(writer_handle, config.rate_limit);
    let settings = StreamSettings {
        drain_interval: Duration::from_millis(config.drain_interval_ms),
        write_timeout: Duration::from_millis(config.write_timeout_ms),
        heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms),
        heartbeat_timeout: Duration::from_millis(config.heartbeat_timeout_ms),
    };
    AppState::new(store, ingestor, bus, supervisor, hub, settings)
}

/// Opens the database, serves on `listener` until `shutdown` completes, then drains:
/// in-flight requests finish, streams close with 1001, the writer commits what it holds.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::open(&config.database.database_url).await?;
    let token = CancellationToken::new();
    let state = start(&config, store, token.clone());
    tracing::info!(addr = %listener.local_addr()?, database = %config.database.database_url, "mesher listening");
    serve(state, listener, shutdown).await
}

/// Serves a started state on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let supervisor = state.supervisor().clone();
    let token = state.shutdown().clone();
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(token.cancelled_owned())
        .await?;
    // Every AppState clone is gone now, so the writer's queue closes once it is empty.
    supervisor.join(STOP_GRACE).await;
    tracing::info!("mesher stopped");
    Ok(())
}
