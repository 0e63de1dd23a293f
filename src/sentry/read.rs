//! A Sentry event's keys as they are read, before they are mapped. The two readers
//! (`scanned`: one scan, for the usual shape; `by_key`: key by key, for any other) both
//! give a [`ReadEvent`], and `event` maps it: there is one mapping, whichever read it.

use crate::model::event::{InvalidEvent, invalid};
use crate::model::json::{self, Kind};
use crate::model::{Exception, Frame, RawJson};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The top-level keys the mapping interprets, as their text.
#[derive(Default)]
pub(super) struct Fields<'a> {
    pub event_id: Option<&'a RawValue>,
    pub level: Option<&'a RawValue>,
    pub message: Option<&'a RawValue>,
    pub logentry: Option<&'a RawValue>,
    pub environment: Option<&'a RawValue>,
    pub release: Option<&'a RawValue>,
    pub timestamp: Option<&'a RawValue>,
    pub tags: Option<&'a RawValue>,
    pub fingerprint: Option<&'a RawValue>,
}

/// The parts of an event that are only stored: breadcrumbs, `extra`, `user`, `sdk`.
pub(super) struct StoredParts {
    pub breadcrumbs: Vec<RawJson>,
    pub extra: Option<RawJson>,
    pub user: Option<RawJson>,
    pub sdk: Option<RawJson>,
}

/// An exception value's keys as `sentry_types::protocol::v7::Exception` types them, but
/// for `type`, which it requires and Sentry does not (an exception with only a value).
#[derive(serde::Deserialize)]
pub(super) struct ExceptionKeys {
    #[serde(default, rename = "type")]
    pub ty: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub module: Option<String>,
}

/// A frame's keys as `sentry_types::protocol::v7::Frame` types them.
#[derive(serde::Deserialize)]
pub(super) struct FrameKeys {
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub abs_path: Option<String>,
    #[serde(default)]
    pub function: Option<String>,
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default)]
    pub lineno: Option<u64>,
    #[serde(default)]
    pub colno: Option<u64>,
    #[serde(default)]
    pub context_line: Option<String>,
    #[serde(default)]
    pub in_app: Option<bool>,
}

/// The last exception value (the one raised): its place in `exception.values`, its keys
/// and its kept frames (`model::event::MAX_FRAMES`), oldest first.
pub(super) struct Raised {
    pub index: usize,
    pub keys: ExceptionKeys,
    pub frames: Vec<FrameKeys>,
}

/// An event as read: the keys the mapping interprets, the exception raised and the
/// stored parts, the last two with the error their reading met (the mapping names an
/// event's errors in its own order).
pub(super) struct ReadEvent<'a> {
    pub fields: Fields<'a>,
    pub exception: Result<Option<Raised>, InvalidEvent>,
    pub stored: Result<StoredParts, InvalidEvent>,
}

impl Raised {
    /// Mesher's exception and stack trace; an exception needs a type or a value.
    pub(crate) fn into_parts(self) -> Result<(Exception, Vec<Frame>), InvalidEvent> {
        let exception = Exception {
            ty: self.keys.ty.filter(|t| !t.is_empty()),
            value: self.keys.value.filter(|v| !v.is_empty()),
            module: self.keys.module,
        };
        if exception.ty.is_none() && exception.value.is_none() {
            return Err(invalid(format!(
                "field 'exception.values[{}]' needs a 'type' or a 'value'",
                self.index
            )));
        }
        Ok((
            exception,
            self.frames.into_iter().map(Frame::from).collect(),
        ))
    }
}

impl From<FrameKeys> for Frame {
    fn from(f: FrameKeys) -> Frame {
        Frame {
            filename: f.filename.or(f.abs_path),
            function: f.function,
            module: f.module,
            lineno: f.lineno.and_then(|n| i64::try_from(n).ok()),
            colno: f.colno.and_then(|n| i64::try_from(n).ok()),
            context_line: f.context_line,
            in_app: f.in_app,
        }
    }
}

/// An object kept as its text, exactly as sent; anything else is not kept.
pub(super) fn object(raw: Option<&RawValue>) -> Option<RawJson> {
    raw.filter(|r| Kind::of(r) == Kind::Object)
        .map(|r| RawJson::from_raw(r.to_owned()))
}

/// Deserializes `v` into a typed reading, naming `path` when it does not fit.
pub(super) fn typed<T: serde::de::DeserializeOwned>(
    v: Value,
    path: &str,
) -> Result<T, InvalidEvent> {
    serde_json::from_value(v).map_err(|e| invalid(format!("field '{path}': {e}")))
}

/// `raw` as a `Value` for a typed check: scalars as they are, a list or an object empty
/// (a type error names the kind, never the contents, so the message is the same).
pub(super) fn shape(raw: &RawValue) -> Value {
    match Kind::of(raw) {
        Kind::List => Value::Array(Vec::new()),
        Kind::Object => Value::Object(Map::new()),
        _ => json::scalar(raw)
            .and_then(Result::ok)
            .unwrap_or(Value::Null),
    }
}

/// An object of the given keys' shapes, the absent and `null` ones left out.
pub(super) fn shapes<const N: usize>(fields: [(&str, Option<&RawValue>); N]) -> Map<String, Value> {
    fields
        .into_iter()
        .filter(|(_, v)| !json::is_null(*v))
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), shape(v))))
        .collect()
}
