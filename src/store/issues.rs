//! Issues: listing, search, and state changes through the state machine
//! (`model::issue`).

use super::db::{transaction, with_db};
use super::rows::{self, ISSUE_COLUMNS};
use super::webhooks::{HOOKS_OF_ALL, alert_inserts};
use super::{ProjectId, StatusChange, Store, StoreError};
use crate::model::{Issue, IssueCommand, IssueSort, IssueStatus, Millis, Term};
use sqlx::{Database, QueryBuilder};

/// A project's unresolved issues (the sqlx connections and the SQLite writer thread
/// both count them).
pub(super) const COUNT_UNRESOLVED: &str =
    "SELECT COUNT(*) FROM issues WHERE project_id = $1 AND status = 'unresolved'";

/// The project's unresolved issues, counted on `conn` (inside its transaction).
pub(super) async fn count_unresolved<C, DB>(
    conn: &mut C,
    project: ProjectId,
) -> Result<i64, StoreError>
where
    DB: Database,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    Ok(sqlx::query_scalar(COUNT_UNRESOLVED)
        .bind(project)
        .fetch_one(conn)
        .await?)
}

impl Store {
    /// Issues of a project, most recently seen first.
    pub async fn list_issues(
        &self,
        project: ProjectId,
        status: Option<IssueStatus>,
        limit: u32,
    ) -> Result<Vec<Issue>, StoreError> {
        with_db!(self, db => {
            let mut q = QueryBuilder::new(format!(
                "SELECT {ISSUE_COLUMNS} FROM issues WHERE project_id = "
            ));
            q.push_bind(project);
            if let Some(s) = status {
                q.push(" AND status = ").push_bind(s.as_str());
            }
            q.push(" ORDER BY last_seen DESC, id DESC LIMIT ").push_bind(i64::from(limit));
            let rows = q.build().fetch_all(&db.pool).await?;
            rows.iter().map(rows::issue).collect()
        })
    }

    /// A project's issues matching every search term (SPEC §3.1), in `sort` order.
    pub async fn search_issues(
        &self,
        project: ProjectId,
        terms: &[Term],
        sort: IssueSort,
        limit: u32,
    ) -> Result<Vec<Issue>, StoreError> {
        self.search_issues_after(project, terms, sort, None, limit)
            .await
    }

    /// As [`search_issues`](Self::search_issues), starting right after `after`: the last
    /// issue of the previous page, as its value of the sort key and its
    /// id (a seek: every page costs what the first does).
    pub async fn search_issues_after(
        &self,
        project: ProjectId,
        terms: &[Term],
        sort: IssueSort,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<Issue>, StoreError> {
        with_db!(self, db => {
            let mut q = QueryBuilder::new("");
            super::search::issues_query(&mut q, project, terms, sort, after, limit);
            let rows = q.build().fetch_all(&db.pool).await?;
            rows.iter().map(rows::issue).collect()
        })
    }

    /// How many of a project's issues match every search term (SPEC §3.1): the `total`
    /// of an issue list. One `COUNT(*)` over the conditions of the search.
    pub async fn count_issues(
        &self,
        project: ProjectId,
        terms: &[Term],
    ) -> Result<i64, StoreError> {
        with_db!(self, db => {
            let mut q = QueryBuilder::new("");
            super::search::count_query(&mut q, project, terms);
            Ok(q.build_query_scalar().fetch_one(&db.pool).await?)
        })
    }

    /// One issue.
    pub async fn get_issue(&self, id: i64) -> Result<Option<Issue>, StoreError> {
        let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $1");
        with_db!(self, db => {
            let row = sqlx::query(&sql).bind(id).fetch_optional(&db.pool).await?;
            row.as_ref().map(rows::issue).transpose()
        })
    }

    /// The project's unresolved issue count.
    pub async fn unresolved_count(&self, project: ProjectId) -> Result<i64, StoreError> {
        with_db!(self, db => {
            let mut conn = db.pool.acquire().await?;
            count_unresolved(&mut *conn, project).await
        })
    }

    /// Applies a state change; `None` for an unknown issue.
    pub async fn change_issue_status(
        &self,
        issue_id: i64,
        command: IssueCommand,
    ) -> Result<Option<StatusChange>, StoreError> {
        // The project's lock first, as writers take it: a concurrent batch on another node
        // then either committed before (and is read below) or waits for this change.
        let lock = "SELECT p.id FROM projects p JOIN issues i ON i.project_id = p.id \
                    WHERE i.id = $1";
        let read = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $1");
        // A change by hand ends the regression's mark (as Sentry's Regressed substatus).
        let update = format!(
            "UPDATE issues SET status = $1, regressed_at = NULL WHERE id = $2 \
             RETURNING {ISSUE_COLUMNS}"
        );
        transaction!(self, db, tx => {
            let lock = format!("{lock}{}", db.locking(" FOR UPDATE OF p"));
            let locked: Option<i64> = sqlx::query_scalar(&lock)
                .bind(issue_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = (match locked {
                Some(_) => sqlx::query(&read).bind(issue_id).fetch_optional(&mut *tx).await?,
                None => None,
            }) else {
                return Ok(None);
            };
            let issue = rows::issue(&row)?;
            let Some((next, action)) = command.apply(issue.status) else {
                return Ok(Some(StatusChange { issue, action: None, count: None }));
            };
            let row = sqlx::query(&update)
                .bind(next.as_str())
                .bind(issue_id)
                .fetch_one(&mut *tx)
                .await?;
            let updated = rows::issue(&row)?;
            let count = match (issue.status == IssueStatus::Unresolved) != (next == IssueStatus::Unresolved) {
                true => Some(count_unresolved(&mut *tx, updated.project_id).await?),
                false => None,
            };
            let raised = [crate::model::alert::alert(action, &updated, None)];
            let hooks: Vec<(i64, i64, String)> =
                sqlx::query_as(HOOKS_OF_ALL).fetch_all(&mut *tx).await?;
            for mut q in alert_inserts(&raised, &hooks, Millis::now()) {
                q.build().execute(&mut *tx).await?;
            }
            Ok(Some(StatusChange { issue: updated, action: Some(action), count }))
        })
    }
}
