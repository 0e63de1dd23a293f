//! A webhook receiver for the alert tests: a real HTTP server on loopback that records
//! every request and answers as scripted (a status, after a delay, or never).

use super::WAIT;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// This status at once.
    Status(u16),
    /// This status after a while.
    After(Duration, u16),
    /// Never (the connection is held open).
    Hang,
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }
}

#[derive(Clone)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    default: Arc<Mutex<Reply>>,
    seen: mpsc::UnboundedSender<Received>,
}

pub struct Receiver {
    pub url: String,
    pub port: u16,
    script: Script,
    seen: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

async fn answer(State(s): State<Script>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = s.seen.send(Received { headers, body });
    let reply = s
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(*s.default.lock().unwrap());
    let status = match reply {
        Reply::Status(n) => n,
        Reply::After(wait, n) => {
            tokio::time::sleep(wait).await;
            n
        }
        Reply::Hang => std::future::pending().await,
    };
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// A receiver on a free port answering 200.
    pub async fn start() -> Receiver {
        Receiver::on(0).await
    }

    /// A receiver on `port` (0: any).
    pub async fn on(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Script {
            replies: Arc::default(),
            default: Arc::new(Mutex::new(Reply::Status(200))),
            seen: tx,
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
    pub fn script(&self, replies: &[Reply]) {
        self.script.replies.lock().unwrap().extend(replies);
    }

    /// How requests beyond the script are answered.
    pub fn answer_all(&self, reply: Reply) {
        *self.script.default.lock().unwrap() = reply;
    }

    /// The next request, within `WAIT`.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("a webhook request within the wait")
            .expect("the receiver runs")
    }

    /// A request within `wait`, if any.
    pub async fn within(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.seen.recv())
            .await
            .ok()
            .flatten()
    }

    /// Stops listening (connections are then refused).
    pub fn stop(self) {
        self.task.abort();
    }
}
