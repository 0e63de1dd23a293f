//! Operations endpoints (SPEC §6).

use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};

/// `GET /healthz`: 200 when the database answers, else 503 naming it.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store().ping().await {
        Ok(()) => Ok(Json(json!({ "status": "ok" }))),
        Err(e) => Err(ApiError::Unavailable {
            reason: format!("database unavailable: {e}"),
            retry_after: 1,
        }),
    }
}

/// Any unknown route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// A known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
