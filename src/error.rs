//! `ApiError`: every failed request becomes `{"error": "..."}` with the right status and
//! headers. 5xx are logged as warnings, 4xx at debug level.

use crate::ingest::IngestError;
use crate::ingest::decode::DecodeError;
use crate::ingest::rate_limit::retry_after_secs;
use crate::log_limit::Emit;
use crate::store::StoreError;
use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An HTTP error answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 408: the body did not arrive in time; the connection is closed.
    #[error("{0}")]
    RequestTimeout(String),
    /// 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429, with `Retry-After` and `X-Sentry-Rate-Limits`.
    #[error("rate limit exceeded for this project; retry after {retry_after} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 429 for a sign-in after too many failures, with `Retry-After`.
    #[error("too many failed sign-ins for this e-mail; retry after {retry_after} s")]
    SignInLocked {
        /// Seconds until the oldest failure leaves the window.
        retry_after: u64,
    },
    /// 503, with `Retry-After`.
    #[error("{reason}")]
    Unavailable {
        /// What is wrong.
        reason: String,
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl ApiError {
    /// The status code.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } | ApiError::SignInLocked { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl ApiError {
    /// Seconds the client should wait before retrying (429 and 503).
    pub(crate) fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after }
            | ApiError::SignInLocked { retry_after }
            | ApiError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // One line with the cause, then a count every 10 s (`log_limit`).
            match crate::log_limit::check(server_error_kind(status)) {
                Emit::First => tracing::warn!(%status, error = %self, "request failed"),
                Emit::Summary(n) => tracing::warn!(
                    %status,
                    failures = n,
                    error = %self,
                    "requests still failing with {status}: {n} in the last {:?}",
                    crate::log_limit::WINDOW
                ),
                Emit::Quiet => {}
            }
        } else {
            tracing::debug!(%status, error = %self, "request refused");
        }
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                // Sentry SDKs read this: wait `retry_after` s for every category.
                if let Ok(v) = HeaderValue::from_str(&format!("{retry_after}::project")) {
                    headers.insert("x-sentry-rate-limits", v);
                }
            }
            ApiError::Unavailable { retry_after, .. } | ApiError::SignInLocked { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            // The unread rest of the body is still on the wire: the connection cannot be
            // reused.
            ApiError::RequestTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// The `log_limit` kind of a 5xx answer.
fn server_error_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        503 => "answered 503",
        500 => "answered 500",
        _ => "answered 5xx",
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match crate::log_limit::check("storage error") {
            Emit::First => tracing::error!(error = %e, "storage error"),
            Emit::Summary(n) => tracing::error!(
                failures = n,
                error = %e,
                "storage errors: {n} in the last {:?}",
                crate::log_limit::WINDOW
            ),
            Emit::Quiet => {}
        }
        ApiError::Unavailable {
            reason: "storage unavailable; retry shortly".into(),
            retry_after: 1,
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::RateLimited(wait) => ApiError::RateLimited {
                retry_after: retry_after_secs(wait),
            },
            other => ApiError::Unavailable {
                reason: other.to_string(),
                retry_after: 1,
            },
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::TooLarge => ApiError::PayloadTooLarge(e.to_string()),
            DecodeError::Unsupported(_) | DecodeError::TooManyEncodings => {
                ApiError::UnsupportedMediaType(e.to_string())
            }
            DecodeError::Corrupt { .. } => ApiError::BadRequest(e.to_string()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(DecodeError::TooLarge.to_string())
        } else {
            ApiError::BadRequest(format!(
                "could not read the request body: {}",
                r.body_text()
            ))
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}
