//! The pure domain core: events, levels, issues and time. No I/O.

pub mod alert;
pub mod artifact;
pub mod batch;
pub mod event;
pub mod issue;
pub mod json;
pub mod level;
pub mod message;
pub mod project;
pub mod search;
pub mod stored;
pub mod time;
pub mod user;
pub mod webhook;

pub use event::{EventDetail, Exception, Frame, InvalidEvent, NewEvent, ParseError, RawJson};
pub use issue::{Issue, IssueAction, IssueCommand, IssueStatus};
pub use level::Level;
pub use message::DomainMessage;
pub use search::{IssueSort, Term};
pub use stored::StoredEvent;
pub use time::Millis;
