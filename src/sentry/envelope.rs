//! Sentry's envelope format: a JSON header line, then items, each a JSON header line and a
//! payload. A payload is `length` bytes when the item header gives one, else everything up
//! to the next newline (or the end). <https://develop.sentry.dev/sdk/data-model/envelopes/>
//!
//! Written here rather than taken from `sentry-types`: its parser decodes every item into
//! its own types (so an attachment or an item type it does not know fails the whole
//! envelope) and its errors do not say which item is wrong, and a client needs both.

use serde_json::{Map, Value};

/// A parsed envelope; payloads borrow from the body.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The envelope header (`event_id`, `dsn`, `sent_at`, ...).
    pub header: Map<String, Value>,
    /// The items, in order.
    pub items: Vec<Item<'a>>,
}

/// One envelope item.
#[derive(Debug)]
pub struct Item<'a> {
    /// Its `type` (`event`, `transaction`, `session`, `attachment`, ...).
    pub ty: String,
    /// Its payload, possibly empty.
    pub payload: &'a [u8],
}

/// Why an envelope could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed envelope: {0}")]
pub struct EnvelopeError(pub String);

fn err(msg: impl Into<String>) -> EnvelopeError {
    EnvelopeError(msg.into())
}

/// Splits off the line at `pos`: its bytes (without the newline) and where the next begins.
fn line(body: &[u8], pos: usize) -> (&[u8], usize) {
    match body[pos..].iter().position(|b| *b == b'\n') {
        Some(n) => (&body[pos..pos + n], pos + n + 1),
        None => (&body[pos..], body.len()),
    }
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, EnvelopeError> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(err(format!("{what} must be a JSON object"))),
        Err(e) => Err(err(format!("{what} is not valid JSON: {e}"))),
    }
}

/// Parses an envelope body.
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(err(
            "the body is empty; an envelope starts with a JSON header line",
        ));
    }
    let (first, mut pos) = line(body, 0);
    let header = json_object(first, "the envelope header (first line)")?;
    let mut items = Vec::new();
    while pos < body.len() {
        let (raw, next) = line(body, pos);
        // Blank lines between items (and the trailing newline) carry nothing.
        if raw.iter().all(u8::is_ascii_whitespace) {
            pos = next;
            continue;
        }
        let n = items.len() + 1;
        let item_header = json_object(raw, &format!("the header of item {n}"))?;
        let ty = match item_header.get("type") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            Some(_) => return Err(err(format!("item {n}: 'type' must be a non-empty string"))),
            None => return Err(err(format!("item {n}: the item header has no 'type'"))),
        };
        let (payload, after) = match item_header.get("length") {
            None | Some(Value::Null) => line(body, next),
            Some(Value::Number(len)) => {
                let len = len
                    .as_u64()
                    .ok_or_else(|| err(format!("item {n}: 'length' must be a whole number ≥ 0")))?
                    as usize;
                let available = body.len() - next;
                if len > available {
                    return Err(err(format!(
                        "item {n} ({ty}): 'length' is {len} but only {available} bytes follow"
                    )));
                }
                let end = next + len;
                // After a sized payload comes a newline or the end of the body.
                match body.get(end) {
                    None => (&body[next..end], end),
                    Some(b'\n') => (&body[next..end], end + 1),
                    Some(b'\r') if body.get(end + 1) == Some(&b'\n') => (&body[next..end], end + 2),
                    Some(_) => {
                        return Err(err(format!(
                            "item {n} ({ty}): the payload is longer than its 'length' of {len}"
                        )));
                    }
                }
            }
            Some(_) => return Err(err(format!("item {n}: 'length' must be a number"))),
        };
        items.push(Item { ty, payload });
        pos = after;
    }
    Ok(Envelope { header, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(e: &Envelope) -> Vec<(String, String)> {
        e.items
            .iter()
            .map(|i| {
                (
                    i.ty.clone(),
                    String::from_utf8_lossy(i.payload).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn items_with_and_without_length() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
            {\"type\":\"attachment\",\"length\":10}\n\xef\xbb\xbfHello\r\n\n\
            {\"type\":\"event\"}\n{\"message\":\"hi\"}\n";
        let e = parse(body).unwrap();
        assert_eq!(e.header["event_id"], "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(e.items.len(), 2);
        assert_eq!(e.items[0].ty, "attachment");
        assert_eq!(e.items[0].payload, b"\xef\xbb\xbfHello\r\n");
        assert_eq!(e.items[1].ty, "event");
        assert_eq!(e.items[1].payload, b"{\"message\":\"hi\"}");
    }

    #[test]
    fn empty_payloads_and_no_trailing_newline() {
        let e = parse(b"{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"session\"}\n")
            .unwrap();
        assert_eq!(types(&e), pairs(&[("attachment", ""), ("session", "")]));
        let e = parse(b"{}\n{\"type\":\"event\",\"length\":2}\n{}").unwrap();
        assert_eq!(types(&e), pairs(&[("event", "{}")]));
        let e = parse(b"{}\n{\"type\":\"event\"}\n{\"message\":\"last\"}").unwrap();
        assert_eq!(types(&e), pairs(&[("event", "{\"message\":\"last\"}")]));
        let e = parse(b"{}").unwrap();
        assert!(e.items.is_empty());
        let e = parse(b"{}\n").unwrap();
        assert!(e.items.is_empty());
    }

    #[test]
    fn a_sized_payload_may_hold_newlines() {
        let e = parse(b"{}\n{\"type\":\"event\",\"length\":5}\n{\n}\n\n").unwrap();
        assert_eq!(e.items[0].payload, b"{\n}\n\n"[..5].as_ref());
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        let msg = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert_eq!(
            msg(b""),
            "malformed envelope: the body is empty; an envelope starts with a JSON header line"
        );
        assert!(
            msg(b"not json\n").starts_with(
                "malformed envelope: the envelope header (first line) is not valid JSON"
            )
        );
        assert_eq!(
            msg(b"[1]\n"),
            "malformed envelope: the envelope header (first line) must be a JSON object"
        );
        assert_eq!(
            msg(b"{}\n{\"length\":2}\n{}\n"),
            "malformed envelope: item 1: the item header has no 'type'"
        );
        assert!(
            msg(b"{}\n{\"type\":\"event\"}\n{}\n{oops\n")
                .starts_with("malformed envelope: the header of item 2 is not valid JSON")
        );
        assert_eq!(
            msg(b"{}\n{\"type\":\"event\",\"length\":50}\n{}\n"),
            "malformed envelope: item 1 (event): 'length' is 50 but only 3 bytes follow"
        );
        assert_eq!(
            msg(b"{}\n{\"type\":\"event\",\"length\":1}\n{}\n"),
            "malformed envelope: item 1 (event): the payload is longer than its 'length' of 1"
        );
        assert_eq!(
            msg(b"{}\n{\"type\":\"event\",\"length\":\"2\"}\n{}\n"),
            "malformed envelope: item 1: 'length' must be a number"
        );
        assert_eq!(
            msg(b"{}\n{\"type\":\"event\",\"length\":-1}\n{}\n"),
            "malformed envelope: item 1: 'length' must be a whole number ≥ 0"
        );
        assert_eq!(
            msg(b"{}\n{\"type\":7}\n{}\n"),
            "malformed envelope: item 1: 'type' must be a non-empty string"
        );
    }
}
