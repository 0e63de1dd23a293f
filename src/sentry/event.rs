//! Sentry's event schema mapped to Mesher's (SPEC §2.2).
//!
//! The parts Mesher interprets — the exception, its stack frames, the log entry and the
//! level — are read as `sentry-types`' protocol types read them. The rest is read by hand,
//! where Sentry's wire format is looser than those types: `message` may be a string or an
//! object, `tags` an object or a list of pairs, `breadcrumbs` a list or
//! `{"values": [...]}`, and `user`, `sdk`, `extra` and breadcrumbs are stored as sent.
//!
//! Nothing is built but what is read, within the event limits (`model::event`): the
//! keys are found in the text and parsed one by one; only the last exception value (the
//! one raised) is read, of its frames the first 249 and the last (Relay's 250), of the
//! breadcrumbs the last 100, of the tags the first 100 that fit. So an event of 1 MiB,
//! however built, costs about its size.

use crate::model::event::{
    EventDetail, InvalidEvent, MAX_BREADCRUMBS, MAX_FRAMES, ParseError, TagSet, kept_breadcrumbs,
    kept_frames, normalize_event_id, parse_fingerprint, parse_timestamp, tag_value,
};
use crate::model::json::{self, Kind};
use crate::model::{Exception, Frame, Level, NewEvent, RawJson};
use sentry_types::protocol::v7;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;

fn invalid(msg: impl Into<String>) -> InvalidEvent {
    InvalidEvent(msg.into())
}

/// Deserializes `v` into a `sentry-types` type, naming `path` when it does not fit.
fn typed<T: serde::de::DeserializeOwned>(v: Value, path: &str) -> Result<T, InvalidEvent> {
    serde_json::from_value(v).map_err(|e| invalid(format!("field '{path}': {e}")))
}

/// `raw` as a `Value` for a typed check: scalars as they are, a list or an object empty
/// (a type error names the kind, never the contents, so the message is the same).
fn shape(raw: &RawValue) -> Value {
    match Kind::of(raw) {
        Kind::List => Value::Array(Vec::new()),
        Kind::Object => Value::Object(Map::new()),
        _ => json::scalar(raw)
            .and_then(Result::ok)
            .unwrap_or(Value::Null),
    }
}

/// An object of the given keys' shapes, the absent and `null` ones left out.
fn shapes<const N: usize>(fields: [(&str, Option<&RawValue>); N]) -> Map<String, Value> {
    fields
        .into_iter()
        .filter(|(_, v)| !json::is_null(*v))
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), shape(v))))
        .collect()
}

/// A string, unescaped (an unescapable one, a lone surrogate, is an error naming `key`).
fn unescape(raw: &RawValue, key: &str) -> Result<String, InvalidEvent> {
    serde_json::from_str(raw.get())
        .map_err(|e| invalid(format!("field '{key}' is not valid JSON: {e}")))
}

fn string_field(raw: Option<&RawValue>, key: &str) -> Result<Option<String>, InvalidEvent> {
    match raw.map(|r| (r, Kind::of(r))) {
        None | Some((_, Kind::Null)) => Ok(None),
        Some((r, Kind::String)) => Ok(Some(unescape(r, key)?).filter(|s| !s.is_empty())),
        Some(_) => Err(invalid(format!("field '{key}' must be a string"))),
    }
}

/// A log parameter as it fills a `%s`: a string as it is, a scalar as its JSON text, a
/// list or an object as sent (never built into a tree).
fn param_text(raw: &RawValue) -> String {
    match json::scalar(raw) {
        Some(Ok(Value::String(s))) => s,
        Some(Ok(v)) => v.to_string(),
        _ => raw.get().to_owned(),
    }
}

/// `logentry` (or `message` as an object): `formatted` when given, else `message` with its
/// `%s` placeholders filled from `params`.
fn log_message(raw: &RawValue, path: &str) -> Result<Option<String>, InvalidEvent> {
    let Some([formatted, message, params]) = json::pick(raw, &["formatted", "message", "params"])
    else {
        return Err(invalid(format!("field '{path}' must be an object")));
    };
    // sentry-types' LogEntry has no `formatted`.
    if let Some(Ok(f)) = formatted.and_then(json::string)
        && !f.trim().is_empty()
    {
        return Ok(Some(f));
    }
    let Some(message) = message else {
        return Ok(None);
    };
    let mut entry = Map::new();
    entry.insert("message".into(), shape(message));
    if let Some(params) = params {
        entry.insert("params".into(), shape(params));
    }
    typed::<v7::LogEntry>(Value::Object(entry), path)?;
    let message = unescape(message, path)?;
    let mut out = String::new();
    let mut rest = message.as_str();
    if let Some(params) = params {
        // As many parameters are read as there are placeholders; the rest are skipped.
        json::each_item(params, |_, p| match rest.find("%s") {
            Some(i) => {
                out.push_str(&rest[..i]);
                out.push_str(&param_text(p));
                rest = &rest[i + 2..];
                ControlFlow::Continue(())
            }
            None => ControlFlow::Break(()),
        });
    }
    out.push_str(rest);
    Ok(Some(out).filter(|s| !s.trim().is_empty()))
}

fn message(
    message: Option<&RawValue>,
    logentry: Option<&RawValue>,
) -> Result<Option<String>, InvalidEvent> {
    let from_message = match message.map(|m| (m, Kind::of(m))) {
        None | Some((_, Kind::Null)) => None,
        Some((m, Kind::String)) => Some(unescape(m, "message")?).filter(|s| !s.trim().is_empty()),
        Some((m, Kind::Object)) => log_message(m, "message")?,
        Some(_) => return Err(invalid("field 'message' must be a string or an object")),
    };
    match (
        logentry.filter(|l| Kind::of(l) == Kind::Object),
        from_message,
    ) {
        (Some(l), None) => log_message(l, "logentry"),
        (_, m) => Ok(m),
    }
}

/// The last element of a list and its place (`None` for an empty list); the others are
/// skipped unread.
fn last_item(list: &RawValue) -> Option<(usize, &RawValue)> {
    let mut last = None;
    json::each_item(list, |i, item| {
        last = Some((i, item));
        ControlFlow::Continue(())
    });
    last
}

/// One frame of `exception.values[i]`, typed as `sentry-types` reads it.
fn frame(raw: &RawValue, path: &str) -> Result<Frame, InvalidEvent> {
    const KEYS: [&str; 8] = [
        "filename",
        "abs_path",
        "function",
        "module",
        "lineno",
        "colno",
        "context_line",
        "in_app",
    ];
    let Some(found) = json::pick(raw, &KEYS) else {
        return Err(invalid(format!("field '{path}' must be an object")));
    };
    let picked = shapes(std::array::from_fn::<_, 8, _>(|k| (KEYS[k], found[k])));
    let frame: v7::Frame = typed(Value::Object(picked), path)?;
    Ok(Frame {
        filename: frame.filename.or(frame.abs_path),
        function: frame.function,
        module: frame.module,
        lineno: frame.lineno.and_then(|n| i64::try_from(n).ok()),
        colno: frame.colno.and_then(|n| i64::try_from(n).ok()),
        context_line: frame.context_line,
        in_app: frame.in_app,
    })
}

/// The last value of `exception` (the one raised last) and its frames, oldest first.
fn exception(raw: Option<&RawValue>) -> ExceptionResult {
    let values = match raw.map(|r| (r, Kind::of(r))) {
        None | Some((_, Kind::Null)) => return Ok(None),
        Some((list, Kind::List)) => list,
        Some((o, Kind::Object)) => match json::pick(o, &["values"]).and_then(|[v]| v) {
            None => return Ok(None),
            Some(v) if Kind::of(v) == Kind::Null => return Ok(None),
            Some(v) if Kind::of(v) == Kind::List => v,
            Some(_) => return Err(invalid("field 'exception.values' must be a list")),
        },
        Some(_) => return Err(invalid("field 'exception' must be an object or a list")),
    };
    let Some((i, last)) = last_item(values) else {
        return Ok(None);
    };
    let Some([ty, value, module, stacktrace]) =
        json::pick(last, &["type", "value", "module", "stacktrace"])
    else {
        return Err(invalid(format!(
            "field 'exception.values[{i}]' must be an object"
        )));
    };
    // Only what Mesher reads goes through the typed schema, so that a field Mesher ignores
    // (a mechanism's help link, a native frame's address) cannot reject the event.
    let mut picked = shapes([("type", ty), ("value", value), ("module", module)]);
    // sentry-types requires `type`; Sentry accepts an exception with only a value.
    picked
        .entry("type")
        .or_insert_with(|| Value::String(String::new()));
    let frames = match stacktrace.map(|s| (s, Kind::of(s))) {
        None | Some((_, Kind::Null)) => Vec::new(),
        Some((st, Kind::Object)) => match json::pick(st, &["frames"]).and_then(|[f]| f) {
            None => Vec::new(),
            Some(f) if Kind::of(f) == Kind::Null => Vec::new(),
            Some(f) => kept_frames(f).ok_or_else(|| {
                invalid(format!(
                    "field 'exception.values[{i}].stacktrace.frames' must be a list"
                ))
            })?,
        },
        Some(_) => {
            return Err(invalid(format!(
                "field 'exception.values[{i}].stacktrace' must be an object"
            )));
        }
    };
    let exc: v7::Exception = typed(Value::Object(picked), &format!("exception.values[{i}]"))?;
    let frames = frames
        .into_iter()
        .map(|(j, f)| frame(f, &format!("exception.values[{i}].stacktrace.frames[{j}]")))
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

/// `tags`: an object, or a list of `[key, value]` pairs; indexed within the event limits
/// (`TagSet`: once it is full, the rest is not read).
fn tags(raw: Option<&RawValue>) -> Result<BTreeMap<String, String>, InvalidEvent> {
    let mut out = TagSet::default();
    match raw.map(|r| (r, Kind::of(r))) {
        None | Some((_, Kind::Null)) => {}
        Some((map, Kind::Object)) => {
            let mut error = None;
            json::each_entry(map, |k, v| {
                if out.is_full() {
                    return ControlFlow::Break(());
                }
                match tag_value(v, &k) {
                    Some(Ok(value)) => {
                        out.add(k, value);
                        return ControlFlow::Continue(());
                    }
                    Some(Err(e)) => error = Some(e),
                    None => error = Some(invalid(format!("tag '{k}' must be a string"))),
                }
                ControlFlow::Break(())
            });
            if let Some(e) = error {
                return Err(e);
            }
        }
        Some((pairs, Kind::List)) => {
            let mut error = None;
            json::each_item(pairs, |i, pair| {
                if out.is_full() {
                    return ControlFlow::Break(());
                }
                let Some((k, v)) = json::pair(pair) else {
                    error = Some(invalid(format!(
                        "field 'tags[{i}]' must be a [key, value] pair"
                    )));
                    return ControlFlow::Break(());
                };
                match (json::text(k), tag_value(v, "")) {
                    (Some(Ok(k)), Some(Ok(value))) => {
                        out.add(k, value);
                        return ControlFlow::Continue(());
                    }
                    (Some(Err(e)), _) => {
                        error = Some(invalid(format!("field 'tags[{i}]' is not valid JSON: {e}")))
                    }
                    (_, Some(Err(e))) => error = Some(e),
                    _ => {
                        error = Some(invalid(format!(
                            "field 'tags[{i}]' must be a pair of strings"
                        )))
                    }
                }
                ControlFlow::Break(())
            });
            if let Some(e) = error {
                return Err(e);
            }
        }
        Some(_) => return Err(invalid("field 'tags' must be an object or a list of pairs")),
    }
    Ok(out.into_map())
}

/// `breadcrumbs`: a list or `{"values": [...]}`; the last objects kept as sent.
fn breadcrumbs(raw: Option<&RawValue>) -> Result<Vec<RawJson>, InvalidEvent> {
    let list = match raw.map(|r| (r, Kind::of(r))) {
        None | Some((_, Kind::Null)) => return Ok(Vec::new()),
        Some((list, Kind::List)) => list,
        Some((o, Kind::Object)) => match json::pick(o, &["values"]).and_then(|[v]| v) {
            None => return Ok(Vec::new()),
            Some(v) if Kind::of(v) == Kind::Null => return Ok(Vec::new()),
            Some(v) if Kind::of(v) == Kind::List => v,
            Some(_) => return Err(invalid("field 'breadcrumbs.values' must be a list")),
        },
        Some(_) => return Err(invalid("field 'breadcrumbs' must be a list or an object")),
    };
    Ok(kept_breadcrumbs(list, false)
        .and_then(Result::ok)
        .unwrap_or_default())
}

fn object(raw: Option<&RawValue>) -> Option<RawJson> {
    raw.filter(|r| Kind::of(r) == Kind::Object)
        .map(|r| RawJson::from_raw(r.to_owned()))
}

/// The parts of an event that are only stored: breadcrumbs, `extra`, `user`, `sdk`.
struct StoredParts {
    breadcrumbs: Vec<RawJson>,
    extra: Option<RawJson>,
    user: Option<RawJson>,
    sdk: Option<RawJson>,
}

/// The top-level keys the mapping reads, as their text.
#[derive(Default)]
struct Fields<'a> {
    event_id: Option<&'a RawValue>,
    level: Option<&'a RawValue>,
    message: Option<&'a RawValue>,
    logentry: Option<&'a RawValue>,
    environment: Option<&'a RawValue>,
    release: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
    tags: Option<&'a RawValue>,
    fingerprint: Option<&'a RawValue>,
}

/// The last exception value (the one raised) and its frames, oldest first; or the error.
type ExceptionResult = Result<Option<(Exception, Vec<Frame>)>, InvalidEvent>;

/// Every top-level key the mapping reads.
const KEYS: [&str; 14] = [
    "event_id",
    "level",
    "message",
    "logentry",
    "exception",
    "environment",
    "release",
    "timestamp",
    "tags",
    "breadcrumbs",
    "extra",
    "user",
    "sdk",
    "fingerprint",
];

/// The event in `doc` (text already checked to be JSON), its keys found where they lie.
fn event_in(doc: &RawValue) -> Result<NewEvent, InvalidEvent> {
    let Some(
        [
            event_id,
            level,
            message,
            logentry,
            exc,
            environment,
            release,
            timestamp,
            tags,
            crumbs,
            extra,
            user,
            sdk,
            fingerprint,
        ],
    ) = json::pick(doc, &KEYS)
    else {
        return Err(invalid("an event must be a JSON object"));
    };
    let fields = Fields {
        event_id,
        level,
        message,
        logentry,
        environment,
        release,
        timestamp,
        tags,
        fingerprint,
    };
    // The stored parts' errors come after the others' (`event_of`'s order).
    let stored = breadcrumbs(crumbs).map(|breadcrumbs| StoredParts {
        breadcrumbs,
        extra: object(extra),
        user: object(user),
        sdk: object(sdk),
    });
    event_of(fields, exception(exc), stored)
}

/// The top-level keys [`to_new_event`] reads, found in one scan of the event: those it
/// interprets as their text (no tree built), the exception typed as it is scanned, every
/// other key skipped.
#[derive(serde::Deserialize)]
struct Picked<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    event_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    level: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    message: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    logentry: Option<&'a RawValue>,
    /// Typed while scanning: only what [`exception`] reads is built (an SDK's frames carry
    /// `vars` and context lines that are large and never read here).
    #[serde(default)]
    exception: Option<PickedException>,
    #[serde(borrow, default, deserialize_with = "present")]
    environment: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    release: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    tags: Option<&'a RawValue>,
    /// Stored only: the last objects copied as text while scanning (`null` reads as
    /// absent, as in [`breadcrumbs`]).
    #[serde(borrow, default)]
    breadcrumbs: Option<ListOrValues<LastObjects<'a>>>,
    #[serde(borrow, default)]
    extra: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user: Option<&'a RawValue>,
    #[serde(borrow, default)]
    sdk: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    fingerprint: Option<&'a RawValue>,
}

/// A key that is given, as its text (`null` included; `Option`'s own reading would make
/// `null` absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue as serde::Deserialize>::deserialize(d).map(Some)
}

/// An event scanned once for the keys [`to_new_event`] reads.
pub struct PickedEvent<'a> {
    fields: Fields<'a>,
    exception: ExceptionResult,
    stored: StoredParts,
}

impl PickedEvent<'_> {
    /// The event, with the same answer or error [`to_new_event`] gives for the whole JSON.
    pub fn into_new_event(self) -> Result<NewEvent, InvalidEvent> {
        event_of(self.fields, self.exception, Ok(self.stored))
    }
}

/// The event's keys that [`to_new_event`] reads, picked in one scan of `bytes`, or `None`
/// when the bytes are not a JSON object with each of those keys once and in a shape the
/// scan knows (the caller then reads them as [`parse_event`] does, for the same answer
/// and error).
///
/// Measured (docs/BENCHMARKS.md, "Sentry mapping"): an SDK event's modules, contexts and
/// request, built into a `Value` tree and dropped unread, were a large part of parsing it; so
/// were its
/// breadcrumbs, built into a tree only to be written out again.
pub fn picked_event(bytes: &[u8]) -> Option<PickedEvent<'_>> {
    // A derived struct also reads a JSON array (as its fields in order): objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let p: Picked<'_> = serde_json::from_slice(bytes).ok()?;
    let object_text = |raw: Option<&RawValue>| object(raw.filter(|r| Kind::of(r) != Kind::Null));
    let stored = StoredParts {
        breadcrumbs: p.breadcrumbs.map_or_else(Vec::new, |b| b.0.into_kept()),
        extra: object_text(p.extra),
        user: object_text(p.user),
        sdk: object_text(p.sdk),
    };
    let exception = match p.exception.and_then(|e| e.0.last) {
        None => Ok(None),
        Some((n, ObjectOnly(last))) => last.into_exception(n),
    };
    Some(PickedEvent {
        fields: Fields {
            event_id: p.event_id,
            level: p.level,
            message: p.message,
            logentry: p.logentry,
            environment: p.environment,
            release: p.release,
            timestamp: p.timestamp,
            tags: p.tags,
            fingerprint: p.fingerprint,
        },
        exception,
        stored,
    })
}

/// One Sentry event (an envelope's `event` item or a `store` body) from its bytes: picked
/// in one scan when it has the usual shape, else read key by key, for the same answer.
pub fn parse_event(bytes: &[u8]) -> Result<NewEvent, ParseError> {
    if let Some(picked) = picked_event(bytes) {
        return Ok(picked.into_new_event()?);
    }
    Ok(event_in(json::document(bytes)?)?)
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
/// and the event is read key by key (for the same error). `C` reads the list.
struct ListOrValues<C>(C);

#[derive(serde::Deserialize)]
struct Values<C> {
    #[serde(default = "Option::default")]
    values: Option<C>,
}

impl<'de, C: serde::Deserialize<'de> + Default> serde::Deserialize<'de> for ListOrValues<C> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<C>(std::marker::PhantomData<C>);
        impl<'de, C: serde::Deserialize<'de> + Default> serde::de::Visitor<'de> for V<C> {
            type Value = ListOrValues<C>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list or an object of values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                C::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(ListOrValues)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let v = <Values<C> as serde::Deserialize>::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(ListOrValues(v.values.unwrap_or_default()))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A list's last [`MAX_BREADCRUMBS`] objects, as their text; other elements skipped.
#[derive(Default)]
struct LastObjects<'a>(VecDeque<&'a RawValue>);

impl LastObjects<'_> {
    fn into_kept(self) -> Vec<RawJson> {
        self.0
            .into_iter()
            .map(|r| RawJson::from_raw(r.to_owned()))
            .collect()
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for LastObjects<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = LastObjects<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut kept = VecDeque::new();
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    if Kind::of(item) == Kind::Object {
                        if kept.len() == MAX_BREADCRUMBS {
                            kept.pop_front();
                        }
                        kept.push_back(item);
                    }
                }
                Ok(LastObjects(kept))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A list's last element, typed, with its place; the ones before are typed and dropped
/// as the next arrives (the whole parse reads only the last, but an earlier one that does
/// not fit the type falls back to it).
struct Last<T> {
    last: Option<(usize, T)>,
}

impl<T> Default for Last<T> {
    fn default() -> Self {
        Last { last: None }
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Last<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Last<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut last = None;
                let mut i = 0;
                while let Some(item) = seq.next_element::<T>()? {
                    last = Some((i, item));
                    i += 1;
                }
                Ok(Last { last })
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// The exception's values as [`exception`] reads them: of the last (its index kept, for
/// the error) the type, value, module and each frame's picked keys, typed as
/// `sentry-types` reads them.
type PickedException = ListOrValues<Last<ObjectOnly<PickedExceptionValue>>>;

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
    frames: Option<KeptFrames>,
}

/// Frames as [`kept_frames`] keeps them: the first 249 typed as they are scanned, of the
/// rest only the last (the ones between skipped unread).
struct KeptFrames(Vec<PickedFrame>);

impl<'de> serde::Deserialize<'de> for KeptFrames {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeptFrames;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of frames")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut frames = Vec::new();
                while frames.len() < MAX_FRAMES - 1 {
                    match seq.next_element::<ObjectOnly<PickedFrame>>()? {
                        Some(ObjectOnly(f)) => frames.push(f),
                        None => return Ok(KeptFrames(frames)),
                    }
                }
                let mut last: Option<&'de RawValue> = None;
                while let Some(f) = seq.next_element::<&'de RawValue>()? {
                    last = Some(f);
                }
                if let Some(f) = last {
                    let ObjectOnly(f) = serde_json::from_str::<ObjectOnly<PickedFrame>>(f.get())
                        .map_err(serde::de::Error::custom)?;
                    frames.push(f);
                }
                Ok(KeptFrames(frames))
            }
        }
        d.deserialize_seq(V)
    }
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
            .map_or_else(Vec::new, |f| f.0)
            .into_iter()
            .map(|f| Frame {
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

/// Maps one Sentry event (an envelope's `event` item or a `store` body) to a Mesher event,
/// read key by key (as [`parse_event`] does when the picked scan does not apply).
pub fn to_new_event(value: &Value) -> Result<NewEvent, InvalidEvent> {
    event_in(&serde_json::value::to_raw_value(value).expect("a Value serializes"))
}

/// The event from its read keys, exception and stored parts, its fields checked in order
/// so that an event's first error is the one named.
fn event_of(
    fields: Fields<'_>,
    exception: ExceptionResult,
    stored: Result<StoredParts, InvalidEvent>,
) -> Result<NewEvent, InvalidEvent> {
    let event_id = match string_field(fields.event_id, "event_id")? {
        None => None,
        Some(raw) => Some(normalize_event_id(&raw).ok_or_else(|| {
            invalid(format!(
                "field 'event_id' must be 32 hex digits or a UUID, got '{raw}'"
            ))
        })?),
    };
    let level = match string_field(fields.level, "level")? {
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
    let message = message(fields.message, fields.logentry)?;
    let exception = exception?;
    if message.is_none() && exception.is_none() {
        return Err(invalid(
            "the event has neither a message, a logentry nor an exception",
        ));
    }
    let (exception, stacktrace) = match exception {
        Some((e, frames)) => (Some(e), frames),
        None => (None, Vec::new()),
    };
    let environment =
        string_field(fields.environment, "environment")?.unwrap_or_else(|| "production".into());
    let release = string_field(fields.release, "release")?;
    let timestamp = parse_timestamp(fields.timestamp)?;
    let tags = tags(fields.tags)?;
    let stored = stored?;
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
            fingerprint: parse_fingerprint(fields.fingerprint)?,
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

    /// Both readings: the one-scan pick and, for a key given twice (which the pick leaves
    /// to it), the key-by-key one.
    fn both(v: &Value) -> [Result<NewEvent, String>; 2] {
        let bytes = serde_json::to_vec(v).unwrap();
        let picked = picked_event(&bytes).expect("picked").into_new_event();
        let mut dup = bytes;
        dup.pop();
        // `level` twice makes the derived scan fail; the last (the same) counts.
        let level = v.get("level").cloned().unwrap_or(json!("error"));
        dup.extend_from_slice(format!(r#", "level": {level}, "level": {level}}}"#).as_bytes());
        assert!(picked_event(&dup).is_none());
        [
            picked.map_err(|e| e.0),
            parse_event(&dup).map_err(|e| e.to_string()),
        ]
    }

    #[test]
    fn limits_hold_on_both_readings() {
        // Many exception values: only the last is read.
        let values: Vec<Value> = (0..5_000)
            .map(
                |i| json!({"type": format!("E{i}"), "stacktrace": {"frames": [{"function": "f"}]}}),
            )
            .collect();
        // Many frames: the first 249 and the last.
        let frames: Vec<Value> = (0..5_000)
            .map(|i| json!({"function": format!("f{i}")}))
            .collect();
        let mut last = values.last().unwrap().clone();
        last["stacktrace"]["frames"] = json!(frames);
        let mut values = values;
        *values.last_mut().unwrap() = last;
        let pairs: Vec<Value> = (0..5_000).map(|i| json!([format!("t{i:04}"), i])).collect();
        let crumbs: Vec<Value> = (0..5_000).map(|i| json!({"n": i})).collect();
        let params: Vec<Value> = (0..50_000).map(|i| json!(i)).collect();
        let v = json!({"exception": {"values": values}, "tags": pairs, "breadcrumbs": crumbs,
            "logentry": {"message": "a %s b %s", "params": params}});
        for e in both(&v) {
            let e = e.unwrap();
            assert_eq!(title(&e), "E4999");
            assert_eq!(e.detail.stacktrace.len(), MAX_FRAMES);
            assert_eq!(e.detail.stacktrace[249].function.as_deref(), Some("f4999"));
            assert_eq!(e.tags.len(), crate::model::event::MAX_TAGS);
            assert_eq!(e.detail.breadcrumbs.len(), MAX_BREADCRUMBS);
            assert_eq!(e.message.as_deref(), Some("a 0 b 1"));
        }
        let fp = json!({"message": "m", "fingerprint": vec!["{{ default }}"; 2000]});
        for e in both(&fp) {
            assert_eq!(
                e.unwrap_err(),
                "field 'fingerprint' has more than 64 entries: a fingerprint has at most 64"
            );
        }
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
