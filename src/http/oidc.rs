//! Sign-in by OpenID Connect (SPEC §9): `GET /auth/oidc/start` sends the browser to the
//! provider, `GET /auth/oidc/callback` signs it in. Every failure is a page that says why,
//! since a person, not a script, is looking at it.

use super::auth::cookie_value;
use crate::sso::{FLOW_LIFETIME, Flow, SsoError, safe_next};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

/// The cookie that carries a sign-in in progress (see [`crate::sso`]).
const FLOW_COOKIE: &str = "mesher_oidc";

/// `GET /api/v1/sign-in`: how one may sign in here, for the sign-in page.
pub(crate) async fn options(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "password": true, "sso": state.sso().is_some() }))
}

/// `GET /auth/oidc/start` query.
#[derive(Deserialize)]
pub(crate) struct Start {
    next: Option<String>,
}

/// `GET /auth/oidc/start?next=/…`: 303 to the provider, with the flow cookie.
pub(crate) async fn start(State(state): State<AppState>, Query(q): Query<Start>) -> Response {
    let Some(sso) = state.sso() else {
        return not_configured();
    };
    match sso.begin(safe_next(q.next.as_deref())).await {
        Ok((url, flow)) => {
            let age = FLOW_LIFETIME.as_secs();
            redirect(&url, &flow_cookie(&state, &flow.to_cookie(), age), None)
        }
        Err(e) => failure(&state, &e),
    }
}

/// `GET /auth/oidc/callback` query: a code and state, or the provider's error.
#[derive(Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback`: checks the flow, signs the user in and returns them to the
/// page they started from, with the session cookie.
pub(crate) async fn callback(
    State(state): State<AppState>,
    Query(q): Query<Callback>,
    headers: HeaderMap,
) -> Response {
    let Some(sso) = state.sso() else {
        return not_configured();
    };
    let result = async {
        let flow = cookie_value(&headers, FLOW_COOKIE)
            .and_then(|c| Flow::from_cookie(&c))
            .ok_or(SsoError::NoFlow)?;
        if let Some(error) = q.error {
            let why = q.error_description.map(|d| format!("{error}: {d}"));
            return Err(SsoError::Refused(why.unwrap_or(error)));
        }
        if !flow.state_is(q.state.as_deref().unwrap_or("")) {
            return Err(SsoError::StateMismatch);
        }
        let email = sso
            .finish(&flow, q.code.as_deref().ok_or(SsoError::NoCode)?)
            .await?;
        let signed_in = state
            .accounts()
            .sign_in_verified(&email, sso.may_create(&email))
            .await
            .map_err(|e| SsoError::Unreachable(format!("the database: {e}")))?;
        let (user, secret) = signed_in.ok_or(SsoError::NotAllowed(email))?;
        tracing::info!(user = user.id, "signed in by SSO");
        Ok((flow.next, secret))
    }
    .await;
    match result {
        Ok((next, secret)) => {
            let session = super::session::cookie(&state, Some(&secret));
            redirect(&next, &flow_cookie(&state, "", 0), Some(session))
        }
        Err(e) => failure(&state, &e),
    }
}

/// The flow cookie, set for `age` seconds (0: removed). Only `/auth/oidc` ever reads it.
fn flow_cookie(state: &AppState, value: &str, age: u64) -> HeaderValue {
    let secure = if state.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    // Lax: the browser comes back from the provider by a top-level GET, which Lax allows.
    let c = format!(
        "{FLOW_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/auth/oidc; Max-Age={age}{secure}"
    );
    HeaderValue::from_str(&c).expect("the flow cookie is printable ASCII")
}

/// A 303 to `to` with the cookies given.
fn redirect(to: &str, flow: &HeaderValue, session: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, location);
    }
    headers.append(header::SET_COOKIE, flow.clone());
    if let Some(s) = session {
        headers.append(header::SET_COOKIE, s);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_configured() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Single sign-on is not configured on this server (see --oidc-issuer).",
    )
}

/// The page for a failed sign-in; the flow cookie is removed, so a retry starts afresh.
fn failure(state: &AppState, e: &SsoError) -> Response {
    tracing::warn!(reason = %e, "SSO sign-in failed");
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = page(status, &format!("Sign-in failed: {e}."));
    response
        .headers_mut()
        .append(header::SET_COOKIE, flow_cookie(state, "", 0));
    response
}

/// A small HTML page with `message` and a link back to the sign-in page.
fn page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Mesher: sign-in</title><link rel=\"stylesheet\" href=\"/assets/dashboard.css\">\
         </head><body><main class=\"sso-failure\"><h1>Mesher</h1>\
         <p role=\"alert\" data-testid=\"sso-error\">{}</p>\
         <p><a href=\"/\">Back to sign-in</a></p></main></body></html>",
        escape(message)
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
