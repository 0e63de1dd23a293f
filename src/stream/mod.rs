//! The streaming core (SPEC §4), independent of HTTP: per-connection filters and outboxes.
//! Rooms (typed join/leave/broadcast), filters and outboxes; the connection writer, replay
//! and the count coalescer build on these. A connection's session (`session`), its typed
//! messages (`protocol`) included, runs over any wire: the HTTP layer hands it the socket.

pub mod conn;
pub mod dispatch;
pub mod drain;
pub mod filter;
pub mod hub;
pub mod messages;
pub mod outbox;
pub mod protocol;
pub mod rooms;
pub mod session;

pub use conn::{Closed, Flushed, Offer, StreamConn, Wire};
pub use filter::{Filters, InvalidFilter, Subject};
pub use hub::Hub;
pub use messages::{EventFields, WireFrame};
pub use outbox::{Outbox, Pushed};
pub use rooms::{ConnId, Member, Offered, Report, RoomId, Rooms};
