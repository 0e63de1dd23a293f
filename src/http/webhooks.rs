//! Webhooks over HTTP with the project token: the same as `mesher webhook add|list|remove`
//! (SPEC §7), for a project's owner without shell access to the server.

use super::auth::{authorize_project, caller};
use super::body::{ApiPath as Path, DecodedBody, parse_json};
use crate::alerts::deliver::{self, TestSent};
use crate::alerts::payload;
use crate::error::ApiError;
use crate::model::webhook::WebhookAdded;
use crate::model::webhook::{self, DEFAULT_TRIGGERS, WebhookFormat};
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `GET /api/v1/projects/<id>/webhooks` → `{"webhooks": [...]}`, without secrets.
pub(crate) async fn list(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize_project(&state, &headers, query.as_deref(), project).await?;
    let hooks = state.store().list_webhooks(Some(project)).await?;
    let listed: Vec<Value> = hooks.iter().map(|h| h.to_json(false)).collect();
    Ok(Json(json!({ "webhooks": listed })))
}

fn string_field<'a>(body: &'a Value, name: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::BadRequest(format!(
            "field '{name}' must be a string"
        ))),
    }
}

/// The body's `on`: a list of triggers or a comma list, as the comma list; absent, the
/// default ones.
fn triggers(body: &Value) -> Result<String, ApiError> {
    match body.get("on") {
        None | Some(Value::Null) => Ok(DEFAULT_TRIGGERS.to_owned()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::BadRequest("field 'on' must be a list of strings".into())
                })
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(",")),
        Some(_) => Err(ApiError::BadRequest(
            "field 'on' must be a list of triggers or a comma list".into(),
        )),
    }
}

/// `POST /api/v1/projects/<id>/webhooks` with `{"url", "on"?, "format"?, "secret"?}` →
/// `201 {"webhook": {... with its secret}}`.
pub(crate) async fn add(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // The token before a byte of the body (SPEC §8).
    authorize_project(&state, &headers, query.as_deref(), project).await?;
    let DecodedBody(body) = DecodedBody::from_request(request, &state).await?;
    let body = parse_json(&body)?;
    if !body.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let url = string_field(&body, "url")?
        .ok_or_else(|| ApiError::BadRequest("field 'url' is required".into()))?;
    webhook::validate_url(url).map_err(ApiError::BadRequest)?;
    crate::alerts::target::check_url(url, state.webhook_allow()).map_err(ApiError::BadRequest)?;
    let on = webhook::parse_triggers(&triggers(&body)?).map_err(ApiError::BadRequest)?;
    let format = match string_field(&body, "format")? {
        None => WebhookFormat::Json,
        Some(f) => WebhookFormat::parse(f).map_err(ApiError::BadRequest)?,
    };
    let secret = match string_field(&body, "secret")? {
        Some("") => {
            return Err(ApiError::BadRequest(
                "field 'secret' must not be empty".into(),
            ));
        }
        Some(s) => s.to_owned(),
        None => crate::store::new_token(),
    };
    let hook = match state
        .store()
        .create_webhook(project, url, &on, format, &secret)
        .await?
    {
        WebhookAdded::Added(hook) => hook,
        WebhookAdded::NoProject => {
            return Err(ApiError::NotFound(format!("project {project} not found")));
        }
        WebhookAdded::Full => return Err(ApiError::BadRequest(webhook::too_many())),
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "webhook": hook.to_json(true) })),
    ))
}

/// `DELETE /api/v1/webhooks/<id>` → `{"id": ID, "removed": true}`.
pub(crate) async fn remove(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers, query.as_deref()).await?;
    let hook = state
        .store()
        .list_webhooks(None)
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("webhook {id} not found")))?;
    caller.require(&state, hook.project_id).await?;
    state.store().remove_webhook(id).await?;
    Ok(Json(json!({ "id": id, "removed": true })))
}

/// The alert a test delivery carries: an `action` and an `issue` shaped as a real alert's,
/// marked `"test": true`, so a receiver parses it as it will parse the real ones.
fn test_alert(project: i64) -> String {
    let now = crate::model::Millis::now();
    json!({
        "action": "new",
        "test": true,
        "issue": {
            "id": 0,
            "project_id": project,
            "title": "Test alert from Mesher",
            "culprit": "",
            "level": "info",
            "status": "unresolved",
            "event_count": 0,
            "first_seen": now,
            "last_seen": now,
        },
    })
    .to_string()
}

/// `POST /api/v1/webhooks/<id>/test`: one test delivery sent now (not stored, not retried)
/// → `{"status": N}` when the target answered 2xx; `502 {"error", "status"?}` when it
/// answered otherwise, could not be reached, or may not be (a forbidden address).
pub(crate) async fn test_send(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers, query.as_deref()).await?;
    let hook = state
        .store()
        .list_webhooks(None)
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("webhook {id} not found")))?;
    caller.require(&state, hook.project_id).await?;
    let alerts = [test_alert(hook.project_id)];
    let body = match hook.format {
        WebhookFormat::Json => payload::json_body(hook.project_id, &alerts),
        WebhookFormat::Slack => payload::slack_body(hook.project_id, &alerts, state.public_url()),
        WebhookFormat::Email => {
            return Err(ApiError::BadRequest(
                "an e-mail target has no test delivery".into(),
            ));
        }
    };
    let failed = |v: Value| (StatusCode::BAD_GATEWAY, Json(v)).into_response();
    Ok(
        match deliver::send_test(&hook, body, state.webhook_allow()).await {
            TestSent::Answered(status, _) if (200..300).contains(&status) => {
                Json(json!({ "status": status })).into_response()
            }
            TestSent::Answered(status, head) => {
                let mut error = format!("the target answered {status}");
                if !head.is_empty() {
                    error.push_str(": ");
                    error.push_str(&head);
                }
                failed(json!({ "error": error, "status": status }))
            }
            TestSent::Failed(why) => failed(json!({ "error": why })),
        },
    )
}

/// The signed-in member's e-mail target in `project` (403 for a non-member).
async fn email_target(
    state: &AppState,
    headers: &HeaderMap,
    project: i64,
) -> Result<String, ApiError> {
    let user = super::auth::signed_in(state, headers).await?;
    let target = format!("mailto:{}", user.email);
    super::auth::Caller::User(user)
        .require(state, project)
        .await?;
    Ok(target)
}

/// `{"project_id","email","on"}` of an e-mail target.
fn email_json(project: i64, target: &str, on: &[crate::model::IssueAction]) -> Value {
    let on: Vec<&str> = on.iter().map(|a| a.as_str()).collect();
    json!({ "project_id": project, "email": target.trim_start_matches("mailto:"), "on": on })
}

/// `GET /api/v1/projects/<id>/email-alerts` → the member's e-mail alerts (`on` empty: off).
pub(crate) async fn email_alerts(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let target = email_target(&state, &headers, project).await?;
    let on = match state.store().email_alert(project, &target).await? {
        Some(hook) => hook.on,
        None => Vec::new(),
    };
    Ok(Json(email_json(project, &target, &on)))
}

/// `PUT /api/v1/projects/<id>/email-alerts` `{"on":[…]}`: the signed-in member is mailed
/// these issue changes of the project (SPEC §9); again: replaces the list.
pub(crate) async fn set_email_alerts(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let target = email_target(&state, &headers, project).await?;
    let DecodedBody(body) = DecodedBody::from_request(request, &state).await?;
    let body = parse_json(&body)?;
    let on = webhook::parse_triggers(&triggers(&body)?).map_err(ApiError::BadRequest)?;
    if let Some(old) = state.store().email_alert(project, &target).await? {
        state.store().remove_webhook(old.id).await?;
    }
    let secret = crate::store::new_token();
    let added = state
        .store()
        .create_webhook(project, &target, &on, WebhookFormat::Email, &secret)
        .await?;
    match added {
        WebhookAdded::Added(_) => Ok(Json(email_json(project, &target, &on))),
        WebhookAdded::NoProject => Err(ApiError::NotFound(format!("project {project} not found"))),
        WebhookAdded::Full => Err(ApiError::BadRequest(format!(
            "project {project} has {} alert targets already",
            webhook::MAX_WEBHOOKS
        ))),
    }
}

/// `DELETE /api/v1/projects/<id>/email-alerts`: no more e-mail → 204.
pub(crate) async fn stop_email_alerts(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let target = email_target(&state, &headers, project).await?;
    if let Some(old) = state.store().email_alert(project, &target).await? {
        state.store().remove_webhook(old.id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
