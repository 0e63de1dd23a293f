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
//! (so that it appears in no URL, and in no proxy's log). A member may open the stream with
//! their session cookie (it comes with the upgrade) or an API token instead (SPEC §9); their
//! access is checked again every [`USER_RECHECK`], so a removed user or membership ends
//! the stream within seconds.

use super::auth::{query_param, require_project, session_cookie, token, token_owner};
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
    // Without a credential the upgrade goes ahead and the first message must carry it.
    let (token_hash, user) = match token(&parts.headers, q) {
        Some(t) if UserCredential::is_api_token(&t) => {
            let cred = UserCredential::ApiToken(t);
            cred.check(&state, project).await?;
            (Some(SIGNED_IN.to_owned()), Some(cred))
        }
        Some(t) => {
            let (owner, hash) = token_owner(&state, &t).await?;
            require_project(owner, project)?;
            (Some(hash), None)
        }
        None => match session_cookie(&parts.headers) {
            Some(secret) => {
                let cred = UserCredential::Session(secret);
                cred.check(&state, project).await?;
                (Some(SIGNED_IN.to_owned()), Some(cred))
            }
            None => (None, None),
        },
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
            Ok(upgraded) => serve(state, opening, user, upgraded).await,
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

/// What a stream opened by a signed-in user has instead of a token hash.
const SIGNED_IN: &str = "signed-in user";

/// How often a signed-in user's stream checks that they may still use the project.
const USER_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// A signed-in user's credential (SPEC §9).
#[derive(Clone)]
enum UserCredential {
    Session(String),
    ApiToken(String),
}

impl UserCredential {
    fn is_api_token(token: &str) -> bool {
        token.starts_with("mshr_")
    }

    /// 401 when the credential is dead, 403 when its user may not use `project`.
    async fn check(&self, state: &AppState, project: i64) -> Result<(), ApiError> {
        let user = match self {
            UserCredential::Session(s) => state.accounts().session_user(s).await?,
            UserCredential::ApiToken(t) => state.accounts().api_token_user(t).await?,
        };
        let user = user.ok_or_else(|| ApiError::Unauthorized("sign in again".into()))?;
        super::auth::Caller::User(user)
            .require(state, project)
            .await
    }
}

/// The key directory, watched from before the session starts; and a signed-in user's
/// credential, checked again every [`USER_RECHECK`].
struct KeyWatch {
    state: AppState,
    directory: watch::Receiver<Directory>,
    user: Mutex<Option<UserCredential>>,
    /// Whether the user could still use the project at the last check.
    user_ok: bool,
    /// The project the stream watches.
    project: i64,
}

impl KeyWatch {
    /// The project, when a signed-in user opened the stream.
    fn user_project(&self) -> Option<i64> {
        self.user
            .lock()
            .expect("user lock")
            .is_some()
            .then_some(self.project)
    }

    /// The first message's API token: its user may use `project`.
    async fn authenticate_user(&self, project: i64, token: &str) -> Result<String, Refusal> {
        let cred = UserCredential::ApiToken(token.to_owned());
        match cred.check(&self.state, project).await {
            Ok(()) => {
                *self.user.lock().expect("user lock") = Some(cred);
                Ok(SIGNED_IN.to_owned())
            }
            Err(e) if e.status().is_client_error() => Err(Refusal::policy(e.to_string())),
            Err(e) => Err(Refusal {
                code: CLOSE_INTERNAL,
                reason: e.to_string(),
            }),
        }
    }
}

impl Keys for KeyWatch {
    async fn authenticate(&self, project: i64, token: &str) -> Result<String, Refusal> {
        if UserCredential::is_api_token(token) {
            return self.authenticate_user(project, token).await;
        }
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
        let Some(project) = self.user_project() else {
            return self.directory.changed().await.is_ok();
        };
        tokio::time::sleep(USER_RECHECK).await;
        // Cloned, not taken: this future may be dropped at any await (a `select!` arm).
        let cred = self.user.lock().expect("user lock").clone();
        if let Some(cred) = cred {
            // A database that fails keeps the stream open: only a refusal ends it.
            let refused = cred.check(&self.state, project).await.err();
            self.user_ok = !refused.is_some_and(|e| e.status().is_client_error());
        }
        true
    }

    fn opens(&mut self, hash: &str, project: i64) -> bool {
        if hash == SIGNED_IN {
            return self.user_ok;
        }
        self.directory.borrow_and_update().token_project(hash) == Some(project)
    }
}

/// Runs the stream's session over the upgraded socket.
async fn serve(
    state: AppState,
    opening: Opening,
    user: Option<UserCredential>,
    upgraded: Upgraded,
) {
    let project = opening.project;
    let socket = Arc::new(Socket(Mutex::new(TokioIo::new(upgraded))));
    let settings = *state.stream_settings();
    let session = Session {
        hub: state.hub().clone(),
        replay: StoredEvents(state.clone()),
        keys: KeyWatch {
            // Subscribed before the token is checked: a change from here on is looked at.
            directory: state.credentials().watch(),
            state: state.clone(),
            user: Mutex::new(user),
            user_ok: true,
            project,
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
