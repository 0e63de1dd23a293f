//! The broker seam: how news of committed changes reaches the other nodes.
//!
//! With one node (no `--redis-url`) the bus feeds the stream dispatcher directly. With
//! Redis, every node publishes a short notice of each change it committed — which project
//! seq, which issue, which count — and every node's [`merge`] turns the notices of the
//! others into stream messages by reading the database, which is the truth: an event is
//! delivered from its stored row, in seq order, once, whichever node stored it and whether
//! or not its notice arrived (a gap is read from the database; after a Redis outage, all
//! that was stored meanwhile is).

pub(crate) mod merge;
pub(crate) mod redis;

use crate::model::IssueAction;
use serde::{Deserialize, Serialize};

/// The Redis channel all nodes publish to and subscribe to.
pub(crate) const CHANNEL: &str = "mesher:news";

/// What one node tells the others (the receiving node reads the rest from the database).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Notice {
    /// Events up to `seq` of `project` are stored.
    Event {
        /// The project.
        project: i64,
        /// Its latest stored seq.
        seq: i64,
    },
    /// An issue changed; `origin` is the stream connection that asked (not echoed).
    Issue {
        /// The issue.
        issue: i64,
        /// What happened.
        action: IssueAction,
        /// `X-Mesher-Origin`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
    /// Issues were merged into `issue`; the others read it from the database.
    Merged {
        /// The issue they were merged into.
        issue: i64,
        /// The folded issues' ids.
        merged: Vec<i64>,
        /// `X-Mesher-Origin`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
    /// A project's unresolved count changed.
    Count {
        /// The project.
        project: i64,
    },
}

/// One Redis message: a node's notices, in commit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Packet {
    /// The sending node, so that it skips its own packets.
    pub node: String,
    /// The notices.
    pub notices: Vec<Notice>,
}

impl Notice {
    /// The notice for a domain message.
    pub(crate) fn of(msg: &crate::bus::DomainMessage) -> Notice {
        use crate::bus::DomainMessage as M;
        match msg {
            M::EventStored(e) => Notice::Event {
                project: e.project_id,
                seq: e.seq,
            },
            M::IssueChanged {
                action,
                issue,
                origin,
            } => Notice::Issue {
                issue: issue.id,
                action: *action,
                origin: origin.clone(),
            },
            M::IssuesMerged {
                issue,
                merged,
                origin,
            } => Notice::Merged {
                issue: issue.id,
                merged: merged.clone(),
                origin: origin.clone(),
            },
            M::CountChanged { project_id, .. } => Notice::Count {
                project: *project_id,
            },
        }
    }
}

/// A random id for this node's process.
pub(crate) fn new_node_id() -> String {
    format!("n{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_compactly() {
        let p = Packet {
            node: "n1".into(),
            notices: vec![
                Notice::Event { project: 1, seq: 7 },
                Notice::Issue {
                    issue: 3,
                    action: IssueAction::Resolved,
                    origin: None,
                },
                Notice::Count { project: 1 },
            ],
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"node":"n1","notices":[{"kind":"event","project":1,"seq":7},{"kind":"issue","issue":3,"action":"resolved"},{"kind":"count","project":1}]}"#
        );
        assert_eq!(serde_json::from_str::<Packet>(&text).unwrap(), p);
    }

    #[test]
    fn a_merge_notice_names_the_folded_issues() {
        let n = Notice::Merged {
            issue: 3,
            merged: vec![4, 5],
            origin: None,
        };
        let text = serde_json::to_string(&n).unwrap();
        assert_eq!(text, r#"{"kind":"merged","issue":3,"merged":[4,5]}"#);
        assert_eq!(serde_json::from_str::<Notice>(&text).unwrap(), n);
    }
}
