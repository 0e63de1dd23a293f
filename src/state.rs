//! `AppState`: what the handlers share, built once by [`crate::app::start`].

use crate::broker::redis::RedisStatus;
use crate::bus::Bus;
use crate::credentials::Credentials;
use crate::ingest::Ingestor;
use crate::store::Store;
use crate::stream::Hub;
use crate::task::Supervisor;
use std::sync::Arc;
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

/// How the edge treats connections.
#[derive(Clone, Copy, Debug)]
pub struct EdgeSettings {
    /// Open client connections at most (`--max-connections`, or what the open-file limit
    /// allows).
    pub max_connections: usize,
    /// Refused connections lingering at once to have their request read before the
    /// close; past it a refused connection is closed right after its 503, so refusing
    /// costs a bounded number of descriptors too.
    pub refusing_at_once: usize,
    /// How long a connection may take to send a complete request head, from its accept or
    /// its previous response (`--header-timeout-ms`); also how long it may sit idle.
    pub header_timeout: Duration,
}

/// The default of `--body-timeout-ms`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stream opened without a token waits for its `auth` message.
pub const DEFAULT_STREAM_AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Cheap-to-clone handle to the server's shared parts.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    ingestor: Ingestor,
    bus: Bus,
    supervisor: Supervisor,
    hub: Arc<Hub>,
    stream: StreamSettings,
    /// With `--redis-url`: whether Redis is reachable.
    redis: Option<RedisStatus>,
    /// `--webhook-allow-cidr`: forbidden webhook addresses the operator allows.
    webhook_allow: Vec<crate::alerts::target::Cidr>,
    /// Every project's ingest key and token hash, reloaded from the database.
    credentials: Credentials,
    /// How long a stream opened without a token waits for its `auth` message.
    stream_auth_timeout: Duration,
    /// How long a request body may take to arrive (`--body-timeout-ms`).
    body_timeout: Duration,
    /// Connection limits and timeouts of the listener.
    edge: EdgeSettings,
    /// Signed-in users: sessions, API tokens, memberships.
    accounts: crate::accounts::Accounts,
    /// The dashboard's address (`--public-url`): DSNs, the `Origin` signed-in requests
    /// must carry, and whether the session cookie is `Secure`.
    public_url: String,
    /// Sign-in by OpenID Connect, when `--oidc-issuer` is given.
    sso: Option<Arc<crate::sso::Sso>>,
    /// Source maps: JavaScript frames mapped at ingest and when an event is read.
    sourcemaps: Arc<crate::sourcemaps::Mapper<Store>>,
}

impl AppState {
    /// Assembles the state, and starts the key directory's reloads under `supervisor`.
    pub fn new(
        store: Store,
        ingestor: Ingestor,
        bus: Bus,
        supervisor: Supervisor,
        hub: Arc<Hub>,
        stream: StreamSettings,
        redis: Option<RedisStatus>,
    ) -> AppState {
        let credentials = Credentials::start(store.clone(), &supervisor);
        let accounts = crate::accounts::Accounts::new(store.clone());
        let sourcemaps = Arc::new(crate::sourcemaps::Mapper::new(
            store.clone(),
            crate::sourcemaps::DEFAULT_CACHE_BYTES,
        ));
        ingestor.attach_sourcemaps(sourcemaps.clone());
        AppState(Arc::new(Inner {
            sourcemaps,
            accounts,
            public_url: String::from("http://localhost"),
            sso: None,
            store,
            ingestor,
            bus,
            supervisor,
            hub,
            stream,
            redis,
            webhook_allow: Vec::new(),
            credentials,
            stream_auth_timeout: DEFAULT_STREAM_AUTH_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            edge: EdgeSettings {
                max_connections: 10_000,
                refusing_at_once: 64,
                header_timeout: Duration::from_secs(10),
            },
        }))
    }

    /// The source-map mapper (SPEC §10).
    pub(crate) fn sourcemaps(&self) -> &crate::sourcemaps::Mapper<Store> {
        &self.0.sourcemaps
    }

    /// Bounds the parsed source maps' cache (`--sourcemap-cache-mb`).
    pub fn with_sourcemap_cache(self, bytes: usize) -> AppState {
        self.0.sourcemaps.set_budget(bytes);
        self
    }

    /// Sets the public URL (`--public-url`); before the state is shared.
    pub fn with_public_url(mut self, url: String) -> AppState {
        Arc::get_mut(&mut self.0)
            .expect("the public URL is set before the state is shared")
            .public_url = url;
        self
    }

    /// `--public-url`, or `http://<listen address>`.
    pub(crate) fn public_url(&self) -> &str {
        &self.0.public_url
    }

    /// Turns on sign-in by OpenID Connect; before the state is shared.
    pub(crate) fn with_sso(mut self, settings: crate::sso::SsoSettings) -> AppState {
        Arc::get_mut(&mut self.0)
            .expect("SSO is set up before the state is shared")
            .sso = Some(Arc::new(crate::sso::Sso::new(settings)));
        self
    }

    /// Sign-in by OpenID Connect, if configured.
    pub(crate) fn sso(&self) -> Option<&crate::sso::Sso> {
        self.0.sso.as_deref()
    }

    /// Signed-in users.
    pub(crate) fn accounts(&self) -> &crate::accounts::Accounts {
        &self.0.accounts
    }

    /// Sets how long a request body may take to arrive; before the state is shared.
    pub fn with_body_timeout(mut self, limit: Duration) -> AppState {
        Arc::get_mut(&mut self.0)
            .expect("the body timeout is set before the state is shared")
            .body_timeout = limit;
        self
    }

    /// Sets the listener's limits; before the state is shared.
    pub fn with_edge(mut self, edge: EdgeSettings) -> AppState {
        Arc::get_mut(&mut self.0)
            .expect("the edge settings are set before the state is shared")
            .edge = edge;
        self
    }

    /// The listener's limits.
    pub fn edge(&self) -> EdgeSettings {
        self.0.edge
    }

    /// Sets how long a stream opened without a token waits for its `auth` message; before
    /// the state is shared.
    pub fn with_stream_auth_timeout(mut self, limit: Duration) -> AppState {
        Arc::get_mut(&mut self.0)
            .expect("the auth timeout is set before the state is shared")
            .stream_auth_timeout = limit;
        self
    }

    /// How long a stream opened without a token waits for its `auth` message.
    pub fn stream_auth_timeout(&self) -> Duration {
        self.0.stream_auth_timeout
    }

    /// The key directory: which project an ingest key or token belongs to.
    pub fn credentials(&self) -> &Credentials {
        &self.0.credentials
    }

    /// How long a request body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        self.0.body_timeout
    }

    /// Sets the forbidden webhook addresses the operator allows; before the state is shared.
    pub fn with_webhook_allow(mut self, allow: Vec<crate::alerts::target::Cidr>) -> AppState {
        Arc::get_mut(&mut self.0)
            .expect("the webhook allow list is set before the state is shared")
            .webhook_allow = allow;
        self
    }

    /// The forbidden webhook addresses the operator allows (`--webhook-allow-cidr`).
    pub fn webhook_allow(&self) -> &[crate::alerts::target::Cidr] {
        &self.0.webhook_allow
    }

    /// Redis's reachability, when the node uses it.
    pub fn redis(&self) -> Option<&RedisStatus> {
        self.0.redis.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Store {
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
}
