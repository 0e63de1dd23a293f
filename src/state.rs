//! `AppState`: what the handlers share, built once by [`crate::app::start`].

use crate::broker::redis::RedisStatus;
use crate::bus::Bus;
use crate::ingest::Ingestor;
use crate::store::{ProjectId, Store};
use crate::stream::Hub;
use crate::task::Supervisor;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Per-connection stream settings (SPEC §4).
#[derive(Clone, Copy, Debug)]
pub struct StreamSettings {
    /// How often a drain pass flushes an outbox.
    pub drain_interval: Duration,
    /// How long one write may take before the connection is closed.
    pub write_timeout: Duration,
    /// How often the server pings.
    pub heartbeat_interval: Duration,
    /// How long a ping may go unanswered.
    pub heartbeat_timeout: Duration,
}

/// The default of `--body-timeout-ms`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Cheap-to-clone handle to the server's shared parts.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    ingestor: Ingestor,
    bus: Bus,
    supervisor: Supervisor,
    hub: Arc<Hub>,
    stream: StreamSettings,
    /// With `--redis-url`: whether Redis is reachable.
    redis: Option<RedisStatus>,
    /// Ingest keys already seen. Keys never change, so a hit needs no database read;
    /// a miss asks the database, so a project created by the CLI works at once.
    ingest_keys: RwLock<HashMap<String, ProjectId>>,
    /// How long a request body may take to arrive (`--body-timeout-ms`).
    body_timeout: Duration,
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        store: Arc<dyn Store>,
        ingestor: Ingestor,
        bus: Bus,
        supervisor: Supervisor,
        hub: Arc<Hub>,
        stream: StreamSettings,
        redis: Option<RedisStatus>,
    ) -> AppState {
        AppState(Arc::new(Inner {
            store,
            ingestor,
            bus,
            supervisor,
            hub,
            stream,
            redis,
            ingest_keys: RwLock::default(),
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }))
    }

    /// Sets how long a request body may take to arrive; before the state is shared.
    pub fn with_body_timeout(mut self, limit: Duration) -> AppState {
        Arc::get_mut(&mut self.0)
            .expect("the body timeout is set before the state is shared")
            .body_timeout = limit;
        self
    }

    /// How long a request body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        self.0.body_timeout
    }

    /// Redis's reachability, when the node uses it.
    pub fn redis(&self) -> Option<&RedisStatus> {
        self.0.redis.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// The ingestion pipeline.
    pub fn ingestor(&self) -> &Ingestor {
        &self.0.ingestor
    }

    /// The domain bus.
    pub fn bus(&self) -> &Bus {
        &self.0.bus
    }

    /// The stream hub.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.0.hub
    }

    /// Stream connection settings.
    pub fn stream_settings(&self) -> &StreamSettings {
        &self.0.stream
    }

    /// The task supervisor.
    pub fn supervisor(&self) -> &Supervisor {
        &self.0.supervisor
    }

    /// Cancelled when the server begins to stop.
    pub fn shutdown(&self) -> &CancellationToken {
        self.0.supervisor.shutdown()
    }

    /// The project an ingest key belongs to (cached after the first hit).
    pub async fn project_for_ingest_key(
        &self,
        key: &str,
    ) -> Result<Option<ProjectId>, crate::store::StoreError> {
        if let Some(id) = self
            .0
            .ingest_keys
            .read()
            .expect("key cache poisoned")
            .get(key)
        {
            return Ok(Some(*id));
        }
        let found = self.0.store.project_by_ingest_key(key).await?;
        if let Some(id) = found {
            self.0
                .ingest_keys
                .write()
                .expect("key cache poisoned")
                .insert(key.to_owned(), id);
        }
        Ok(found)
    }
}
