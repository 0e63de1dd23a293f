//! One stream connection's subscription state and its write path.
//!
//! The fan-out path writes to a connection's socket itself, without waking the
//! connection's task: after a batch of broadcasts has been queued, [`StreamConn::flush_now`]
//! writes everything waiting in one vectored write, if the socket takes it at once.
//! Only a socket that would block is handed to the connection's own task, which waits for
//! it to become writable (bounded by the write timeout) while the fan-out path goes on
//! queueing into the drop-oldest outbox.
//!
//! Measured (docs/benchmarks-history.md, issue 11): with a task woken per connection per event and
//! framing per subscriber, 1,000 subscribers cost ≈ 5.6 µs of server core per delivery;
//! most of it was one `sendto` per delivery, the wake-ups and tungstenite's framing. Here a
//! delivery is a queue push plus a share of one `writev` per connection per batch.

use super::filter::{Filters, Subject};
use super::messages::{EventFields, WireFrame, lagged};
use super::outbox::{Outbox, Pushed};
use super::rooms::{ConnId, Member, Offered};
use crate::model::Millis;
use crate::telemetry;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// Frames handed to one vectored write (well under the kernel's `IOV_MAX` of 1024).
pub(crate) const WRITE_BATCH: usize = 64;

/// The socket a connection's frames go to (the HTTP layer's upgraded connection).
pub trait Wire: Send + Sync {
    /// Writes a prefix of `bufs`, in order, returning how many bytes were taken;
    /// `Pending` when the socket takes nothing now (then `cx` is woken when it may).
    fn poll_write(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>>;
}

/// The connection is gone: a write failed, or it was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stream connection is closed")]
pub struct Closed;

/// What [`StreamConn::flush_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything waiting was written (or there was nothing, or no socket yet).
    Done,
    /// The socket is full; the connection's task was woken to wait for it.
    Blocked,
    /// The connection is closed.
    Failed,
}

/// What waits to be written, under one lock.
struct Outgoing {
    outbox: Outbox<Arc<WireFrame>>,
    /// Bytes taken from the outbox (or the connection's own messages), in order; the
    /// first has `offset` bytes written already. At most [`WRITE_BATCH`] broadcasts.
    unsent: VecDeque<Bytes>,
    offset: usize,
    /// A write would block: the connection's task owns the socket until it drains.
    blocked: bool,
    /// Bytes written so far (the write timeout counts time without progress).
    written: u64,
}

/// One stream connection's subscription state.
pub struct StreamConn {
    /// Its id.
    pub id: ConnId,
    /// The project it watches.
    pub project: i64,
    filters: RwLock<Filters>,
    out: Mutex<Outgoing>,
    /// Set once the hello and any replay are written: live frames wait in the outbox until then.
    wire: OnceLock<Arc<dyn Wire>>,
    notify: Notify,
    closed: AtomicBool,
    /// Events up to this seq were sent by replay; live copies are skipped.
    replayed_upto: AtomicI64,
}

impl StreamConn {
    /// A connection whose outbox holds `max_buffer` messages.
    pub fn new(id: ConnId, project: i64, filters: Filters, max_buffer: usize) -> StreamConn {
        StreamConn {
            id,
            project,
            filters: RwLock::new(filters),
            out: Mutex::new(Outgoing {
                outbox: Outbox::new(max_buffer),
                unsent: VecDeque::new(),
                offset: 0,
                blocked: false,
                written: 0,
            }),
            wire: OnceLock::new(),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            replayed_upto: AtomicI64::new(0),
        }
    }

    /// Replaces the filters.
    pub fn set_filters(&self, f: Filters) {
        *self.filters.write().expect("filters poisoned") = f;
    }

    /// The current filters.
    pub fn filters(&self) -> Filters {
        self.filters.read().expect("filters poisoned").clone()
    }

    /// Whether an event passes this connection's filters.
    pub fn matches(&self, e: &EventFields) -> bool {
        self.filters
            .read()
            .expect("filters poisoned")
            .matches(&Subject {
                level: e.level,
                environment: &e.environment,
                release: e.release.as_deref(),
                tags: &e.tags,
            })
    }

    /// Takes up to `max` queued frames and the number dropped since the last take
    /// (for tests and tools that read the outbox without a socket).
    pub fn take(&self, max: usize, out: &mut Vec<Arc<WireFrame>>) -> u64 {
        self.lock().outbox.take(max, out)
    }

    /// Messages waiting in the outbox (at most `--max-buffer`). Besides these, up to
    /// [`WRITE_BATCH`] taken frames may be in a write the socket has not finished.
    pub fn queued(&self) -> usize {
        self.lock().outbox.len()
    }

    /// Bytes written to the socket so far.
    pub fn written(&self) -> u64 {
        self.lock().written
    }

    /// Whether a write would block, so that the connection's task waits for the socket.
    pub fn is_blocked(&self) -> bool {
        self.lock().blocked
    }

    /// Waits until the fan-out path needs the connection's task (or it is closed).
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Marks the connection closed; later offers fail.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Records that replay sent every event up to `seq`.
    pub fn set_replayed_upto(&self, seq: i64) {
        self.replayed_upto.store(seq, Ordering::Release);
    }

    /// Whether a live frame repeats one that replay already sent.
    pub fn already_sent(&self, frame: &WireFrame) -> bool {
        frame
            .seq
            .is_some_and(|s| s <= self.replayed_upto.load(Ordering::Acquire))
    }

    /// Connects the socket: from now on queued frames are written to it.
    pub fn attach(&self, wire: Arc<dyn Wire>) {
        let _ = self.wire.set(wire);
    }

    /// Queues one of the connection's own messages (an answer, a ping, a close) after
    /// what is already taken for writing; never dropped. The caller flushes.
    pub fn push_own(&self, frame: Bytes) {
        self.lock().unsent.push_back(frame);
    }

    /// From the fan-out path: writes what waits if the socket takes it now, without
    /// waiting. A socket that would block is left to the connection's task.
    ///
    /// Call it outside tokio's cooperative budget (`tokio::task::unconstrained`) when
    /// flushing many connections in one turn: a spent budget makes every socket look full.
    pub fn flush_now(&self) -> Flushed {
        if self.is_closed() {
            return Flushed::Failed;
        }
        let Some(wire) = self.wire.get() else {
            return Flushed::Done;
        };
        let mut out = self.lock();
        if out.blocked {
            return Flushed::Blocked;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.write_locked(&mut out, wire.as_ref(), &mut cx) {
            Poll::Ready(Ok(())) => Flushed::Done,
            Poll::Ready(Err(Closed)) => {
                drop(out);
                self.close();
                Flushed::Failed
            }
            Poll::Pending => {
                drop(out);
                self.notify.notify_one();
                Flushed::Blocked
            }
        }
    }

    /// From the connection's task: writes what waits, `Pending` until the socket has
    /// taken all of it (`cx` is woken when it can take more).
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        if self.is_closed() {
            return Poll::Ready(Err(Closed));
        }
        let Some(wire) = self.wire.get() else {
            return Poll::Ready(Ok(()));
        };
        let mut out = self.lock();
        let r = self.write_locked(&mut out, wire.as_ref(), cx);
        if let Poll::Ready(Err(Closed)) = r {
            drop(out);
            self.close();
        }
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outgoing> {
        self.out.lock().expect("outgoing poisoned")
    }

    /// Moves frames from the outbox to `unsent` (a `lagged` first if some were dropped),
    /// then writes `unsent` until it is empty or the socket would block.
    fn write_locked(
        &self,
        out: &mut Outgoing,
        wire: &dyn Wire,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Closed>> {
        let mut delivered = 0u64;
        // One latency sample per write, its oldest event's: a sample per delivery made the
        // exporter buffer millions of samples between scrapes (measured: 40 M in one run).
        let mut oldest: Option<Millis> = None;
        let result = loop {
            let dropped = out.outbox.take_dropped();
            if dropped > 0 {
                out.unsent.push_back(lagged(dropped).wire.clone());
            }
            while out.unsent.len() < WRITE_BATCH {
                let Some(frame) = out.outbox.pop() else { break };
                if self.already_sent(&frame) {
                    continue;
                }
                delivered += 1;
                oldest = oldest.or(frame.received);
                out.unsent.push_back(frame.wire.clone());
            }
            if out.unsent.is_empty() {
                out.blocked = false;
                break Poll::Ready(Ok(()));
            }
            let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
            let n = out.unsent.len().min(WRITE_BATCH);
            for (slot, (i, bytes)) in slices.iter_mut().zip(out.unsent.iter().enumerate()) {
                *slot = IoSlice::new(if i == 0 { &bytes[out.offset..] } else { bytes });
            }
            match wire.poll_write(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break Poll::Ready(Err(Closed)),
                Poll::Ready(Ok(written)) => advance(out, written),
                Poll::Pending => {
                    out.blocked = true;
                    break Poll::Pending;
                }
            }
        };
        if delivered > 0 {
            telemetry::stream().delivered.increment(delivered);
        }
        if let Some(r) = oldest {
            let seconds = (Millis::now().0 - r.0).max(0) as f64 / 1000.0;
            telemetry::stream().latency.record(seconds);
        }
        result
    }
}

/// Drops `written` bytes from the front of `unsent`.
fn advance(out: &mut Outgoing, mut written: usize) {
    out.written += written as u64;
    while let Some(front) = out.unsent.front() {
        let left = front.len() - out.offset;
        if written < left {
            out.offset += written;
            return;
        }
        written -= left;
        out.offset = 0;
        out.unsent.pop_front();
    }
}

/// A message offered to a room: the shared frame, plus the event's fields when filters apply.
pub struct Offer<'a> {
    /// The encoded message.
    pub frame: &'a Arc<WireFrame>,
    /// `Some` for events (filtered per connection); `None` for issue and count messages.
    pub event: Option<&'a EventFields>,
}

impl Member<Offer<'_>> for StreamConn {
    /// Queues without writing: the publisher flushes once its batch is queued.
    fn offer(&self, offer: &Offer<'_>) -> Offered {
        if self.is_closed() {
            return Offered::Failed;
        }
        if offer.event.is_some_and(|e| !self.matches(e)) {
            return Offered::Filtered;
        }
        match self.lock().outbox.push(offer.frame.clone()) {
            Pushed::Queued => Offered::Queued,
            Pushed::DroppedOldest => Offered::DroppedOldest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A socket that takes `room` bytes, then would block until given more.
    #[derive(Default)]
    struct Pipe {
        room: Mutex<usize>,
        got: Mutex<Vec<u8>>,
        fail: AtomicBool,
    }

    impl Wire for Pipe {
        fn poll_write(&self, _: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            if self.fail.load(Ordering::Relaxed) {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            let mut room = self.room.lock().unwrap();
            if *room == 0 {
                return Poll::Pending;
            }
            let mut took = 0;
            let mut got = self.got.lock().unwrap();
            for b in bufs {
                let n = b.len().min(*room - took);
                got.extend_from_slice(&b[..n]);
                took += n;
            }
            *room -= took;
            Poll::Ready(Ok(took))
        }
    }

    fn offer(conn: &StreamConn, n: i64) {
        let frame = Arc::new(WireFrame::json(&json!({"n": n}), None));
        conn.offer(&Offer {
            frame: &frame,
            event: None,
        });
    }

    /// The JSON texts of the server frames in `bytes`.
    fn texts(bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len = usize::from(bytes[at + 1]);
            out.push(String::from_utf8(bytes[at + 2..at + 2 + len].to_vec()).unwrap());
            at += 2 + len;
        }
        out
    }

    #[test]
    fn queued_frames_go_out_in_one_write_and_a_full_socket_is_left_to_the_task() {
        let conn = StreamConn::new(ConnId(1), 1, Filters::default(), 3);
        let pipe = Arc::new(Pipe::default());
        offer(&conn, 0);
        assert_eq!(
            conn.flush_now(),
            Flushed::Done,
            "no socket yet: frames wait"
        );
        assert_eq!(conn.queued(), 1);
        conn.attach(pipe.clone());
        *pipe.room.lock().unwrap() = 1000;
        offer(&conn, 1);
        assert_eq!(conn.flush_now(), Flushed::Done);
        assert_eq!(
            texts(&pipe.got.lock().unwrap()),
            [r#"{"n":0}"#, r#"{"n":1}"#]
        );

        // Room for half a frame: the rest waits, and the fan-out path stops writing.
        *pipe.room.lock().unwrap() = 4;
        for n in 2..8 {
            offer(&conn, n);
        }
        assert_eq!(conn.flush_now(), Flushed::Blocked);
        assert!(conn.is_blocked());
        for n in 8..12 {
            offer(&conn, n);
        }
        assert_eq!(
            conn.flush_now(),
            Flushed::Blocked,
            "the task owns a blocked socket"
        );
        *pipe.room.lock().unwrap() = 1000;
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(conn.poll_flush(&mut cx), Poll::Ready(Ok(())));
        assert!(!conn.is_blocked());
        // 2..8 went into an outbox of 3: 2, 3, 4 dropped and counted first; the half-written
        // lagged is finished; then 8 was dropped while the socket was full.
        let got = texts(&pipe.got.lock().unwrap());
        let want = [
            r#"{"type":"lagged","dropped":3}"#,
            r#"{"n":5}"#,
            r#"{"n":6}"#,
            r#"{"n":7}"#,
            r#"{"type":"lagged","dropped":1}"#,
            r#"{"n":9}"#,
            r#"{"n":10}"#,
            r#"{"n":11}"#,
        ];
        assert_eq!(got[2..], want);
        assert_eq!(conn.written(), pipe.got.lock().unwrap().len() as u64);
    }

    #[test]
    fn a_failed_write_closes_the_connection() {
        let conn = StreamConn::new(ConnId(1), 1, Filters::default(), 3);
        let pipe = Arc::new(Pipe::default());
        conn.attach(pipe.clone());
        pipe.fail.store(true, Ordering::Relaxed);
        offer(&conn, 1);
        assert_eq!(conn.flush_now(), Flushed::Failed);
        assert!(conn.is_closed());
        let frame = Arc::new(WireFrame::json(&json!({}), None));
        let d = conn.offer(&Offer {
            frame: &frame,
            event: None,
        });
        assert_eq!(d, Offered::Failed);
    }
}
