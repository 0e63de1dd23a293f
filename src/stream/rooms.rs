//! Rooms: which connections watch what, with a typed API —
//! `join(conn, room)`, `leave`, `broadcast(room, msg)` and `broadcast_except(room, msg, conn)`.
//!
//! Connection ids and room ids are distinct types, so swapping them does not compile.
//! Delivery is the member's business ([`Member::offer`]: a push into its outbox, never a
//! socket write), so a broadcast never waits on a client. Locking is the caller's.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// A stream connection's id (shown to the client as `conn_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{:x}", self.0)
    }
}

/// A room: one per project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RoomId(pub i64);

/// What offering a message to one member did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Queued in its outbox.
    Queued,
    /// Queued, after the outbox dropped its oldest message.
    DroppedOldest,
    /// Its filters do not accept the message.
    Filtered,
    /// The member is closed; it should be removed.
    Failed,
}

/// A room member: receives offered messages.
pub(crate) trait Member<M> {
    /// Offers `msg`; must not block.
    fn offer(&self, msg: &M) -> Offered;
}

/// What a broadcast did, summed over the room's members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Members that queued it.
    pub queued: usize,
    /// Members that queued it by dropping their oldest message.
    pub dropped: usize,
    /// Members whose filters refused it.
    pub filtered: usize,
    /// Members that are closed (the failure count of the old API).
    pub failed: usize,
}

impl Report {
    fn add(&mut self, d: Offered) {
        match d {
            Offered::Queued => self.queued += 1,
            Offered::DroppedOldest => self.dropped += 1,
            Offered::Filtered => self.filtered += 1,
            Offered::Failed => self.failed += 1,
        }
    }
}

/// Rooms and their members.
pub(crate) struct Rooms<T> {
    rooms: HashMap<RoomId, HashMap<ConnId, Arc<T>>>,
    memberships: HashMap<ConnId, HashSet<RoomId>>,
}

impl<T> Default for Rooms<T> {
    fn default() -> Self {
        Rooms {
            rooms: HashMap::new(),
            memberships: HashMap::new(),
        }
    }
}

impl<T> Rooms<T> {
    /// No rooms.
    #[cfg(test)]
    pub(crate) fn new() -> Rooms<T> {
        Rooms::default()
    }

    /// Puts `conn` in `room` (again: no change).
    pub(crate) fn join(&mut self, conn: ConnId, room: RoomId, member: Arc<T>) {
        self.rooms.entry(room).or_default().insert(conn, member);
        self.memberships.entry(conn).or_default().insert(room);
    }

    /// Takes `conn` out of `room`; an emptied room is forgotten.
    #[cfg(test)]
    pub(crate) fn leave(&mut self, conn: ConnId, room: RoomId) {
        if let Some(members) = self.rooms.get_mut(&room) {
            members.remove(&conn);
            if members.is_empty() {
                self.rooms.remove(&room);
            }
        }
        if let Some(rooms) = self.memberships.get_mut(&conn) {
            rooms.remove(&room);
            if rooms.is_empty() {
                self.memberships.remove(&conn);
            }
        }
    }

    /// Takes `conn` out of every room (when its connection ends).
    pub(crate) fn leave_all(&mut self, conn: ConnId) {
        for room in self.memberships.remove(&conn).unwrap_or_default() {
            if let Some(members) = self.rooms.get_mut(&room) {
                members.remove(&conn);
                if members.is_empty() {
                    self.rooms.remove(&room);
                }
            }
        }
    }

    /// The rooms `conn` is in.
    #[cfg(test)]
    pub(crate) fn rooms_of(&self, conn: ConnId) -> Vec<RoomId> {
        let mut r: Vec<RoomId> = self
            .memberships
            .get(&conn)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        r.sort();
        r
    }

    /// Members of `room`.
    pub(crate) fn len(&self, room: RoomId) -> usize {
        self.rooms.get(&room).map_or(0, HashMap::len)
    }

    /// Whether no room has members.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The members of `room`.
    pub(crate) fn members(&self, room: RoomId) -> impl Iterator<Item = &Arc<T>> {
        self.rooms.get(&room).into_iter().flat_map(HashMap::values)
    }

    /// Offers `msg` to every member of `room`.
    pub(crate) fn broadcast<M>(&self, room: RoomId, msg: &M) -> Report
    where
        T: Member<M>,
    {
        self.broadcast_filtered(room, msg, None)
    }

    /// Offers `msg` to every member of `room` but `except`.
    pub(crate) fn broadcast_except<M>(&self, room: RoomId, msg: &M, except: ConnId) -> Report
    where
        T: Member<M>,
    {
        self.broadcast_filtered(room, msg, Some(except))
    }

    fn broadcast_filtered<M>(&self, room: RoomId, msg: &M, except: Option<ConnId>) -> Report
    where
        T: Member<M>,
    {
        let mut report = Report::default();
        for (conn, member) in self.rooms.get(&room).into_iter().flatten() {
            if Some(*conn) != except {
                report.add(member.offer(msg));
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Probe {
        got: Mutex<Vec<&'static str>>,
        closed: bool,
        only: Option<&'static str>,
    }

    impl Member<&'static str> for Probe {
        fn offer(&self, msg: &&'static str) -> Offered {
            if self.closed {
                return Offered::Failed;
            }
            if self.only.is_some_and(|o| o != *msg) {
                return Offered::Filtered;
            }
            self.got.lock().unwrap().push(msg);
            Offered::Queued
        }
    }

    #[test]
    fn join_broadcast_except_and_leave() {
        let mut rooms = Rooms::new();
        let (a, b, c) = (
            Arc::new(Probe::default()),
            Arc::new(Probe::default()),
            Arc::new(Probe {
                closed: true,
                ..Probe::default()
            }),
        );
        let (p1, p2) = (RoomId(1), RoomId(2));
        rooms.join(ConnId(1), p1, a.clone());
        rooms.join(ConnId(2), p1, b.clone());
        rooms.join(ConnId(3), p1, c.clone());
        rooms.join(ConnId(2), p2, b.clone());
        assert_eq!(
            rooms.broadcast(p1, &"one"),
            Report {
                queued: 2,
                failed: 1,
                ..Report::default()
            }
        );
        assert_eq!(rooms.broadcast_except(p1, &"two", ConnId(1)).queued, 1);
        assert_eq!(rooms.broadcast(p2, &"three").queued, 1);
        assert_eq!(*a.got.lock().unwrap(), vec!["one"]);
        assert_eq!(*b.got.lock().unwrap(), vec!["one", "two", "three"]);
        assert_eq!(rooms.rooms_of(ConnId(2)), vec![p1, p2]);

        rooms.leave(ConnId(2), p1);
        assert_eq!(rooms.len(p1), 2);
        rooms.leave_all(ConnId(2));
        assert_eq!(rooms.len(p2), 0);
        assert!(rooms.rooms_of(ConnId(2)).is_empty());
        rooms.leave_all(ConnId(1));
        rooms.leave_all(ConnId(3));
        assert!(rooms.is_empty(), "empty rooms are forgotten");
        assert_eq!(rooms.broadcast(p1, &"nobody"), Report::default());
    }

    #[test]
    fn filters_are_counted() {
        let mut rooms = Rooms::new();
        rooms.join(
            ConnId(1),
            RoomId(1),
            Arc::new(Probe {
                only: Some("x"),
                ..Probe::default()
            }),
        );
        assert_eq!(rooms.broadcast(RoomId(1), &"y").filtered, 1);
        assert_eq!(rooms.broadcast(RoomId(1), &"x").queued, 1);
    }
}
