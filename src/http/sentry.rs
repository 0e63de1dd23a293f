//! `POST /api/<project_id>/envelope/` and `/store/` for unmodified Sentry SDKs (SPEC §2.2).

use super::auth::{key_sources, project_for_key};
use super::body::{ApiPath, DecodedBody};
use super::envelope_body::{BodyError, read_envelope, read_header_line};
use crate::error::ApiError;
use crate::model::NewEvent;
use crate::sentry;
use crate::state::AppState;
use crate::store::ProjectId;
use axum::Json;
use axum::RequestExt;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

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

/// The envelope header's `dsn`: its key and project id.
fn envelope_dsn(header: &Map<String, Value>) -> Result<Option<(String, String)>, ApiError> {
    match header.get("dsn") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(d)) => sentry::dsn_parts(d).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the envelope header's dsn '{d}' is not a valid DSN"
            ))
        }),
        Some(_) => Err(ApiError::BadRequest(
            "the envelope header's dsn must be a string".into(),
        )),
    }
}

/// Checks an envelope's credentials before a byte of its body (SPEC §8) and answers the
/// body to read. Without credentials in the headers or the query, only the envelope's first
/// line is read, for its dsn (a tunnel forwards envelopes so), within tight bounds.
async fn authorize_envelope(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    project: ProjectId,
    request: Request,
) -> Result<axum::body::Body, ApiError> {
    let outside = credentials(headers, query, None);
    let body = request.into_limited_body();
    if !outside.is_empty() {
        authorize(state, &outside, project).await?;
        return Ok(body);
    }
    let (header, rest) = read_header_line(headers, body).await?;
    let dsn_key = envelope_dsn(&header).ok().flatten().map(|(key, _)| key);
    authorize(state, &credentials(headers, None, dsn_key), project).await?;
    Ok(rest)
}

/// An envelope: event items are ingested (together, all or nothing), the rest skipped as
/// the body streams in (`envelope_body`).
pub(crate) async fn envelope(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let body = authorize_envelope(&state, &headers, query.as_deref(), project, request).await?;
    let envelope = match read_envelope(&headers, body, state.body_timeout()).await {
        Ok(envelope) => envelope,
        Err(BodyError::Refused(e)) => return Err(e),
        Err(BodyError::Malformed(e)) => return Err(ApiError::BadRequest(e.to_string())),
    };
    let (dsn_key, dsn_project) = envelope_dsn(&envelope.header)?.unzip();
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
    // Only event items were kept; `n` is the item's place among all of them.
    for item in envelope.items {
        let n = item.n;
        let mut event = sentry::parse_event(&item.payload)
            .map_err(|e| ApiError::BadRequest(format!("envelope item {n} (event): {e}")))?;
        // The SDK names the event in the envelope header when the payload does not.
        if event.event_id.is_none() {
            event.event_id = header_id.clone();
        }
        // The item's own bytes, kept whole as they were received.
        event.raw = Some(item.payload);
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
pub(crate) async fn preflight() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

/// The legacy store endpoint: the body is one event.
pub(crate) async fn store(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    // Credentials before a byte of the body (SPEC §8).
    authorize(
        &state,
        &credentials(&headers, query.as_deref(), None),
        project,
    )
    .await?;
    let DecodedBody(body) = DecodedBody::from_request(request, &state).await?;
    let mut event = sentry::parse_event(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    event.raw = Some(body);
    let accepted = state.ingestor().ingest(project, vec![event]).await?;
    Ok(answer(accepted.into_iter().next().map(|a| a.id)))
}
