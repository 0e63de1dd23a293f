//! Sentry's event schema mapped to Mesher's (SPEC §2.2).
//!
//! The parts Mesher interprets — the exception, its stack frames, the log entry and the
//! level — are read with `sentry-types`' protocol types. The rest is read by hand, where
//! Sentry's wire format is looser than those types: `message` may be a string or an object,
//! `tags` an object or a list of pairs, `breadcrumbs` a list or `{"values": [...]}`, and
//! `user`, `sdk`, `extra` and breadcrumbs are stored as sent.

use crate::model::event::{
    EventDetail, InvalidEvent, normalize_event_id, parse_fingerprint, parse_timestamp,
};
use crate::model::{Exception, Frame, Level, NewEvent, RawJson};
use sentry_types::protocol::v7;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn invalid(msg: impl Into<String>) -> InvalidEvent {
    InvalidEvent(msg.into())
}

/// Deserializes `v` into a `sentry-types` type, naming `path` when it does not fit.
fn typed<T: serde::de::DeserializeOwned>(v: Value, path: &str) -> Result<T, InvalidEvent> {
    serde_json::from_value(v).map_err(|e| invalid(format!("field '{path}': {e}")))
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, InvalidEvent> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("field '{key}' must be a string"))),
    }
}

/// `logentry` (or `message` as an object): `formatted` when given, else `message` with its
/// `%s` placeholders filled from `params`.
fn log_message(v: &Value, path: &str) -> Result<Option<String>, InvalidEvent> {
    let Value::Object(obj) = v else {
        return Err(invalid(format!("field '{path}' must be an object")));
    };
    // sentry-types' LogEntry has no `formatted`.
    if let Some(Value::String(f)) = obj.get("formatted")
        && !f.trim().is_empty()
    {
        return Ok(Some(f.clone()));
    }
    let mut entry = obj.clone();
    entry.remove("formatted");
    if !entry.contains_key("message") {
        return Ok(None);
    }
    let entry: v7::LogEntry = typed(Value::Object(entry), path)?;
    let mut params = entry.params.iter();
    let mut out = String::new();
    let mut rest = entry.message.as_str();
    while let Some(i) = rest.find("%s") {
        out.push_str(&rest[..i]);
        match params.next() {
            Some(Value::String(s)) => out.push_str(s),
            Some(p) => out.push_str(&p.to_string()),
            None => out.push_str("%s"),
        }
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    Ok(Some(out).filter(|s| !s.trim().is_empty()))
}

fn message(obj: &Map<String, Value>) -> Result<Option<String>, InvalidEvent> {
    let from_message = match obj.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.trim().is_empty()),
        Some(v @ Value::Object(_)) => log_message(v, "message")?,
        Some(_) => return Err(invalid("field 'message' must be a string or an object")),
    };
    match (obj.get("logentry"), from_message) {
        (Some(v @ Value::Object(_)), None) => log_message(v, "logentry"),
        (_, m) => Ok(m),
    }
}

/// The last `exception.values[]` entry (the one raised last) and its frames, oldest first.
fn exception(obj: &Map<String, Value>) -> Result<Option<(Exception, Vec<Frame>)>, InvalidEvent> {
    let values = match obj.get("exception") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(Value::Object(o)) => match o.get("values") {
            Some(Value::Array(list)) => list,
            None | Some(Value::Null) => return Ok(None),
            Some(_) => return Err(invalid("field 'exception.values' must be a list")),
        },
        Some(_) => return Err(invalid("field 'exception' must be an object or a list")),
    };
    let Some(last) = values.last() else {
        return Ok(None);
    };
    let i = values.len() - 1;
    let Value::Object(raw) = last else {
        return Err(invalid(format!(
            "field 'exception.values[{i}]' must be an object"
        )));
    };
    // Only what Mesher reads goes through the typed schema, so that a field Mesher ignores
    // (a mechanism's help link, a native frame's address) cannot reject the event.
    let mut picked = Map::new();
    for key in ["type", "value", "module"] {
        if let Some(v) = raw.get(key).filter(|v| !v.is_null()) {
            picked.insert(key.to_owned(), v.clone());
        }
    }
    // sentry-types requires `type`; Sentry accepts an exception with only a value.
    picked
        .entry("type")
        .or_insert_with(|| Value::String(String::new()));
    let frames = match raw.get("stacktrace") {
        Some(Value::Object(st)) => match st.get("frames") {
            Some(Value::Array(frames)) => frames.as_slice(),
            None | Some(Value::Null) => &[],
            Some(_) => {
                return Err(invalid(format!(
                    "field 'exception.values[{i}].stacktrace.frames' must be a list"
                )));
            }
        },
        None | Some(Value::Null) => &[],
        Some(_) => {
            return Err(invalid(format!(
                "field 'exception.values[{i}].stacktrace' must be an object"
            )));
        }
    };
    let exc: v7::Exception = typed(Value::Object(picked), &format!("exception.values[{i}]"))?;
    // Frames are borrowed: only the picked keys of each are copied (`vars` and context
    // lines can be large).
    let frames = frames
        .iter()
        .enumerate()
        .map(|(j, f)| {
            let path = format!("exception.values[{i}].stacktrace.frames[{j}]");
            let Value::Object(f) = f else {
                return Err(invalid(format!("field '{path}' must be an object")));
            };
            let mut picked = Map::new();
            for key in [
                "filename",
                "abs_path",
                "function",
                "module",
                "lineno",
                "colno",
                "context_line",
                "in_app",
            ] {
                if let Some(v) = f.get(key).filter(|v| !v.is_null()) {
                    picked.insert(key.to_owned(), v.clone());
                }
            }
            let frame: v7::Frame = typed(Value::Object(picked), &path)?;
            Ok(Frame {
                filename: frame.filename.or(frame.abs_path),
                function: frame.function,
                module: frame.module,
                lineno: frame.lineno.and_then(|n| i64::try_from(n).ok()),
                colno: frame.colno.and_then(|n| i64::try_from(n).ok()),
                context_line: frame.context_line,
                in_app: frame.in_app,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exception = Exception {
        ty: Some(exc.ty).filter(|t| !t.is_empty()),
        value: exc.value.filter(|v| !v.is_empty()),
        module: exc.module,
    };
    if exception.ty.is_none() && exception.value.is_none() {
        return Err(invalid(format!(
            "field 'exception.values[{i}]' needs a 'type' or a 'value'"
        )));
    }
    Ok(Some((exception, frames)))
}

fn tag_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// `tags`: an object, or a list of `[key, value]` pairs.
fn tags(v: Option<&Value>) -> Result<BTreeMap<String, String>, InvalidEvent> {
    let mut out = BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let v =
                    tag_value(v).ok_or_else(|| invalid(format!("tag '{k}' must be a string")))?;
                out.insert(k.clone(), v);
            }
        }
        Some(Value::Array(pairs)) => {
            for (i, pair) in pairs.iter().enumerate() {
                let kv = match pair {
                    Value::Array(kv) if kv.len() == 2 => kv,
                    _ => {
                        return Err(invalid(format!(
                            "field 'tags[{i}]' must be a [key, value] pair"
                        )));
                    }
                };
                match (&kv[0], tag_value(&kv[1])) {
                    (Value::String(k), Some(v)) => {
                        out.insert(k.clone(), v);
                    }
                    _ => {
                        return Err(invalid(format!(
                            "field 'tags[{i}]' must be a pair of strings"
                        )));
                    }
                }
            }
        }
        Some(_) => return Err(invalid("field 'tags' must be an object or a list of pairs")),
    }
    Ok(out)
}

/// `breadcrumbs`: a list or `{"values": [...]}`; objects kept as sent.
fn breadcrumbs(v: Option<&Value>) -> Result<Vec<RawJson>, InvalidEvent> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(Value::Object(o)) => match o.get("values") {
            Some(Value::Array(list)) => list,
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(_) => return Err(invalid("field 'breadcrumbs.values' must be a list")),
        },
        Some(_) => return Err(invalid("field 'breadcrumbs' must be a list or an object")),
    };
    Ok(list
        .iter()
        .filter(|b| b.is_object())
        .map(RawJson::of)
        .collect())
}

fn object(obj: &Map<String, Value>, key: &str) -> Option<RawJson> {
    obj.get(key).filter(|v| v.is_object()).map(RawJson::of)
}

/// The parts of an event that are only stored: breadcrumbs, `extra`, `user`, `sdk`.
struct StoredParts {
    breadcrumbs: Vec<RawJson>,
    extra: Option<RawJson>,
    user: Option<RawJson>,
    sdk: Option<RawJson>,
}

impl StoredParts {
    /// From the whole event's tree.
    fn of(obj: &Map<String, Value>) -> Result<StoredParts, InvalidEvent> {
        Ok(StoredParts {
            breadcrumbs: breadcrumbs(obj.get("breadcrumbs"))?,
            extra: object(obj, "extra"),
            user: object(obj, "user"),
            sdk: object(obj, "sdk"),
        })
    }
}

/// The top-level keys [`to_new_event`] reads, each parsed as it is scanned (`null`
/// included, as `Some(Null)`); every other key is skipped while parsing, not built into a
/// tree.
#[derive(serde::Deserialize)]
struct Picked {
    #[serde(default, deserialize_with = "present")]
    event_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    level: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    message: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    logentry: Option<Value>,
    /// Typed while scanning: only what [`exception`] reads is built (an SDK's frames carry
    /// `vars` and context lines that are large and never read here).
    #[serde(default)]
    exception: Option<PickedException>,
    #[serde(default, deserialize_with = "present")]
    environment: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    release: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    timestamp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tags: Option<Value>,
    /// Stored only: copied as text while scanning (`null` reads as absent, as in
    /// [`StoredParts::of`]).
    #[serde(default)]
    breadcrumbs: Option<ListOrValues<Box<RawValue>>>,
    #[serde(default)]
    extra: Option<Box<RawValue>>,
    #[serde(default)]
    user: Option<Box<RawValue>>,
    #[serde(default)]
    sdk: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    fingerprint: Option<Value>,
}

/// A key that is given, `null` too (`Option`'s own reading would make `null` absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

/// An event scanned once for the keys [`to_new_event`] reads: those it interprets as a
/// small `Value`, those it only stores as their text.
pub struct PickedEvent {
    value: Value,
    scanned: Scanned,
}

impl PickedEvent {
    /// The event, with the same answer or error [`to_new_event`] gives for the whole JSON.
    pub fn into_new_event(self) -> Result<NewEvent, InvalidEvent> {
        event_of(&self.value, Some(self.scanned))
    }
}

/// What the scan built that [`to_new_event`] reads from the whole tree: the exception (or
/// its error, named in the order the fields are checked) and the stored-only parts.
struct Scanned {
    exception: ExceptionResult,
    stored: StoredParts,
}

/// The last exception value (the one raised) and its frames, oldest first; or the error.
type ExceptionResult = Result<Option<(Exception, Vec<Frame>)>, InvalidEvent>;

/// The event's keys that [`to_new_event`] reads, picked in one scan of `bytes`, or `None`
/// when the bytes are not a JSON object with each of those keys once and in a shape the
/// scan knows (the caller then parses them whole, for the same answer and error).
///
/// Measured (docs/BENCHMARKS.md): an SDK event's modules, contexts and request, built into
/// a `Value` tree and dropped unread, were a large part of parsing it; so were its
/// breadcrumbs, built into a tree only to be written out again.
pub fn picked_event(bytes: &[u8]) -> Option<PickedEvent> {
    // A derived struct also reads a JSON array (as its fields in order): objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let p: Picked = serde_json::from_slice(bytes).ok()?;
    let object_text =
        |raw: Option<Box<RawValue>>| raw.map(RawJson::from_raw).filter(RawJson::is_object);
    let stored = StoredParts {
        // As [`breadcrumbs`]: the objects of the list, the rest dropped.
        breadcrumbs: p
            .breadcrumbs
            .map_or_else(Vec::new, |b| b.0)
            .into_iter()
            .map(RawJson::from_raw)
            .filter(RawJson::is_object)
            .collect(),
        extra: object_text(p.extra),
        user: object_text(p.user),
        sdk: object_text(p.sdk),
    };
    let values = p.exception.map_or_else(Vec::new, |e| e.0);
    let n = values.len();
    let exception = match values.into_iter().last() {
        None => Ok(None),
        Some(ObjectOnly(last)) => last.into_exception(n - 1),
    };
    let map = object_of([
        ("event_id", p.event_id),
        ("level", p.level),
        ("message", p.message),
        ("logentry", p.logentry),
        ("environment", p.environment),
        ("release", p.release),
        ("timestamp", p.timestamp),
        ("tags", p.tags),
        ("fingerprint", p.fingerprint),
    ]);
    Some(PickedEvent {
        value: Value::Object(map),
        scanned: Scanned { exception, stored },
    })
}

/// A struct read from a JSON object only (serde's derive would also read an array, as the
/// fields in order, where the whole parse says "must be an object").
struct ObjectOnly<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Sentry's two shapes of a list (of exceptions, of breadcrumbs): the list itself, or an
/// object's `values` (absent or `null`: empty). Any other shape fails the picked parse,
/// and the event is parsed whole (for the same error).
struct ListOrValues<T>(Vec<T>);

#[derive(serde::Deserialize)]
struct Values<T> {
    #[serde(default = "Option::default")]
    values: Option<Vec<T>>,
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ListOrValues<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = ListOrValues<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list or an object of values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element()? {
                    list.push(item);
                }
                Ok(ListOrValues(list))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let v = <Values<T> as serde::Deserialize>::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(ListOrValues(v.values.unwrap_or_default()))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The exception's values as [`exception`] reads them: of the last (its index kept, for
/// the error) the type, value, module and each frame's picked keys, typed as
/// `sentry-types` reads them.
type PickedException = ListOrValues<ObjectOnly<PickedExceptionValue>>;

#[derive(serde::Deserialize)]
struct PickedExceptionValue {
    #[serde(default, rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    stacktrace: Option<ObjectOnly<PickedStacktrace>>,
}

#[derive(serde::Deserialize)]
struct PickedStacktrace {
    #[serde(default)]
    frames: Option<Vec<ObjectOnly<PickedFrame>>>,
}

/// A frame's keys as `sentry_types::protocol::v7::Frame` types them.
#[derive(serde::Deserialize)]
struct PickedFrame {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    abs_path: Option<String>,
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    lineno: Option<u64>,
    #[serde(default)]
    colno: Option<u64>,
    #[serde(default)]
    context_line: Option<String>,
    #[serde(default)]
    in_app: Option<bool>,
}

/// `fields` as an object, the `None` ones left out.
fn object_of<const N: usize>(fields: [(&str, Option<Value>); N]) -> Map<String, Value> {
    fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
}

impl PickedExceptionValue {
    /// As [`exception`] maps `exception.values[i]`, the last value.
    fn into_exception(self, i: usize) -> ExceptionResult {
        let exception = Exception {
            ty: self.ty.filter(|t| !t.is_empty()),
            value: self.value.filter(|v| !v.is_empty()),
            module: self.module,
        };
        if exception.ty.is_none() && exception.value.is_none() {
            return Err(invalid(format!(
                "field 'exception.values[{i}]' needs a 'type' or a 'value'"
            )));
        }
        let frames = self
            .stacktrace
            .and_then(|ObjectOnly(st)| st.frames)
            .unwrap_or_default()
            .into_iter()
            .map(|ObjectOnly(f)| Frame {
                filename: f.filename.or(f.abs_path),
                function: f.function,
                module: f.module,
                lineno: f.lineno.and_then(|n| i64::try_from(n).ok()),
                colno: f.colno.and_then(|n| i64::try_from(n).ok()),
                context_line: f.context_line,
                in_app: f.in_app,
            })
            .collect();
        Ok(Some((exception, frames)))
    }
}

/// Maps one Sentry event (an envelope's `event` item or a `store` body) to a Mesher event.
pub fn to_new_event(value: &Value) -> Result<NewEvent, InvalidEvent> {
    event_of(value, None)
}

/// [`to_new_event`], with the exception and the stored-only parts read from `value` unless
/// the scan built them.
fn event_of(value: &Value, scanned: Option<Scanned>) -> Result<NewEvent, InvalidEvent> {
    let (scanned_exception, stored) = scanned.map(|s| (s.exception, s.stored)).unzip();
    let Value::Object(obj) = value else {
        return Err(invalid("an event must be a JSON object"));
    };
    let event_id = match string_field(obj, "event_id")? {
        None => None,
        Some(raw) => Some(normalize_event_id(&raw).ok_or_else(|| {
            invalid(format!(
                "field 'event_id' must be 32 hex digits or a UUID, got '{raw}'"
            ))
        })?),
    };
    let level = match string_field(obj, "level")? {
        None => Level::Error,
        Some(raw) => {
            let sentry: v7::Level = raw.parse().map_err(|_| {
                invalid(format!(
                    "unknown level '{raw}': expected one of fatal, error, warning, info, log, debug"
                ))
            })?;
            sentry
                .to_string()
                .parse()
                .map_err(|e: crate::model::level::UnknownLevel| invalid(e.to_string()))?
        }
    };
    let message = message(obj)?;
    let exception = match scanned_exception {
        Some(scanned) => scanned?,
        None => exception(obj)?,
    };
    if message.is_none() && exception.is_none() {
        return Err(invalid(
            "the event has neither a message, a logentry nor an exception",
        ));
    }
    let (exception, stacktrace) = match exception {
        Some((e, frames)) => (Some(e), frames),
        None => (None, Vec::new()),
    };
    // In the order the fields are checked, so an event's first error is the one named.
    let environment = string_field(obj, "environment")?.unwrap_or_else(|| "production".into());
    let release = string_field(obj, "release")?;
    let timestamp = parse_timestamp(obj.get("timestamp").unwrap_or(&Value::Null))?;
    let tags = tags(obj.get("tags"))?;
    let stored = match stored {
        Some(stored) => stored,
        None => StoredParts::of(obj)?,
    };
    Ok(NewEvent {
        event_id,
        message,
        level,
        environment,
        release,
        timestamp,
        tags,
        detail: EventDetail {
            exception,
            stacktrace,
            breadcrumbs: stored.breadcrumbs,
            extra: stored.extra,
            user: stored.user,
            sdk: stored.sdk,
            fingerprint: parse_fingerprint(obj.get("fingerprint"))?,
        },
        raw: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grouping::{culprit, title};
    use serde_json::json;

    fn python_exception() -> Value {
        // The shape sentry-python 2.x sends for `1 / 0` raised in `divide` called by `main`.
        json!({
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "level": "error",
            "platform": "python",
            "timestamp": "2026-11-23T10:00:00.123456Z",
            "environment": "staging",
            "release": "shop@1.2.3",
            "exception": {"values": [{
                "type": "ZeroDivisionError", "value": "division by zero", "module": null,
                "mechanism": {"type": "generic", "handled": true, "help_link": "not a url"},
                "stacktrace": {"frames": [
                    {"filename": "app.py", "abs_path": "/srv/app.py", "function": "main",
                     "module": "__main__", "lineno": 20, "context_line": "divide(1, 0)",
                     "pre_context": ["a"], "post_context": [], "vars": {"x": "1"}, "in_app": true},
                    {"filename": "app.py", "abs_path": "/srv/app.py", "function": "divide",
                     "module": "__main__", "lineno": 5, "context_line": "return a / b",
                     "in_app": true, "instruction_addr": "bogus"}
                ]}
            }]},
            "breadcrumbs": {"values": [{"category": "log", "message": "hi", "timestamp": "2026-11-23T09:59:59Z"}]},
            "user": {"id": "42"},
            "sdk": {"name": "sentry.python", "version": "2.75.0"},
            "contexts": {"runtime": {"name": "CPython"}},
            "extra": {"sys.argv": ["app.py"]}
        })
    }

    #[test]
    fn a_python_exception_maps_to_title_culprit_and_fields() {
        let e = to_new_event(&python_exception()).unwrap();
        assert_eq!(title(&e), "ZeroDivisionError: division by zero");
        assert_eq!(culprit(&e), "app.py in divide");
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.environment, "staging");
        assert_eq!(e.release.as_deref(), Some("shop@1.2.3"));
        assert_eq!(
            e.event_id.as_deref(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        assert_eq!(e.detail.stacktrace.len(), 2);
        assert_eq!(e.detail.stacktrace[1].lineno, Some(5));
        assert_eq!(e.detail.breadcrumbs.len(), 1);
        assert_eq!(
            e.detail.user.map(|u| u.to_value()),
            Some(json!({"id": "42"}))
        );
        assert!(e.timestamp.is_some());
    }

    #[test]
    fn the_last_exception_value_is_the_one_raised() {
        let e = to_new_event(&json!({"exception": {"values": [
            {"type": "KeyError", "value": "'a'"},
            {"type": "ValueError", "value": "bad"}
        ]}}))
        .unwrap();
        assert_eq!(title(&e), "ValueError: bad");
        // The bare-list form too, and an exception with only a value.
        let e = to_new_event(&json!({"exception": [{"value": "only a value"}]})).unwrap();
        assert_eq!(
            e.detail.exception.unwrap().value.as_deref(),
            Some("only a value")
        );
    }

    #[test]
    fn messages_logentries_and_levels() {
        let m = |v: Value| to_new_event(&v).unwrap();
        assert_eq!(
            m(json!({"message": "plain"})).message.as_deref(),
            Some("plain")
        );
        assert_eq!(
            m(json!({"message": {"message": "user %s failed %s", "params": ["bob", 3]}}))
                .message
                .as_deref(),
            Some("user bob failed 3")
        );
        assert_eq!(
            m(json!({"logentry": {"message": "x %s", "params": ["y"], "formatted": "x = y"}}))
                .message
                .as_deref(),
            Some("x = y")
        );
        assert_eq!(
            m(json!({"logentry": {"message": "a %s", "params": ["b"]}}))
                .message
                .as_deref(),
            Some("a b")
        );
        assert_eq!(
            m(json!({"message": "x", "level": "log"})).level,
            Level::Info
        );
        assert_eq!(
            m(json!({"message": "x", "level": "warning"})).level,
            Level::Warning
        );
        assert_eq!(
            m(json!({"message": "x", "level": "fatal"})).level,
            Level::Fatal
        );
        assert_eq!(m(json!({"message": "x"})).level, Level::Error);
        assert_eq!(m(json!({"message": "x"})).environment, "production");
    }

    #[test]
    fn tags_breadcrumbs_and_fingerprints() {
        let e = to_new_event(
            &json!({"message": "x", "tags": [["browser", "Firefox"], ["n", 3]],
            "breadcrumbs": [{"message": "a"}], "fingerprint": ["{{ default }}", "db"]}),
        )
        .unwrap();
        assert_eq!(e.tags.get("browser").map(String::as_str), Some("Firefox"));
        assert_eq!(e.tags.get("n").map(String::as_str), Some("3"));
        assert_eq!(e.detail.breadcrumbs.len(), 1);
        assert_eq!(
            e.detail.fingerprint,
            Some(vec!["{{ default }}".to_owned(), "db".to_owned()])
        );
        let e = to_new_event(&json!({"message": "x", "tags": {"a": "b"}})).unwrap();
        assert_eq!(e.tags.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn errors_name_the_field() {
        let err = |v: Value| to_new_event(&v).unwrap_err().0;
        assert_eq!(
            err(json!({})),
            "the event has neither a message, a logentry nor an exception"
        );
        assert_eq!(
            err(json!({"message": "x", "level": "loud"})),
            "unknown level 'loud': expected one of fatal, error, warning, info, log, debug"
        );
        assert!(err(json!({"exception": {"values": [{"type": "E", "stacktrace": {"frames": [{"lineno": "7"}]}}]}}))
            .starts_with("field 'exception.values[0].stacktrace.frames[0]': invalid type: string \"7\""));
        assert_eq!(
            err(json!({"message": "x", "tags": [["a"]]})),
            "field 'tags[0]' must be a [key, value] pair"
        );
        assert_eq!(
            err(json!({"message": "x", "event_id": "nope"})),
            "field 'event_id' must be 32 hex digits or a UUID, got 'nope'"
        );
        assert_eq!(err(json!([1])), "an event must be a JSON object");
    }

    /// The picked keys give the same event as the whole JSON, for the SDK's shape and
    /// for nulls, absent keys and the odd shapes; a duplicate key or a non-object falls
    /// back (None) to the whole parse.
    #[test]
    fn picked_keys_map_like_the_whole_event() {
        let mut rich = python_exception();
        rich["modules"] = json!({"django": "5.0"});
        rich["contexts"] = json!({"os": {"name": "Linux"}});
        rich["message"] = Value::Null;
        rich["tags"] = json!([["a", "b"]]);
        rich["breadcrumbs"] = json!({"values": [{"message": "m"}]});
        rich["extra"] = json!({"z": 1, "a": [1, 2]});
        for v in [
            python_exception(),
            rich,
            json!({"message": "x", "level": null, "release": null, "user": {"id": 1}}),
            json!({"logentry": {"message": "a %s", "params": ["b"]}}),
            // The exception's other shapes: a bare list, a chain, frames with vars.
            json!({"exception": [{"type": "A"}, {"type": "B", "value": "v"}]}),
            json!({"exception": {"values": [{"type": "A", "stacktrace": {"frames": [
                {"function": "f", "vars": {"x": [1, {"y": 2}]}, "pre_context": ["a"]},
                {"filename": null, "lineno": 3, "in_app": true, "abs_path": "/a.py"}
            ]}}, {"value": "only a value", "mechanism": {"type": "chained"},
                "stacktrace": {"frames": []}}], "extra_key": 1}}),
            json!({"message": "m", "exception": {"values": []}}),
            json!({"message": "m", "exception": {"values": null}}),
            json!({"message": "m", "exception": null}),
            json!({"exception": {"values": [{"type": "A", "stacktrace": null}]}}),
            json!({"exception": {"values": [{"type": "A", "stacktrace": {"frames": null}}]}}),
            json!({"exception": [{"type": "A", "stacktrace": {"frames": [
                {"lineno": 18446744073709551615u64, "colno": 0, "module": "m", "context_line": ""}
            ]}}]}),
            // Stored-only parts: non-objects dropped, nulls absent, `values` or a list.
            json!({"message": "m", "breadcrumbs": [1, {"a": 1}, "s", null], "extra": "x",
                "user": null, "sdk": [1]}),
            json!({"message": "m", "breadcrumbs": null, "extra": null}),
            json!({"message": "m", "breadcrumbs": {"values": null, "other": 1}}),
            json!({"message": "m", "breadcrumbs": {"values": [{"b": [1, 2]}, 3]}}),
        ] {
            let bytes = serde_json::to_vec(&v).unwrap();
            let picked = picked_event(&bytes).expect("picked");
            let a = picked.into_new_event().unwrap();
            let b = to_new_event(&v).unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        // Odd shapes inside the exception: either the picked parse gives the whole
        // parse's error, or it falls back (None) to the whole parse.
        for v in [
            json!({"exception": "E"}),
            json!({"exception": {"values": [1, "x"]}}),
            json!({"exception": {"values": {"type": "A"}}}),
            json!({"exception": {"values": [{"type": "A", "stacktrace": []}]}}),
            json!({"exception": {"values": [{"type": "A", "stacktrace": {"frames": {}}}]}}),
            json!({"exception": {"values": [{"type": "A", "stacktrace": {"frames": [1]}}]}}),
            json!({"exception": {"values": [{"type": 5}]}}),
            json!({"exception": {"values": [{"type": "A", "stacktrace": {"frames": [{"lineno": "7"}]}}]}}),
            json!({"exception": {"values": [{"type": "A"}, {"module": "m", "type": ""}]}}),
            json!({"level": "loud", "exception": {"values": [{"module": "m"}]}}),
            json!({"message": "m", "breadcrumbs": "x"}),
            json!({"message": "m", "breadcrumbs": {"values": 5}}),
            json!({"message": "m", "breadcrumbs": {"values": {"a": 1}}}),
        ] {
            let bytes = serde_json::to_vec(&v).unwrap();
            let b = to_new_event(&v).unwrap_err().to_string();
            if let Some(picked) = picked_event(&bytes) {
                assert_eq!(picked.into_new_event().unwrap_err().to_string(), b, "{v}");
            }
        }
        // A key twice inside a frame falls back to the whole parse (its last value).
        let twice = br#"{"exception": {"values": [{"type": "A", "stacktrace": {"frames": [{"lineno": 1, "lineno": 2}]}}]}}"#;
        assert!(picked_event(twice).is_none());
        assert!(picked_event(br#"{"message": "a", "message": "b"}"#).is_none());
        assert!(picked_event(b"[1]").is_none());
        // Breadcrumbs and the other stored-only objects are kept as their text was sent.
        let sent =
            br#"{"message": "m", "breadcrumbs": [ {"a":  1, "b": "\u00e9"} ], "user": {"id" : 7}}"#;
        let e = picked_event(sent).unwrap().into_new_event().unwrap();
        assert_eq!(e.detail.breadcrumbs[0].get(), r#"{"a":  1, "b": "\u00e9"}"#);
        assert_eq!(e.detail.user.unwrap().get(), r#"{"id" : 7}"#);
        assert!(picked_event(br#"{"message": "a", "modules": {"x": }}"#).is_none());
    }
}
