//! The admin routes (SPEC §9): create a project, rotate its token or ingest key, and say
//! who may use it. Every one needs an admin's session or API token.

use super::auth::signed_in;
use super::body::{DecodedBody, parse_json};
use crate::error::ApiError;
use crate::model::project::dsn;
use crate::model::user::{User, normalize_email};
use crate::state::AppState;
use crate::store::{CreatedProject, MemberChange, Project};
use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// Longest project name.
const MAX_NAME_CHARS: usize = 200;

/// The signed-in admin; 401 without a user, 403 for one who is not an admin.
async fn admin(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let user = signed_in(state, headers).await?;
    if !user.admin {
        return Err(ApiError::Forbidden("only an admin may do this".into()));
    }
    Ok(user)
}

/// A project as `project create` prints it.
fn shown(state: &AppState, p: &Project) -> Value {
    json!({ "id": p.id, "name": p.name, "ingest_key": p.ingest_key, "dsn": dsn(p, state.public_url()) })
}

/// `POST /api/v1/projects` `{"name"}` → `201` the project with its token and DSN.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admin(&state, &headers).await?;
    let DecodedBody(body) = DecodedBody::from_request(request, &state).await?;
    let body = parse_json(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "field 'name' needs 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    let CreatedProject { project, token } = state.store().create_project(name).await?;
    let mut v = shown(&state, &project);
    v["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(v)))
}

/// `POST /api/v1/projects/<id>/rotate-token` → `{"id","name","token"}`; the old token is
/// refused within 5 s on every node.
pub(crate) async fn rotate_token(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    admin(&state, &headers).await?;
    let CreatedProject { project, token } = state
        .store()
        .rotate_token(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {id} not found")))?;
    Ok(Json(
        json!({ "id": project.id, "name": project.name, "token": token }),
    ))
}

/// `POST /api/v1/projects/<id>/rotate-key` → the project with its new key and DSN.
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    admin(&state, &headers).await?;
    let project = state
        .store()
        .rotate_ingest_key(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {id} not found")))?;
    Ok(Json(shown(&state, &project)))
}

/// `PUT|DELETE /api/v1/projects/<id>/members/<email>` → `{"project_id","email","member"}`.
async fn change_member(
    state: &AppState,
    headers: &HeaderMap,
    (id, email): (i64, String),
    add: bool,
) -> Result<Json<Value>, ApiError> {
    admin(state, headers).await?;
    let email = normalize_email(&email).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let change = state.store().set_member(id, &email, add).await?;
    state.accounts().memberships_changed();
    match change {
        MemberChange::Done => Ok(Json(
            json!({ "project_id": id, "email": email, "member": add }),
        )),
        MemberChange::NoProject => Err(ApiError::NotFound(format!("project {id} not found"))),
        MemberChange::NoUser => Err(ApiError::NotFound(format!("no user with e-mail {email}"))),
    }
}

/// `PUT /api/v1/projects/<id>/members/<email>`: the user may use the project.
pub(crate) async fn add_member(
    State(state): State<AppState>,
    Path(member): Path<(i64, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    change_member(&state, &headers, member, true).await
}

/// `DELETE /api/v1/projects/<id>/members/<email>`: the user may no longer use it.
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Path(member): Path<(i64, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    change_member(&state, &headers, member, false).await
}

/// `GET /api/v1/projects/<id>/members` → `{"members":[{"id","email","admin"}]}`.
pub(crate) async fn members(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    admin(&state, &headers).await?;
    if !state.store().project_exists(id).await? {
        return Err(ApiError::NotFound(format!("project {id} not found")));
    }
    Ok(Json(
        json!({ "members": state.store().list_members(id).await? }),
    ))
}
