//! Rows to domain values, shared by both backends: the schemas name and type their
//! columns alike (`i64` and text), so one generic mapping serves SQLite and PostgreSQL.

use super::{Project, StoreError, StoredEvent};
use crate::model::{Issue, IssueStatus, Level, Millis};
use sqlx::{ColumnIndex, Decode, Row, Type};

/// The columns of `issues` that [`issue`] reads.
pub(super) const ISSUE_COLUMNS: &str = "id, project_id, title, culprit, level, status, \
     event_count, first_seen, last_seen, regressed_at";

/// [`ISSUE_COLUMNS`] of `issues` as `i` (in a join), under the same names.
pub(super) const ISSUE_COLUMNS_OF_I: &str = "i.id, i.project_id, i.title, i.culprit, \
     i.level, i.status, i.event_count, i.first_seen, i.last_seen, i.regressed_at";

/// The columns of `events` that [`event`] reads.
pub(super) const EVENT_COLUMNS: &str = "project_id, seq, event_id, issue_id, level, \
     environment, release, timestamp, received, message, title, culprit, tags, detail";

/// A value the database holds but Mesher cannot read back.
pub(super) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// `id, name, ingest_key`.
pub(super) fn project<R>(row: &R) -> Result<Project, StoreError>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Project {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        ingest_key: row.try_get("ingest_key")?,
    })
}

/// A row of `issues`.
pub(super) fn issue<R>(row: &R) -> Result<Issue, StoreError>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    let level: String = row.try_get("level")?;
    let status: String = row.try_get("status")?;
    Ok(Issue {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        title: row.try_get("title")?,
        culprit: row.try_get("culprit")?,
        level: level.parse::<Level>().map_err(corrupt)?,
        status: status.parse::<IssueStatus>().map_err(corrupt)?,
        event_count: row.try_get("event_count")?,
        first_seen: Millis(row.try_get("first_seen")?),
        last_seen: Millis(row.try_get("last_seen")?),
        regressed_at: row.try_get::<Option<i64>, _>("regressed_at")?.map(Millis),
    })
}

/// A row of `events`.
pub(super) fn event<R>(row: &R) -> Result<StoredEvent, StoreError>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    let level: String = row.try_get("level")?;
    let tags: String = row.try_get("tags")?;
    let detail: String = row.try_get("detail")?;
    Ok(StoredEvent {
        project_id: row.try_get("project_id")?,
        seq: row.try_get("seq")?,
        issue_id: row.try_get("issue_id")?,
        id: row.try_get("event_id")?,
        level: level.parse::<Level>().map_err(corrupt)?,
        message: row.try_get("message")?,
        environment: row.try_get("environment")?,
        release: row.try_get("release")?,
        timestamp: Millis(row.try_get("timestamp")?),
        received: Millis(row.try_get("received")?),
        title: row.try_get("title")?,
        culprit: row.try_get("culprit")?,
        tags: serde_json::from_str(&tags).map_err(corrupt)?,
        detail: crate::model::stored::DetailJson::from_text(detail).map_err(corrupt)?,
    })
}

/// The `raw` column of `events`: the event as received, decompressed; `None` for events
/// stored before the column existed.
pub(super) fn raw<R>(row: &R) -> Result<Option<Vec<u8>>, StoreError>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    Option<Vec<u8>>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
    let packed: Option<Vec<u8>> = row.try_get("raw")?;
    packed
        .map(|p| {
            if p.starts_with(&ZSTD_MAGIC) {
                zstd::decode_all(&p[..]).map_err(corrupt)
            } else {
                // Small events are stored as they came (`ingest::pack`).
                Ok(p)
            }
        })
        .transpose()
}
