//! HTTP: one route table, grouped by audience; handlers stay thin.

pub(crate) mod artifacts;
pub(crate) mod auth;
pub(crate) mod body;
mod client_socket;
pub(crate) mod dashboard;
mod early_close;
pub(crate) mod envelope_body;
pub(crate) mod ingest;
pub(crate) mod ingest_ws;
pub(crate) mod issues;
pub(crate) mod listener;
mod oidc;
pub(crate) mod ops;
pub(crate) mod projects;
pub(crate) mod sentry;
pub(crate) mod session;
pub(crate) mod stream_ws;
pub(crate) mod webhooks;

use crate::ingest::decode::MAX_RAW_BODY;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post, put};
use envelope_body::MAX_ENVELOPE;
use tower::util::MapResponseLayer;
use tower_http::cors::{self, CorsLayer};
use tower_http::trace::TraceLayer;

/// The envelope route: its body is streamed (`envelope_body`), so it has its own limit,
/// over the router's 1 MiB.
fn envelope_route() -> MethodRouter<AppState> {
    post(sentry::envelope)
        .options(sentry::preflight)
        .layer(DefaultBodyLimit::max(MAX_ENVELOPE))
}

/// The Sentry endpoints, open to any origin as Sentry's are (browser SDKs).
#[rustfmt::skip]
fn sentry_routes() -> Router<AppState> {
    Router::new()
        .route("/api/{id}/envelope/", envelope_route())
        .route("/api/{id}/envelope", envelope_route())
        .route("/api/{id}/store/", post(sentry::store).options(sentry::preflight))
        .route("/api/{id}/store", post(sentry::store).options(sentry::preflight))
        .layer(
            CorsLayer::new()
                .allow_origin(cors::Any)
                .allow_methods([Method::POST])
                .allow_headers(cors::Any)
                .max_age(std::time::Duration::from_secs(3600)),
        )
}

/// The source-map upload routes `sentry-cli` uses (SPEC §10; a project or API token as
/// Bearer, never a cookie); the chunk upload has its own body limit, over the router's.
#[rustfmt::skip]
fn sentry_cli_routes() -> Router<AppState> {
    let chunk_limit = DefaultBodyLimit::max(crate::artifacts::MAX_REQUEST_SIZE + (1 << 20));
    Router::new()
        .route(
            "/api/0/organizations/{org}/chunk-upload/",
            get(artifacts::chunk_options).post(artifacts::upload_chunks).layer(chunk_limit),
        )
        .route("/api/0/organizations/{org}/artifactbundle/assemble/", post(artifacts::assemble))
        .route("/api/0/organizations/{org}/releases/", post(artifacts::new_release))
        .route("/api/0/organizations/{org}/releases/{version}/", put(artifacts::update_release))
        .route("/api/0/projects/{org}/{project}/releases/", post(artifacts::new_project_release))
        .route("/api/0/projects/{org}/{project}/releases/{version}/", put(artifacts::update_project_release))
}

/// Ingestion (ingest key): refused requests are counted by reason.
#[rustfmt::skip]
fn ingest_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", post(ingest::post_event))
        .route("/api/v1/events/bulk", post(ingest::post_bulk))
        .route("/ingest", get(ingest_ws::upgrade))
        // Sentry SDKs, with or without the trailing slash; browser SDKs post cross-origin,
        // so these answer CORS.
        .merge(sentry_routes())
        // tower's map, not `middleware::from_fn`: that one boxes the inner service and the
        // future of every request (measured with the trace layer below: the two cost ≈ 5%
        // of single-event ingest, docs/benchmarks-history.md, "two layers fewer").
        .route_layer(MapResponseLayer::new(count_rejection))
}

/// Counts an ingest request answered with an error, by the reason its status names.
fn count_rejection(response: Response) -> Response {
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        crate::telemetry::rejected(status.as_u16());
    }
    response
}

/// Whether request logs are wanted (`RUST_LOG=tower_http=debug`): the trace layer writes
/// only at DEBUG, and costs every request its span and timings even when silent.
fn requests_logged() -> bool {
    tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG)
}

/// The read API, issue states, webhooks and e-mail alerts (a project token, or a member's
/// session or API token), and the people and admin routes (SPEC §9); a signed-in browser's
/// requests that change anything must come from this server's pages (`auth::check_origin`).
#[rustfmt::skip]
fn api_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/projects/{id}/issues", get(issues::list))
        .route("/api/v1/projects/{id}/events", get(issues::project_events))
        .route("/api/v1/projects/{id}/events/{event_id}", get(issues::project_event))
        .route("/api/v1/issues/{id}", get(issues::show))
        .route("/api/v1/issues/{id}/events", get(issues::issue_events))
        .route("/api/v1/issues/{id}/tags", get(issues::issue_tags))
        .route("/api/v1/issues/{id}/stats", get(issues::issue_stats))
        .route("/api/v1/projects/{id}/stats", get(issues::project_stats))
        .route("/api/v1/issues/{id}/merge", post(issues::merge))
        .route("/api/v1/issues/{id}/{action}", post(issues::change_status))
        .route("/api/v1/projects/{id}/webhooks", get(webhooks::list).post(webhooks::add))
        .route("/api/v1/webhooks/{id}", delete(webhooks::remove))
        .route("/api/v1/webhooks/{id}/test", post(webhooks::test_send))
        .route(
            "/api/v1/projects/{id}/email-alerts",
            get(webhooks::email_alerts).put(webhooks::set_email_alerts).delete(webhooks::stop_email_alerts),
        )
        .route("/api/v1/session", post(session::sign_in).delete(session::sign_out))
        .route("/api/v1/sign-in", get(oidc::options))
        .route("/api/v1/me", get(session::me))
        .route("/api/v1/me/password", put(session::change_password))
        .route("/api/v1/me/tokens", get(session::list_tokens).post(session::create_token))
        .route("/api/v1/me/tokens/{id}", delete(session::delete_token))
        .route("/api/v1/projects", post(projects::create))
        .route("/api/v1/projects/{id}/rotate-token", post(projects::rotate_token))
        .route("/api/v1/projects/{id}/rotate-key", post(projects::rotate_key))
        .route("/api/v1/projects/{id}/members", get(projects::members))
        .route("/api/v1/projects/{id}/members/{email}", put(projects::add_member).delete(projects::remove_member))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::check_origin))
}

/// The whole HTTP surface.
#[rustfmt::skip]
pub(crate) fn router(state: AppState) -> Router {
    let routes = api_routes(&state)
        .merge(ingest_routes())
        .merge(sentry_cli_routes())
        // Live stream (project token).
        .route("/stream/projects/{id}", get(stream_ws::upgrade))
        // Operations.
        .route("/healthz", get(ops::healthz))
        // The dashboard page and its assets (SPEC §6).
        .route("/", get(dashboard::page))
        .route("/assets/{*path}", get(dashboard::asset))
        .route("/metrics", get(ops::metrics))
        // Sign-in by OpenID Connect (SPEC §9): the browser's round trip to the provider.
        .route("/auth/oidc/start", get(oidc::start))
        .route("/auth/oidc/callback", get(oidc::callback))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_RAW_BODY));
    let routes = if requests_logged() {
        // 5xx answers are logged once per kind and then counted (`log_limit`, in
        // `ApiError`), not again here for every request.
        routes.layer(
            TraceLayer::new_for_http()
                // The query's `token` and `sentry_key` values are logged as `***`.
                .make_span_with(crate::redact::RequestSpan)
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
    } else {
        routes
    };
    routes.with_state(state)
}
