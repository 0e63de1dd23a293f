//! `POST /api/<project_id>/envelope/` and `/store/` for unmodified Sentry SDKs (SPEC §2.2).

use super::auth::{key_sources, project_for_key};
use super::body::{ApiPath, DecodedBody, parse_json};
use crate::error::ApiError;
use crate::model::NewEvent;
use crate::sentry::{self, EVENT_ITEM};
use crate::state::AppState;
use crate::store::ProjectId;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

/// Where a credential came from, for error messages.
struct Credential {
    source: &'static str,
    key: String,
}

/// Every ingest key the request carries: `X-Sentry-Auth`, `Authorization`, `?sentry_key=`
/// and the envelope header's `dsn`.
fn credentials(
    headers: &HeaderMap,
    query: Option<&str>,
    dsn_key: Option<String>,
) -> Vec<Credential> {
    key_sources(headers, query)
        .into_iter()
        .chain([("the envelope's dsn", dsn_key)])
        .filter_map(|(source, key)| {
            key.filter(|k| !k.is_empty())
                .map(|key| Credential { source, key })
        })
        .collect()
}

/// Checks the credentials agree and belong to the project in the path: 401 when missing,
/// unknown or disagreeing, 403 when they are another project's.
async fn authorize(
    state: &AppState,
    creds: &[Credential],
    project: ProjectId,
) -> Result<(), ApiError> {
    let Some(first) = creds.first() else {
        return Err(ApiError::Unauthorized(
            "missing ingest key: send X-Sentry-Auth: Sentry sentry_key=<key>, ?sentry_key=<key>, or a dsn in the envelope header"
                .into(),
        ));
    };
    if let Some(other) = creds.iter().find(|c| c.key != first.key) {
        return Err(ApiError::Unauthorized(format!(
            "the ingest keys in {} and {} disagree",
            first.source, other.source
        )));
    }
    let owner = project_for_key(state, &first.key).await?;
    if owner != project {
        return Err(ApiError::Forbidden(format!(
            "this ingest key belongs to project {owner}, not project {project}"
        )));
    }
    Ok(())
}

/// Sentry's answer: `200 {"id": ...}` (the event's id; `null` for an envelope without one).
fn answer(id: Option<String>) -> Json<Value> {
    Json(json!({ "id": id }))
}

/// An envelope: event items are ingested (together, all or nothing), the rest ignored.
pub async fn envelope(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    DecodedBody(body): DecodedBody,
) -> Result<Json<Value>, ApiError> {
    let envelope = match sentry::envelope::parse(&body) {
        Ok(envelope) => envelope,
        Err(e) => {
            // Credentials first: a stranger learns nothing about the body.
            authorize(
                &state,
                &credentials(&headers, query.as_deref(), None),
                project,
            )
            .await?;
            return Err(ApiError::BadRequest(e.to_string()));
        }
    };
    let dsn = match envelope.header.get("dsn") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(sentry::dsn_parts(d).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the envelope header's dsn '{d}' is not a valid DSN"
            ))
        })?),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "the envelope header's dsn must be a string".into(),
            ));
        }
    };
    let (dsn_key, dsn_project) = dsn.unzip();
    authorize(
        &state,
        &credentials(&headers, query.as_deref(), dsn_key),
        project,
    )
    .await?;
    if let Some(p) = dsn_project.filter(|p| *p != project.to_string()) {
        return Err(ApiError::Forbidden(format!(
            "the envelope's dsn is for project {p}, but the URL names project {project}"
        )));
    }
    let header_id = match envelope.header.get("event_id") {
        Some(Value::String(id)) => crate::model::event::normalize_event_id(id),
        _ => None,
    };
    let mut events: Vec<NewEvent> = Vec::new();
    for (i, item) in envelope.items.iter().enumerate() {
        if item.ty != EVENT_ITEM {
            continue;
        }
        let n = i + 1;
        let value: Value = serde_json::from_slice(item.payload).map_err(|e| {
            ApiError::BadRequest(format!("envelope item {n} (event): invalid JSON: {e}"))
        })?;
        let mut event = sentry::to_new_event(&value)
            .map_err(|e| ApiError::BadRequest(format!("envelope item {n} (event): {e}")))?;
        // The SDK names the event in the envelope header when the payload does not.
        if event.event_id.is_none() {
            event.event_id = header_id.clone();
        }
        // The item's bytes are a slice of the body: shared, not copied.
        event.raw = Some(body.slice_ref(item.payload));
        events.push(event);
    }
    if events.is_empty() {
        return Ok(answer(header_id));
    }
    let accepted = state.ingestor().ingest(project, events).await?;
    Ok(answer(
        accepted.into_iter().next().map(|a| a.id).or(header_id),
    ))
}

/// `OPTIONS`: the CORS layer answers a browser's preflight before this runs; a plain
/// `OPTIONS` gets an empty 204.
pub async fn preflight() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

/// The legacy store endpoint: the body is one event.
pub async fn store(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    DecodedBody(body): DecodedBody,
) -> Result<Json<Value>, ApiError> {
    authorize(
        &state,
        &credentials(&headers, query.as_deref(), None),
        project,
    )
    .await?;
    let mut event =
        sentry::to_new_event(&parse_json(&body)?).map_err(|e| ApiError::BadRequest(e.0))?;
    event.raw = Some(body);
    let accepted = state.ingestor().ingest(project, vec![event]).await?;
    Ok(answer(accepted.into_iter().next().map(|a| a.id)))
}
