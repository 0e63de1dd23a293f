//! # Mesher
//!
//! A self-hosted error-event server whose dashboards update live.
//!
//! ## How an event flows
//! 1. `http::ingest` (or `http::ingest_ws`) authenticates the ingest key, decodes the body
//!    (`ingest::decode`: gzip/deflate/br, 1 MiB) and validates it (`model::event`).
//! 2. `ingest::Ingestor` applies the project's rate limit and groups the event
//!    (`grouping`: fingerprint chain, normalization, title, culprit).
//! 3. `ingest::writer` commits it with whatever else is waiting, in one transaction
//!    (`store`), and answers 202 only after the commit.
//! 4. After the commit the writer publishes domain messages (`bus`): event stored, issue
//!    changed, count changed. The stream layer subscribes to them.
//!
//! The pure core (`model`, `grouping`) does no I/O; `store` hides the database behind one
//! handle (`Store`); `http` handlers are thin.

pub(crate) mod accounts;
pub mod admin;
pub mod alerts;
pub mod app;
pub(crate) mod artifacts;
pub(crate) mod broker;
pub mod bus;
pub mod config;
pub mod credentials;
pub(crate) mod error;
pub(crate) mod grouping;
pub(crate) mod http;
pub(crate) mod ingest;
pub(crate) mod log_limit;
pub mod model;
pub mod people;
mod progress;
mod redact;
pub mod retention;
pub mod sentry;
pub mod sourcemaps;
pub(crate) mod sso;
pub mod state;
pub mod store;
pub(crate) mod stream;
pub(crate) mod task;
pub(crate) mod telemetry;
pub(crate) mod ws;

pub use app::run;
pub use config::{DatabaseUrl, ServeConfig};
