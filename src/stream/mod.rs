//! The streaming core (SPEC §4), independent of HTTP: per-connection filters and outboxes.
//! Rooms, the connection writer, replay and the count coalescer build on these.

pub mod filter;
pub mod outbox;

pub use filter::{Filters, InvalidFilter, Subject};
pub use outbox::{Outbox, Pushed};
