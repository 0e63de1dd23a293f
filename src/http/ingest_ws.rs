//! `GET /ingest`: events over a WebSocket (SPEC §2.3). Each text frame is one native event
//! and gets one answer, in order; an error answer keeps the connection open.

use super::auth::ingest_project;
use crate::error::ApiError;
use crate::ingest::decode::MAX_BODY;
use crate::model::NewEvent;
use crate::state::AppState;
use crate::store::ProjectId;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

/// Checks the handshake (a JSON 400 naming what is missing, as the stream route answers),
/// authenticates, then upgrades.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    crate::ws::handshake::accept_key(&method, &headers).map_err(ApiError::BadRequest)?;
    let ws = ws.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let project = ingest_project(&state, &headers, query.as_deref()).await?;
    let key = super::auth::ingest_key(&headers, query.as_deref()).unwrap_or_default();
    Ok(ws
        .max_message_size(MAX_BODY)
        .max_frame_size(MAX_BODY)
        .on_upgrade(move |socket| {
            let tracked = state.supervisor().clone();
            tracked.track_socket(serve(state, project, key, socket))
        }))
}

async fn answer(state: &AppState, project: ProjectId, text: &str) -> Value {
    let mut event = match NewEvent::parse(text.as_bytes()) {
        Ok(e) => e,
        Err(e) => {
            crate::telemetry::rejected(400);
            return json!({ "error": e.to_string() });
        }
    };
    event.raw = Some(bytes::Bytes::copy_from_slice(text.as_bytes()));
    match state.ingestor().ingest(project, vec![event]).await {
        Ok(accepted) => {
            json!({ "status": "accepted", "id": accepted[0].id, "issue_id": accepted[0].issue_id })
        }
        // The same refusal HTTP ingestion gives (429 or 503), as a message.
        Err(e) => {
            let refused = ApiError::from(e);
            crate::telemetry::rejected(refused.status().as_u16());
            json!({ "error": refused.to_string(), "retry_after": refused.retry_after().unwrap_or(1) })
        }
    }
}

async fn serve(state: AppState, project: ProjectId, key: String, mut socket: WebSocket) {
    let shutdown = state.shutdown().clone();
    // The key is checked again whenever the key directory changes (a rotation): a socket
    // opened with a replaced key is closed with 1008 within seconds.
    let mut directory = state.credentials().watch();
    // Checked once at once too: the key may have been replaced since the upgrade.
    directory.mark_changed();
    let mut watching = true;
    // Every write has the stream's write timeout, so a client that sends but never reads
    // cannot hold the task in a full socket.
    let limit = state.stream_settings().write_timeout;
    let mut heartbeat = Heartbeat::new(state.stream_settings());
    loop {
        let pong_due = heartbeat.pong_due();
        let msg = tokio::select! {
            m = socket.recv() => m,
            _ = heartbeat.every.tick() => {
                if heartbeat.ping_now() && !send_within(&mut socket, Message::Ping(Default::default()), limit).await {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep_until(pong_due.unwrap_or_else(Instant::now)), if pong_due.is_some() => {
                tracing::debug!("no pong in time; closing the ingest socket");
                return;
            }
            changed = directory.changed(), if watching => {
                watching = changed.is_ok();
                if watching && directory.borrow_and_update().key_project(&key) != Some(project) {
                    return close(&mut socket, close_code::POLICY, "the ingest key was revoked (rotated)").await;
                }
                continue;
            }
            _ = shutdown.cancelled() => return close(&mut socket, close_code::AWAY, "server shutting down").await,
        };
        match received(&state, project, &mut socket, &mut heartbeat, msg).await {
            Received::Answer(reply) => {
                if !send_within(&mut socket, Message::Text(reply.to_string().into()), limit).await {
                    return;
                }
            }
            Received::Nothing => {}
            Received::End => return,
        }
    }
}

/// What a frame read from the client calls for.
enum Received {
    /// This answer, sent back.
    Answer(Value),
    /// No answer.
    Nothing,
    /// The end of the connection.
    End,
}

/// Handles what the socket read: a text frame is an event to ingest, a pong settles the
/// heartbeat, a close or a read error ends the connection.
async fn received(
    state: &AppState,
    project: ProjectId,
    socket: &mut WebSocket,
    heartbeat: &mut Heartbeat,
    msg: Option<Result<Message, axum::Error>>,
) -> Received {
    match msg {
        Some(Ok(Message::Text(text))) => {
            Received::Answer(answer(state, project, text.as_str()).await)
        }
        Some(Ok(Message::Binary(_))) => Received::Answer(
            json!({ "error": "binary frames are not accepted: send each event as a JSON text frame" }),
        ),
        Some(Ok(Message::Pong(_))) => {
            heartbeat.ponged();
            Received::Nothing
        }
        Some(Ok(Message::Ping(_))) => Received::Nothing,
        Some(Ok(Message::Close(_))) | None => Received::End,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "ingest socket closed on error");
            if let Some(frame) = close_for_read_error(&e) {
                let _ =
                    send_within(socket, Message::Close(Some(frame)), crate::ws::CLOSE_WAIT).await;
            }
            Received::End
        }
    }
}

/// Pings like a stream connection's (SPEC §8): a client that stops answering is closed
/// instead of holding its socket and memory for as long as it likes.
struct Heartbeat {
    every: tokio::time::Interval,
    timeout: std::time::Duration,
    ping_sent: Option<Instant>,
}

impl Heartbeat {
    fn new(settings: &crate::state::StreamSettings) -> Heartbeat {
        let first = Instant::now() + settings.heartbeat_interval;
        Heartbeat {
            every: tokio::time::interval_at(first, settings.heartbeat_interval),
            timeout: settings.heartbeat_timeout,
            ping_sent: None,
        }
    }

    /// Whether to send a ping now (none is waiting for its pong).
    fn ping_now(&mut self) -> bool {
        let due = self.ping_sent.is_none();
        if due {
            self.ping_sent = Some(Instant::now());
        }
        due
    }

    /// When the pong of the ping sent is due, if one was sent.
    fn pong_due(&self) -> Option<Instant> {
        self.ping_sent.map(|sent| sent + self.timeout)
    }

    fn ponged(&mut self) {
        self.ping_sent = None;
    }
}

/// Sends `message` unless the socket takes none of it for `limit`; false when it failed.
async fn send_within(socket: &mut WebSocket, message: Message, limit: std::time::Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Says goodbye with `code` (not waiting long for a client that does not read).
async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let bye = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    send_within(socket, bye, crate::ws::CLOSE_WAIT).await;
}

/// The close frame for a protocol error the client caused: 1007 for a text frame that is
/// not UTF-8, 1009 for a message over the size limit. axum does not expose tungstenite's
/// error type, so the error's text is what there is to go by.
fn close_for_read_error(e: &axum::Error) -> Option<CloseFrame> {
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
