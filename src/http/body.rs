//! The request-body extractor: size limit, decompression, JSON errors.

use crate::error::ApiError;
use crate::ingest::decode::{DecodeError, Encoding, decode_body, encodings};
use crate::state::AppState;
use axum::RequestExt;
use axum::body::{Body, BodyDataStream};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::time::Duration;

/// A request body, decompressed and at most 1 MiB. Its `Content-Encoding` is checked
/// before a byte is read (415), and a body that goes `--body-timeout-ms` without sending a
/// byte is answered 408 instead of holding a connection and a handler forever.
///
/// Handlers take it after they checked the request's credentials (SPEC §8: nothing of the
/// body is read for a client without them).
pub(crate) struct DecodedBody(pub Bytes);

impl FromRequest<AppState> for DecodedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let codings = content_encodings(req.headers())?;
        let raw = read_all(req.into_limited_body(), state.body_timeout()).await?;
        Ok(DecodedBody(decode_body(&codings, raw)?))
    }
}

/// The codings of a request's `Content-Encoding` (at most two; 415 otherwise).
pub(super) fn content_encodings(headers: &HeaderMap) -> Result<Vec<Encoding>, ApiError> {
    let value = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| ApiError::BadRequest("Content-Encoding is not valid text".into()))?;
    Ok(encodings(value)?)
}

/// The whole body (already limited by the route's `DefaultBodyLimit`), each piece
/// arriving within `idle` of the one before.
async fn read_all(body: Body, idle: Duration) -> Result<Bytes, ApiError> {
    let mut frames = body.into_data_stream();
    let mut all = BytesMut::new();
    while let Some(frame) = next_within(&mut frames, idle).await? {
        all.extend_from_slice(&frame.map_err(body_error)?);
    }
    Ok(all.freeze())
}

/// The next piece of a body, or 408 when none came within `idle`.
pub(super) async fn next_within(
    frames: &mut BodyDataStream,
    idle: Duration,
) -> Result<Option<Result<Bytes, axum::Error>>, ApiError> {
    tokio::time::timeout(idle, frames.next())
        .await
        .map_err(|_| {
            ApiError::RequestTimeout(format!(
                "the request body sent nothing for {} ms",
                idle.as_millis()
            ))
        })
}

/// A body that could not be read: over the route's limit (413), or broken off (400).
fn body_error(e: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge(DecodeError::TooLarge.to_string());
        }
        source = s.source();
    }
    ApiError::BadRequest(format!("could not read the request body: {e}"))
}

/// Parses JSON, naming where it broke.
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

/// `Path` whose rejection is a JSON 400.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct ApiPath<T>(pub T);
