//! The stream manager: per-connection subscription state (project, filters, outbox) and
//! the project rooms, with the old StreamManager's operations — register, remove,
//! is-stream-client, project-of, matches — and publish / publish-except.
//!
//! Publishing pushes the one encoded frame into each matching connection's outbox and
//! wakes its writer; it never touches a socket, so a slow client costs the publisher one
//! queue push. Locks are `std::sync` and never held across an `.await`.

use super::filter::{Filters, Subject};
use super::messages::{EventFields, Frame};
use super::outbox::{Outbox, Pushed};
use super::rooms::{ConnId, Delivery, Member, Report, RoomId, Rooms};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

/// A message offered to a room: the shared frame, plus the event's fields when filters apply.
pub struct Offer<'a> {
    /// The encoded message.
    pub frame: &'a Arc<Frame>,
    /// `Some` for events (filtered per connection); `None` for issue and count messages.
    pub event: Option<&'a EventFields>,
}

/// One stream connection's subscription state.
pub struct StreamConn {
    /// Its id.
    pub id: ConnId,
    /// The project it watches.
    pub project: i64,
    filters: RwLock<Filters>,
    outbox: Mutex<Outbox<Arc<Frame>>>,
    notify: Notify,
    closed: AtomicBool,
    /// Events up to this seq were sent by replay; live copies are skipped.
    replayed_upto: AtomicI64,
}

impl StreamConn {
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

    /// Takes up to `max` queued frames and the number dropped since the last take.
    pub fn take(&self, max: usize, out: &mut Vec<Arc<Frame>>) -> u64 {
        self.outbox.lock().expect("outbox poisoned").take(max, out)
    }

    /// Frames waiting.
    pub fn queued(&self) -> usize {
        self.outbox.lock().expect("outbox poisoned").len()
    }

    /// Waits until something is queued (or the connection is closed).
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
    pub fn already_sent(&self, frame: &Frame) -> bool {
        frame
            .seq
            .is_some_and(|s| s <= self.replayed_upto.load(Ordering::Acquire))
    }
}

impl Member<Offer<'_>> for StreamConn {
    fn offer(&self, offer: &Offer<'_>) -> Delivery {
        if self.is_closed() {
            return Delivery::Failed;
        }
        if offer.event.is_some_and(|e| !self.matches(e)) {
            return Delivery::Filtered;
        }
        let pushed = self
            .outbox
            .lock()
            .expect("outbox poisoned")
            .push(offer.frame.clone());
        self.notify.notify_one();
        match pushed {
            Pushed::Queued => Delivery::Queued,
            Pushed::DroppedOldest => Delivery::DroppedOldest,
        }
    }
}

/// All stream connections and their rooms.
pub struct Hub {
    rooms: RwLock<Rooms<StreamConn>>,
    conns: RwLock<HashMap<ConnId, Arc<StreamConn>>>,
    next_id: AtomicU64,
    max_buffer: usize,
}

impl Hub {
    /// A hub whose outboxes hold `max_buffer` messages each.
    pub fn new(max_buffer: usize) -> Hub {
        Hub {
            rooms: RwLock::default(),
            conns: RwLock::default(),
            // Random high bits: with several nodes, a connection id (`X-Mesher-Origin`)
            // names one connection in the cluster, not one per node.
            next_id: AtomicU64::new((u64::from(rand::random::<u16>()) << 40) | 1),
            max_buffer,
        }
    }

    /// Registers a connection watching `project` and joins it to the project's room.
    pub fn register(&self, project: i64, filters: Filters) -> Arc<StreamConn> {
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let conn = Arc::new(StreamConn {
            id,
            project,
            filters: RwLock::new(filters),
            outbox: Mutex::new(Outbox::new(self.max_buffer)),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            replayed_upto: AtomicI64::new(0),
        });
        self.conns
            .write()
            .expect("conns poisoned")
            .insert(id, conn.clone());
        self.rooms
            .write()
            .expect("rooms poisoned")
            .join(id, RoomId(project), conn.clone());
        conn
    }

    /// Removes a connection from every room and from subscription state.
    pub fn remove(&self, id: ConnId) {
        if let Some(conn) = self.conns.write().expect("conns poisoned").remove(&id) {
            conn.close();
        }
        self.rooms.write().expect("rooms poisoned").leave_all(id);
    }

    /// Whether `id` is a live stream connection.
    pub fn is_stream_client(&self, id: ConnId) -> bool {
        self.conns.read().expect("conns poisoned").contains_key(&id)
    }

    /// The project `id` watches.
    pub fn project_of(&self, id: ConnId) -> Option<i64> {
        self.conns
            .read()
            .expect("conns poisoned")
            .get(&id)
            .map(|c| c.project)
    }

    /// Whether any connection of this node watches `project`.
    pub fn is_watched(&self, project: i64) -> bool {
        self.rooms
            .read()
            .expect("rooms poisoned")
            .len(RoomId(project))
            > 0
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        self.conns.read().expect("conns poisoned").len()
    }

    /// Messages waiting in all outboxes, and in the fullest one.
    pub fn outbox_depths(&self) -> (usize, usize) {
        let conns = self.conns.read().expect("conns poisoned");
        conns.values().fold((0, 0), |(sum, max), c| {
            let q = c.queued();
            (sum + q, max.max(q))
        })
    }

    /// Messages waiting in a connection's outbox.
    pub fn outbox_depth(&self, id: ConnId) -> Option<usize> {
        self.conns
            .read()
            .expect("conns poisoned")
            .get(&id)
            .map(|c| c.queued())
    }

    /// Finds a connection by the `conn_id` text the client was given.
    pub fn find(&self, conn_id: &str) -> Option<ConnId> {
        let n = u64::from_str_radix(conn_id.strip_prefix('c')?, 16).ok()?;
        self.is_stream_client(ConnId(n)).then_some(ConnId(n))
    }

    /// Offers `offer` to `project`'s room (but `except`), removing connections that failed.
    pub fn publish(&self, project: i64, offer: &Offer<'_>, except: Option<ConnId>) -> Report {
        let report = {
            let rooms = self.rooms.read().expect("rooms poisoned");
            match except {
                Some(c) => rooms.broadcast_except(RoomId(project), offer, c),
                None => rooms.broadcast(RoomId(project), offer),
            }
        };
        // Counted once per broadcast, not per member: the fan-out loop stays free of atomics.
        let counters = crate::telemetry::stream();
        counters
            .queued
            .increment((report.queued + report.dropped) as u64);
        if report.dropped > 0 {
            counters.dropped.increment(report.dropped as u64);
        }
        if report.failed > 0 {
            let dead: Vec<ConnId> = self
                .conns
                .read()
                .expect("conns poisoned")
                .values()
                .filter(|c| c.is_closed())
                .map(|c| c.id)
                .collect();
            for id in dead {
                self.remove(id);
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;
    use serde_json::json;

    fn fields(level: Level) -> EventFields {
        EventFields {
            level,
            environment: "production".into(),
            release: None,
            tags: Default::default(),
        }
    }

    #[test]
    fn register_filter_publish_remove() {
        let hub = Hub::new(2);
        let all = hub.register(1, Filters::default());
        let errors = hub.register(1, Filters::from_json(&json!({"level": "error"})).unwrap());
        let other = hub.register(2, Filters::default());
        assert!(hub.is_stream_client(all.id));
        assert_eq!(hub.project_of(other.id), Some(2));
        assert_eq!(hub.find(&all.id.to_string()), Some(all.id));

        let frame = Arc::new(Frame::json(&json!({"type": "event"}), Some(1)));
        let warn = fields(Level::Warning);
        let r = hub.publish(
            1,
            &Offer {
                frame: &frame,
                event: Some(&warn),
            },
            None,
        );
        assert_eq!((r.queued, r.filtered), (1, 1));
        let r = hub.publish(
            1,
            &Offer {
                frame: &frame,
                event: None,
            },
            Some(all.id),
        );
        assert_eq!(r.queued, 1, "broadcast_except skips the origin");
        for _ in 0..3 {
            hub.publish(
                1,
                &Offer {
                    frame: &frame,
                    event: None,
                },
                None,
            );
        }
        let mut out = Vec::new();
        assert_eq!(
            all.take(10, &mut out),
            2,
            "max_buffer 2: four queued, two dropped"
        );
        assert_eq!(out.len(), 2);
        assert!(Arc::ptr_eq(&out[0], &frame), "the same bytes are shared");
        assert_eq!(other.queued(), 0, "no cross-talk between projects");

        hub.remove(errors.id);
        assert!(!hub.is_stream_client(errors.id));
        assert!(errors.is_closed());
        all.close();
        let r = hub.publish(
            1,
            &Offer {
                frame: &frame,
                event: None,
            },
            None,
        );
        assert_eq!(r.failed, 1);
        assert_eq!(hub.connections(), 1, "a failed connection is removed");
    }
}
