//! Issues and their state machine (pure: no I/O).

use super::level::Level;
use super::time::Millis;
use serde::Serialize;
use std::str::FromStr;

/// Where an issue stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueStatus {
    /// Open; counted in the project's unresolved count.
    Unresolved,
    /// Fixed; a new event reopens it (a regression).
    Resolved,
    /// Hidden; new events are stored but do not reopen it.
    Archived,
    /// Ignored for good; its new events are answered as accepted and dropped.
    Discarded,
}

impl IssueStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Unresolved => "unresolved",
            IssueStatus::Resolved => "resolved",
            IssueStatus::Archived => "archived",
            IssueStatus::Discarded => "discarded",
        }
    }
}

impl FromStr for IssueStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unresolved" => Ok(IssueStatus::Unresolved),
            "resolved" => Ok(IssueStatus::Resolved),
            "archived" => Ok(IssueStatus::Archived),
            "discarded" => Ok(IssueStatus::Discarded),
            other => Err(format!(
                "unknown status '{other}': expected one of unresolved, resolved, archived, discarded"
            )),
        }
    }
}

/// What happened to an issue, as broadcast to dashboards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueAction {
    /// First event of a new fingerprint.
    New,
    /// A new event reopened a resolved issue.
    Regressed,
    /// Marked resolved.
    Resolved,
    /// Marked archived.
    Archived,
    /// Reopened by hand.
    Unresolved,
    /// Marked discarded.
    Discarded,
}

impl IssueAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueAction::New => "new",
            IssueAction::Regressed => "regressed",
            IssueAction::Resolved => "resolved",
            IssueAction::Archived => "archived",
            IssueAction::Unresolved => "unresolved",
            IssueAction::Discarded => "discarded",
        }
    }
}

/// A state change asked for through the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueCommand {
    /// `POST /api/v1/issues/<id>/resolve`
    Resolve,
    /// `POST /api/v1/issues/<id>/archive`
    Archive,
    /// `POST /api/v1/issues/<id>/unresolve`
    Unresolve,
    /// `POST /api/v1/issues/<id>/discard`
    Discard,
}

impl FromStr for IssueCommand {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "resolve" => Ok(IssueCommand::Resolve),
            "archive" => Ok(IssueCommand::Archive),
            "unresolve" => Ok(IssueCommand::Unresolve),
            "discard" => Ok(IssueCommand::Discard),
            other => Err(format!(
                "unknown issue action '{other}': expected resolve, archive, unresolve or discard"
            )),
        }
    }
}

impl IssueCommand {
    /// The status the command leads to and the action to broadcast, or `None` when the
    /// issue is already in that status (the request succeeds and nothing is broadcast).
    pub fn apply(self, current: IssueStatus) -> Option<(IssueStatus, IssueAction)> {
        let (next, action) = match self {
            IssueCommand::Resolve => (IssueStatus::Resolved, IssueAction::Resolved),
            IssueCommand::Archive => (IssueStatus::Archived, IssueAction::Archived),
            IssueCommand::Unresolve => (IssueStatus::Unresolved, IssueAction::Unresolved),
            IssueCommand::Discard => (IssueStatus::Discarded, IssueAction::Discarded),
        };
        (next != current).then_some((next, action))
    }
}

/// What a new event does to the issue it groups into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventDisposition {
    /// Store the event; the issue takes this status, with an action to broadcast if any.
    Store(IssueStatus, Option<IssueAction>),
    /// The issue is discarded: answer accepted, store nothing.
    Drop,
}

/// The state machine's rule for a new event on an existing issue.
pub fn on_new_event(current: IssueStatus) -> EventDisposition {
    match current {
        IssueStatus::Unresolved => EventDisposition::Store(IssueStatus::Unresolved, None),
        IssueStatus::Resolved => {
            EventDisposition::Store(IssueStatus::Unresolved, Some(IssueAction::Regressed))
        }
        IssueStatus::Archived => EventDisposition::Store(IssueStatus::Archived, None),
        IssueStatus::Discarded => EventDisposition::Drop,
    }
}

/// One (project, fingerprint) group of events.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Issue {
    /// Issue id, unique across projects.
    pub id: i64,
    /// Owning project.
    pub project_id: i64,
    /// From the first event: `Type: value` or the message's first line.
    pub title: String,
    /// Where it happened: the innermost in-app frame, `file in function`.
    pub culprit: String,
    /// Level of the latest event.
    pub level: Level,
    /// Current status.
    pub status: IssueStatus,
    /// Events stored for this issue (not lowered by retention).
    pub event_count: i64,
    /// When the first event was received.
    pub first_seen: Millis,
    /// When the latest event was received.
    pub last_seen: Millis,
    /// When a new event last reopened the resolved issue (a regression); `None` when it
    /// never did, or its status was changed through the API since.
    pub regressed_at: Option<Millis>,
}

/// The result of an issue state change.
#[derive(Debug)]
pub struct StatusChange {
    /// The issue after the change.
    pub issue: Issue,
    /// What changed; `None` when the issue already had that status.
    pub action: Option<crate::model::IssueAction>,
    /// The project's new unresolved count, when it changed.
    pub count: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_reopens_resolved_only() {
        assert_eq!(
            on_new_event(IssueStatus::Resolved),
            EventDisposition::Store(IssueStatus::Unresolved, Some(IssueAction::Regressed))
        );
        assert_eq!(
            on_new_event(IssueStatus::Archived),
            EventDisposition::Store(IssueStatus::Archived, None)
        );
        assert_eq!(on_new_event(IssueStatus::Discarded), EventDisposition::Drop);
    }

    #[test]
    fn commands_are_idempotent() {
        assert_eq!(IssueCommand::Resolve.apply(IssueStatus::Resolved), None);
        assert_eq!(
            IssueCommand::Discard.apply(IssueStatus::Unresolved),
            Some((IssueStatus::Discarded, IssueAction::Discarded))
        );
        assert!("delete".parse::<IssueCommand>().is_err());
    }
}
