//! `GET /stream/projects/<id>`: the live stream (SPEC §4).
//!
//! The handler answers the WebSocket handshake itself and the connection speaks RFC 6455
//! directly over the upgraded socket (`crate::ws`), so that a broadcast is framed once and
//! the fan-out path writes those bytes to every subscriber's socket (`stream::conn`).
//! This connection's task reads and answers the client, sends heartbeat pings, and takes
//! over writing when the socket is full: a write that makes no progress for the write
//! timeout ends the connection, which leaves every room on the way out.
//!
//! The token comes with the upgrade (`?token=`, `Authorization: Bearer`), or, when the
//! request carries none, as the client's first message `{"type":"auth","token":"…"}`
//! (so that it appears in no URL, and in no proxy's log). A connection remembers its
//! token's hash and is closed with 1008 once the key directory no longer holds it.

use super::auth::{query_param, require_project, token, token_owner};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stream::messages::event_frame;
use crate::stream::{EventFields, Filters, Flushed, StreamConn, Wire};
use crate::telemetry;
use crate::ws::CLOSE_WAIT;
use crate::ws::codec::{self, ClientMessage, Decoder};
use crate::ws::handshake;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::BytesMut;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Largest client → server message on the stream.
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Bytes read from the socket at a time, into a buffer on the stack of the poll: an idle
/// connection holds no read buffer (tungstenite's, zero-filled before every read, was both
/// resident memory per connection and a memset per wake-up in the profile).
const READ_CHUNK: usize = 2048;
/// Stored events read per replay query.
const REPLAY_PAGE: u32 = 500;
/// Close code 1008, policy violation: no valid token (RFC 6455 §7.4.1).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code 1011: the server could not check the token.
const CLOSE_INTERNAL: u16 = 1011;

/// Validates the handshake, the token and the query, then switches protocols.
pub async fn upgrade(
    State(state): State<AppState>,
    super::body::ApiPath(project): super::body::ApiPath<i64>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = request.into_parts();
    let accept =
        handshake::accept_key(&parts.method, &parts.headers).map_err(ApiError::BadRequest)?;
    let q = query.as_deref();
    // Without a token the upgrade goes ahead and the first message must carry it.
    let token_hash = match token(&parts.headers, q) {
        Some(t) => {
            let (owner, hash) = token_owner(&state, &t).await?;
            require_project(owner, project)?;
            Some(hash)
        }
        None => None,
    };
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
    let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
        ApiError::BadRequest(
            "this connection cannot be upgraded to a WebSocket (HTTP/1.1 only)".into(),
        )
    })?;
    let tracked = state.supervisor().clone();
    tokio::spawn(tracked.track_socket(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = Arc::new(Socket(Mutex::new(TokioIo::new(upgraded))));
                serve(state, project, filters, since, token_hash, socket).await;
            }
            Err(e) => tracing::debug!(error = %e, "stream upgrade failed"),
        }
    }));
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .expect("a valid 101 response"))
}

/// The upgraded connection, shared by the fan-out path (writes) and the connection's
/// task (reads, and writes once the socket is full). The lock is held only for one
/// non-blocking read or write attempt, never across an `.await`.
struct Socket(Mutex<TokioIo<Upgraded>>);

impl Socket {
    fn io(&self) -> std::sync::MutexGuard<'_, TokioIo<Upgraded>> {
        self.0.lock().expect("socket poisoned")
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io()).poll_read(cx, buf)
    }
}

impl Wire for Socket {
    fn poll_write(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io()).poll_write_vectored(cx, bufs)
    }
}

/// Reads what the client sent into `decoder`; 0 at the end of the stream.
async fn read(socket: &Socket, decoder: &mut Decoder) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut raw = [0u8; READ_CHUNK];
        let mut buf = ReadBuf::new(&mut raw);
        ready!(socket.poll_read(cx, &mut buf))?;
        decoder.extend(buf.filled());
        Poll::Ready(Ok(buf.filled().len()))
    })
    .await
}

/// Writes all of `bytes` before the connection is handed to the fan-out path (the hello
/// and the replay); false if the socket failed or took longer than `timeout`.
async fn write_all(socket: &Socket, mut bytes: &[u8], timeout: Duration) -> bool {
    let all = poll_fn(|cx| {
        while !bytes.is_empty() {
            match ready!(socket.poll_write(cx, &[IoSlice::new(bytes)])) {
                Ok(0) | Err(_) => return Poll::Ready(false),
                Ok(n) => bytes = &bytes[n..],
            }
        }
        Poll::Ready(true)
    });
    matches!(tokio::time::timeout(timeout, all).await, Ok(true))
}

/// Writes what the connection has queued, waiting for the socket up to `limit`.
async fn flush_within(conn: &StreamConn, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, poll_fn(|cx| conn.poll_flush(cx))).await,
        Ok(Ok(()))
    )
}

/// Sends every stored event after `since` up to `latest` that passes the filters, a page
/// per write.
async fn replay(
    state: &AppState,
    conn: &StreamConn,
    since: i64,
    latest: i64,
    socket: &Socket,
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
        let mut out = BytesMut::new();
        for e in page.iter().take_while(|e| e.seq <= latest) {
            cursor = e.seq;
            let fields = EventFields {
                level: e.level,
                environment: e.environment.clone(),
                release: e.release.clone(),
                tags: e.tags.clone(),
            };
            if conn.matches(&fields) {
                out.extend_from_slice(&event_frame(e).wire);
            }
        }
        if !write_all(socket, &out, timeout).await {
            return false;
        }
        if page.last().is_some_and(|e| e.seq > latest) {
            break;
        }
    }
    true
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
        Some("auth") => {
            json!({ "type": "error", "error": "this connection is already authenticated" })
        }
        Some(other) => {
            json!({ "type": "error", "error": format!("unknown message type '{other}': expected subscribe or ping") })
        }
        None => {
            json!({ "type": "error", "error": "a message needs a string 'type': subscribe or ping" })
        }
    }
}

/// What the connection's task does with one client message; false ends the connection.
fn on_message(conn: &StreamConn, msg: ClientMessage, ping_sent: &mut Option<Instant>) -> bool {
    let reply = match msg {
        ClientMessage::Text(t) => codec::text(&answer(conn, &t).to_string()),
        ClientMessage::Binary(_) => codec::text(
            &json!({ "type": "error", "error": "binary frames are not accepted: send JSON text frames" })
                .to_string(),
        ),
        ClientMessage::Ping(payload) => codec::encode(codec::PONG, &payload),
        ClientMessage::Pong => {
            *ping_sent = None;
            return true;
        }
        ClientMessage::Close(_) => return false,
    };
    conn.push_own(reply);
    conn.flush_now() != Flushed::Failed
}

/// The close frame answering a client's close: its code echoed, where it may be sent.
fn close_reply(code: Option<u16>) -> bytes::Bytes {
    match code {
        Some(c @ (1000..=1003 | 1007..=1011 | 3000..=4999)) => codec::close(c, ""),
        _ => codec::close(codec::CLOSE_NORMAL, ""),
    }
}

/// Why a connection is closed before it is served: its close code and reason.
type Refusal = (u16, String);

/// The token's hash from the client's first message, `{"type":"auth","token":"…"}`, once
/// it is `project`'s; `Err(None)` when the client left (or the server is stopping: a 1001
/// was sent), `Err(Some(refusal))` when the connection is to be closed with it.
async fn first_message_auth(
    state: &AppState,
    project: i64,
    socket: &Socket,
    decoder: &mut Decoder,
) -> Result<String, Option<Refusal>> {
    let limit = state.stream_auth_timeout();
    let deadline = Instant::now() + limit;
    let write_timeout = state.stream_settings().write_timeout.min(CLOSE_WAIT);
    loop {
        let message = match decoder.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => {
                tokio::select! {
                    _ = state.shutdown().cancelled() => {
                        write_all(socket, &codec::close(codec::CLOSE_AWAY, "server shutting down"), write_timeout).await;
                        return Err(None);
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        let why = format!("no auth message within {} s: send {{\"type\":\"auth\",\"token\":\"<token>\"}} first", limit.as_secs_f64());
                        return Err(Some((CLOSE_POLICY, why)));
                    }
                    got = read(socket, decoder) => match got {
                        Ok(n) if n > 0 => continue,
                        _ => return Err(None),
                    },
                }
            }
            Err(e) => return Err(Some((e.close_code(), e.to_string()))),
        };
        let text = match message {
            ClientMessage::Text(t) => t,
            ClientMessage::Ping(payload) => {
                if !write_all(socket, &codec::encode(codec::PONG, &payload), write_timeout).await {
                    return Err(None);
                }
                continue;
            }
            ClientMessage::Pong => continue,
            ClientMessage::Close(code) => {
                write_all(socket, &close_reply(code), write_timeout).await;
                return Err(None);
            }
            ClientMessage::Binary(_) => String::new(),
        };
        return check_auth_message(state, project, &text).await;
    }
}

/// The token's hash when `text` is `{"type":"auth","token":"…"}` with `project`'s token;
/// else the refusal to close the connection with.
async fn check_auth_message(
    state: &AppState,
    project: i64,
    text: &str,
) -> Result<String, Option<Refusal>> {
    let msg: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let (Some("auth"), Some(token)) = (
        msg.get("type").and_then(Value::as_str),
        msg.get("token").and_then(Value::as_str),
    ) else {
        let why = r#"the first message must be {"type":"auth","token":"<token>"}"#;
        return Err(Some((CLOSE_POLICY, why.to_owned())));
    };
    match token_owner(state, token).await {
        Ok((owner, hash)) if owner == project => Ok(hash),
        Ok(_) => Err(Some((
            CLOSE_POLICY,
            format!("this token does not belong to project {project}"),
        ))),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            Err(Some((CLOSE_POLICY, "invalid project token".to_owned())))
        }
        Err(e) => Err(Some((CLOSE_INTERNAL, e.to_string()))),
    }
}

async fn serve(
    state: AppState,
    project: i64,
    filters: Filters,
    since: Option<i64>,
    token_hash: Option<String>,
    socket: Arc<Socket>,
) {
    let settings = *state.stream_settings();
    let timeout = settings.write_timeout;
    let mut decoder = Decoder::new(MAX_CLIENT_MESSAGE);
    // Subscribed before the token is checked: a change from here on is looked at.
    let mut directory = state.credentials().watch();
    let token_hash = match token_hash {
        Some(hash) => hash,
        None => match first_message_auth(&state, project, &socket, &mut decoder).await {
            Ok(hash) => hash,
            Err(refusal) => {
                if let Some((code, why)) = refusal {
                    write_all(&socket, &codec::close(code, &why), timeout.min(CLOSE_WAIT)).await;
                }
                return;
            }
        },
    };
    // Whether the directory still gives this connection's token to its project.
    let revoked = |directory: &mut tokio::sync::watch::Receiver<crate::credentials::Directory>| {
        directory.borrow_and_update().token_project(&token_hash) != Some(project)
    };
    let hub = state.hub().clone();
    // Join the room first, then read the latest seq: every later event is queued live, and
    // everything up to `latest` comes from storage or is already known to the client.
    let conn = hub.register(project, filters);
    // Leaves every room and the hub however this task ends, a panic included.
    let _registration = Registration {
        hub: hub.clone(),
        id: conn.id,
    };
    let greeted = async {
        let latest = state.store().latest_seq(project).await.ok()?;
        let hello = json!({
            "type": "subscribed", "project_id": project, "conn_id": conn.id.to_string(),
            "filters": conn.filters().to_json(), "seq": latest,
        });
        if !write_all(&socket, &codec::text(&hello.to_string()), timeout).await {
            return None;
        }
        if let Some(since) = since
            && !replay(&state, &conn, since, latest, &socket, timeout).await
        {
            return None;
        }
        conn.set_replayed_upto(latest);
        Some(())
    }
    .await
    .is_some();
    if !greeted {
        return;
    }
    // From here the fan-out path writes live frames; this task steps in when it blocks.
    conn.attach(socket.clone());
    if conn.flush_now() == Flushed::Failed {
        return;
    }

    // Messages that came with the auth message (or before the hello was written).
    if !answer_buffered(&conn, &mut decoder, &mut None, timeout).await {
        return;
    }
    let mut watching = true;
    if revoked(&mut directory) {
        close_revoked(&conn, timeout).await;
        return;
    }
    let start = Instant::now() + settings.heartbeat_interval;
    let mut heartbeat = tokio::time::interval_at(start, settings.heartbeat_interval);
    // When the unanswered ping was sent.
    let mut ping_sent: Option<Instant> = None;
    // While the socket is full: when the write times out, and the bytes written by then
    // (progress moves the deadline: a slow reader is served, a stalled one is closed).
    let mut stalled: Option<(Instant, u64)> = None;
    // One timer for both deadlines, reset only when the nearest one changes: a timer per
    // loop or per flush showed up in the profile of the paced fan-out.
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut timer_at: Option<Instant> = None;
    let shutdown = state.shutdown().clone().cancelled_owned();
    tokio::pin!(shutdown);
    loop {
        let blocked = conn.is_blocked();
        stalled = match stalled {
            _ if !blocked => None,
            None => Some((Instant::now() + timeout, conn.written())),
            kept => kept,
        };
        let due = [
            ping_sent.map(|t| t + settings.heartbeat_timeout),
            stalled.map(|(at, _)| at),
        ]
        .into_iter()
        .flatten()
        .min();
        if due != timer_at {
            if let Some(at) = due {
                timer.as_mut().reset(at);
            }
            timer_at = due;
        }
        tokio::select! {
            // Shutdown first, so a stream under constant load still hears it.
            biased;
            _ = &mut shutdown => {
                conn.push_own(codec::close(codec::CLOSE_AWAY, "server shutting down"));
                flush_within(&conn, timeout.min(CLOSE_WAIT)).await;
                break;
            }
            // The token was replaced (or its project is gone): checked on every change
            // of the key directory, which is reloaded every second.
            changed = directory.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                } else if revoked(&mut directory) {
                    close_revoked(&conn, timeout).await;
                    break;
                }
            }
            flushed = poll_fn(|cx| conn.poll_flush(cx)), if blocked => {
                if flushed.is_err() { break; }
            }
            // The fan-out path found the socket full, or the hub closed the connection.
            _ = conn.wait() => {
                if conn.is_closed() { break; }
            }
            // A client whose socket is full is not read until it is drained: what it asks
            // is answered into the same socket, so this is its backpressure.
            got = read(&socket, &mut decoder), if !blocked => {
                if !matches!(got, Ok(n) if n > 0) { break; }
                if !answer_buffered(&conn, &mut decoder, &mut ping_sent, timeout).await {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                if ping_sent.is_none() {
                    ping_sent = Some(Instant::now());
                    conn.push_own(codec::encode(codec::PING, &[]));
                    if conn.flush_now() == Flushed::Failed { break; }
                }
            }
            _ = &mut timer, if timer_at.is_some() => {
                let now = Instant::now();
                if ping_sent.is_some_and(|t| now >= t + settings.heartbeat_timeout) {
                    tracing::debug!(conn = %conn.id, "no pong in time; closing the stream");
                    break;
                }
                if let Some((at, mark)) = stalled && now >= at {
                    let written = conn.written();
                    if written == mark {
                        metrics::counter!(telemetry::WRITE_TIMEOUTS).increment(1);
                        tracing::debug!(conn = %conn.id, "write timed out; closing the stream");
                        break;
                    }
                    stalled = Some((now + timeout, written));
                }
                timer_at = None;
            }
        }
    }
}

/// Answers every whole message `decoder` holds; false when the connection is to end.
async fn answer_buffered(
    conn: &StreamConn,
    decoder: &mut Decoder,
    ping_sent: &mut Option<Instant>,
    timeout: Duration,
) -> bool {
    loop {
        match decoder.next_message() {
            Ok(None) => return true,
            Ok(Some(ClientMessage::Close(code))) => {
                conn.push_own(close_reply(code));
                flush_within(conn, timeout.min(CLOSE_WAIT)).await;
                return false;
            }
            Ok(Some(msg)) => {
                if !on_message(conn, msg, ping_sent) {
                    return false;
                }
            }
            Err(e) => {
                conn.push_own(codec::close(e.close_code(), &e.to_string()));
                flush_within(conn, timeout.min(CLOSE_WAIT)).await;
                return false;
            }
        }
    }
}

/// Closes a connection whose token no longer opens its project: 1008.
async fn close_revoked(conn: &StreamConn, timeout: Duration) {
    conn.push_own(codec::close(
        CLOSE_POLICY,
        "the project token was revoked (rotated)",
    ));
    flush_within(conn, timeout.min(CLOSE_WAIT)).await;
}

/// Removes a connection from the hub when dropped.
struct Registration {
    hub: Arc<crate::stream::Hub>,
    id: crate::stream::ConnId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}
