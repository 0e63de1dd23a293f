//! Events: the group commit's entry, and reading them back.

use super::db::with_db;
use super::rows::{self, EVENT_COLUMNS};
use super::{BatchResult, EventPage, PreparedEvent, ProjectId, Store, StoreError, StoredEvent};
use std::time::Duration;

impl Store {
    /// Stores a batch of events in one transaction (group commit; see `write_core`).
    pub async fn write_batch(&self, events: Vec<PreparedEvent>) -> Result<BatchResult, StoreError> {
        with_db!(self, db => db.write_batch(events).await)
    }

    /// How long a group commit waits for more requests after a busy one, unless
    /// `--commit-delay-us` says otherwise (`ingest::writer`). Zero: never.
    pub fn commit_delay(&self) -> Duration {
        with_db!(self, db => db.commit_delay())
    }

    /// One event of `project` by its id, with the event as it was received.
    pub async fn event_by_id(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(StoredEvent, Option<Vec<u8>>)>, StoreError> {
        with_db!(self, db => {
            let row = super::search::event_by_id(project, event_id)
                .build()
                .fetch_optional(&db.pool)
                .await?;
            row.map(|r| Ok((rows::event(&r)?, rows::raw(&r)?))).transpose()
        })
    }

    /// A page of an issue's events: newest first, or from `page`'s seq on (see [`EventPage`]).
    pub async fn issue_events(
        &self,
        issue: i64,
        page: EventPage,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        with_db!(self, db => {
            let rows = super::search::issue_events(issue, page, limit)
                .build()
                .fetch_all(&db.pool)
                .await?;
            rows.iter().map(rows::event).collect()
        })
    }

    /// A project's events with a seq above `since`, in seq order.
    pub async fn events_since(
        &self,
        project: ProjectId,
        since: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE project_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        );
        with_db!(self, db => {
            let rows = sqlx::query(&sql)
                .bind(project)
                .bind(since)
                .bind(i64::from(limit))
                .fetch_all(&db.pool)
                .await?;
            rows.iter().map(rows::event).collect()
        })
    }
}
