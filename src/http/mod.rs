//! HTTP: one route table, grouped by audience; handlers stay thin.

pub mod auth;
pub mod body;
pub mod ingest;
pub mod ingest_ws;
pub mod issues;
pub mod ops;
pub mod stream_ws;

use crate::ingest::decode::MAX_RAW_BODY;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

/// The whole HTTP surface.
#[rustfmt::skip]
pub fn router(state: AppState) -> Router {
    Router::new()
        // Ingestion (ingest key).
        .route("/api/v1/events", post(ingest::post_event))
        .route("/api/v1/events/bulk", post(ingest::post_bulk))
        .route("/ingest", get(ingest_ws::upgrade))
        // Read API and issue state (project token).
        .route("/api/v1/projects/{id}/issues", get(issues::list))
        .route("/api/v1/projects/{id}/events", get(issues::project_events))
        .route("/api/v1/issues/{id}", get(issues::show))
        .route("/api/v1/issues/{id}/events", get(issues::issue_events))
        .route("/api/v1/issues/{id}/{action}", post(issues::change_status))
        // Live stream (project token).
        .route("/stream/projects/{id}", get(stream_ws::upgrade))
        // Operations.
        .route("/healthz", get(ops::healthz))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_RAW_BODY))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
