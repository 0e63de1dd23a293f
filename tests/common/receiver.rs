//! A webhook receiver for the alert tests: a real HTTP server on loopback that records
//! every request and answers as scripted (a status, after a delay, never, a redirect, or
//! a body without end).
//!
//! It listens on 127.0.0.1, a loopback address webhooks may not reach by default (SPEC
//! §8): servers and `webhook add` commands that use it need `--webhook-allow-cidr
//! 127.0.0.0/8` ([`ALLOW_LOOPBACK`]).

use super::WAIT;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The range that lets a webhook reach a receiver.
pub(crate) const ALLOW_LOOPBACK: &str = "127.0.0.0/8";

/// `--webhook-allow-cidr 127.0.0.0/8`, for a server's config.
pub(crate) fn allow_loopback(config: &mut mesher::ServeConfig) {
    config.webhook_allow_cidr = vec![ALLOW_LOOPBACK.parse().unwrap()];
}

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// This status at once.
    Status(u16),
    /// This status after a while.
    After(Duration, u16),
    /// Never (the connection is held open).
    Hang,
    /// This status (a 3xx) with this `Location`.
    Redirect(u16, String),
    /// This status and a body that never ends (counted in [`Endless`]).
    Endless(u16),
}

/// What the endless bodies sent: bytes handed to the connection, and how many bodies the
/// client hung up on (dropped before their end, which never comes).
#[derive(Clone, Default)]
pub(crate) struct Endless {
    pub bytes: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
}

/// Counts the body dropped when the server stops sending it.
struct DropCount(Arc<AtomicU64>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }
}

#[derive(Clone)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    default: Arc<Mutex<Reply>>,
    seen: mpsc::UnboundedSender<Received>,
    endless: Endless,
}

pub(crate) struct Receiver {
    pub url: String,
    pub port: u16,
    script: Script,
    seen: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

async fn answer(State(s): State<Script>, headers: HeaderMap, body: Bytes) -> Response {
    let _ = s.seen.send(Received { headers, body });
    let next = s.replies.lock().unwrap().pop_front();
    let reply = next.unwrap_or_else(|| s.default.lock().unwrap().clone());
    let status = |n| StatusCode::from_u16(n).unwrap();
    match reply {
        Reply::Status(n) => status(n).into_response(),
        Reply::After(wait, n) => {
            tokio::time::sleep(wait).await;
            status(n).into_response()
        }
        Reply::Hang => std::future::pending().await,
        Reply::Redirect(n, to) => (status(n), [("location", to)]).into_response(),
        Reply::Endless(n) => {
            let Endless { bytes, dropped } = s.endless.clone();
            let flag = DropCount(dropped);
            let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
            let body = futures_util::stream::repeat_with(move || {
                let _alive = &flag;
                bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                Ok::<_, std::io::Error>(chunk.clone())
            });
            (status(n), Body::from_stream(body)).into_response()
        }
    }
}

impl Receiver {
    /// A receiver on a free port answering 200.
    pub(crate) async fn start() -> Receiver {
        Receiver::on(0).await
    }

    /// A receiver on `port` (0: any).
    pub(crate) async fn on(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Script {
            replies: Arc::default(),
            default: Arc::new(Mutex::new(Reply::Status(200))),
            seen: tx,
            endless: Endless::default(),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(answer))
            .with_state(script.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            script,
            seen: rx,
            task,
        }
    }

    /// The next requests are answered so, in order; then the default.
    pub(crate) fn script(&self, replies: &[Reply]) {
        self.script
            .replies
            .lock()
            .unwrap()
            .extend(replies.iter().cloned());
    }

    /// What its endless bodies have sent.
    pub(crate) fn endless(&self) -> Endless {
        self.script.endless.clone()
    }

    /// How requests beyond the script are answered.
    pub(crate) fn answer_all(&self, reply: Reply) {
        *self.script.default.lock().unwrap() = reply;
    }

    /// The next request, within `WAIT`.
    pub(crate) async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("a webhook request within the wait")
            .expect("the receiver runs")
    }

    /// A request within `wait`, if any.
    pub(crate) async fn within(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.seen.recv())
            .await
            .ok()
            .flatten()
    }

    /// Stops listening (connections are then refused).
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}
