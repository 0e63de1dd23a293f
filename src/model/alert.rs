//! The alerts an issue change raises (SPEC §7), without I/O: what the store writes into
//! the webhooks' outbox in the transaction of the change, and `alerts` delivers.

use super::{DomainMessage, Issue, IssueAction, StoredEvent};
use serde_json::{Value, json};

/// Most alerts one delivery carries (SPEC §7).
pub const MAX_ALERTS: usize = 100;

/// One alert, as stored in the outbox: the action, the issue after it, and for `new` and
/// `regressed` the listed event that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    /// The issue's project.
    pub project_id: i64,
    /// What happened (the webhook trigger).
    pub action: IssueAction,
    /// `{"action", "issue", "event"?}` as JSON text.
    pub json: String,
}

/// The alerts a commit's messages raise, in commit order: every `IssueChanged`, with the
/// stored event that caused a `new` or `regressed` one.
pub fn raised(messages: &[DomainMessage]) -> Vec<Raised> {
    let mut out = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let DomainMessage::IssueChanged { action, issue, .. } = msg else {
            continue;
        };
        let cause = matches!(action, IssueAction::New | IssueAction::Regressed)
            .then(|| {
                messages[i + 1..].iter().find_map(|m| match m {
                    DomainMessage::EventStored(e) if e.issue_id == issue.id => Some(e.as_ref()),
                    _ => None,
                })
            })
            .flatten();
        out.push(alert(*action, issue, cause));
    }
    out
}

/// The alert of one change: the issue after it, and the event that caused it, if any.
pub fn alert(action: IssueAction, issue: &Issue, cause: Option<&StoredEvent>) -> Raised {
    let mut alert = json!({ "action": action.as_str(), "issue": issue });
    if let Some(e) = cause {
        alert["event"] = serde_json::to_value(e.listed()).unwrap_or(Value::Null);
    }
    Raised {
        project_id: issue.project_id,
        action,
        json: alert.to_string(),
    }
}

/// Which webhooks want which alerts: `(webhook id, alert JSON)` for each webhook of an
/// alert's project whose triggers name its action.
pub fn fan_out<'a>(raised: &'a [Raised], hooks: &[(i64, i64, String)]) -> Vec<(i64, &'a str)> {
    let mut out = Vec::new();
    for r in raised {
        for (id, project, triggers) in hooks {
            if *project == r.project_id && triggers.split(',').any(|t| t == r.action.as_str()) {
                out.push((*id, r.json.as_str()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IssueAction;

    #[test]
    fn each_alert_goes_to_the_webhooks_of_its_project_that_asked_for_it() {
        let raised = [
            Raised {
                project_id: 1,
                action: IssueAction::New,
                json: "n".into(),
            },
            Raised {
                project_id: 1,
                action: IssueAction::Resolved,
                json: "r".into(),
            },
            Raised {
                project_id: 2,
                action: IssueAction::New,
                json: "m".into(),
            },
        ];
        let hooks = vec![
            (10, 1, "new,regressed".to_string()),
            (11, 1, "resolved".to_string()),
            (12, 2, "new".to_string()),
            (13, 3, "new".to_string()),
        ];
        assert_eq!(fan_out(&raised, &hooks), [(10, "n"), (11, "r"), (12, "m")]);
    }
}
