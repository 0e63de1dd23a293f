//! Answering early (SPEC §8): a response sent before the request's body was read to its
//! end carries `Connection: close`, and hyper then closes the connection.
//!
//! Without it the unread rest of the body could not be told from the next request (so
//! hyper closes the connection anyway), and a keep-alive client that was not told would
//! send its next request into a closed socket: a Sentry SDK loses that event.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, Version, header};
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tower::ServiceExt;

/// Runs `request` through the router; marks the answer `Connection: close` when the
/// request's body was not read to its end, and (unless it is a 401 or 403) `close_gently`
/// so that the socket reads what the client still sends before it closes
/// (`client_socket`).
pub(crate) async fn handle(
    router: Router,
    request: Request<Incoming>,
    close_gently: Arc<AtomicBool>,
) -> Result<Response<Body>, Infallible> {
    if request.body().is_end_stream() || request.version() > Version::HTTP_11 {
        return router.oneshot(request.map(Body::new)).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let request = request.map(|inner| {
        Body::new(Tracked {
            inner,
            finished: finished.clone(),
        })
    });
    let mut response = router.oneshot(request).await?;
    if !finished.load(Ordering::Relaxed) {
        // Lingering reads what the client still sends: worth it for a client with
        // credentials (its 413 or 429 must reach it), not for one without, whose 401
        // must cost the server as little as possible (SPEC §8).
        let stranger = matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        );
        close_gently.store(!stranger, Ordering::Relaxed);
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// A request body that notes when it has been read to its end.
struct Tracked {
    inner: Incoming,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            self.finished.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
