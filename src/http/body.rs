//! The request-body extractor: size limit, decompression, JSON errors.

use crate::error::ApiError;
use crate::ingest::decode::decode_body;
use crate::state::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;

/// A request body, decompressed and at most 1 MiB, that arrived within
/// `--body-timeout-ms` (a client that stalls mid-body gets 408 instead of holding a
/// connection and a handler forever).
pub struct DecodedBody(pub Bytes);

impl FromRequest<AppState> for DecodedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let encoding = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().map(str::to_owned))
            .transpose()
            .map_err(|_| ApiError::BadRequest("Content-Encoding is not valid text".into()))?;
        let limit = state.body_timeout();
        let raw = tokio::time::timeout(limit, Bytes::from_request(req, state))
            .await
            .map_err(|_| {
                ApiError::RequestTimeout(format!(
                    "the request body did not arrive within {} ms",
                    limit.as_millis()
                ))
            })??;
        Ok(DecodedBody(decode_body(encoding.as_deref(), raw)?))
    }
}

/// Parses JSON, naming where it broke.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

/// `Path` whose rejection is a JSON 400.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);
