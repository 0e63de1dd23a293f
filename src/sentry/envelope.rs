//! Sentry's envelope format: a JSON header line, then items, each a JSON header line and a
//! payload. A payload is `length` bytes when the item header gives one, else everything up
//! to the next newline (or the end). <https://develop.sentry.dev/sdk/data-model/envelopes/>
//!
//! Written here rather than taken from `sentry-types`: its parser decodes every item into
//! its own types (so an attachment or an item type it does not know fails the whole
//! envelope) and its errors do not say which item is wrong, and a client needs both.
//!
//! The format's rules (header lines, item headers, their errors) are here; `scan` reads a
//! body as it streams in.

use bytes::Bytes;
use serde_json::{Map, Value};

/// A parsed envelope: its header and the items that were kept, in order.
#[derive(Debug)]
pub struct Envelope {
    /// The envelope header (`event_id`, `dsn`, `sent_at`, ...).
    pub header: Map<String, Value>,
    /// The kept items, in order: those a [`super::scan::Scanner`]'s `keep` chose.
    pub items: Vec<Item>,
}

/// One envelope item.
#[derive(Debug)]
pub struct Item {
    /// Its position in the envelope, counting every item (kept or not) from 1: the number
    /// error messages name.
    pub n: usize,
    /// Its `type` (`event`, `transaction`, `session`, `attachment`, ...).
    pub ty: String,
    /// Its payload, possibly empty.
    pub payload: Bytes,
}

/// Why an envelope could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed envelope: {0}")]
pub struct EnvelopeError(pub String);

pub(super) fn err(msg: impl Into<String>) -> EnvelopeError {
    EnvelopeError(msg.into())
}

/// What the first line is called in error messages.
pub(super) const ENVELOPE_HEADER: &str = "the envelope header (first line)";

/// Whether a line carries nothing (blank lines between items are skipped).
pub(super) fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// The error for a body with nothing in it.
pub(super) fn empty() -> EnvelopeError {
    err("the body is empty; an envelope starts with a JSON header line")
}

/// Parses a header line (without its newline; a trailing `\r` is ignored) as a JSON object.
pub(super) fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, EnvelopeError> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(err(format!("{what} must be a JSON object"))),
        Err(e) => Err(err(format!("{what} is not valid JSON: {e}"))),
    }
}

/// What an item header says about its payload.
pub(super) struct ItemHeader {
    /// The item's `type`.
    pub ty: String,
    /// Its `length`: the payload is exactly that many bytes; without one, it runs to the
    /// next newline (or the end).
    pub length: Option<usize>,
}

impl ItemHeader {
    /// Parses the header line of item `n`.
    pub(crate) fn parse(line: &[u8], n: usize) -> Result<ItemHeader, EnvelopeError> {
        let header = json_object(line, &format!("the header of item {n}"))?;
        let ty = match header.get("type") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            Some(_) => return Err(err(format!("item {n}: 'type' must be a non-empty string"))),
            None => return Err(err(format!("item {n}: the item header has no 'type'"))),
        };
        let length = match header.get("length") {
            None | Some(Value::Null) => None,
            Some(Value::Number(len)) => Some(
                len.as_u64()
                    .and_then(|l| usize::try_from(l).ok())
                    .ok_or_else(|| err(format!("item {n}: 'length' must be a whole number ≥ 0")))?,
            ),
            Some(_) => return Err(err(format!("item {n}: 'length' must be a number"))),
        };
        Ok(ItemHeader { ty, length })
    }
}
