//! `POST /api/v1/events` and `POST /api/v1/events/bulk` (SPEC §2.1).

use super::auth::ingest_project;
use super::body::{DecodedBody, parse_json};
use crate::error::ApiError;
use crate::model::NewEvent;
use crate::state::AppState;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// Most events one bulk request may carry.
pub const MAX_BULK_EVENTS: usize = 100;

/// One event.
pub async fn post_event(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    DecodedBody(body): DecodedBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let project = ingest_project(&state, &headers, query.as_deref()).await?;
    let mut event =
        NewEvent::from_json(&parse_json(&body)?).map_err(|e| ApiError::BadRequest(e.0))?;
    event.raw = Some(body);
    let accepted = state.ingestor().ingest(project, vec![event]).await?;
    let a = &accepted[0];
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": a.id, "issue_id": a.issue_id })),
    ))
}

/// Up to 100 events, all or nothing.
pub async fn post_bulk(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    DecodedBody(body): DecodedBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let project = ingest_project(&state, &headers, query.as_deref()).await?;
    let Value::Array(items) = parse_json(&body)? else {
        return Err(ApiError::BadRequest(
            "a bulk body must be a JSON array of events".into(),
        ));
    };
    if items.len() > MAX_BULK_EVENTS {
        return Err(ApiError::PayloadTooLarge(format!(
            "a bulk request holds at most {MAX_BULK_EVENTS} events, got {}",
            items.len()
        )));
    }
    let events = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut event = NewEvent::from_json(v)
                .map_err(|e| ApiError::BadRequest(format!("event at index {i}: {e}")))?;
            // The element as JSON: equal to what was sent (object key order is kept).
            event.raw = serde_json::to_vec(v).ok().map(Into::into);
            Ok(event)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let accepted = state.ingestor().ingest(project, events).await?;
    let ids: Vec<&str> = accepted.iter().map(|a| a.id.as_str()).collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": ids.len(), "ids": ids })),
    ))
}
