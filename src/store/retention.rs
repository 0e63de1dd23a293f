//! Retention: deleting old events with the counts they held, then the issues left
//! without events.

use super::db::transaction;
use super::issues::count_unresolved;
use super::rollups::{self, DELETED_COLUMNS, DeletedEvent, Rollups};
use super::{Progress, PurgeResult, Store, StoreError};
use crate::model::{DomainMessage, Millis};
use sqlx::QueryBuilder;

/// Rows one retention statement deletes, so that no statement runs long and ingestion
/// never waits long for the lock.
const PURGE_CHUNK: i64 = 5_000;

impl Store {
    /// Deletes events received before `cutoff`, then issues left without events.
    pub async fn purge_before(&self, cutoff: Millis) -> Result<PurgeResult, StoreError> {
        let mut result = PurgeResult::default();
        let mut progress = Progress::new("retention: old events deleted");
        loop {
            let deleted = self.purge_events(cutoff).await?;
            result.events += deleted;
            progress.report(result.events);
            if deleted < PURGE_CHUNK as u64 {
                break;
            }
        }
        (result.issues, result.messages) = self.purge_issues(cutoff).await?;
        Ok(result)
    }

    /// Deletes one chunk of old events and takes their counts from the rollups, in one
    /// transaction, so the rollups always equal what is stored. On PostgreSQL, `SKIP
    /// LOCKED` lets passes on several nodes share the work instead of waiting on each
    /// other's rows (events are never updated, so only another purge locks them).
    async fn purge_events(&self, cutoff: Millis) -> Result<u64, StoreError> {
        transaction!(self, db, tx => {
            let sql = format!(
                "DELETE FROM events WHERE (project_id, seq) IN (SELECT project_id, seq \
                 FROM events WHERE received < $1 LIMIT $2{}) RETURNING {DELETED_COLUMNS}",
                db.locking(" FOR UPDATE SKIP LOCKED")
            );
            let deleted: Vec<DeletedEvent> = sqlx::query_as(&sql)
                .bind(cutoff.0)
                .bind(PURGE_CHUNK)
                .fetch_all(&mut *tx)
                .await?;
            let tags = rollups::deleted_tags(&deleted, |s| db.fit_text(s));
            for mut q in Rollups::removed(&deleted, &tags).statements() {
                q.build().execute(&mut *tx).await?;
            }
            Ok(deleted.len() as u64)
        })
    }

    /// Deletes orphaned issues under their projects' locks (so that no batch is adding an
    /// event to one meanwhile); answers how many, with the new unresolved counts.
    async fn purge_issues(&self, cutoff: Millis) -> Result<(u64, Vec<DomainMessage>), StoreError> {
        transaction!(self, db, tx => {
            let mut lock = QueryBuilder::new(
                "SELECT id FROM projects WHERE id IN (SELECT project_id FROM issues WHERE ",
            );
            orphans(&mut lock, cutoff, None);
            lock.push(") ORDER BY id").push(db.locking(" FOR UPDATE"));
            let locked: Vec<i64> = lock.build_query_scalar().fetch_all(&mut *tx).await?;
            let mut messages = Vec::new();
            if locked.is_empty() {
                return Ok((0, messages));
            }
            let mut unresolved = QueryBuilder::new(
                "SELECT DISTINCT project_id FROM issues WHERE status = 'unresolved' AND ",
            );
            orphans(&mut unresolved, cutoff, Some(&locked));
            unresolved.push(" ORDER BY project_id");
            let projects: Vec<i64> = unresolved
                .build_query_scalar()
                .fetch_all(&mut *tx)
                .await?;
            let mut delete = QueryBuilder::new("DELETE FROM issues WHERE ");
            orphans(&mut delete, cutoff, Some(&locked));
            let issues = delete.build().execute(&mut *tx).await?.rows_affected();
            if issues > 0 {
                sqlx::query(
                    "DELETE FROM issue_tag_values WHERE NOT EXISTS \
                     (SELECT 1 FROM issues WHERE issues.id = issue_tag_values.issue_id)",
                )
                .execute(&mut *tx)
                .await?;
            }
            for project_id in projects {
                let count = count_unresolved(&mut *tx, project_id).await?;
                messages.push(DomainMessage::CountChanged { project_id, count });
            }
            Ok((issues, messages))
        })
    }
}

/// Appends to a query's `WHERE` the issues retention may delete: left without events, not
/// seen since `cutoff`, not discarded (those are kept as tombstones); of these projects
/// only, if given.
fn orphans<DB>(q: &mut QueryBuilder<'_, DB>, cutoff: Millis, projects: Option<&[i64]>)
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.push("status != 'discarded' AND last_seen < ")
        .push_bind(cutoff.0)
        .push(" AND NOT EXISTS (SELECT 1 FROM events e WHERE e.issue_id = issues.id)");
    if let Some(projects) = projects {
        q.push(" AND project_id IN (");
        let mut ids = q.separated(", ");
        for id in projects {
            ids.push_bind(*id);
        }
        q.push(")");
    }
}
