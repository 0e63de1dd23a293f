//! The `/api/0/…` routes the unmodified `sentry-cli` uses to upload source maps (SPEC §10):
//! the chunk-upload options and the chunks, the artifact-bundle assembly, and the release
//! calls. A project's token or a member's API token, as `Authorization: Bearer`; the org
//! slug is any. Errors carry Sentry's `detail` beside Mesher's `error`, which is what
//! `sentry-cli` prints.

use super::auth::{Caller, caller, token};
use super::body::ApiPath as Path;
use crate::artifacts::{self, CHUNKS_PER_REQUEST, UploadError, UploadedChunk};
use crate::error::ApiError;
use crate::model::Millis;
use crate::model::artifact::BundleTarget;
use crate::state::AppState;
use crate::store::ProjectId;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// An error answered as Sentry does (`detail`), with Mesher's `error` too.
pub(crate) struct Refusal(ApiError);

impl<E: Into<ApiError>> From<E> for Refusal {
    fn from(e: E) -> Refusal {
        Refusal(e.into())
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> ApiError {
        match e {
            UploadError::Invalid(why) => ApiError::BadRequest(why),
            UploadError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let message = self.0.to_string();
        let mut response = self.0.into_response();
        response.headers_mut().remove(header::CONTENT_LENGTH);
        *response.body_mut() =
            Body::from(json!({ "detail": message, "error": message }).to_string());
        response
    }
}

/// The caller of an upload route: a token (project or API token), never a session
/// cookie, as these routes are for tools; 401 without one.
async fn tool_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if token(headers, None).is_none() {
        return Err(ApiError::Unauthorized(
            "missing token: pass --auth-token <project token or API token> to sentry-cli".into(),
        ));
    }
    caller(state, headers, None).await
}

/// The projects an upload names (by id or name), each one the caller may use: 403 for
/// any other. None named: a project token's own project.
async fn projects_for(
    state: &AppState,
    caller: &Caller,
    named: &[String],
) -> Result<Vec<ProjectId>, ApiError> {
    if named.is_empty() {
        return match caller {
            Caller::Project(p) => Ok(vec![*p]),
            Caller::User(_) => Err(ApiError::BadRequest(
                "name the project with --project <id or name>".into(),
            )),
        };
    }
    let mut ids = Vec::with_capacity(named.len());
    for name in named {
        let id = match state.store().project_named(name).await? {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Err(ApiError::Forbidden(format!(
                    "no project '{name}' that this token may use"
                )));
            }
            Err(_) => {
                return Err(ApiError::BadRequest(format!(
                    "several projects are named '{name}': name it by its id"
                )));
            }
        };
        caller.require(state, id).await?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// `GET /api/0/organizations/<org>/chunk-upload/`: how to upload (chunk size, SHA-1,
/// gzip, artifact bundles).
pub(crate) async fn chunk_options(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, Refusal> {
    tool_caller(&state, &headers).await?;
    Ok(Json(artifacts::chunk_options(&org)))
}

/// `POST /api/0/organizations/<org>/chunk-upload/`: multipart, one part per chunk (`file`,
/// or `file_gzip` gzip-compressed), each part's filename its SHA-1 → `200 {}`; a chunk
/// that does not match its name → 400 naming it.
pub(crate) async fn upload_chunks(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, Refusal> {
    tool_caller(&state, &headers).await?;
    let mut form = form.map_err(|e| ApiError::BadRequest(format!("chunk upload: {e}")))?;
    let mut chunks = Vec::new();
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let gzip = match field.name() {
            Some("file") => false,
            Some("file_gzip") => true,
            _ => continue,
        };
        let name = field.file_name().unwrap_or_default().to_owned();
        let data = field.bytes().await.map_err(multipart_error)?;
        chunks.push(UploadedChunk { name, gzip, data });
        if chunks.len() > CHUNKS_PER_REQUEST {
            return Err(ApiError::BadRequest(format!(
                "at most {CHUNKS_PER_REQUEST} chunks per request"
            ))
            .into());
        }
    }
    artifacts::receive_chunks(state.store(), chunks).await?;
    Ok(Json(json!({})))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("chunk upload: {}", e.body_text()))
    } else {
        ApiError::BadRequest(format!("chunk upload: {}", e.body_text()))
    }
}

/// What `sentry-cli` asks to assemble.
#[derive(Deserialize)]
struct AssembleRequest {
    checksum: String,
    #[serde(default)]
    chunks: Vec<String>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    dist: Option<String>,
}

/// `POST /api/0/organizations/<org>/artifactbundle/assemble/` →
/// `{"state","missingChunks","detail"}`.
pub(crate) async fn assemble(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Refusal> {
    let caller = tool_caller(&state, &headers).await?;
    let request: AssembleRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid assemble request: {e}")))?;
    let target = BundleTarget {
        projects: projects_for(&state, &caller, &request.projects).await?,
        checksum: request.checksum,
        release: request.version.filter(|v| !v.is_empty()),
        dist: request.dist.filter(|d| !d.is_empty()),
    };
    let answer = artifacts::assemble(state.store(), &target, &request.chunks).await?;
    Ok(Json(serde_json::to_value(answer).unwrap_or_default()))
}

/// A release as `releases new`/`finalize` send it.
#[derive(Deserialize, Default)]
struct ReleaseBody {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default, rename = "dateReleased")]
    date_released: Option<String>,
}

/// `POST /api/0/organizations/<org>/releases/` (`{"version","projects"}`) → 201 the
/// release. Mesher keeps no release records (events name their release), so this checks
/// the token and the projects and answers as Sentry would.
pub(crate) async fn new_release(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    release_call(&state, &headers, &body, None, None, StatusCode::CREATED).await
}

/// `POST /api/0/projects/<org>/<project>/releases/` (sentry-cli 2.x for one project).
pub(crate) async fn new_project_release(
    State(state): State<AppState>,
    Path((_, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let p = Some(project);
    release_call(&state, &headers, &body, p, None, StatusCode::CREATED).await
}

/// `PUT /api/0/organizations/<org>/releases/<version>/` (`releases finalize` sends
/// `dateReleased`) → 200 the release.
pub(crate) async fn update_release(
    State(state): State<AppState>,
    Path((_, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let v = Some(version);
    release_call(&state, &headers, &body, None, v, StatusCode::OK).await
}

/// `PUT /api/0/projects/<org>/<project>/releases/<version>/` (sentry-cli 2.x).
pub(crate) async fn update_project_release(
    State(state): State<AppState>,
    Path((_, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let (p, v) = (Some(project), Some(version));
    release_call(&state, &headers, &body, p, v, StatusCode::OK).await
}

/// A release call checked (token, projects) and answered with the release.
async fn release_call(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    project: Option<String>,
    version: Option<String>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let caller = tool_caller(state, headers).await?;
    let mut release: ReleaseBody = if body.is_empty() {
        ReleaseBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid release: {e}")))?
    };
    release.projects.extend(project);
    projects_for(state, &caller, &release.projects).await?;
    let Some(version) = version.or(release.version).filter(|v| !v.is_empty()) else {
        return Err(ApiError::BadRequest("a release needs a version".into()).into());
    };
    let now = Millis::now().to_rfc3339();
    let answer = json!({
        "version": version, "shortVersion": version, "url": null,
        "dateCreated": now, "dateReleased": release.date_released,
        "lastEvent": null, "newGroups": 0, "projects": [],
    });
    Ok((status, Json(answer)).into_response())
}
