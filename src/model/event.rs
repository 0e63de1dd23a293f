//! The native event schema (SPEC §2.1) and its validation.
//!
//! Validation works on a `serde_json::Value` rather than a derived struct so that every
//! error names the field and says what was expected, as the API promises.

use super::level::Level;
use super::time::Millis;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A JSON value kept as its text: stored and served as sent, never built into a `Value`
/// tree. Breadcrumbs, `extra`, `user` and `sdk` are only stored, so a Sentry event's are
/// copied from its bytes while they are scanned (measured in docs/BENCHMARKS.md: building
/// and dropping their trees was a large part of ingesting an SDK event).
#[derive(Clone, Debug)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The text of `value`.
    pub fn of(value: &Value) -> RawJson {
        RawJson(serde_json::value::to_raw_value(value).expect("a Value serializes"))
    }

    /// Text already checked to be JSON (scanned from a document, or serialized).
    pub fn from_raw(raw: Box<RawValue>) -> RawJson {
        RawJson(raw)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether the value is a JSON object.
    pub fn is_object(&self) -> bool {
        self.0.get().starts_with('{')
    }

    /// The value as a tree (for tests and the rare reader).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).expect("RawJson holds JSON")
    }
}

/// Same text, same value (both sides come from one serializer or one document).
impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// The exception that caused an event.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Exception {
    /// Exception class, e.g. `TypeError`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// Exception message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Module the exception class lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

/// One stack frame. Frames are ordered oldest call first, innermost last (as in Sentry).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Frame {
    /// Source file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Function name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Module or package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Line number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineno: Option<i64>,
    /// Column number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colno: Option<i64>,
    /// The source line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
    /// Whether the frame belongs to the application (not a library).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
}

/// The parts of an event that are stored and listed but not used for routing or filters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventDetail {
    /// The exception, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<Exception>,
    /// Stack frames, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stacktrace: Vec<Frame>,
    /// Breadcrumb objects as sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breadcrumbs: Vec<RawJson>,
    /// Free-form extra data (an object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<RawJson>,
    /// The affected user (an object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<RawJson>,
    /// The reporting SDK (an object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk: Option<RawJson>,
    /// The custom grouping key, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Vec<String>>,
}

/// A validated event, before grouping and storage.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// 32 lowercase hex digits, when the client gave one.
    pub event_id: Option<String>,
    /// The message, if any.
    pub message: Option<String>,
    /// Severity (default `error`).
    pub level: Level,
    /// Environment (default `production`).
    pub environment: String,
    /// Release, if any.
    pub release: Option<String>,
    /// When it happened; `None` means "when received".
    pub timestamp: Option<Millis>,
    /// Tags, values as strings.
    pub tags: BTreeMap<String, String>,
    /// Everything else.
    pub detail: EventDetail,
    /// The event exactly as it was received (JSON, after decompression), kept whole and
    /// returned by `GET /api/v1/projects/<id>/events/<event_id>` (SPEC §3.2). Set by the
    /// route that received it.
    pub raw: Option<bytes::Bytes>,
}

/// Why an event was rejected. The text is sent to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEvent(pub String);

fn invalid(msg: impl Into<String>) -> InvalidEvent {
    InvalidEvent(msg.into())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads an optional string field; `null` counts as absent.
fn opt_string(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<String>, InvalidEvent> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(format!(
            "field '{path}{key}' must be a string, got {}",
            type_name(other)
        ))),
    }
}

fn opt_int(obj: &Map<String, Value>, path: &str, key: &str) -> Result<Option<i64>, InvalidEvent> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(other) => Err(invalid(format!(
            "field '{path}{key}' must be an integer, got {}",
            type_name(other)
        ))),
    }
}

fn opt_object(obj: &Map<String, Value>, key: &str) -> Result<Option<RawJson>, InvalidEvent> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(RawJson::of(v))),
        Some(other) => Err(invalid(format!(
            "field '{key}' must be an object, got {}",
            type_name(other)
        ))),
    }
}

/// Normalizes an event id: 32 hex digits or a dashed UUID, to 32 lowercase hex.
pub fn normalize_event_id(raw: &str) -> Option<String> {
    let hex: String = if raw.len() == 36 {
        let dashes_ok = raw
            .char_indices()
            .all(|(i, c)| (c == '-') == matches!(i, 8 | 13 | 18 | 23));
        if !dashes_ok {
            return None;
        }
        raw.chars().filter(|c| *c != '-').collect()
    } else {
        raw.to_owned()
    };
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Parses a timestamp: an RFC 3339 string or unix seconds (number or numeric string).
pub fn parse_timestamp(v: &Value) -> Result<Option<Millis>, InvalidEvent> {
    let bad = || {
        invalid(format!(
            "field 'timestamp' must be an RFC 3339 date-time or unix seconds, got {v}"
        ))
    };
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .and_then(Millis::from_unix_seconds)
            .map(Some)
            .ok_or_else(bad),
        Value::String(s) => Millis::parse_rfc3339(s)
            .or_else(|| s.parse::<f64>().ok().and_then(Millis::from_unix_seconds))
            .map(Some)
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// A tag value: strings as they are; numbers and booleans as their JSON text.
fn tag_value(key: &str, v: &Value) -> Result<String, InvalidEvent> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
        other => Err(invalid(format!(
            "tag '{key}' must be a string, got {}",
            type_name(other)
        ))),
    }
}

fn parse_tags(v: Option<&Value>) -> Result<BTreeMap<String, String>, InvalidEvent> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), tag_value(k, v)?)))
            .collect(),
        Some(other) => Err(invalid(format!(
            "field 'tags' must be an object of strings, got {}",
            type_name(other)
        ))),
    }
}

/// `fingerprint`: a string or a non-empty list of strings.
pub(crate) fn parse_fingerprint(v: Option<&Value>) -> Result<Option<Vec<String>>, InvalidEvent> {
    let bad = |what: &str| {
        invalid(format!(
            "field 'fingerprint' must be a string or a list of strings, got {what}"
        ))
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(_) | Value::Bool(_) => Ok(i.to_string()),
                other => Err(bad(&format!("a list holding {}", type_name(other)))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad(type_name(other))),
    }
}

fn parse_exception(v: Option<&Value>) -> Result<Option<Exception>, InvalidEvent> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(invalid(format!(
                "field 'exception' must be an object, got {}",
                type_name(other)
            )));
        }
    };
    let exc = Exception {
        ty: opt_string(obj, "exception.", "type")?.filter(|s| !s.is_empty()),
        value: opt_string(obj, "exception.", "value")?.filter(|s| !s.is_empty()),
        module: opt_string(obj, "exception.", "module")?,
    };
    if exc.ty.is_none() && exc.value.is_none() {
        return Err(invalid("field 'exception' needs a 'type' or a 'value'"));
    }
    Ok(Some(exc))
}

fn parse_frames(v: Option<&Value>) -> Result<Vec<Frame>, InvalidEvent> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(format!(
                "field 'stacktrace' must be a list of frames, got {}",
                type_name(other)
            )));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(f) = item else {
                return Err(invalid(format!(
                    "field 'stacktrace[{i}]' must be an object, got {}",
                    type_name(item)
                )));
            };
            let path = format!("stacktrace[{i}].");
            let in_app = match f.get("in_app") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => {
                    return Err(invalid(format!(
                        "field '{path}in_app' must be a boolean, got {}",
                        type_name(other)
                    )));
                }
            };
            Ok(Frame {
                filename: opt_string(f, &path, "filename")?,
                function: opt_string(f, &path, "function")?,
                module: opt_string(f, &path, "module")?,
                lineno: opt_int(f, &path, "lineno")?,
                colno: opt_int(f, &path, "colno")?,
                context_line: opt_string(f, &path, "context_line")?,
                in_app,
            })
        })
        .collect()
}

fn parse_breadcrumbs(v: Option<&Value>) -> Result<Vec<RawJson>, InvalidEvent> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            if let Some((i, bad)) = items.iter().enumerate().find(|(_, b)| !b.is_object()) {
                return Err(invalid(format!(
                    "field 'breadcrumbs[{i}]' must be an object, got {}",
                    type_name(bad)
                )));
            }
            Ok(items.iter().map(RawJson::of).collect())
        }
        Some(other) => Err(invalid(format!(
            "field 'breadcrumbs' must be a list, got {}",
            type_name(other)
        ))),
    }
}

impl NewEvent {
    /// Validates one native event (SPEC §2.1).
    pub fn from_json(value: &Value) -> Result<NewEvent, InvalidEvent> {
        let Value::Object(obj) = value else {
            return Err(invalid(format!(
                "an event must be a JSON object, got {}",
                type_name(value)
            )));
        };
        let event_id = match opt_string(obj, "", "event_id")? {
            None => None,
            Some(raw) => Some(normalize_event_id(&raw).ok_or_else(|| {
                invalid(format!(
                    "field 'event_id' must be 32 hex digits or a UUID, got '{raw}'"
                ))
            })?),
        };
        let level = match opt_string(obj, "", "level")? {
            None => Level::Error,
            Some(s) => s.parse::<Level>().map_err(|e| invalid(e.to_string()))?,
        };
        let environment = opt_string(obj, "", "environment")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "production".to_owned());
        let release = opt_string(obj, "", "release")?.filter(|s| !s.is_empty());
        let message = opt_string(obj, "", "message")?.filter(|s| !s.trim().is_empty());
        let exception = parse_exception(obj.get("exception"))?;
        if message.is_none() && exception.is_none() {
            return Err(invalid(
                "field 'message' is required unless 'exception' is given",
            ));
        }
        Ok(NewEvent {
            event_id,
            message,
            level,
            environment,
            release,
            timestamp: parse_timestamp(obj.get("timestamp").unwrap_or(&Value::Null))?,
            tags: parse_tags(obj.get("tags"))?,
            detail: EventDetail {
                exception,
                stacktrace: parse_frames(obj.get("stacktrace"))?,
                breadcrumbs: parse_breadcrumbs(obj.get("breadcrumbs"))?,
                extra: opt_object(obj, "extra")?,
                user: opt_object(obj, "user")?,
                sdk: opt_object(obj, "sdk")?,
                fingerprint: parse_fingerprint(obj.get("fingerprint"))?,
            },
            raw: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        NewEvent::from_json(&v).unwrap_err().0
    }

    #[test]
    fn defaults() {
        let e = NewEvent::from_json(&json!({"message": "boom"})).unwrap();
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.environment, "production");
        assert_eq!(e.event_id, None);
        assert_eq!(e.timestamp, None);
    }

    #[test]
    fn precise_errors() {
        assert_eq!(
            err(json!({})),
            "field 'message' is required unless 'exception' is given"
        );
        assert_eq!(
            err(json!({"message": "x", "level": "loud"})),
            "unknown level 'loud': expected one of fatal, error, warning, info, debug"
        );
        assert_eq!(
            err(json!({"message": 5})),
            "field 'message' must be a string, got a number"
        );
        assert_eq!(
            err(json!({"message": "x", "stacktrace": [{"lineno": "7"}]})),
            "field 'stacktrace[0].lineno' must be an integer, got a string"
        );
        assert!(err(json!({"message": "x", "event_id": "abc"})).contains("event_id"));
        assert!(err(json!({"message": "x", "timestamp": "soon"})).contains("timestamp"));
        assert!(err(json!([1])).contains("JSON object"));
        assert!(err(json!({"message": "x", "tags": {"a": {}}})).contains("tag 'a'"));
    }

    #[test]
    fn event_ids() {
        assert_eq!(
            normalize_event_id("6F9619FF-8B86-D011-B42D-00C04FC964FF").as_deref(),
            Some("6f9619ff8b86d011b42d00c04fc964ff")
        );
        assert!(normalize_event_id("6f9619ff8b86d011b42d00c04fc964f").is_none());
        assert!(normalize_event_id("6f9619ff8b86d011b42d00c04fc964fg").is_none());
        assert!(normalize_event_id("6f9619ff-8b86d-011-b42d-00c04fc964ff").is_none());
    }

    #[test]
    fn exception_alone_suffices() {
        let e = NewEvent::from_json(&json!({"exception": {"type": "TypeError"}, "fingerprint": "a", "timestamp": 1700000000})).unwrap();
        assert_eq!(e.detail.fingerprint, Some(vec!["a".to_owned()]));
        assert_eq!(e.timestamp, Some(Millis(1_700_000_000_000)));
    }
}
