//! Signing in and out, the signed-in user, and their API tokens (SPEC §9).

use super::auth::{SESSION_COOKIE, session_cookie, signed_in, token};
use super::body::{DecodedBody, parse_json};
use crate::accounts::SignInError;
use crate::error::ApiError;
use crate::model::user::{check_password, new_api_token};
use crate::state::AppState;
use crate::store::hash_token;
use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The JSON object of a request's body.
async fn json_body(request: Request, state: &AppState) -> Result<Value, ApiError> {
    let DecodedBody(body) = DecodedBody::from_request(request, state).await?;
    let v = parse_json(&body)?;
    if !v.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    Ok(v)
}

/// Field `name` of `body`, a string.
fn text<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest(format!("field '{name}' (a string) is required")))
}

/// The session cookie: set with `secret` for the session's lifetime, or expired (`None`).
pub(super) fn cookie(state: &AppState, secret: Option<&str>) -> HeaderValue {
    let secure = if state.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let (value, age) = match secret {
        Some(s) => (s, crate::store::SESSION_LIFETIME.as_secs()),
        None => ("", 0),
    };
    let c =
        format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={age}{secure}");
    HeaderValue::from_str(&c).expect("a cookie of hex digits is a header value")
}

/// `POST /api/v1/session` `{"email","password"}` → `200 {"user"}` with the session cookie.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let body = json_body(request, &state).await?;
    let (email, password) = (text(&body, "email")?, text(&body, "password")?);
    match state.accounts().sign_in(email, password).await {
        Ok((user, secret)) => {
            let mut response = Json(json!({ "user": user })).into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookie(&state, Some(&secret)));
            Ok(response)
        }
        Err(SignInError::Wrong) => Err(ApiError::Unauthorized("wrong e-mail or password".into())),
        Err(SignInError::Locked(retry_after)) => Err(ApiError::SignInLocked { retry_after }),
        Err(SignInError::Store(e)) => Err(e.into()),
    }
}

/// `DELETE /api/v1/session`: ends the session on the server → 204, the cookie expired.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(secret) = session_cookie(&headers) {
        state.accounts().sign_out(&secret).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, None));
    Ok(response)
}

/// `GET /api/v1/me` → `{"user","projects":[{"id","name","dsn","unresolved"}]}`.
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let user = signed_in(&state, &headers).await?;
    let mut projects = Vec::new();
    for p in state.store().projects_of(&user).await? {
        let unresolved = state.store().unresolved_count(p.id).await?;
        let dsn = crate::model::project::dsn(&p, state.public_url());
        projects.push(json!({ "id": p.id, "name": p.name, "dsn": dsn, "unresolved": unresolved }));
    }
    Ok(Json(json!({ "user": user, "projects": projects })))
}

/// `PUT /api/v1/me/password` `{"current","new"}` → 204: the signed-in user's password is
/// `new`, and every other session of theirs ends (the one that asked stays; by API token:
/// every session). A wrong `current` is 401 and counts as a failed sign-in (429 once the
/// e-mail is locked); a `new` of under 10 characters is 400.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let user = signed_in(&state, &headers).await?;
    // The session that asks stays signed in; a request with an API token keeps none.
    let keep = match token(&headers, None) {
        Some(_) => None,
        None => session_cookie(&headers),
    };
    let body = json_body(request, &state).await?;
    let (current, new) = (text(&body, "current")?, text(&body, "new")?);
    check_password(new).map_err(|e| ApiError::BadRequest(format!("the new password: {e}")))?;
    match state
        .accounts()
        .change_password(&user, current, new, keep.as_deref())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(SignInError::Wrong) => Err(ApiError::Unauthorized(
            "the current password is wrong".into(),
        )),
        Err(SignInError::Locked(retry_after)) => Err(ApiError::SignInLocked { retry_after }),
        Err(SignInError::Store(e)) => Err(e.into()),
    }
}

/// Longest API token name.
const MAX_TOKEN_NAME: usize = 200;

/// `POST /api/v1/me/tokens` `{"name"}` → `201 {"id","name","token"}` (the token shown once).
pub(crate) async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = signed_in(&state, &headers).await?;
    let body = json_body(request, &state).await?;
    let name = text(&body, "name")?.trim();
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME {
        return Err(ApiError::BadRequest(format!(
            "a token's name needs 1 to {MAX_TOKEN_NAME} characters"
        )));
    }
    let token = new_api_token();
    let made = state
        .store()
        .create_api_token(user.id, name, &hash_token(&token))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": made.id, "name": made.name, "token": token })),
    ))
}

/// `GET /api/v1/me/tokens` → `{"tokens":[{"id","name","created"}]}` (no secrets).
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let user = signed_in(&state, &headers).await?;
    let tokens = state.store().list_api_tokens(user.id).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

/// `DELETE /api/v1/me/tokens/<id>` → 204; 404 for none of the user's.
pub(crate) async fn delete_token(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let user = signed_in(&state, &headers).await?;
    match state.accounts().delete_api_token(user.id, id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::NotFound(format!("you have no API token {id}"))),
    }
}
