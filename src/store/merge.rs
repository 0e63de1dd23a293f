//! Merging issues (SPEC §3): folding issues into one, in one transaction, written once for
//! both databases.
//!
//! The folded issues' events, rollups (tag counts, per-minute counts) and fingerprints move
//! to the target, whose counts become the sums; the folded issues are deleted. Later events
//! of any of their fingerprints then land in the target (the group commit looks issues up
//! by `issue_fingerprints`). A merge raises no webhook or e-mail alert: it is a person's
//! own act, as a status change would be, and no trigger names it.

use super::db::transaction;
use super::issues::count_unresolved;
use super::rows::{self, ISSUE_COLUMNS};
use super::{Store, StoreError};
use crate::model::Issue;

/// What a merge did.
#[derive(Debug)]
pub enum MergeOutcome {
    /// Merged.
    Merged {
        /// The target as it is after the merge.
        issue: Issue,
        /// The folded issues' ids (now gone), in the order asked, each once.
        merged: Vec<i64>,
        /// The project's unresolved issues after the merge.
        count: i64,
    },
    /// No issue has this id (the target or one to fold): nothing changed.
    Unknown(i64),
    /// This issue belongs to another project than the target: nothing changed.
    OtherProject(i64),
}

/// The statements that move the folded issues' rows to the target (`$1`). The ids are
/// written into the text as the integers they are (a merge is rare; nothing a client sends
/// reaches the SQL but numbers). The rollups are summed into the target's rows, then the
/// folded ones deleted, so that the target's tag breakdown and charts are the sums.
fn move_statements(folded: &[i64]) -> Vec<String> {
    let ids = folded
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let sum_into = |table: &str, keys: &str| {
        [
            format!(
                "INSERT INTO {table} (issue_id, {keys}, count) \
                 SELECT $1, {keys}, CAST(SUM(count) AS BIGINT) FROM {table} \
                 WHERE issue_id IN ({ids}) GROUP BY {keys} \
                 ON CONFLICT (issue_id, {keys}) DO UPDATE SET count = {table}.count + excluded.count"
            ),
            format!("DELETE FROM {table} WHERE issue_id IN ({ids})"),
        ]
    };
    let mut statements = vec![format!(
        "UPDATE events SET issue_id = $1 WHERE issue_id IN ({ids})"
    )];
    statements.extend(sum_into("issue_tag_values", "key, value"));
    statements.extend(sum_into("issue_minutes", "minute, level"));
    statements.push(format!(
        "UPDATE issue_fingerprints SET issue_id = $1 WHERE issue_id IN ({ids})"
    ));
    statements.push(format!("DELETE FROM issues WHERE id IN ({ids})"));
    statements
}

/// The target with the folded issues' counts: events summed, first seen the earliest,
/// last seen the latest, and the level of the issue seen last (an issue's level is its
/// latest event's). Status, title and culprit stay the target's.
fn merged_counts(target: &Issue, folded: &[Issue]) -> Issue {
    let mut out = target.clone();
    for f in folded {
        out.event_count += f.event_count;
        out.first_seen = out.first_seen.min(f.first_seen);
        if f.last_seen > out.last_seen {
            out.last_seen = f.last_seen;
            out.level = f.level;
        }
    }
    out
}

/// The issues to fold checked against those read: every one exists and shares the
/// target's project; `None` when they do.
fn refusal(target: &Issue, folded: &[i64], read: &[Issue]) -> Option<MergeOutcome> {
    for id in folded {
        match read.iter().find(|i| i.id == *id) {
            None => return Some(MergeOutcome::Unknown(*id)),
            Some(i) if i.project_id != target.project_id => {
                return Some(MergeOutcome::OtherProject(*id));
            }
            Some(_) => {}
        }
    }
    None
}

impl Store {
    /// Folds the issues `folded` (not containing `target`, each once) into `target`, under
    /// the project's lock (as writers take it: a batch on any node either committed before
    /// or waits, so no event lands in a folded issue after it is read).
    pub async fn merge_issues(
        &self,
        target: i64,
        folded: &[i64],
    ) -> Result<MergeOutcome, StoreError> {
        let lock = "SELECT p.id FROM projects p JOIN issues i ON i.project_id = p.id \
                    WHERE i.id = $1";
        let ids = folded
            .iter()
            .chain([&target])
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let read = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id IN ({ids})");
        let update = format!(
            "UPDATE issues SET event_count = $1, first_seen = $2, last_seen = $3, level = $4 \
             WHERE id = $5 RETURNING {ISSUE_COLUMNS}"
        );
        transaction!(self, db, tx => {
            let lock = format!("{lock}{}", db.locking(" FOR UPDATE OF p"));
            let locked: Option<i64> =
                sqlx::query_scalar(&lock).bind(target).fetch_optional(&mut *tx).await?;
            if locked.is_none() {
                return Ok(MergeOutcome::Unknown(target));
            }
            let rows = sqlx::query(&read).fetch_all(&mut *tx).await?;
            let read = rows.iter().map(rows::issue).collect::<Result<Vec<Issue>, _>>()?;
            let Some(into) = read.iter().find(|i| i.id == target) else {
                return Ok(MergeOutcome::Unknown(target));
            };
            if let Some(refused) = refusal(into, folded, &read) {
                return Ok(refused);
            }
            let others: Vec<Issue> = read.iter().filter(|i| i.id != target).cloned().collect();
            let sums = merged_counts(into, &others);
            for sql in move_statements(folded) {
                sqlx::query(&sql).bind(target).execute(&mut *tx).await?;
            }
            let row = sqlx::query(&update)
                .bind(sums.event_count)
                .bind(sums.first_seen.0)
                .bind(sums.last_seen.0)
                .bind(sums.level.as_str())
                .bind(target)
                .fetch_one(&mut *tx)
                .await?;
            let issue = rows::issue(&row)?;
            let count = count_unresolved(&mut *tx, issue.project_id).await?;
            Ok(MergeOutcome::Merged { issue, merged: folded.to_vec(), count })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IssueStatus, Level, Millis};

    fn issue(id: i64, project_id: i64, count: i64, first: i64, last: i64, level: Level) -> Issue {
        Issue {
            id,
            project_id,
            title: format!("issue {id}"),
            culprit: String::new(),
            level,
            status: IssueStatus::Unresolved,
            event_count: count,
            first_seen: Millis(first),
            last_seen: Millis(last),
            regressed_at: None,
        }
    }

    #[test]
    fn counts_are_summed_and_the_latest_level_kept() {
        let target = issue(1, 1, 3, 100, 200, Level::Error);
        let folded = [
            issue(2, 1, 4, 50, 300, Level::Warning),
            issue(3, 1, 1, 150, 250, Level::Fatal),
        ];
        let m = merged_counts(&target, &folded);
        assert_eq!((m.event_count, m.first_seen.0, m.last_seen.0), (8, 50, 300));
        assert_eq!((m.level, m.title.as_str()), (Level::Warning, "issue 1"));
    }

    #[test]
    fn an_unknown_or_foreign_issue_is_refused() {
        let target = issue(1, 1, 1, 1, 1, Level::Error);
        let read = [
            target.clone(),
            issue(2, 1, 1, 1, 1, Level::Error),
            issue(3, 2, 1, 1, 1, Level::Error),
        ];
        assert!(refusal(&target, &[2], &read).is_none());
        assert!(matches!(
            refusal(&target, &[2, 3], &read),
            Some(MergeOutcome::OtherProject(3))
        ));
        assert!(matches!(
            refusal(&target, &[9, 3], &read),
            Some(MergeOutcome::Unknown(9))
        ));
    }
}
