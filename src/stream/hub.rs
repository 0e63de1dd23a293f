//! The stream manager: per-connection subscription state (project, filters, outbox) and
//! the project rooms, with the old StreamManager's operations — register, remove,
//! is-stream-client, project-of, matches — and publish / publish-except.
//!
//! Publishing pushes the one encoded frame into each matching connection's outbox; a
//! [`Hub::flush`] after a batch of publishes writes each connection's queue to its socket
//! in one write if the socket takes it at once, and leaves a full socket to the
//! connection's task — so a slow client costs the publisher one queue push per message.
//! Locks are `std::sync` and never held across an `.await`.

use super::conn::{Flushed, Offer, StreamConn};
use super::filter::Filters;
use super::rooms::{ConnId, Report, RoomId, Rooms};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

    /// Messages each outbox holds.
    pub fn max_buffer(&self) -> usize {
        self.max_buffer
    }

    /// Registers a connection watching `project` and joins it to the project's room.
    pub fn register(&self, project: i64, filters: Filters) -> Arc<StreamConn> {
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let conn = Arc::new(StreamConn::new(id, project, filters, self.max_buffer));
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
            self.remove_closed();
        }
        report
    }

    /// Whether any connection watches `project`.
    pub fn has_members(&self, project: i64) -> bool {
        self.rooms
            .read()
            .expect("rooms poisoned")
            .len(RoomId(project))
            > 0
    }

    /// Appends the connections of `project` to `out` (a snapshot to flush without
    /// holding the rooms' lock).
    pub fn members(&self, project: i64, out: &mut Vec<Arc<StreamConn>>) {
        let rooms = self.rooms.read().expect("rooms poisoned");
        out.extend(rooms.members(RoomId(project)).cloned());
    }

    /// The drain pass (SPEC §4): writes whatever waits in any outbox whose socket takes it,
    /// and removes connections whose write failed. The fan-out path flushes after every
    /// batch, so this finds work only when that write was missed.
    pub fn drain(&self) {
        let conns: Vec<Arc<StreamConn>> = self
            .conns
            .read()
            .expect("conns poisoned")
            .values()
            .cloned()
            .collect();
        let failed = conns
            .iter()
            .filter(|c| c.flush_now() == Flushed::Failed)
            .count();
        if failed > 0 {
            self.remove_closed();
        }
    }

    /// Removes the connections that were closed (a write failed).
    pub fn remove_closed(&self) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;
    use crate::stream::messages::{EventFields, WireFrame};
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

        let frame = Arc::new(WireFrame::json(&json!({"type": "event"}), Some(1)));
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
