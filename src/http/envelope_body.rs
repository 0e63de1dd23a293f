//! The envelope route's body (SPEC §2.2): up to 100 MiB after decompression, read as it
//! streams in, frame by frame, decompressed and scanned, so that only the header lines and
//! the event items (1 MiB each, 1 MiB together) are ever held; attachments and every other
//! item stream by.

use super::body::{content_encodings, next_within};
use crate::error::ApiError;
use crate::ingest::decode::MAX_BODY;
use crate::ingest::inflate::{InflateError, StreamDecoder};
use crate::sentry::scan::{Limits, ScanError, Scanner, size};
use crate::sentry::{EVENT_ITEM, Envelope, EnvelopeError};
use axum::body::Body;
use axum::http::HeaderMap;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The largest envelope, after decompression, and the largest body off the wire.
pub(crate) const MAX_ENVELOPE: usize = 100 << 20;

/// What an envelope may hold: in at most 100 MiB, events of at most 1 MiB each (as a
/// `/store/` body) and together (as an envelope was before it was streamed, so that one
/// request holds at most that), header lines of at most 1 MiB.
const LIMITS: Limits = Limits {
    envelope: MAX_ENVELOPE,
    item: MAX_BODY,
    line: MAX_BODY,
    kept: MAX_BODY,
};

/// Why an envelope body was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The envelope breaks the format: said only to a client with credentials.
    Malformed(EnvelopeError),
    /// Too large, too slow, badly encoded or cut off.
    Refused(ApiError),
}

impl From<ApiError> for BodyError {
    fn from(e: ApiError) -> Self {
        BodyError::Refused(e)
    }
}

impl From<ScanError> for BodyError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Malformed(e) => BodyError::Malformed(e),
            ScanError::TooLarge(msg) => BodyError::Refused(ApiError::PayloadTooLarge(msg)),
        }
    }
}

impl From<InflateError> for BodyError {
    fn from(e: InflateError) -> Self {
        match e {
            InflateError::Decode(e) => ApiError::from(e).into(),
            // The writer is the scanner's `Feed`: its error is a `ScanError`.
            InflateError::Sink(e) => match e.downcast::<ScanError>() {
                Ok(e) => e.into(),
                Err(e) => ApiError::BadRequest(e.to_string()).into(),
            },
        }
    }
}

/// The scanner as the decompressor's writer.
struct Feed(Scanner);

impl Write for Feed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.feed(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads `body` (already limited to [`MAX_ENVELOPE`] by the route's `DefaultBodyLimit`),
/// each piece within `idle` of the one before, keeping the event items.
pub(crate) async fn read_envelope(
    headers: &HeaderMap,
    body: Body,
    idle: Duration,
) -> Result<Envelope, BodyError> {
    let codings = content_encodings(headers)?;
    let scanner = Scanner::new(LIMITS, |ty| ty == EVENT_ITEM);
    let mut decoder = StreamDecoder::new(&codings, Feed(scanner));
    let mut frames = body.into_data_stream();
    while let Some(frame) = next_within(&mut frames, idle).await? {
        decoder.write(&frame.map_err(frame_error)?)?;
    }
    let Feed(scanner) = decoder.finish()?;
    Ok(scanner.finish()?)
}

/// The most of an envelope's header line read to find its `dsn` (SPEC §8: a client
/// without credentials costs little)…
const HEADER_LINE_MAX: usize = 8 * 1024;
/// …the most compressed bytes read for it…
const HEADER_RAW_MAX: usize = 64 * 1024;
/// …and how long it may take to arrive.
const HEADER_WAIT: Duration = Duration::from_secs(1);

/// For an envelope that carries its key only in its header's `dsn` (as a tunnel forwards
/// it): reads just that first line — at most 8 KiB of it, from at most 64 KiB off the
/// wire, within a second — and answers it with the body to read in full afterwards (the
/// pieces read so far first). A body that gives no header line in those bounds: 401.
pub(crate) async fn read_header_line(
    headers: &HeaderMap,
    body: Body,
) -> Result<(Map<String, Value>, Body), ApiError> {
    let no_key = || {
        ApiError::Unauthorized(
            "missing ingest key: send X-Sentry-Auth: Sentry sentry_key=<key>, ?sentry_key=<key>, or a dsn in the envelope's first line"
                .into(),
        )
    };
    // Every failure is the same 401: a client without credentials learns nothing of how
    // its body would have been read.
    let codings = content_encodings(headers).map_err(|_| no_key())?;
    let line = Arc::new(Mutex::new(Vec::new()));
    let mut decoder = StreamDecoder::new(&codings, FirstLine(line.clone()));
    let mut frames = body.into_data_stream();
    let mut seen = Vec::new();
    let mut raw = 0;
    let found = tokio::time::timeout(HEADER_WAIT, async {
        while let Some(frame) = frames.next().await {
            let frame = frame.map_err(|_| no_key())?;
            raw += frame.len();
            seen.push(frame.clone());
            match decoder.write(&frame) {
                Err(InflateError::Sink(e)) if e.get_ref().is_some_and(|e| e.is::<LineFound>()) => {
                    return Ok(true);
                }
                Err(_) => return Ok(false),
                Ok(()) if raw > HEADER_RAW_MAX => return Ok(false),
                Ok(()) => {}
            }
        }
        Ok::<_, ApiError>(false)
    })
    .await
    .map_err(|_| no_key())??;
    drop(decoder);
    if !found {
        return Err(no_key());
    }
    let line = std::mem::take(&mut *line.lock().expect("header line poisoned"));
    let header = serde_json::from_slice::<Map<String, Value>>(&line).map_err(|_| no_key())?;
    let replay = futures_util::stream::iter(seen.into_iter().map(Ok::<_, axum::Error>));
    Ok((header, Body::from_stream(replay.chain(frames))))
}

/// Collects the envelope's first line; once it has it, stops the decoder with
/// [`LineFound`], so no more is decompressed.
struct FirstLine(Arc<Mutex<Vec<u8>>>);

/// The first line is complete: not an error, the signal to stop decoding.
#[derive(Debug, thiserror::Error)]
#[error("the envelope's first line is complete")]
struct LineFound;

impl Write for FirstLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = buf.iter().position(|&b| b == b'\n');
        let take = end.unwrap_or(buf.len());
        let mut line = self.0.lock().expect("header line poisoned");
        if line.len() + take > HEADER_LINE_MAX {
            return Err(io::Error::other("the envelope header line is too long"));
        }
        line.extend_from_slice(&buf[..take]);
        match end {
            Some(_) => Err(io::Error::other(LineFound)),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body that could not be read: over the route's limit (413), or broken off (400).
fn frame_error(e: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge(format!(
                "request body is larger than {}",
                size(MAX_ENVELOPE)
            ));
        }
        source = s.source();
    }
    ApiError::BadRequest(format!("could not read the request body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    fn refused(r: Result<Envelope, BodyError>) -> ApiError {
        match r {
            Err(BodyError::Refused(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn over_the_routes_limit_is_413() {
        // As the route's `DefaultBodyLimit` wraps the body.
        let body = Body::new(http_body_util::Limited::new(Body::from(vec![b'x'; 11]), 10));
        let e = refused(read_envelope(&HeaderMap::new(), body, Duration::from_secs(5)).await);
        assert!(matches!(e, ApiError::PayloadTooLarge(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "request body is larger than 100 MiB (104857600 bytes)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_is_408() {
        let stalled = futures_util::stream::pending::<Result<bytes::Bytes, io::Error>>();
        let body = Body::from_stream(stalled);
        let e = refused(read_envelope(&HeaderMap::new(), body, Duration::from_millis(250)).await);
        assert!(matches!(e, ApiError::RequestTimeout(_)), "{e:?}");
        assert_eq!(e.to_string(), "the request body sent nothing for 250 ms");
    }

    #[tokio::test]
    async fn encodings_are_undone_and_only_events_kept() {
        let body = b"{}\n{\"type\":\"attachment\",\"length\":3}\nabc\n{\"type\":\"event\"}\n{}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        let envelope = read_envelope(
            &headers,
            Body::from(gz.finish().unwrap()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let items: Vec<_> = envelope
            .items
            .iter()
            .map(|i| (i.n, i.ty.as_str()))
            .collect();
        assert_eq!(items, [(2, "event")]);
        headers.insert(header::CONTENT_ENCODING, "zstd".parse().unwrap());
        let e = refused(read_envelope(&headers, Body::empty(), Duration::from_secs(5)).await);
        assert!(matches!(e, ApiError::UnsupportedMediaType(_)), "{e:?}");
    }
}
