//! The streaming core (SPEC §4), independent of HTTP: per-connection filters and outboxes.
//! Rooms (typed join/leave/broadcast), filters and outboxes; the connection writer, replay
//! and the count coalescer build on these. A connection's session (`session`), its typed
//! messages (`protocol`) included, runs over any wire: the HTTP layer hands it the socket.

pub(crate) mod conn;
pub(crate) mod dispatch;
pub(crate) mod drain;
pub(crate) mod filter;
pub(crate) mod hub;
pub(crate) mod messages;
pub(crate) mod outbox;
pub(crate) mod protocol;
pub(crate) mod rooms;
pub(crate) mod session;

pub(crate) use conn::Wire;
pub(crate) use filter::Filters;
pub(crate) use hub::Hub;
