//! Credentials: ingest keys (SPEC §2) and project tokens (SPEC §3), found where a
//! request carries them and checked against the key directory (`crate::credentials`),
//! which answers from memory: no database read per request.

use crate::credentials::Unavailable;
use crate::error::ApiError;
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

/// The project whose token the request carries: 401 when missing or unknown.
pub(crate) async fn token_project(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<ProjectId, ApiError> {
    let token = token(headers, query).ok_or_else(|| {
        ApiError::Unauthorized(
            "missing project token: send Authorization: Bearer <token> or ?token=<token>".into(),
        )
    })?;
    Ok(token_owner(state, &token).await?.0)
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

/// Checks that the request carries `project`'s token: 401 when missing or unknown, 403
/// when it is another project's.
pub(crate) async fn authorize_project(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    project: ProjectId,
) -> Result<(), ApiError> {
    require_project(token_project(state, headers, query).await?, project)
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
