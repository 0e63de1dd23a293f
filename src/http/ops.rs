//! Operations endpoints (SPEC §6).

use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `GET /healthz`: `200 {"status":"ok"}` when the database answers and the latest group
/// commit succeeded (SPEC §6, §8); else `503 {"status":"degraded","error":...}` naming
/// what is wrong: the database unreachable, or commits failing (a full disk, a database
/// file gone) though reads still work, until one succeeds again. With Redis, the body also
/// says whether it is reachable; a node cut off from Redis still serves its own streams
/// and ingestion, so it stays `"ok"` for load balancers.
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let redis = match state.redis() {
        None => None,
        Some(r) if r.is_up() => Some("up"),
        Some(_) => Some("unreachable"),
    };
    let (database, failure) = match state.store().ping().await {
        Err(e) => ("unavailable", Some(format!("database unavailable: {e}"))),
        Ok(()) => (
            "up",
            state
                .ingestor()
                .commit_health()
                .failure()
                .map(|e| format!("commits are failing: {e}")),
        ),
    };
    let mut body = json!({ "status": "ok", "database": database });
    if let Some(redis) = redis {
        body["redis"] = json!(redis);
    }
    let Some(error) = failure else {
        return Json(body).into_response();
    };
    body["status"] = json!("degraded");
    body["error"] = json!(error);
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        Json(body),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text (SPEC §6). Gauges of the present are read here.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let hub = state.hub();
    let (depth, max) = hub.outbox_depths();
    metrics::gauge!(telemetry::STREAM_CONNECTIONS).set(hub.connections() as f64);
    metrics::gauge!(telemetry::OUTBOX_DEPTH).set(depth as f64);
    metrics::gauge!(telemetry::OUTBOX_DEPTH_MAX).set(max as f64);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry::install().render(),
    )
}

/// Any unknown route.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// A known route with the wrong method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
