//! The listening socket (SPEC §8, "Slow and idle connections", "Connections"): accepts
//! connections, caps how many are open, and serves each with hyper's own timeouts.
//!
//! Our own accept loop rather than `axum::serve`: that one has no cap on connections, no
//! timer (so hyper's header timeout never fires) and, at the open-file limit, sleeps a
//! second per failed accept while every new client waits.

use super::client_socket::{self, ClientSocket};
use super::early_close;
use crate::state::EdgeSettings;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// File descriptors kept for the server's own use (database files and pool, logs, Redis,
/// webhook deliveries) when the open-file limit is what bounds client connections.
const RESERVED_FDS: u64 = 256;
/// Refusals being written at once, at most (fewer under a small open-file limit).
const REFUSING_AT_ONCE: u64 = 64;
/// How long a refused connection may linger to have its request read before the close.
const LINGER: Duration = Duration::from_millis(250);

/// Raises the soft open-file limit to the hard one and answers how many client
/// connections, and refusals in flight, fit under it (at most `wanted` connections), with
/// room kept for the server's own files.
pub(crate) fn connection_capacity(wanted: usize) -> (usize, usize) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-file limit");
            return (wanted, REFUSING_AT_ONCE as usize);
        }
    };
    let (fit, refusing) = capacity_under(limit);
    if (fit as usize) < wanted {
        tracing::warn!(
            open_file_limit = limit,
            max_connections = fit,
            "the open-file limit allows fewer client connections than --max-connections"
        );
    }
    (wanted.min(fit as usize), refusing as usize)
}

/// Client connections and refusals in flight that fit under an open-file limit: what is
/// left after the reserved descriptors (half the limit when it is small), and an eighth of
/// the limit at most for refusals.
fn capacity_under(limit: u64) -> (u64, u64) {
    let refusing = REFUSING_AT_ONCE.min(limit / 8).max(1);
    let reserved = RESERVED_FDS.min(limit / 2) + refusing;
    (limit.saturating_sub(reserved).max(1), refusing)
}

/// Accepts and serves connections until `stop` is cancelled, then waits for the HTTP
/// connections in flight (upgraded WebSockets are the supervisor's to wait for).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    settings: EdgeSettings,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let refusing = Arc::new(Semaphore::new(settings.refusing_at_once));
    let connections = TaskTracker::new();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                tune_socket(&tcp);
                let socket = ClientSocket::new(tcp, permit, refusing.clone());
                connections.spawn(serve_one(socket, router.clone(), settings, stop.clone()));
            }
            Err(_) => {
                crate::telemetry::connection_refused();
                refuse(tcp, settings.max_connections, &refusing);
            }
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// A failed accept: the connection is lost, not the listener. Out of descriptors (which
/// the capacity should prevent) the loop pauses briefly instead of spinning.
async fn accept_failed(e: io::Error) {
    tracing::warn!(error = %e, "accept failed");
    if matches!(e.raw_os_error(), Some(23 | 24)) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One HTTP/1.1 connection, with upgrades, until it closes or the server stops.
async fn serve_one(
    socket: ClientSocket,
    router: Router,
    settings: EdgeSettings,
    stop: CancellationToken,
) {
    let closing = socket.close_gently_flag();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        early_close::handle(router.clone(), request, closing.clone())
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);
    let connection = http
        .serve_connection(TokioIo::new(socket), service)
        .with_upgrades();
    tokio::pin!(connection);
    let outcome = tokio::select! {
        outcome = connection.as_mut() => outcome,
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = outcome {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Answers a connection over the cap with a 503 and closes it. The answer is written at
/// once (a new socket's send buffer has room for it), so every refused client is told;
/// then, while few refusals linger, what the client sent meanwhile is read before the
/// close, so the close does not reset the connection before the answer is read.
fn refuse(tcp: TcpStream, cap: usize, lingering: &Arc<Semaphore>) {
    let body = format!(
        "{{\"error\":\"the server has {cap} connections open (--max-connections): try again shortly\"}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if tcp.try_write(answer.as_bytes()).is_err() {
        return;
    }
    if let Ok(slot) = lingering.clone().try_acquire_owned() {
        tokio::spawn(client_socket::linger(tcp, slot, LINGER, 64 * 1024));
    }
}

/// Kernel send buffer of every accepted connection (Linux doubles it for bookkeeping).
///
/// A stream client that stopped reading would otherwise have its socket's send queue
/// grow with the kernel's autotuning (past 500 KB within 10 s, docs/BENCHMARKS.md,
/// "Slow consumers"); capped, it blocks its writer after this much and its bounded outbox
/// drops the rest.
const SEND_BUFFER: usize = 64 * 1024;

/// Socket options of every accepted connection: the capped send buffer, and no Nagle (a
/// small stream frame would otherwise wait for the client's delayed ACK; the stream's
/// writer coalesces instead).
fn tune_socket(tcp: &TcpStream) {
    if let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!(error = %e, "could not cap the socket's send buffer");
    }
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_keeps_room_for_the_servers_own_files() {
        assert_eq!(capacity_under(1 << 20), ((1 << 20) - 256 - 64, 64));
        assert_eq!(capacity_under(1024), (1024 - 256 - 64, 64));
        // A small limit keeps half of it, and an eighth for refusals.
        assert_eq!(capacity_under(100), (100 - 50 - 12, 12));
        assert_eq!(capacity_under(1), (1, 1));
    }
}
