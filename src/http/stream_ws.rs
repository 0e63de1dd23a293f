//! `GET /stream/projects/<id>`: the live stream (SPEC §4).
//!
//! One task per connection owns the socket. It writes the outbox as soon as the hub wakes
//! it, and at least every drain interval; every write is bounded by the write timeout, and
//! a failed or timed-out write ends the connection, which leaves every room on the way out.

use super::auth::{authorize_project, query_param};
use crate::app::CLOSE_WAIT;
use crate::error::ApiError;
use crate::model::Millis;
use crate::state::AppState;
use crate::stream::messages::{Frame, event_frame, lagged};
use crate::stream::{EventFields, Filters, StreamConn};
use crate::telemetry;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Largest client → server message on the stream.
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Initial read buffer of a stream connection (it grows for larger client messages).
/// tungstenite zero-fills all of it before each read attempt, so it is both resident
/// memory per idle connection and a memset per wake-up (seen in the profile); client
/// messages are small.
const READ_BUFFER: usize = 1024;
/// Bytes batched before a write reaches the socket (our flush sends the rest).
const WRITE_BUFFER: usize = 16 * 1024;
/// Frames written per flush (several frames per syscall when a client is behind).
const WRITE_BATCH: usize = 64;
/// Stored events read per replay query.
const REPLAY_PAGE: u32 = 500;

type Sink = SplitSink<WebSocket, Message>;

/// The project id from the path, parsed as the route's JSON 400 says.
pub async fn upgrade(
    State(state): State<AppState>,
    super::body::ApiPath(project): super::body::ApiPath<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let q = query.as_deref();
    authorize_project(&state, &headers, q, project).await?;
    let mut initial = Map::new();
    for name in ["level", "min_level", "environment", "release"] {
        if let Some(v) = query_param(q, name) {
            let list: Vec<Value> = v.split(',').map(|s| Value::String(s.to_owned())).collect();
            initial.insert(name.to_owned(), Value::Array(list));
        }
    }
    let filters =
        Filters::from_json(&Value::Object(initial)).map_err(|e| ApiError::BadRequest(e.0))?;
    let since = match query_param(q, "since") {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "query parameter 'since' must be a whole number ≥ 0, got '{raw}'"
            ))
        })?),
    };
    // Measured (docs/BENCHMARKS.md): tungstenite's default 128 KiB read buffer made an idle
    // connection cost ~134 KiB of RSS. Clients send little, so a small one suffices.
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            let tracked = state.supervisor().clone();
            tracked.track_socket(serve(state, project, filters, since, socket))
        }))
}

async fn send(sink: &mut Sink, text: Utf8Bytes, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, sink.send(Message::Text(text))).await,
        Ok(Ok(()))
    )
}

fn text(frame: &Frame) -> Utf8Bytes {
    Utf8Bytes::try_from(frame.bytes.clone()).expect("frames are encoded from Strings")
}

/// Writes what the outbox holds, several frames per flush when the client is behind;
/// false when the connection must end. One timeout bounds the whole write: a timer per
/// frame showed up in the profile of the paced fan-out (docs/BENCHMARKS.md).
async fn flush(conn: &StreamConn, sink: &mut Sink, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, write_outbox(conn, sink)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            metrics::counter!(telemetry::WRITE_TIMEOUTS).increment(1);
            false
        }
    }
}

async fn write_outbox(conn: &StreamConn, sink: &mut Sink) -> Result<(), axum::Error> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    // One latency sample per write, its oldest event's: a sample per delivery made the
    // exporter buffer millions of samples between scrapes (measured: 40 M in one run).
    let mut oldest: Option<Millis> = None;
    let mut written = 0u64;
    loop {
        batch.clear();
        let dropped = conn.take(WRITE_BATCH, &mut batch);
        if dropped > 0 {
            sink.feed(Message::Text(lagged(dropped).into())).await?;
        }
        for frame in batch.iter().filter(|f| !conn.already_sent(f)) {
            sink.feed(Message::Text(text(frame))).await?;
            written += 1;
            oldest = oldest.or(frame.received);
        }
        if batch.len() < WRITE_BATCH {
            break;
        }
    }
    sink.flush().await?;
    if written > 0 {
        telemetry::stream().delivered.increment(written);
    }
    if let Some(r) = oldest {
        let seconds = (Millis::now().0 - r.0).max(0) as f64 / 1000.0;
        telemetry::stream().latency.record(seconds);
    }
    Ok(())
}

/// Sends every stored event after `since` up to `latest` that passes the filters.
async fn replay(
    state: &AppState,
    conn: &StreamConn,
    since: i64,
    latest: i64,
    sink: &mut Sink,
    timeout: Duration,
) -> bool {
    let mut cursor = since;
    while cursor < latest {
        let Ok(page) = state
            .store()
            .events_since(conn.project, cursor, REPLAY_PAGE)
            .await
        else {
            return false;
        };
        if page.is_empty() {
            break;
        }
        for e in &page {
            if e.seq > latest {
                return true;
            }
            cursor = e.seq;
            let fields = EventFields {
                level: e.level,
                environment: e.environment.clone(),
                release: e.release.clone(),
                tags: e.tags.clone(),
            };
            if conn.matches(&fields) && !send(sink, text(&event_frame(e)), timeout).await {
                return false;
            }
        }
    }
    true
}

/// The close frame for a protocol error the client caused: 1007 for a text frame that is
/// not UTF-8, 1009 for a message over the size limit. axum does not expose tungstenite's
/// error type, so the error's text is what there is to go by.
pub fn close_for_read_error(e: &axum::Error) -> Option<CloseFrame> {
    let text = e.to_string();
    if text.contains("UTF-8") || text.contains("utf-8") {
        Some(CloseFrame {
            code: close_code::INVALID,
            reason: "text frame is not valid UTF-8".into(),
        })
    } else if text.contains("too long") || text.contains("Space limit") {
        Some(CloseFrame {
            code: close_code::SIZE,
            reason: "message too large".into(),
        })
    } else {
        None
    }
}

/// Answers one client message.
fn answer(conn: &StreamConn, text: &str) -> Value {
    let msg: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return json!({ "type": "error", "error": format!("invalid JSON: {e}") }),
    };
    match msg.get("type").and_then(Value::as_str) {
        Some("ping") => json!({ "type": "pong" }),
        Some("subscribe") => match Filters::from_json(msg.get("filters").unwrap_or(&Value::Null)) {
            Ok(f) => {
                let echoed = f.to_json();
                conn.set_filters(f);
                json!({ "type": "filters_updated", "filters": echoed })
            }
            Err(e) => json!({ "type": "error", "error": e.0 }),
        },
        Some(other) => {
            json!({ "type": "error", "error": format!("unknown message type '{other}': expected subscribe or ping") })
        }
        None => {
            json!({ "type": "error", "error": "a message needs a string 'type': subscribe or ping" })
        }
    }
}

async fn serve(
    state: AppState,
    project: i64,
    filters: Filters,
    since: Option<i64>,
    socket: WebSocket,
) {
    let settings = *state.stream_settings();
    let timeout = settings.write_timeout;
    let hub = state.hub().clone();
    // Join the room first, then read the latest seq: every later event is queued live, and
    // everything up to `latest` comes from storage or is already known to the client.
    let conn = hub.register(project, filters);
    // Leaves every room and the hub however this task ends, a panic included.
    let _registration = Registration {
        hub: hub.clone(),
        id: conn.id,
    };
    let (mut sink, mut stream) = socket.split();
    let ok = async {
        let latest = state.store().latest_seq(project).await.ok()?;
        let hello = json!({
            "type": "subscribed", "project_id": project, "conn_id": conn.id.to_string(),
            "filters": conn.filters().to_json(), "seq": latest,
        });
        if !send(&mut sink, hello.to_string().into(), timeout).await {
            return None;
        }
        if let Some(since) = since
            && !replay(&state, &conn, since, latest, &mut sink, timeout).await
        {
            return None;
        }
        conn.set_replayed_upto(latest);
        Some(())
    }
    .await
    .is_some();

    if ok {
        let mut ticker = tokio::time::interval(settings.drain_interval);
        let start = tokio::time::Instant::now() + settings.heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(start, settings.heartbeat_interval);
        // When the unanswered ping was sent.
        let mut ping_sent: Option<tokio::time::Instant> = None;
        let shutdown = state.shutdown().clone().cancelled_owned();
        tokio::pin!(shutdown);
        // One task reads and writes: a reader task of its own cost 2.7 KiB per idle
        // connection for 6% less CPU per delivery (measured, docs/BENCHMARKS.md).
        loop {
            let pong_due = ping_sent.map(|t| t + settings.heartbeat_timeout);
            tokio::select! {
                // Shutdown first, so a stream under constant load still hears it; then
                // deliveries, what this loop mostly wakes for; the client and timers last.
                biased;
                _ = &mut shutdown => {
                    let bye = CloseFrame { code: close_code::AWAY, reason: "server shutting down".into() };
                    let _ = tokio::time::timeout(timeout.min(CLOSE_WAIT), sink.send(Message::Close(Some(bye)))).await;
                    break;
                }
                _ = conn.wait() => {
                    if conn.is_closed() || !flush(&conn, &mut sink, timeout).await { break; }
                }
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if !send(&mut sink, answer(&conn, t.as_str()).to_string().into(), timeout).await { break; }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let e = json!({ "type": "error", "error": "binary frames are not accepted: send JSON text frames" });
                        if !send(&mut sink, e.to_string().into(), timeout).await { break; }
                    }
                    Some(Ok(Message::Pong(_))) => ping_sent = None,
                    Some(Ok(Message::Ping(_))) => {}
                    Some(Err(e)) => {
                        if let Some(close) = close_for_read_error(&e) {
                            let _ = tokio::time::timeout(timeout, sink.send(Message::Close(Some(close)))).await;
                        }
                        break;
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                },
                _ = ticker.tick() => {
                    if !flush(&conn, &mut sink, timeout).await { break; }
                }
                _ = heartbeat.tick() => {
                    if ping_sent.is_none() {
                        ping_sent = Some(tokio::time::Instant::now());
                        if !matches!(tokio::time::timeout(timeout, sink.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) { break; }
                    }
                }
                _ = tokio::time::sleep_until(pong_due.unwrap_or_else(tokio::time::Instant::now)), if pong_due.is_some() => {
                    tracing::debug!(conn = %conn.id, "no pong in time; closing the stream");
                    break;
                }
            }
        }
    }
}

/// Removes a connection from the hub when dropped.
struct Registration {
    hub: std::sync::Arc<crate::stream::Hub>,
    id: crate::stream::ConnId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}
