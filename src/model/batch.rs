//! The group commit's input and output: events ready to store, and what storing did.

use super::project::ProjectId;
use super::{DomainMessage, Millis, NewEvent};

/// An event ready to store: validated, grouped, with its id settled.
#[derive(Clone, Debug)]
pub struct PreparedEvent {
    /// Owning project.
    pub project_id: ProjectId,
    /// 32 lowercase hex digits.
    pub event_id: String,
    /// Whether the client chose the id (only then can it repeat an earlier event's).
    pub id_from_client: bool,
    /// The grouping key.
    pub fingerprint: String,
    /// Title for a new issue.
    pub title: String,
    /// Culprit for a new issue.
    pub culprit: String,
    /// When the server received it.
    pub received: Millis,
    /// The validated event.
    pub event: NewEvent,
    /// `event.raw` as stored: compressed with zstd from 512 bytes on, else as is.
    pub raw_zstd: Option<Vec<u8>>,
}

/// What storage did with one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored with this seq.
    Stored {
        /// The issue it grouped into.
        issue_id: i64,
        /// Its per-project sequence number.
        seq: i64,
    },
    /// An event with this id was stored before; nothing was written.
    Duplicate {
        /// The issue of the earlier copy.
        issue_id: i64,
    },
    /// The issue is discarded; the event was accepted and dropped.
    Dropped {
        /// The discarded issue.
        issue_id: i64,
    },
}

impl EventOutcome {
    /// The issue the event belongs to.
    pub fn issue_id(self) -> i64 {
        match self {
            EventOutcome::Stored { issue_id, .. }
            | EventOutcome::Duplicate { issue_id }
            | EventOutcome::Dropped { issue_id } => issue_id,
        }
    }
}

/// The result of one group-commit transaction.
#[derive(Debug, Default)]
pub struct BatchResult {
    /// One outcome per input event, in input order.
    pub outcomes: Vec<EventOutcome>,
    /// What to publish once the transaction is committed, in commit order.
    pub messages: Vec<DomainMessage>,
}
