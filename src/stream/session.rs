//! One stream connection's session (SPEC §4), from the upgrade to the close: the token from
//! the client's first message when the upgrade carried none, the hello, the replay of
//! `since`, the client's requests, heartbeat pings, the write timeout of a full socket, and
//! the close when the token leaves the key directory or the server stops.
//!
//! It runs over any wire, in two halves. Client messages come in as a [`Stream`] of
//! decoded frames ([`Inbound`]). Server bytes go out through [`Wire`] as whole WebSocket
//! frames, because the fan-out path writes a broadcast's one shared frame to every
//! subscriber's socket itself (`stream::conn`): the way out is bytes, not messages. The
//! HTTP layer adapts the upgraded socket (`http::stream_ws`); the tests use memory.
//! Storage and the key directory are reached through [`Replay`] and [`Keys`], so a
//! session knows neither the store nor the credentials' types.

use super::conn::{Flushed, StreamConn, Wire};
use super::filter::Filters;
use super::hub::Hub;
use super::messages::{EventFields, event_frame};
use super::protocol::{ClientRequest, ServerMessage};
use super::rooms::ConnId;
use crate::model::StoredEvent;
use crate::telemetry;
use crate::ws::CLOSE_WAIT;
use crate::ws::codec::{self, ClientMessage, ProtocolError};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::ops::ControlFlow::{self, Break, Continue};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// Close code 1008, policy violation: no valid token (RFC 6455 §7.4.1).
pub(crate) const CLOSE_POLICY: u16 = 1008;
/// Close code 1011: the server could not check the token.
pub(crate) const CLOSE_INTERNAL: u16 = 1011;
/// Stored events read per replay query.
const REPLAY_PAGE: u32 = 500;

/// Why a connection is closed before it is served: its close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The close code.
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

impl Refusal {
    /// A 1008 close: the client has no valid token.
    pub(crate) fn policy(reason: impl Into<String>) -> Refusal {
        Refusal {
            code: CLOSE_POLICY,
            reason: reason.into(),
        }
    }
}

/// A session's timeouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How long a write may make no progress before the connection is closed.
    pub write_timeout: Duration,
    /// How often the server pings.
    pub heartbeat_interval: Duration,
    /// How long a ping may go unanswered.
    pub heartbeat_timeout: Duration,
    /// How long the client has to send its token when the upgrade carried none.
    pub auth_timeout: Duration,
}

/// What the upgrade asked for.
#[derive(Debug, Clone)]
pub(crate) struct Opening {
    /// The project watched.
    pub project: i64,
    /// The filters from the query.
    pub filters: Filters,
    /// Replay the stored events after this seq first.
    pub since: Option<i64>,
    /// The hash of the token the upgrade carried, checked already; `None` when the
    /// client's first message is to carry it.
    pub token_hash: Option<String>,
}

/// The stored events a session reads: the latest seq for the hello, and the replay.
pub(crate) trait Replay: Send + Sync {
    /// The project's latest seq (0 before its first event).
    fn latest_seq(&self, project: i64) -> impl Future<Output = anyhow::Result<i64>> + Send;
    /// Up to `limit` of the project's events with a seq above `since`, in seq order.
    fn events_since(
        &self,
        project: i64,
        since: i64,
        limit: u32,
    ) -> impl Future<Output = anyhow::Result<Vec<StoredEvent>>> + Send;
}

/// The key directory as a session sees it. Made before the session starts, so that a
/// change while the token is being checked is seen too.
pub(crate) trait Keys: Send {
    /// The hash of `token` when it opens `project` (a token from the first message);
    /// otherwise the close to send.
    fn authenticate(
        &self,
        project: i64,
        token: &str,
    ) -> impl Future<Output = Result<String, Refusal>> + Send;
    /// Waits for the directory to change; false once it never will.
    fn changed(&mut self) -> impl Future<Output = bool> + Send;
    /// Whether the token with this hash opens `project` in the directory as it is now.
    fn opens(&mut self, hash: &str, project: i64) -> bool;
}

/// The client's messages as the wire decoded them; it ends when the client is gone.
pub(crate) trait Inbound:
    Stream<Item = Result<ClientMessage, ProtocolError>> + Unpin + Send
{
}

impl<T> Inbound for T where T: Stream<Item = Result<ClientMessage, ProtocolError>> + Unpin + Send {}

/// What a session runs with, besides its wire.
pub(crate) struct Session<R, K> {
    /// The rooms it joins.
    pub hub: Arc<Hub>,
    /// Stored events.
    pub replay: R,
    /// The key directory.
    pub keys: K,
    /// Its timeouts.
    pub timing: Timing,
    /// Cancelled when the server stops: the client is sent a 1001.
    pub shutdown: CancellationToken,
}

impl<R: Replay, K: Keys> Session<R, K> {
    /// Serves one connection until it ends; it has left the hub when this returns.
    pub(crate) async fn run(
        mut self,
        opening: Opening,
        mut inbound: impl Inbound,
        wire: Arc<dyn Wire>,
    ) {
        let Opening {
            project,
            filters,
            since,
            token_hash,
        } = opening;
        let token_hash = match token_hash {
            Some(hash) => hash,
            None => match self.first_message_auth(project, &mut inbound, &*wire).await {
                Ok(hash) => hash,
                Err(refusal) => {
                    if let Some(r) = refusal {
                        let close = codec::close(r.code, &r.reason);
                        write_all(&*wire, &close, self.close_wait()).await;
                    }
                    return;
                }
            },
        };
        // Join the room first, then read the latest seq: every later event is queued live,
        // and everything up to it comes from storage or is already known to the client.
        let conn = self.hub.register(project, filters);
        // Leaves every room and the hub however this ends, a panic included.
        let _registration = Registration {
            hub: self.hub.clone(),
            id: conn.id,
        };
        if !self.greet(&conn, since, &*wire).await {
            return;
        }
        // From here the fan-out path writes live frames; the session steps in when it blocks.
        conn.attach(wire);
        if conn.flush_now() == Flushed::Failed {
            return;
        }
        let mut live = Live::new(&conn, &mut self.keys, token_hash, self.timing);
        if live.revoked() {
            live.close_revoked().await;
            return;
        }
        live.run(&mut inbound, &self.shutdown).await;
    }

    /// How long a close (or an answer before the connection is served) may take to write.
    fn close_wait(&self) -> Duration {
        self.timing.write_timeout.min(CLOSE_WAIT)
    }

    /// Writes the hello and the replay of `since`; false when the connection is to end.
    async fn greet(&self, conn: &StreamConn, since: Option<i64>, wire: &dyn Wire) -> bool {
        let timeout = self.timing.write_timeout;
        let latest = match self.replay.latest_seq(conn.project).await {
            Ok(seq) => seq,
            Err(e) => {
                tracing::debug!(error = %e, "no latest seq for the stream's hello");
                return false;
            }
        };
        let hello = ServerMessage::Subscribed {
            project_id: conn.project,
            conn_id: conn.id.to_string(),
            filters: conn.filters().to_json(),
            seq: latest,
        };
        if !write_all(wire, &hello.frame(), timeout).await {
            return false;
        }
        if let Some(since) = since
            && !replay(&self.replay, conn, since, latest, wire, timeout).await
        {
            return false;
        }
        conn.set_replayed_upto(latest);
        true
    }

    /// The token's hash from the client's first message, `{"type":"auth","token":"…"}`;
    /// `Err(None)` when the client left (or the server is stopping: a 1001 was sent),
    /// `Err(Some(refusal))` when the connection is to be closed with it.
    async fn first_message_auth(
        &self,
        project: i64,
        inbound: &mut impl Inbound,
        wire: &dyn Wire,
    ) -> Result<String, Option<Refusal>> {
        let limit = self.timing.auth_timeout;
        let deadline = Instant::now() + limit;
        let wait = self.close_wait();
        loop {
            let got = tokio::select! {
                _ = self.shutdown.cancelled() => {
                    let away = codec::close(codec::CLOSE_AWAY, "server shutting down");
                    write_all(wire, &away, wait).await;
                    return Err(None);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Some(Refusal::policy(format!(
                        "no auth message within {} s: send {{\"type\":\"auth\",\"token\":\"<token>\"}} first",
                        limit.as_secs_f64()
                    ))));
                }
                got = inbound.next() => got,
            };
            let text = match got {
                None => return Err(None),
                Some(Err(e)) => {
                    return Err(Some(Refusal {
                        code: e.close_code(),
                        reason: e.to_string(),
                    }));
                }
                Some(Ok(ClientMessage::Text(t))) => t,
                Some(Ok(ClientMessage::Binary(_))) => String::new(),
                Some(Ok(ClientMessage::Ping(payload))) => {
                    let pong = codec::encode(codec::PONG, &payload);
                    if !write_all(wire, &pong, wait).await {
                        return Err(None);
                    }
                    continue;
                }
                Some(Ok(ClientMessage::Pong)) => continue,
                Some(Ok(ClientMessage::Close(code))) => {
                    write_all(wire, &close_reply(code), wait).await;
                    return Err(None);
                }
            };
            return self.check_auth_message(project, &text).await;
        }
    }

    /// The token's hash when `text` is `{"type":"auth","token":"…"}` with `project`'s
    /// token; else the refusal to close the connection with.
    async fn check_auth_message(
        &self,
        project: i64,
        text: &str,
    ) -> Result<String, Option<Refusal>> {
        match ClientRequest::parse(text) {
            Ok(ClientRequest::Auth { token: Some(token) }) => {
                self.keys.authenticate(project, &token).await.map_err(Some)
            }
            _ => Err(Some(Refusal::policy(
                r#"the first message must be {"type":"auth","token":"<token>"}"#,
            ))),
        }
    }
}

/// Sends every stored event after `since` up to `latest` that passes the filters, a page
/// per write.
async fn replay(
    store: &impl Replay,
    conn: &StreamConn,
    since: i64,
    latest: i64,
    wire: &dyn Wire,
    timeout: Duration,
) -> bool {
    let mut cursor = since;
    while cursor < latest {
        let page = match store.events_since(conn.project, cursor, REPLAY_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::debug!(error = %e, "stream replay failed");
                return false;
            }
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
        if !write_all(wire, &out, timeout).await {
            return false;
        }
        if page.last().is_some_and(|e| e.seq > latest) {
            break;
        }
    }
    true
}

/// Writes all of `bytes` before the connection is handed to the fan-out path (the hello
/// and the replay); false if the wire failed or took longer than `timeout`.
async fn write_all(wire: &dyn Wire, mut bytes: &[u8], timeout: Duration) -> bool {
    let all = poll_fn(|cx| {
        while !bytes.is_empty() {
            match ready!(wire.poll_write(cx, &[IoSlice::new(bytes)])) {
                Ok(0) | Err(_) => return Poll::Ready(false),
                Ok(n) => bytes = &bytes[n..],
            }
        }
        Poll::Ready(true)
    });
    matches!(tokio::time::timeout(timeout, all).await, Ok(true))
}

/// Writes what the connection has queued, waiting for the wire up to `limit`.
async fn flush_within(conn: &StreamConn, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, poll_fn(|cx| conn.poll_flush(cx))).await,
        Ok(Ok(()))
    )
}

/// The close frame answering a client's close: its code echoed, where it may be sent.
fn close_reply(code: Option<u16>) -> Bytes {
    match code {
        Some(c @ (1000..=1003 | 1007..=1011 | 3000..=4999)) => codec::close(c, ""),
        _ => codec::close(codec::CLOSE_NORMAL, ""),
    }
}

/// The answer to one text message.
fn answer(conn: &StreamConn, text: &str) -> Bytes {
    let error = match ClientRequest::parse(text) {
        Ok(ClientRequest::Ping) => return ServerMessage::Pong.frame(),
        Ok(ClientRequest::Subscribe { filters }) => match Filters::from_json(&filters) {
            Ok(f) => {
                let echoed = f.to_json();
                conn.set_filters(f);
                return ServerMessage::FiltersUpdated { filters: echoed }.frame();
            }
            Err(e) => e.0,
        },
        Ok(ClientRequest::Auth { .. }) => "this connection is already authenticated".to_owned(),
        Err(e) => e,
    };
    ServerMessage::Error { error: &error }.frame()
}

/// A served connection: the state of its loop.
struct Live<'a, K> {
    conn: &'a StreamConn,
    keys: &'a mut K,
    token_hash: String,
    timing: Timing,
    /// Whether the key directory may still change.
    watching: bool,
    /// When the unanswered ping was sent.
    ping_sent: Option<Instant>,
    /// While the socket is full: when the write times out, and the bytes written by then
    /// (progress moves the deadline: a slow reader is served, a stalled one is closed).
    stalled: Option<(Instant, u64)>,
    /// When the timer is set to fire, if it is armed.
    timer_at: Option<Instant>,
}

impl<'a, K: Keys> Live<'a, K> {
    fn new(conn: &'a StreamConn, keys: &'a mut K, token_hash: String, timing: Timing) -> Self {
        Live {
            conn,
            keys,
            token_hash,
            timing,
            watching: true,
            ping_sent: None,
            stalled: None,
            timer_at: None,
        }
    }

    /// Serves the connection until it ends.
    async fn run(mut self, inbound: &mut impl Inbound, shutdown: &CancellationToken) {
        let every = self.timing.heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
        // One timer for both deadlines, reset only when the nearest one changes: a timer per
        // loop or per flush showed up in the profile of the paced fan-out.
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let shutdown = shutdown.cancelled();
        tokio::pin!(shutdown);
        let conn = self.conn;
        loop {
            let blocked = conn.is_blocked();
            self.arm(blocked, timer.as_mut());
            let step = tokio::select! {
                // Shutdown first, so a stream under constant load still hears it.
                biased;
                _ = &mut shutdown => {
                    self.close(codec::close(codec::CLOSE_AWAY, "server shutting down")).await;
                    Break(())
                }
                // The directory is reloaded every second: the token may have been replaced,
                // or its project deleted.
                changed = self.keys.changed(), if self.watching => self.on_directory(changed).await,
                flushed = poll_fn(|cx| conn.poll_flush(cx)), if blocked => match flushed {
                    Ok(()) => Continue(()),
                    Err(_) => Break(()),
                },
                // The fan-out path found the socket full, or the hub closed the connection.
                _ = conn.wait() => if conn.is_closed() { Break(()) } else { Continue(()) },
                // A client whose socket is full is not read until it is drained: what it asks
                // is answered into the same socket, so this is its backpressure.
                got = inbound.next(), if !blocked => self.on_inbound(got).await,
                _ = heartbeat.tick() => self.on_heartbeat(),
                _ = &mut timer, if self.timer_at.is_some() => self.on_deadline(),
            };
            if step.is_break() {
                break;
            }
        }
    }

    /// Sets the timer to the nearer of the pong and the write deadlines, if that changed.
    fn arm(&mut self, blocked: bool, timer: Pin<&mut Sleep>) {
        self.stalled = match self.stalled {
            _ if !blocked => None,
            None => Some((
                Instant::now() + self.timing.write_timeout,
                self.conn.written(),
            )),
            kept => kept,
        };
        let due = [
            self.ping_sent.map(|t| t + self.timing.heartbeat_timeout),
            self.stalled.map(|(at, _)| at),
        ]
        .into_iter()
        .flatten()
        .min();
        if due != self.timer_at {
            if let Some(at) = due {
                timer.reset(at);
            }
            self.timer_at = due;
        }
    }

    /// A deadline passed: no pong came, or the socket took nothing for the write timeout.
    fn on_deadline(&mut self) -> ControlFlow<()> {
        let now = Instant::now();
        self.timer_at = None;
        if self
            .ping_sent
            .is_some_and(|t| now >= t + self.timing.heartbeat_timeout)
        {
            tracing::debug!(conn = %self.conn.id, "no pong in time; closing the stream");
            return Break(());
        }
        if let Some((at, mark)) = self.stalled
            && now >= at
        {
            let written = self.conn.written();
            if written == mark {
                metrics::counter!(telemetry::WRITE_TIMEOUTS).increment(1);
                tracing::debug!(conn = %self.conn.id, "write timed out; closing the stream");
                return Break(());
            }
            self.stalled = Some((now + self.timing.write_timeout, written));
        }
        Continue(())
    }

    /// Pings the client, unless a ping is still unanswered.
    fn on_heartbeat(&mut self) -> ControlFlow<()> {
        if self.ping_sent.is_none() {
            self.ping_sent = Some(Instant::now());
            self.conn.push_own(codec::encode(codec::PING, &[]));
            if self.conn.flush_now() == Flushed::Failed {
                return Break(());
            }
        }
        Continue(())
    }

    /// The key directory changed (or its sender is gone: it never will again).
    async fn on_directory(&mut self, changed: bool) -> ControlFlow<()> {
        if !changed {
            self.watching = false;
        } else if self.revoked() {
            self.close_revoked().await;
            return Break(());
        }
        Continue(())
    }

    /// Whether the directory no longer gives this connection's token to its project.
    fn revoked(&mut self) -> bool {
        !self.keys.opens(&self.token_hash, self.conn.project)
    }

    /// Closes a connection whose token no longer opens its project: 1008.
    async fn close_revoked(&self) {
        let why = "the project token was revoked (rotated)";
        self.close(codec::close(CLOSE_POLICY, why)).await;
    }

    /// Sends a close frame after what is queued, waiting a little for it to go out.
    async fn close(&self, frame: Bytes) {
        self.conn.push_own(frame);
        flush_within(self.conn, self.timing.write_timeout.min(CLOSE_WAIT)).await;
    }

    /// Answers one client message; a close, a protocol error or the end of the stream
    /// ends the connection.
    async fn on_inbound(
        &mut self,
        got: Option<Result<ClientMessage, ProtocolError>>,
    ) -> ControlFlow<()> {
        let reply = match got {
            None => return Break(()),
            Some(Err(e)) => {
                self.close(codec::close(e.close_code(), &e.to_string()))
                    .await;
                return Break(());
            }
            Some(Ok(ClientMessage::Close(code))) => {
                self.close(close_reply(code)).await;
                return Break(());
            }
            Some(Ok(ClientMessage::Pong)) => {
                self.ping_sent = None;
                return Continue(());
            }
            Some(Ok(ClientMessage::Text(t))) => answer(self.conn, &t),
            Some(Ok(ClientMessage::Binary(_))) => ServerMessage::Error {
                error: "binary frames are not accepted: send JSON text frames",
            }
            .frame(),
            Some(Ok(ClientMessage::Ping(payload))) => codec::encode(codec::PONG, &payload),
        };
        self.conn.push_own(reply);
        if self.conn.flush_now() == Flushed::Failed {
            return Break(());
        }
        Continue(())
    }
}

/// Removes a connection from the hub when dropped.
struct Registration {
    hub: Arc<Hub>,
    id: ConnId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;
    use crate::model::stored::DetailJson;
    use crate::model::{Millis, StoredEvent};
    use crate::stream::conn::Offer;
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use std::io;
    use std::sync::Mutex;
    use std::task::{Context, Waker};
    use tokio::sync::{mpsc, watch};
    use tokio::task::JoinHandle;
    use tokio::time::timeout;

    /// How long a test waits for what it expects (virtual time in the paused tests).
    const LIMIT: Duration = Duration::from_secs(10);
    const PROJECT: i64 = 1;

    /// The server's end of an in-memory socket: takes up to `room` bytes, then would block
    /// until given more; what it takes goes to the test's client.
    struct Pipe {
        room: Mutex<usize>,
        waker: Mutex<Option<Waker>>,
        to_client: mpsc::UnboundedSender<Vec<u8>>,
    }

    impl Pipe {
        fn set_room(&self, bytes: usize) {
            *self.room.lock().unwrap() = bytes;
            if let Some(w) = self.waker.lock().unwrap().take() {
                w.wake();
            }
        }
    }

    impl Wire for Pipe {
        fn poll_write(
            &self,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut room = self.room.lock().unwrap();
            if *room == 0 {
                *self.waker.lock().unwrap() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let mut took = Vec::new();
            for b in bufs {
                let n = b.len().min(*room - took.len());
                took.extend_from_slice(&b[..n]);
            }
            *room -= took.len();
            let n = took.len();
            let _ = self.to_client.send(took);
            Poll::Ready(Ok(n))
        }
    }

    /// The client's end: sends decoded messages, reads the server's frames.
    struct Client {
        to_server: mpsc::UnboundedSender<Result<ClientMessage, ProtocolError>>,
        from_server: mpsc::UnboundedReceiver<Vec<u8>>,
        buf: Vec<u8>,
        pipe: Arc<Pipe>,
    }

    impl Client {
        fn send(&self, text: &str) {
            self.send_message(ClientMessage::Text(text.into()));
        }

        fn send_message(&self, msg: ClientMessage) {
            self.to_server.send(Ok(msg)).expect("the session reads");
        }

        /// The next server frame: its opcode and payload.
        async fn frame(&mut self) -> (u8, Vec<u8>) {
            loop {
                if let Some(frame) = cut_frame(&mut self.buf) {
                    return frame;
                }
                let more = timeout(LIMIT, self.from_server.recv()).await;
                self.buf
                    .extend(more.expect("a frame in time").expect("the wire is open"));
            }
        }

        /// The next server frame, a text frame of JSON.
        async fn json(&mut self) -> Value {
            let (opcode, payload) = self.frame().await;
            assert_eq!(opcode, codec::TEXT, "a text frame: {payload:?}");
            serde_json::from_slice(&payload).unwrap()
        }

        /// The next server frame, a close: its code and reason.
        async fn close(&mut self) -> (u16, String) {
            let (opcode, payload) = self.frame().await;
            assert_eq!(opcode, codec::CLOSE);
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            (code, String::from_utf8(payload[2..].to_vec()).unwrap())
        }
    }

    /// Takes one whole unmasked server frame off the front of `buf`.
    fn cut_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
        if buf.len() < 2 {
            return None;
        }
        let (len, at) = match buf[1] {
            126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
            127 if buf.len() >= 10 => (
                u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (usize::from(n), 2),
        };
        if buf.len() < at + len {
            return None;
        }
        let opcode = buf[0] & 0x0F;
        let payload = buf[at..at + len].to_vec();
        buf.drain(..at + len);
        Some((opcode, payload))
    }

    /// Stored events, all of one project.
    struct Stored(Vec<StoredEvent>);

    impl Replay for Stored {
        fn latest_seq(&self, _: i64) -> impl Future<Output = anyhow::Result<i64>> + Send {
            std::future::ready(Ok(self.0.last().map_or(0, |e| e.seq)))
        }

        fn events_since(
            &self,
            _: i64,
            since: i64,
            limit: u32,
        ) -> impl Future<Output = anyhow::Result<Vec<StoredEvent>>> + Send {
            let page = self.0.iter().filter(|e| e.seq > since).take(limit as usize);
            std::future::ready(Ok(page.cloned().collect()))
        }
    }

    /// A key directory of token hash → project, where a token is its own hash.
    struct Directory(watch::Receiver<HashMap<String, i64>>);

    impl Keys for Directory {
        fn authenticate(
            &self,
            project: i64,
            token: &str,
        ) -> impl Future<Output = Result<String, Refusal>> + Send {
            let owner = self.0.borrow().get(token).copied();
            let token = token.to_owned();
            async move {
                match owner {
                    Some(p) if p == project => Ok(token),
                    _ => Err(Refusal::policy("invalid project token")),
                }
            }
        }

        async fn changed(&mut self) -> bool {
            self.0.changed().await.is_ok()
        }

        fn opens(&mut self, hash: &str, project: i64) -> bool {
            self.0.borrow_and_update().get(hash) == Some(&project)
        }
    }

    fn event(seq: i64, level: Level) -> StoredEvent {
        StoredEvent {
            project_id: PROJECT,
            seq,
            issue_id: 7,
            id: format!("{seq:032x}"),
            level,
            message: None,
            environment: "production".into(),
            release: None,
            timestamp: Millis(1_700_000_000_000),
            received: Millis(1_700_000_000_000),
            title: format!("event {seq}"),
            culprit: String::new(),
            tags: Default::default(),
            detail: DetailJson::of(&json!({})).unwrap(),
        }
    }

    /// Publishes a stored event to its room and writes it, as the dispatcher does.
    fn publish(hub: &Hub, e: &StoredEvent) {
        let frame = Arc::new(event_frame(e));
        let fields = EventFields {
            level: e.level,
            environment: e.environment.clone(),
            release: e.release.clone(),
            tags: e.tags.clone(),
        };
        let offer = Offer {
            frame: &frame,
            event: Some(&fields),
        };
        hub.publish(PROJECT, &offer, None);
        hub.drain();
    }

    fn timing() -> Timing {
        Timing {
            write_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(3600),
            heartbeat_timeout: Duration::from_secs(3600),
            auth_timeout: Duration::from_secs(5),
        }
    }

    /// What a test starts a session with.
    struct Setup {
        hub: Arc<Hub>,
        stored: Vec<StoredEvent>,
        timing: Timing,
        since: Option<i64>,
        token_hash: Option<String>,
        shutdown: CancellationToken,
    }

    impl Default for Setup {
        fn default() -> Setup {
            Setup {
                hub: Arc::new(Hub::new(16)),
                stored: Vec::new(),
                timing: timing(),
                since: None,
                token_hash: Some("t1".into()),
                shutdown: CancellationToken::new(),
            }
        }
    }

    /// A running session, the client's end of its wire and the key directory's sender.
    fn start(s: Setup) -> (Client, JoinHandle<()>, watch::Sender<HashMap<String, i64>>) {
        let (directory, keys) = watch::channel(HashMap::from([("t1".to_owned(), PROJECT)]));
        let (to_server, mut from_client) = mpsc::unbounded_channel();
        let (to_client, from_server) = mpsc::unbounded_channel();
        let pipe = Arc::new(Pipe {
            room: Mutex::new(usize::MAX),
            waker: Mutex::new(None),
            to_client,
        });
        let session = Session {
            hub: s.hub,
            replay: Stored(s.stored),
            keys: Directory(keys),
            timing: s.timing,
            shutdown: s.shutdown,
        };
        let opening = Opening {
            project: PROJECT,
            filters: Filters::default(),
            since: s.since,
            token_hash: s.token_hash,
        };
        let inbound = futures_util::stream::poll_fn(move |cx| from_client.poll_recv(cx));
        let task = tokio::spawn(session.run(opening, inbound, pipe.clone()));
        let client = Client {
            to_server,
            from_server,
            buf: Vec::new(),
            pipe,
        };
        (client, task, directory)
    }

    /// Waits for the session to end.
    async fn ended(task: JoinHandle<()>) {
        timeout(LIMIT, task)
            .await
            .expect("the session ended in time")
            .unwrap();
    }

    #[tokio::test]
    async fn a_subscribed_client_gets_the_published_events_its_filters_pass() {
        let setup = Setup::default();
        let hub = setup.hub.clone();
        let (mut client, _task, _directory) = start(setup);
        let hello = client.json().await;
        assert_eq!(hello["type"], "subscribed");
        assert_eq!(
            (hello["project_id"].clone(), hello["seq"].clone()),
            (json!(PROJECT), json!(0))
        );
        assert_eq!(hello["filters"], json!({}));

        client.send(r#"{"type":"subscribe","filters":{"level":"error"}}"#);
        let updated = client.json().await;
        assert_eq!(updated["type"], "filters_updated");
        assert_eq!(updated["filters"]["level"], json!(["error"]));

        publish(&hub, &event(1, Level::Warning));
        publish(&hub, &event(2, Level::Error));
        let got = client.json().await;
        assert_eq!(
            (got["type"].clone(), got["seq"].clone()),
            (json!("event"), json!(2))
        );
    }

    #[tokio::test]
    async fn a_malformed_message_is_answered_with_an_error_and_the_session_goes_on() {
        let (mut client, _task, _directory) = start(Setup::default());
        client.json().await;
        client.send("{nope");
        assert_eq!(
            client.json().await,
            json!({"type": "error", "error": "invalid JSON: key must be a string at line 1 column 2"})
        );
        client.send(r#"{"type":"dance"}"#);
        assert_eq!(
            client.json().await,
            json!({"type": "error", "error": "unknown message type 'dance': expected subscribe or ping"})
        );
        client.send_message(ClientMessage::Binary(vec![1]));
        assert_eq!(
            client.json().await,
            json!({"type": "error", "error": "binary frames are not accepted: send JSON text frames"})
        );
        client.send(r#"{"type":"ping"}"#);
        assert_eq!(client.json().await, json!({"type": "pong"}));
    }

    #[tokio::test]
    async fn since_replays_the_stored_events_after_it_then_live_ones_without_repeats() {
        let setup = Setup {
            stored: (1..=3).map(|seq| event(seq, Level::Error)).collect(),
            since: Some(1),
            ..Setup::default()
        };
        let hub = setup.hub.clone();
        let (mut client, _task, _directory) = start(setup);
        assert_eq!(
            client.json().await["seq"],
            3,
            "the hello carries the latest seq"
        );
        assert_eq!(client.json().await["seq"], 2);
        assert_eq!(client.json().await["seq"], 3);
        // Committed before the hello and published after it: replay sent it already.
        publish(&hub, &event(3, Level::Error));
        publish(&hub, &event(4, Level::Error));
        assert_eq!(client.json().await["seq"], 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_answers_a_ping_is_closed_after_the_heartbeat_timeout() {
        let setup = Setup {
            timing: Timing {
                heartbeat_interval: Duration::from_secs(3),
                heartbeat_timeout: Duration::from_secs(2),
                ..timing()
            },
            ..Setup::default()
        };
        let hub = setup.hub.clone();
        let (mut client, task, _directory) = start(setup);
        client.json().await;
        let sent = Instant::now();
        assert_eq!(client.frame().await, (codec::PING, Vec::new()));
        ended(task).await;
        assert!(
            sent.elapsed() >= Duration::from_secs(5),
            "a ping at 3 s, unanswered by 5 s"
        );
        assert_eq!(hub.connections(), 0, "the connection left the hub");
    }

    #[tokio::test]
    async fn a_client_whose_socket_is_full_is_told_how_many_messages_it_lost() {
        let setup = Setup {
            hub: Arc::new(Hub::new(2)),
            ..Setup::default()
        };
        let hub = setup.hub.clone();
        let (mut client, _task, _directory) = start(setup);
        client.json().await;
        client.pipe.set_room(0);
        // The first is taken for writing; of the next four, an outbox of two keeps the last two.
        for seq in 1..=5 {
            publish(&hub, &event(seq, Level::Error));
        }
        client.pipe.set_room(usize::MAX);
        assert_eq!(client.json().await["seq"], 1);
        assert_eq!(client.json().await, json!({"type": "lagged", "dropped": 2}));
        assert_eq!(client.json().await["seq"], 4);
        assert_eq!(client.json().await["seq"], 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_socket_that_takes_nothing_for_the_write_timeout_is_closed() {
        let setup = Setup::default();
        let hub = setup.hub.clone();
        let (mut client, task, _directory) = start(setup);
        client.json().await;
        client.pipe.set_room(0);
        let blocked = Instant::now();
        publish(&hub, &event(1, Level::Error));
        ended(task).await;
        assert!(blocked.elapsed() >= timing().write_timeout);
        assert_eq!(hub.connections(), 0, "the connection left the hub");
    }

    #[tokio::test]
    async fn a_stopping_server_closes_the_stream_with_1001() {
        let shutdown = CancellationToken::new();
        let (mut client, task, _directory) = start(Setup {
            shutdown: shutdown.clone(),
            ..Setup::default()
        });
        client.json().await;
        shutdown.cancel();
        let away = (codec::CLOSE_AWAY, "server shutting down".to_owned());
        assert_eq!(client.close().await, away);
        ended(task).await;
    }

    #[tokio::test]
    async fn a_token_from_the_first_message_opens_the_stream_and_a_wrong_one_closes_it() {
        let (mut client, _task, _directory) = start(Setup {
            token_hash: None,
            ..Setup::default()
        });
        client.send(r#"{"type":"auth","token":"t1"}"#);
        assert_eq!(client.json().await["type"], "subscribed");

        let (mut client, task, _directory) = start(Setup {
            token_hash: None,
            ..Setup::default()
        });
        client.send(r#"{"type":"subscribe"}"#);
        let want = r#"the first message must be {"type":"auth","token":"<token>"}"#;
        assert_eq!(client.close().await, (CLOSE_POLICY, want.to_owned()));
        ended(task).await;
    }

    #[tokio::test]
    async fn a_revoked_token_closes_the_stream_with_1008() {
        let (mut client, task, directory) = start(Setup::default());
        client.json().await;
        directory.send_replace(HashMap::new());
        let why = "the project token was revoked (rotated)";
        assert_eq!(client.close().await, (CLOSE_POLICY, why.to_owned()));
        ended(task).await;
    }
}
