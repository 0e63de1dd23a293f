//! Alerts (SPEC §7): webhooks told when an issue is new, regressed or changes state.
//!
//! The store writes each alert in the transaction of the change that raises it (the group
//! commit, or the status change), so none is lost to a crash; `deliver` then sends them:
//! per webhook at most one delivery in flight, up to 100 alerts each, retried with growing
//! delays until delivered or given up. `payload` is what is sent, without I/O; `target`
//! where it may be sent (SPEC §8), without I/O.

pub mod deliver;
pub mod mail;
pub mod payload;
pub mod target;
