//! A client connection's socket: its place under `--max-connections` for as long as it is
//! open (through an upgrade to a WebSocket too: the socket moves into the upgrade with
//! it), and a gentle close after an early answer.
//!
//! Closing a socket whose request body was not read makes the kernel answer the unread
//! bytes with a reset, which can destroy the answer (a 401, a 413) before the client
//! reads it. So, as nginx's "lingering close" does, after an answer marked
//! `Connection: close` with its body unread, what the client still sends is read and
//! dropped for a short, bounded while before the socket is closed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long an early answer's connection lingers, reading what the client still sends.
const LINGER_AFTER_ANSWER: Duration = Duration::from_secs(1);
/// The most an early answer's connection reads while it lingers (a 2 MiB body cut short
/// by a 413 is read to its end).
const LINGER_BYTES: usize = 4 << 20;

/// An accepted client connection.
pub(crate) struct ClientSocket {
    /// Always `Some` until dropped (taken then, to linger).
    tcp: Option<TcpStream>,
    permit: Option<OwnedSemaphorePermit>,
    /// Set when an answer left before its request's body was read (`early_close`).
    close_gently: Arc<AtomicBool>,
    /// Slots for lingering sockets, shared with the listener's refusals.
    lingering: Arc<Semaphore>,
}

impl ClientSocket {
    /// A connection holding `permit`, its place under the cap.
    pub(crate) fn new(
        tcp: TcpStream,
        permit: OwnedSemaphorePermit,
        lingering: Arc<Semaphore>,
    ) -> Self {
        ClientSocket {
            tcp: Some(tcp),
            permit: Some(permit),
            close_gently: Arc::default(),
            lingering,
        }
    }

    /// The flag `early_close` sets when this connection is to be closed gently.
    pub(crate) fn close_gently_flag(&self) -> Arc<AtomicBool> {
        self.close_gently.clone()
    }

    fn tcp(self: Pin<&mut Self>) -> Pin<&mut TcpStream> {
        Pin::new(
            self.get_mut()
                .tcp
                .as_mut()
                .expect("the socket is there until dropped"),
        )
    }
}

impl Drop for ClientSocket {
    fn drop(&mut self) {
        if !self.close_gently.load(Ordering::Relaxed) {
            return;
        }
        let (Some(tcp), Ok(runtime)) = (self.tcp.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        // Without a free slot the socket is closed at once, as before: lingering is
        // bounded like the refusals, in descriptors and in time.
        if let Ok(slot) = self.lingering.clone().try_acquire_owned() {
            let permit = self.permit.take();
            runtime.spawn(async move {
                linger(tcp, slot, LINGER_AFTER_ANSWER, LINGER_BYTES).await;
                drop(permit);
            });
        }
    }
}

/// Closes our side of `tcp`, then reads and drops what the client sends until it closes
/// too, for at most `time` and `bytes`.
pub(crate) async fn linger(
    mut tcp: TcpStream,
    _slot: OwnedSemaphorePermit,
    time: Duration,
    bytes: usize,
) {
    let _ = tokio::time::timeout(time, async {
        // hyper may have shut our side already; the reading is what matters.
        let _ = tcp.shutdown().await;
        let mut sink = [0u8; 16 * 1024];
        let mut left = bytes;
        while left > 0 {
            match tcp.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        Ok::<_, io::Error>(())
    })
    .await;
}

impl AsyncRead for ClientSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.tcp().poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.tcp().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.tcp().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.as_ref().is_some_and(|t| t.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_shutdown(cx)
    }
}
