//! What happened in a project, after it was committed: the messages the core publishes
//! (on the bus, to the stream and, with several nodes, to the others) and raises alerts from.

use super::stored::StoredEvent;
use super::{Issue, IssueAction};
use std::sync::Arc;

/// Something that happened in a project, after it was committed.
#[derive(Clone, Debug)]
pub enum DomainMessage {
    /// An event was stored (it has its `seq`).
    EventStored(Arc<StoredEvent>),
    /// An issue was created, regressed, or changed status.
    IssueChanged {
        /// What happened.
        action: IssueAction,
        /// The issue after the change.
        issue: Issue,
        /// The stream connection that asked for the change (`X-Mesher-Origin`), which is
        /// not told about its own change.
        origin: Option<String>,
    },
    /// Issues were merged into `issue` (SPEC §3): the folded ones are gone.
    IssuesMerged {
        /// The issue they were merged into, after the merge.
        issue: Issue,
        /// The folded issues' ids.
        merged: Vec<i64>,
        /// The stream connection that asked (`X-Mesher-Origin`), not told of its own merge.
        origin: Option<String>,
    },
    /// The number of unresolved issues of a project changed.
    CountChanged {
        /// The project.
        project_id: i64,
        /// Unresolved issues at commit time.
        count: i64,
    },
}

impl DomainMessage {
    /// The project the message belongs to.
    pub fn project_id(&self) -> i64 {
        match self {
            DomainMessage::EventStored(e) => e.project_id,
            DomainMessage::IssueChanged { issue, .. } => issue.project_id,
            DomainMessage::IssuesMerged { issue, .. } => issue.project_id,
            DomainMessage::CountChanged { project_id, .. } => *project_id,
        }
    }
}
