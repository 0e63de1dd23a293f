//! Operations endpoints (SPEC §6).

use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry;
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};

/// `GET /healthz`: `200 {"status":"ok"}` when the database answers (SPEC §6), else 503
/// naming it. With Redis, the body also says whether it is reachable; a node cut off from
/// Redis still serves its own streams and ingestion, so it stays `"ok"` for load balancers.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if let Err(e) = state.store().ping().await {
        let redis = match state.redis() {
            Some(r) if r.is_up() => "; redis up",
            Some(_) => "; redis unreachable",
            None => "",
        };
        return Err(ApiError::Unavailable {
            reason: format!("database unavailable: {e}{redis}"),
            retry_after: 1,
        });
    }
    Ok(Json(match state.redis() {
        None => json!({ "status": "ok", "database": "up" }),
        Some(r) if r.is_up() => json!({ "status": "ok", "database": "up", "redis": "up" }),
        Some(_) => json!({ "status": "ok", "database": "up", "redis": "unreachable" }),
    }))
}

/// `GET /metrics`: Prometheus text (SPEC §6). Gauges of the present are read here.
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
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
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// A known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
