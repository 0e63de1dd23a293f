//! `GET /stream/projects/<id>`: the live stream (SPEC §4).
//!
//! The handler answers the WebSocket handshake itself and the connection speaks RFC 6455
//! directly over the upgraded socket (`crate::ws`), so that a broadcast is framed once and
//! the fan-out path writes those bytes to every subscriber's socket (`stream::conn`).
//! What happens on the connection is the session's (`stream::session`): this module
//! checks the upgrade, then hands the session the socket (read through `ws::codec`,
//! written through `stream::Wire`), the store and the key directory.
//!
//! The token comes with the upgrade (`?token=`, `Authorization: Bearer`), or, when the
//! request carries none, as the client's first message `{"type":"auth","token":"…"}`
//! (so that it appears in no URL, and in no proxy's log).

use super::auth::{query_param, require_project, token, token_owner};
use crate::credentials::Directory;
use crate::error::ApiError;
use crate::model::StoredEvent;
use crate::state::AppState;
use crate::stream::session::{CLOSE_INTERNAL, Keys, Opening, Refusal, Replay, Session, Timing};
use crate::stream::{Filters, Wire};
use crate::ws::codec::{ClientMessage, Decoder, ProtocolError};
use crate::ws::handshake;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures_util::Stream;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// Largest client → server message on the stream.
pub(crate) const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Bytes read from the socket at a time, into a buffer on the stack of the poll: an idle
/// connection holds no read buffer (tungstenite's, zero-filled before every read, was both
/// resident memory per connection and a memset per wake-up in the profile).
const READ_CHUNK: usize = 2048;

/// Validates the handshake, the token and the query, then switches protocols.
pub(crate) async fn upgrade(
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
    let (filters, since) = query_opening(q)?;
    let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
        ApiError::BadRequest(
            "this connection cannot be upgraded to a WebSocket (HTTP/1.1 only)".into(),
        )
    })?;
    let opening = Opening {
        project,
        filters,
        since,
        token_hash,
    };
    let tracked = state.supervisor().clone();
    tokio::spawn(tracked.track_socket(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve(state, opening, upgraded).await,
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

/// The filters and the `since` of the query.
fn query_opening(q: Option<&str>) -> Result<(Filters, Option<i64>), ApiError> {
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
    Ok((filters, since))
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

/// The client's messages, cut from the socket's bytes by the decoder.
struct Inbound {
    socket: Arc<Socket>,
    decoder: Decoder,
}

impl Stream for Inbound {
    type Item = Result<ClientMessage, ProtocolError>;

    /// The next whole message; the end when the socket is closed or failed.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.decoder.next_message() {
                Ok(Some(msg)) => return Poll::Ready(Some(Ok(msg))),
                Err(e) => return Poll::Ready(Some(Err(e))),
                Ok(None) => {}
            }
            let mut raw = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut raw);
            match ready!(this.socket.poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => this.decoder.extend(buf.filled()),
                _ => return Poll::Ready(None),
            }
        }
    }
}

/// The store, as the session reads it.
struct StoredEvents(AppState);

impl Replay for StoredEvents {
    async fn latest_seq(&self, project: i64) -> anyhow::Result<i64> {
        Ok(self.0.store().latest_seq(project).await?)
    }

    async fn events_since(
        &self,
        project: i64,
        since: i64,
        limit: u32,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        Ok(self.0.store().events_since(project, since, limit).await?)
    }
}

/// The key directory, watched from before the session starts.
struct KeyWatch {
    state: AppState,
    directory: watch::Receiver<Directory>,
}

impl Keys for KeyWatch {
    async fn authenticate(&self, project: i64, token: &str) -> Result<String, Refusal> {
        match token_owner(&self.state, token).await {
            Ok((owner, hash)) if owner == project => Ok(hash),
            Ok(_) => Err(Refusal::policy(format!(
                "this token does not belong to project {project}"
            ))),
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
                Err(Refusal::policy("invalid project token"))
            }
            Err(e) => Err(Refusal {
                code: CLOSE_INTERNAL,
                reason: e.to_string(),
            }),
        }
    }

    async fn changed(&mut self) -> bool {
        self.directory.changed().await.is_ok()
    }

    fn opens(&mut self, hash: &str, project: i64) -> bool {
        self.directory.borrow_and_update().token_project(hash) == Some(project)
    }
}

/// Runs the stream's session over the upgraded socket.
async fn serve(state: AppState, opening: Opening, upgraded: Upgraded) {
    let socket = Arc::new(Socket(Mutex::new(TokioIo::new(upgraded))));
    let settings = *state.stream_settings();
    let session = Session {
        hub: state.hub().clone(),
        replay: StoredEvents(state.clone()),
        keys: KeyWatch {
            // Subscribed before the token is checked: a change from here on is looked at.
            directory: state.credentials().watch(),
            state: state.clone(),
        },
        timing: Timing {
            write_timeout: settings.write_timeout,
            heartbeat_interval: settings.heartbeat_interval,
            heartbeat_timeout: settings.heartbeat_timeout,
            auth_timeout: state.stream_auth_timeout(),
        },
        shutdown: state.shutdown().clone(),
    };
    let inbound = Inbound {
        socket: socket.clone(),
        decoder: Decoder::new(MAX_CLIENT_MESSAGE),
    };
    session.run(opening, inbound, socket).await;
}
