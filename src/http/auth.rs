//! Credentials: ingest keys (SPEC §2) and project tokens (SPEC §3), found where a
//! request carries them and checked against the key directory (`crate::credentials`),
//! which answers from memory: no database read per request; and a signed-in user's
//! session cookie or API token (SPEC §9), checked through `crate::accounts`.

use crate::credentials::Unavailable;
use crate::error::ApiError;
use crate::model::user::User;
use crate::state::AppState;
use crate::store::ProjectId;
use axum::http::{HeaderMap, header};

/// The first value of query parameter `name`.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `sentry_key` from a `Sentry sentry_key=..., sentry_version=7` header value.
pub(crate) fn parse_sentry_auth(value: &str) -> Option<String> {
    let rest = value.trim();
    let rest = rest
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("sentry "))
        .map(|_| &rest[7..])?;
    rest.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == "sentry_key").then(|| v.trim().to_owned())
    })
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then(|| value[7..].trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Where a request may carry an ingest key, in order of precedence, each with what it
/// holds: `X-Sentry-Auth`, `Authorization` (Sentry's own scheme or Bearer), `?sentry_key=`.
pub(crate) fn key_sources(
    headers: &HeaderMap,
    query: Option<&str>,
) -> [(&'static str, Option<String>); 3] {
    let sentry_header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_sentry_auth)
    };
    [
        ("X-Sentry-Auth", sentry_header("x-sentry-auth")),
        (
            "Authorization",
            sentry_header("authorization").or_else(|| bearer(headers)),
        ),
        ("?sentry_key=", query_param(query, "sentry_key")),
    ]
}

/// The ingest key from the first of [`key_sources`] that has one.
pub(crate) fn ingest_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    key_sources(headers, query)
        .into_iter()
        .find_map(|(_, key)| key)
        .filter(|k| !k.is_empty())
}

/// The project a request's ingest key belongs to; 401 when missing or unknown.
pub(crate) async fn ingest_project(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<ProjectId, ApiError> {
    let key = ingest_key(headers, query).ok_or_else(|| {
        ApiError::Unauthorized(
            "missing ingest key: send X-Sentry-Auth: Sentry sentry_key=<key>, Authorization: Bearer <key>, or ?sentry_key=<key>"
                .into(),
        )
    })?;
    project_for_key(state, &key).await
}

/// The project an ingest key belongs to; 401 when the key is unknown (or is not 32
/// lowercase hex digits, which no key is).
pub(crate) async fn project_for_key(state: &AppState, key: &str) -> Result<ProjectId, ApiError> {
    state
        .credentials()
        .key_project(key)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::Unauthorized("unknown ingest key".into()))
}

/// 503: the directory could not be reloaded to check an unknown credential.
fn unavailable(_: Unavailable) -> ApiError {
    ApiError::Unavailable {
        reason: "storage unavailable; retry shortly".into(),
        retry_after: 1,
    }
}

/// The project token from `Authorization: Bearer` or `?token=`.
pub(crate) fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    bearer(headers)
        .or_else(|| query_param(query, "token"))
        .filter(|t| !t.is_empty())
}

/// The project `token` belongs to, with the token's hash (what a connection opened with
/// it remembers, to be closed when the token is replaced); 401 when it is unknown.
pub(crate) async fn token_owner(
    state: &AppState,
    token: &str,
) -> Result<(ProjectId, String), ApiError> {
    state
        .credentials()
        .token_project(token)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::Unauthorized("invalid project token".into()))
}

/// Fails with 403 unless `owner` (the token's project) is `project`.
pub(crate) fn require_project(owner: ProjectId, project: ProjectId) -> Result<(), ApiError> {
    if owner != project {
        return Err(ApiError::Forbidden(format!(
            "this token does not belong to project {project}"
        )));
    }
    Ok(())
}

/// Checks that the request may use `project`: its token, or a member's (any admin's)
/// session or API token. 401 when the credential is missing or unknown, 403 when it is
/// another project's or its user is not a member.
pub(crate) async fn authorize_project(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    project: ProjectId,
) -> Result<(), ApiError> {
    caller(state, headers, query)
        .await?
        .require(state, project)
        .await
}

/// The cookie that carries a session's secret.
pub(crate) const SESSION_COOKIE: &str = "mesher_session";

/// The prefix of API tokens (project tokens are hex).
const API_TOKEN_PREFIX: &str = "mshr_";

/// The session secret from the request's `Cookie` headers.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The value of cookie `wanted` from the request's `Cookie` headers, if not empty.
pub(crate) fn cookie_value(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == wanted && !value.is_empty()).then(|| value.to_owned())
        })
}

/// Who a request acts as.
pub(crate) enum Caller {
    /// A project token's holder: that project only.
    Project(ProjectId),
    /// A signed-in user (by session or API token).
    User(User),
}

/// The request's caller: a project token or API token (Bearer or `?token=`), else the
/// session cookie; 401 when none is there or it is unknown.
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Caller, ApiError> {
    if let Some(t) = token(headers, query) {
        if t.starts_with(API_TOKEN_PREFIX) {
            let user = state.accounts().api_token_user(&t).await?;
            return user
                .map(Caller::User)
                .ok_or_else(|| ApiError::Unauthorized("invalid API token".into()));
        }
        return Ok(Caller::Project(token_owner(state, &t).await?.0));
    }
    let Some(secret) = session_cookie(headers) else {
        return Err(ApiError::Unauthorized(
            "missing project token: send Authorization: Bearer <token> or ?token=<token>".into(),
        ));
    };
    let user = state.accounts().session_user(&secret).await?;
    user.map(Caller::User)
        .ok_or_else(|| ApiError::Unauthorized("your session has ended: sign in again".into()))
}

impl Caller {
    /// 403 unless the caller may use `project`.
    pub(crate) async fn require(
        &self,
        state: &AppState,
        project: ProjectId,
    ) -> Result<(), ApiError> {
        match self {
            Caller::Project(owner) => require_project(*owner, project),
            Caller::User(user) if state.accounts().may_use(user, project).await? => Ok(()),
            Caller::User(_) => Err(ApiError::Forbidden(format!(
                "you are not a member of project {project}"
            ))),
        }
    }
}

/// The signed-in user a request acts as (session or API token): 401 otherwise.
pub(crate) async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    match caller(state, headers, None).await {
        Ok(Caller::User(u)) => Ok(u),
        Ok(Caller::Project(_)) | Err(_) => Err(ApiError::Unauthorized(
            "sign in first (POST /api/v1/session), or send an API token".into(),
        )),
    }
}

/// 403 for a request that changes something (any method but GET/HEAD/OPTIONS), acts by the
/// session cookie (no token) and does not come from this server's origin: its
/// `--public-url`, or the `Host` it was reached at. So another site cannot act with a
/// signed-in user's cookie.
pub(crate) async fn check_origin(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let headers = request.headers();
    let by_cookie =
        session_cookie(headers).is_some() && token(headers, request.uri().query()).is_none();
    if !safe && by_cookie && !same_origin(state.public_url(), headers) {
        return ApiError::Forbidden(
            "a signed-in request that changes anything must come from this server's pages (Origin)"
                .into(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether the request's `Origin` is `public_url`'s origin or `<scheme>://<Host>`.
fn same_origin(public_url: &str, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let public = public_url.trim_end_matches('/');
    let public_origin = match public.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or("")),
        None => public.to_owned(),
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    origin.eq_ignore_ascii_case(&public_origin)
        || host.is_some_and(|h| {
            origin.eq_ignore_ascii_case(&format!("http://{h}"))
                || origin.eq_ignore_ascii_case(&format!("https://{h}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentry_auth_header() {
        assert_eq!(
            parse_sentry_auth("Sentry sentry_version=7, sentry_client=x/1.0, sentry_key=abc")
                .as_deref(),
            Some("abc")
        );
        assert_eq!(parse_sentry_auth("Bearer abc"), None);
        assert_eq!(parse_sentry_auth("Sentry sentry_version=7"), None);
    }

    #[test]
    fn origins_match_the_public_url_or_the_host() {
        let mut h = HeaderMap::new();
        assert!(!same_origin("https://mesher.example.com/", &h), "no Origin");
        h.insert(
            header::ORIGIN,
            "https://mesher.example.com".parse().unwrap(),
        );
        assert!(same_origin("https://mesher.example.com/x", &h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin("https://mesher.example.com", &h));
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin("https://mesher.example.com", &h));
    }

    #[test]
    fn the_session_is_read_from_any_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; mesher_session=abc".parse().unwrap());
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn key_sources() {
        let mut h = HeaderMap::new();
        assert_eq!(
            ingest_key(&h, Some("a=1&sentry_key=q%20k")).as_deref(),
            Some("q k")
        );
        h.insert(header::AUTHORIZATION, "Bearer bk".parse().unwrap());
        assert_eq!(ingest_key(&h, Some("sentry_key=qk")).as_deref(), Some("bk"));
        h.insert("x-sentry-auth", "Sentry sentry_key=sk".parse().unwrap());
        assert_eq!(ingest_key(&h, None).as_deref(), Some("sk"));
        assert_eq!(ingest_key(&HeaderMap::new(), Some("sentry_key=")), None);
    }
}
