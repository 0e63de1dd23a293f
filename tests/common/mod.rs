//! Test harness: a real Mesher server on a free loopback port with a temporary SQLite file.
#![allow(dead_code)]

use mesher::{DatabaseUrl, ServeConfig};
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) mod browser;
pub(crate) mod oidc;
pub(crate) mod postgres;
pub(crate) mod process;
pub(crate) mod receiver;
pub(crate) mod redis;
pub(crate) mod sdk;
pub(crate) mod smtp;
pub(crate) mod ws;

/// Upper bound for any single wait in a test.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A project's credentials, as `mesher project create` prints them.
#[derive(Clone, Debug)]
pub(crate) struct Creds {
    pub id: i64,
    pub key: String,
    pub token: String,
    pub dsn: String,
}

impl Creds {
    pub(crate) fn from_json(v: &Value) -> Creds {
        Creds {
            id: v["id"].as_i64().expect("id"),
            key: v["ingest_key"].as_str().expect("ingest_key").to_owned(),
            token: v["token"].as_str().expect("token").to_owned(),
            dsn: v["dsn"].as_str().expect("dsn").to_owned(),
        }
    }
}

/// `POST {base}/api/v1/events` of `body` with the ingest `key` as a Bearer token: how the
/// tests send an event to a server of either kind (in this process or a child process).
/// Answers the response, or the error when the server is gone.
pub(crate) async fn post_event(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/api/v1/events"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
}

/// A server running in this process.
pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub db: DatabaseUrl,
    pub http: reqwest::Client,
    dir: TempDir,
    /// The server's state, for checks a client cannot make (e.g. the hub's connections).
    pub state: Option<mesher::state::AppState>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tune: impl FnOnce(&mut ServeConfig)) -> TestServer {
        Self::start_on(None, tune).await
    }

    /// A server on `db` (PostgreSQL, shared by several nodes), or on a fresh SQLite file.
    pub(crate) async fn start_on(
        db: Option<DatabaseUrl>,
        tune: impl FnOnce(&mut ServeConfig),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db.unwrap_or_else(|| {
            DatabaseUrl::Sqlite(format!(
                "sqlite://{}",
                dir.path().join("mesher.db").display()
            ))
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let mut config = ServeConfig::new(addr, db.clone());
        tune(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let store = mesher::store::open(&db).await.expect("store opens");
        let state = mesher::app::start(&config, store, tokio_util::sync::CancellationToken::new());
        let handle = tokio::spawn(mesher::app::serve(state.clone(), listener, async {
            let _ = stopped.await;
        }));
        let server = TestServer {
            addr,
            base: format!("http://{addr}"),
            db,
            http: reqwest::Client::new(),
            dir,
            state: Some(state),
            stop: Some(stop),
            handle: Some(handle),
        };
        server.wait_healthy().await;
        server
    }

    /// Waits until `/healthz` answers 200 (migrations done).
    pub(crate) async fn wait_healthy(&self) {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                    && r.status() == StatusCode::OK
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("server became healthy");
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(crate) fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Creates a project the way `mesher project create` does (on the same database).
    pub(crate) async fn project(&self, name: &str) -> Creds {
        let v = mesher::admin::create_project(&self.db, name, &self.addr.to_string())
            .await
            .expect("create project");
        Creds::from_json(&v)
    }

    /// Signs in (`POST /api/v1/session`); answers the status, the body and the session
    /// cookie (`name=value`).
    pub(crate) async fn sign_in(
        &self,
        email: &str,
        password: &str,
    ) -> (StatusCode, Value, Option<String>) {
        let body = serde_json::json!({ "email": email, "password": password });
        let r = self
            .http
            .post(self.url("/api/v1/session"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let cookie = r
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null), cookie)
    }

    /// Sends a request with a Bearer credential; answers its status and JSON body.
    async fn call(&self, req: reqwest::RequestBuilder, bearer: &str) -> (StatusCode, Value) {
        let r = req.bearer_auth(bearer).send().await.expect("request");
        let status = r.status();
        (status, r.json().await.expect("JSON answer"))
    }

    /// POSTs JSON with the ingest key as a Bearer token.
    pub(crate) async fn post(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        self.call(self.http.post(self.url(path)).json(body), key)
            .await
    }

    pub(crate) async fn send_event(&self, creds: &Creds, body: &Value) -> (StatusCode, Value) {
        self.post("/api/v1/events", &creds.key, body).await
    }

    /// GETs with the project token.
    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(self.http.get(self.url(path)), token).await
    }

    pub(crate) async fn act(&self, issue: i64, action: &str, token: &str) -> (StatusCode, Value) {
        let url = self.url(&format!("/api/v1/issues/{issue}/{action}"));
        self.call(self.http.post(url), token).await
    }

    /// Every stored event of a project, in seq order.
    /// The value of the first `/metrics` line that starts with `line_start` (a metric's
    /// name with its labels), if there is one.
    pub(crate) async fn metric(&self, line_start: &str) -> Option<f64> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
    }

    pub(crate) async fn all_events(&self, creds: &Creds) -> Vec<Value> {
        let mut out = Vec::new();
        let mut since = 0;
        loop {
            let (s, v) = self
                .get(
                    &format!(
                        "/api/v1/projects/{}/events?since={since}&limit=1000",
                        creds.id
                    ),
                    &creds.token,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let page = v["events"].as_array().unwrap().clone();
            if page.is_empty() {
                return out;
            }
            since = page.last().unwrap()["seq"].as_i64().unwrap();
            out.extend(page);
        }
    }

    pub(crate) fn state(&self) -> &mesher::state::AppState {
        self.state.as_ref().expect("server running")
    }

    /// Waits until the hub holds `n` stream connections.
    pub(crate) async fn wait_connections(&self, n: usize) {
        tokio::time::timeout(WAIT, async {
            while self.state().hub().connections() != n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "expected {n} stream connections, have {}",
                self.state().hub().connections()
            )
        });
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server gracefully and waits for it.
    pub(crate) async fn stop(mut self) {
        // Our clone would keep the writer's queue open.
        self.state.take();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(WAIT, h)
                .await
                .expect("server stopped in time")
                .expect("server task")
                .expect("server result");
        }
    }
}
