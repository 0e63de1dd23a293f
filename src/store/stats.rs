//! The counts the issue view and the charts read (kept by `rollups` in the group commit).

use super::db::with_db;
use super::rollups::{per_minute_query, tag_breakdown_query, tag_breakdowns};
use super::{ProjectId, Store, StoreError, TagBreakdown};
use crate::model::Millis;

impl Store {
    /// Stored events per minute of receipt and level since `since` (of one issue, or of the
    /// whole project): `(minute start in unix ms, level, count)`.
    pub async fn events_per_minute(
        &self,
        project: ProjectId,
        issue: Option<i64>,
        since: Millis,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        with_db!(self, db => Ok(per_minute_query(project, issue, since.0)
            .build_query_as()
            .fetch_all(&db.pool)
            .await?))
    }

    /// How the issue's stored events spread over each tag, `environment` and `release`.
    pub async fn issue_tags(&self, issue: i64) -> Result<Vec<TagBreakdown>, StoreError> {
        with_db!(self, db => {
            let rows = tag_breakdown_query(issue)
                .build_query_as()
                .fetch_all(&db.pool)
                .await?;
            Ok(tag_breakdowns(rows))
        })
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_db!(self, db => {
            sqlx::query("SELECT 1").execute(&db.pool).await?;
        });
        Ok(())
    }
}
