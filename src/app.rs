//! Building and running the server: [`run`] is the one entry point, used by `main` and by
//! the tests (on port 0).

use crate::alerts::{self, deliver::Deliverer};
use crate::broker;
use crate::broker::merge::Merge;
use crate::broker::redis::{Publisher, RedisStatus};
use crate::bus::{Bus, DomainMessage};
use crate::config::ServeConfig;
use crate::http;
use crate::ingest::Ingestor;
use crate::ingest::writer::{self, Writer, WriterQueue};
use crate::retention::Retention;
use crate::state::{AppState, StreamSettings};
use crate::store::{self, Store};
use crate::stream::dispatch::Dispatcher;
use crate::stream::{Hub, drain};
use crate::task::Supervisor;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Shutdown's budget (SPEC §6: exit within 10 s), in three steps after the signal:
/// in-flight HTTP requests finish (a request stalled mid-body is not waited for longer)…
const HTTP_DRAIN: Duration = Duration::from_secs(5);
/// …WebSocket connections, told at the signal, finish sending their 1001 close…
const SOCKET_GRACE: Duration = Duration::from_secs(2);
/// …and the background tasks end, the writer after committing what is queued.
const TASK_GRACE: Duration = Duration::from_secs(2);

/// Domain messages waiting for the stream dispatcher; when full, the writer waits.
const BUS_CAPACITY: usize = 8192;

/// Builds the state and starts the supervised background tasks.
pub fn start(config: &ServeConfig, store: Store, shutdown: CancellationToken) -> AppState {
    crate::telemetry::install();
    let supervisor = Supervisor::new(shutdown.clone());
    let bus = Bus::new();
    let hub = Arc::new(Hub::new(config.max_buffer as usize));
    let (writer_handle, queue) = writer::channel(config.write_queue as usize);
    supervisor.spawn_until_shutdown("metrics-upkeep", crate::telemetry::upkeep);
    supervisor.start("writer", new_writer(config, &store, &bus, queue));
    let retention = Retention {
        store: store.clone(),
        bus: bus.clone(),
        days: config.retention_days,
        shutdown: shutdown.clone(),
    };
    supervisor.start("retention", retention);
    supervisor.start("alerts", deliverer(config, &store, &shutdown));
    // One node: the bus feeds the dispatcher. With Redis, the merge task sits between them and
    // merges the other nodes' news (src/broker).
    let (dispatch_queue, redis) = match &config.redis_url {
        None => (bus.subscribe(BUS_CAPACITY), None),
        Some(url) => {
            let (queue, status) = start_broker(&supervisor, url, &store, &bus, &hub);
            (queue, Some(status))
        }
    };
    supervisor.start("dispatcher", Dispatcher::new(hub.clone(), dispatch_queue));
    {
        let (hub, every) = (hub.clone(), Duration::from_millis(config.drain_interval_ms));
        supervisor.spawn_until_shutdown("drain", move || drain::run(hub.clone(), every));
    }
    let ingestor = Ingestor::new(writer_handle, config.rate_limit);
    let state = AppState::new(
        store,
        ingestor,
        bus,
        supervisor,
        hub,
        stream_settings(config),
        redis,
    )
    .with_body_timeout(Duration::from_millis(config.body_timeout_ms))
    .with_webhook_allow(config.webhook_allow_cidr.clone())
    .with_stream_auth_timeout(config.stream_auth_timeout)
    .with_edge(edge_settings(config))
    .with_sourcemap_cache((config.sourcemap_cache_mb as usize) << 20)
    .with_public_url(config.public_url());
    match sso_settings(config) {
        Some(settings) => state.with_sso(settings),
        None => state,
    }
}

/// `--oidc-*`, when SSO is configured (clap makes the issuer need the id and secret).
fn sso_settings(config: &ServeConfig) -> Option<crate::sso::SsoSettings> {
    Some(crate::sso::SsoSettings {
        issuer: config.oidc_issuer.clone()?,
        client_id: config.oidc_client_id.clone()?,
        client_secret: config.oidc_client_secret.clone()?,
        allow_domains: config.oidc_allow_domain.clone(),
        redirect_uri: format!("{}/auth/oidc/callback", config.public_url()),
    })
}

/// The writer of `queue`, with `--commit-batch` and `--commit-delay-us` (or the store's
/// default delay).
fn new_writer(config: &ServeConfig, store: &Store, bus: &Bus, queue: WriterQueue) -> Writer {
    let delay = config
        .commit_delay_us
        .map(|us| Duration::from_micros(us.into()))
        .unwrap_or_else(|| store.commit_delay());
    Writer::new(
        store.clone(),
        queue,
        bus.clone(),
        config.commit_batch as usize,
        delay,
    )
}

/// The webhook delivery task.
fn deliverer(config: &ServeConfig, store: &Store, shutdown: &CancellationToken) -> Deliverer {
    Deliverer {
        store: store.clone(),
        settings: alerts::deliver::Settings {
            public_url: config.public_url(),
            retry_for: config.alert_retry_for,
            allow: config.webhook_allow_cidr.clone(),
            mailer: mailer(config),
        },
        shutdown: shutdown.clone(),
    }
}

/// The streams' timings.
/// The e-mail alerts' mailer, when `--smtp-url` and `--smtp-from` are given (both were
/// checked when the command line was read).
fn mailer(config: &ServeConfig) -> Option<Arc<alerts::mail::Mailer>> {
    let (url, from) = (config.smtp_url.as_deref()?, config.smtp_from.as_deref()?);
    let timeout = alerts::deliver::ATTEMPT_TIMEOUT;
    match alerts::mail::Mailer::new(url, from, timeout) {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            tracing::error!(error = %e, "e-mail alerts are off");
            None
        }
    }
}

fn stream_settings(config: &ServeConfig) -> StreamSettings {
    StreamSettings {
        drain_interval: Duration::from_millis(config.drain_interval_ms),
        write_timeout: Duration::from_millis(config.write_timeout_ms),
        heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms),
        heartbeat_timeout: Duration::from_millis(config.heartbeat_timeout_ms),
    }
}

/// The listener's limits: `--max-connections` as far as the open-file limit allows.
fn edge_settings(config: &ServeConfig) -> crate::state::EdgeSettings {
    let (max_connections, refusing_at_once) =
        http::listener::connection_capacity(config.max_connections as usize);
    crate::state::EdgeSettings {
        max_connections,
        refusing_at_once,
        header_timeout: Duration::from_millis(config.header_timeout_ms),
    }
}

/// Starts the merge task and the Redis subscriber and publisher; answers the dispatcher's queue.
fn start_broker(
    supervisor: &Supervisor,
    url: &str,
    store: &Store,
    bus: &Bus,
    hub: &Arc<Hub>,
) -> (mpsc::Receiver<DomainMessage>, RedisStatus) {
    let client = redis::Client::open(url).expect("--redis-url was checked when parsed");
    let node = broker::new_node_id();
    let status = RedisStatus::default();
    let (remote_tx, remote) = mpsc::channel(1024);
    let (out, out_rx) = mpsc::channel(BUS_CAPACITY);
    let (publish, publish_rx) = mpsc::channel(BUS_CAPACITY);
    let merge = Merge {
        store: store.clone(),
        hub: hub.clone(),
        local: bus.subscribe(BUS_CAPACITY),
        remote,
        out,
        publish,
    };
    supervisor.start("merge", merge);
    {
        let (client, node, status) = (client.clone(), node.clone(), status.clone());
        supervisor.spawn_until_shutdown("redis-subscriber", move || {
            broker::redis::subscribe(
                client.clone(),
                node.clone(),
                remote_tx.clone(),
                status.clone(),
            )
        });
    }
    tracing::info!(node = %node, "fan-out across nodes through redis");
    let publisher = Publisher {
        client,
        node,
        rx: publish_rx,
    };
    supervisor.start("redis-publisher", publisher);
    (out_rx, status)
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
    let mut config = config;
    // Port 0 asks the system for one: the dashboard's links name the one it gave.
    config.listen = listener.local_addr()?;
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
    let intake = state.clone();
    let edge = state.edge();
    let server = http::listener::serve(listener, http::router(state), edge, token.clone());
    let deadline = async {
        token.cancelled().await;
        tokio::time::sleep(HTTP_DRAIN).await;
    };
    tokio::select! {
        () = server => {},
        _ = deadline => tracing::warn!(
            "requests still in flight {HTTP_DRAIN:?} after the shutdown signal: not waiting for them"
        ),
    }
    if !supervisor.wait_sockets(SOCKET_GRACE).await {
        tracing::warn!("WebSocket connections still open {SOCKET_GRACE:?} after the drain");
    }
    // Requests that finished were committed; from here new ones are refused (503), what
    // is queued is committed, and the writer ends.
    intake.ingestor().close_intake();
    drop(intake);
    supervisor.join(TASK_GRACE).await;
    tracing::info!("mesher stopped");
    Ok(())
}
