//! `POST /api/v1/events` and `POST /api/v1/events/bulk` (SPEC §2.1).

use super::auth::ingest_project;
use super::body::DecodedBody;
use crate::error::ApiError;
use crate::model::NewEvent;
use crate::model::json;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// Most events one bulk request may carry.
pub(crate) const MAX_BULK_EVENTS: usize = 100;

/// One event.
pub(crate) async fn post_event(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Credentials before a byte of the body (SPEC §8).
    let project = ingest_project(&state, &headers, query.as_deref()).await?;
    let DecodedBody(body) = DecodedBody::from_request(request, &state).await?;
    let mut event = NewEvent::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    event.raw = Some(body);
    let accepted = state.ingestor().ingest(project, vec![event]).await?;
    let a = &accepted[0];
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": a.id, "issue_id": a.issue_id })),
    ))
}

/// Up to 100 events, all or nothing.
pub(crate) async fn post_bulk(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Credentials before a byte of the body (SPEC §8).
    let project = ingest_project(&state, &headers, query.as_deref()).await?;
    let DecodedBody(body) = DecodedBody::from_request(request, &state).await?;
    // Each element is read where it lies and stored as the text it was sent as.
    let list =
        json::document(&body).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    let items = match json::items_at_most(list, MAX_BULK_EVENTS) {
        None => {
            return Err(ApiError::BadRequest(
                "a bulk body must be a JSON array of events".into(),
            ));
        }
        Some(Err(n)) => {
            return Err(ApiError::PayloadTooLarge(format!(
                "a bulk request holds at most {MAX_BULK_EVENTS} events, got {n}"
            )));
        }
        Some(Ok(items)) => items,
    };
    let events = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut event = NewEvent::from_raw(v)
                .map_err(|e| ApiError::BadRequest(format!("event at index {i}: {e}")))?;
            event.raw = Some(body.slice_ref(v.get().as_bytes()));
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
