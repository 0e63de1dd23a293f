//! The native event schema (SPEC §2.1) and its validation.
//!
//! Validation reads the keys it needs where they lie in the text (`model::json`), rather
//! than through a derived struct, so that every error names the field and says what was
//! expected, as the API promises; and rather than through a `Value` tree, so that no part
//! it does not read (nor a part past a limit) is ever built.

use super::json::{self, Kind};
use super::level::Level;
use super::time::Millis;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// A JSON value kept as its text: stored and served as sent, never built into a `Value`
/// tree. Breadcrumbs, `extra`, `user` and `sdk` are only stored, so a Sentry event's are
/// copied from its bytes while they are scanned (measured in docs/BENCHMARKS.md, "Sentry
/// mapping": building and dropping their trees was a large part of ingesting an SDK event).
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

/// Why a body is not an event: not JSON, or JSON that is not a valid event.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not a valid event.
    #[error("{0}")]
    Invalid(#[from] InvalidEvent),
}

pub(crate) fn invalid(msg: impl Into<String>) -> InvalidEvent {
    InvalidEvent(msg.into())
}

/// Tags indexed per event (search, tag breakdown, stream filters): Sentry Relay's limits.
/// Past them a pair stays in the event's `data` only.
pub const MAX_TAGS: usize = 100;
/// Longest tag key indexed, in characters.
pub const MAX_TAG_KEY_CHARS: usize = 200;
/// Longest tag value indexed, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 200;
/// Most entries a `fingerprint` may have (more: the event is refused).
pub const MAX_FINGERPRINT_ENTRIES: usize = 64;
/// Longest `fingerprint` entry, in characters (longer: the event is refused).
pub const MAX_FINGERPRINT_ENTRY_CHARS: usize = 1000;
/// Stack frames read per stack trace: Relay's hard limit keeps the first 249 and the last
/// (the innermost, where the exception was raised); the others stay in `data` only.
pub const MAX_FRAMES: usize = 250;
/// Breadcrumbs kept in an event's listed detail: the last 100 (an SDK's default trail);
/// all of them stay in `data`.
pub const MAX_BREADCRUMBS: usize = 100;

/// A string, unescaped (`field` names it if it cannot be: a lone UTF-16 surrogate).
fn unescape(raw: &RawValue, field: impl FnOnce() -> String) -> Result<String, InvalidEvent> {
    serde_json::from_str(raw.get())
        .map_err(|e| invalid(format!("field '{}' is not valid JSON: {e}", field())))
}

/// An optional string field; `null` counts as absent.
fn opt_string(
    raw: Option<&RawValue>,
    path: &str,
    key: &str,
) -> Result<Option<String>, InvalidEvent> {
    let Some(raw) = raw else { return Ok(None) };
    match Kind::of(raw) {
        Kind::Null => Ok(None),
        Kind::String => unescape(raw, || format!("{path}{key}")).map(Some),
        other => Err(invalid(format!(
            "field '{path}{key}' must be a string, got {}",
            other.name()
        ))),
    }
}

fn opt_int(raw: Option<&RawValue>, path: &str, key: &str) -> Result<Option<i64>, InvalidEvent> {
    let Some(raw) = raw else { return Ok(None) };
    let kind = Kind::of(raw);
    if kind == Kind::Null {
        return Ok(None);
    }
    let n = match kind {
        Kind::Number => serde_json::from_str::<Value>(raw.get())
            .ok()
            .and_then(|v| v.as_i64()),
        _ => None,
    };
    n.map(Some).ok_or_else(|| {
        invalid(format!(
            "field '{path}{key}' must be an integer, got {}",
            kind.name()
        ))
    })
}

/// An object stored as its text, exactly as sent.
fn opt_object(raw: Option<&RawValue>, key: &str) -> Result<Option<RawJson>, InvalidEvent> {
    let Some(raw) = raw else { return Ok(None) };
    match Kind::of(raw) {
        Kind::Null => Ok(None),
        Kind::Object => Ok(Some(RawJson::from_raw(raw.to_owned()))),
        other => Err(invalid(format!(
            "field '{key}' must be an object, got {}",
            other.name()
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
pub fn parse_timestamp(raw: Option<&RawValue>) -> Result<Option<Millis>, InvalidEvent> {
    let Some(raw) = raw else { return Ok(None) };
    // A list or an object is named, not printed: it may be large.
    let v = match json::scalar(raw) {
        Some(Ok(v)) => v,
        Some(Err(_)) | None => {
            return Err(invalid(format!(
                "field 'timestamp' must be an RFC 3339 date-time or unix seconds, got {}",
                Kind::of(raw).name()
            )));
        }
    };
    let bad = || {
        invalid(format!(
            "field 'timestamp' must be an RFC 3339 date-time or unix seconds, got {v}"
        ))
    };
    match &v {
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

/// A number's or a boolean's text as a tag value or fingerprint entry has it: as a parsed
/// number prints (so `1.50` is `1.5`, as it always was), or as sent when it does not fit
/// an `f64`.
fn scalar_text(raw: &RawValue) -> String {
    serde_json::from_str::<Value>(raw.get())
        .map(|v| v.to_string())
        .unwrap_or_else(|_| raw.get().to_owned())
}

/// A tag value: strings as they are; numbers and booleans as their JSON text; `None` for
/// any other kind.
pub(crate) fn tag_value(raw: &RawValue, key: &str) -> Option<Result<String, InvalidEvent>> {
    match Kind::of(raw) {
        Kind::String => Some(unescape(raw, || format!("tags.{key}"))),
        Kind::Number | Kind::Bool => Some(Ok(scalar_text(raw))),
        _ => None,
    }
}

/// The tags an event indexes: of the first [`MAX_TAGS`] pairs sent, those whose key and
/// value fit their limits (a key given again replaces its value, as in an object; a value
/// too long to index unindexes it). The pairs after them are not read at all: they stay in
/// the event's `data` only, and cost no more than being skipped.
#[derive(Default)]
pub(crate) struct TagSet {
    tags: BTreeMap<String, String>,
    read: usize,
}

impl TagSet {
    /// Whether [`MAX_TAGS`] pairs were read (the rest is not).
    pub(crate) fn is_full(&self) -> bool {
        self.read >= MAX_TAGS
    }

    /// Reads a pair: indexed if it fits.
    pub(crate) fn add(&mut self, key: Cow<'_, str>, value: String) {
        self.read += 1;
        if key.chars().count() <= MAX_TAG_KEY_CHARS && value.chars().count() <= MAX_TAG_VALUE_CHARS
        {
            self.tags.insert(key.into_owned(), value);
        } else {
            self.tags.remove(key.as_ref());
        }
    }

    /// The indexed pairs.
    pub(crate) fn into_map(self) -> BTreeMap<String, String> {
        self.tags
    }
}

fn parse_tags(raw: Option<&RawValue>) -> Result<BTreeMap<String, String>, InvalidEvent> {
    let Some(raw) = raw.filter(|r| Kind::of(r) != Kind::Null) else {
        return Ok(BTreeMap::new());
    };
    let mut tags = TagSet::default();
    let mut error = None;
    let walked = json::each_entry(raw, |key, v| {
        if tags.is_full() {
            return ControlFlow::Break(());
        }
        match tag_value(v, &key) {
            Some(Ok(value)) => {
                tags.add(key, value);
                ControlFlow::Continue(())
            }
            Some(Err(e)) => {
                error = Some(e);
                ControlFlow::Break(())
            }
            None => {
                // The key as sent may be up to the body's size: the message shows its start.
                let shown: String = key.chars().take(64).collect();
                let more = if key.chars().nth(64).is_some() {
                    "…"
                } else {
                    ""
                };
                error = Some(invalid(format!(
                    "tag '{shown}{more}' must be a string, got {}",
                    Kind::of(v).name()
                )));
                ControlFlow::Break(())
            }
        }
    });
    if walked.is_none() {
        return Err(invalid(format!(
            "field 'tags' must be an object of strings, got {}",
            Kind::of(raw).name()
        )));
    }
    match error {
        Some(e) => Err(e),
        None => Ok(tags.into_map()),
    }
}

/// `fingerprint`: a string or a non-empty list of strings (numbers and booleans as their
/// text), at most [`MAX_FINGERPRINT_ENTRIES`] entries of at most
/// [`MAX_FINGERPRINT_ENTRY_CHARS`] characters.
pub(crate) fn parse_fingerprint(
    raw: Option<&RawValue>,
) -> Result<Option<Vec<String>>, InvalidEvent> {
    let Some(raw) = raw else { return Ok(None) };
    match Kind::of(raw) {
        Kind::Null => Ok(None),
        Kind::String => {
            let s = unescape(raw, || "fingerprint".into())?;
            if s.chars().count() > MAX_FINGERPRINT_ENTRY_CHARS {
                return Err(fingerprint_too_long("fingerprint"));
            }
            Ok(Some(vec![s]).filter(|v| !v[0].is_empty()))
        }
        Kind::List => fingerprint_list(raw),
        other => Err(not_a_fingerprint(other.name())),
    }
}

/// A `fingerprint` given as a list; an empty one counts as absent. The first entry past
/// [`MAX_FINGERPRINT_ENTRIES`] refuses the event without the rest being read.
fn fingerprint_list(raw: &RawValue) -> Result<Option<Vec<String>>, InvalidEvent> {
    let mut entries = Vec::new();
    let mut error = None;
    json::each_item(raw, |i, item| {
        if i == MAX_FINGERPRINT_ENTRIES {
            error = Some(invalid(format!(
                "field 'fingerprint' has more than {MAX_FINGERPRINT_ENTRIES} entries: a fingerprint has at most {MAX_FINGERPRINT_ENTRIES}"
            )));
            return ControlFlow::Break(());
        }
        match fingerprint_entry(i, item) {
            Ok(s) => {
                entries.push(s);
                ControlFlow::Continue(())
            }
            Err(e) => {
                error = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(Some(entries).filter(|e| !e.is_empty())),
    }
}

/// Entry `i` of a `fingerprint` list as its text: a string, or a number's or a boolean's
/// text.
fn fingerprint_entry(i: usize, item: &RawValue) -> Result<String, InvalidEvent> {
    let entry = match Kind::of(item) {
        Kind::String => unescape(item, || format!("fingerprint[{i}]"))?,
        Kind::Number | Kind::Bool => scalar_text(item),
        other => {
            return Err(not_a_fingerprint(&format!(
                "a list holding {}",
                other.name()
            )));
        }
    };
    if entry.chars().count() > MAX_FINGERPRINT_ENTRY_CHARS {
        return Err(fingerprint_too_long(&format!("fingerprint[{i}]")));
    }
    Ok(entry)
}

/// The refusal of a `fingerprint` that is `what` (a kind of JSON value).
fn not_a_fingerprint(what: &str) -> InvalidEvent {
    invalid(format!(
        "field 'fingerprint' must be a string or a list of strings, got {what}"
    ))
}

/// The refusal of a fingerprint entry (at `field`) over [`MAX_FINGERPRINT_ENTRY_CHARS`].
fn fingerprint_too_long(field: &str) -> InvalidEvent {
    invalid(format!(
        "field '{field}' is longer than {MAX_FINGERPRINT_ENTRY_CHARS} characters: a fingerprint entry has at most {MAX_FINGERPRINT_ENTRY_CHARS}"
    ))
}

/// The frames of a list that are read ([`MAX_FRAMES`]: the first 249 and the last), with
/// their places in the list; `None` if `raw` is not a list. The frames between are
/// skipped unread.
pub(crate) fn kept_frames(raw: &RawValue) -> Option<Vec<(usize, &RawValue)>> {
    let mut kept = Vec::new();
    let mut last = None;
    json::each_item(raw, |i, frame| {
        if i < MAX_FRAMES - 1 {
            kept.push((i, frame));
        } else {
            last = Some((i, frame));
        }
        ControlFlow::Continue(())
    })?;
    kept.extend(last);
    Some(kept)
}

/// The last [`MAX_BREADCRUMBS`] objects of a list, as sent. `strict`: the first element
/// that is not an object is answered as `Err((index, kind))`; otherwise such elements
/// are skipped. `None` if `raw` is not a list.
pub(crate) fn kept_breadcrumbs(
    raw: &RawValue,
    strict: bool,
) -> Option<Result<Vec<RawJson>, (usize, Kind)>> {
    let mut kept = std::collections::VecDeque::new();
    let mut bad = None;
    json::each_item(raw, |i, crumb| match Kind::of(crumb) {
        Kind::Object => {
            if kept.len() == MAX_BREADCRUMBS {
                kept.pop_front();
            }
            kept.push_back(crumb);
            ControlFlow::Continue(())
        }
        other if strict => {
            bad = Some((i, other));
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })?;
    Some(match bad {
        Some(bad) => Err(bad),
        None => Ok(kept
            .into_iter()
            .map(|c| RawJson::from_raw(c.to_owned()))
            .collect()),
    })
}

fn parse_exception(raw: Option<&RawValue>) -> Result<Option<Exception>, InvalidEvent> {
    let Some(raw) = raw.filter(|r| Kind::of(r) != Kind::Null) else {
        return Ok(None);
    };
    let Some([ty, value, module]) = json::pick(raw, &["type", "value", "module"]) else {
        return Err(invalid(format!(
            "field 'exception' must be an object, got {}",
            Kind::of(raw).name()
        )));
    };
    let exc = Exception {
        ty: opt_string(ty, "exception.", "type")?.filter(|s| !s.is_empty()),
        value: opt_string(value, "exception.", "value")?.filter(|s| !s.is_empty()),
        module: opt_string(module, "exception.", "module")?,
    };
    if exc.ty.is_none() && exc.value.is_none() {
        return Err(invalid("field 'exception' needs a 'type' or a 'value'"));
    }
    Ok(Some(exc))
}

fn parse_frame(i: usize, raw: &RawValue) -> Result<Frame, InvalidEvent> {
    const KEYS: [&str; 7] = [
        "filename",
        "function",
        "module",
        "lineno",
        "colno",
        "context_line",
        "in_app",
    ];
    let Some(
        [
            filename,
            function,
            module,
            lineno,
            colno,
            context_line,
            in_app,
        ],
    ) = json::pick(raw, &KEYS)
    else {
        return Err(invalid(format!(
            "field 'stacktrace[{i}]' must be an object, got {}",
            Kind::of(raw).name()
        )));
    };
    let path = format!("stacktrace[{i}].");
    let in_app = match in_app.map(Kind::of) {
        None | Some(Kind::Null) => None,
        Some(Kind::Bool) => Some(in_app.is_some_and(|r| r.get() == "true")),
        Some(other) => {
            return Err(invalid(format!(
                "field '{path}in_app' must be a boolean, got {}",
                other.name()
            )));
        }
    };
    Ok(Frame {
        filename: opt_string(filename, &path, "filename")?,
        function: opt_string(function, &path, "function")?,
        module: opt_string(module, &path, "module")?,
        lineno: opt_int(lineno, &path, "lineno")?,
        colno: opt_int(colno, &path, "colno")?,
        context_line: opt_string(context_line, &path, "context_line")?,
        in_app,
    })
}

fn parse_frames(raw: Option<&RawValue>) -> Result<Vec<Frame>, InvalidEvent> {
    let Some(raw) = raw.filter(|r| Kind::of(r) != Kind::Null) else {
        return Ok(Vec::new());
    };
    let Some(kept) = kept_frames(raw) else {
        return Err(invalid(format!(
            "field 'stacktrace' must be a list of frames, got {}",
            Kind::of(raw).name()
        )));
    };
    kept.into_iter().map(|(i, f)| parse_frame(i, f)).collect()
}

fn parse_breadcrumbs(raw: Option<&RawValue>) -> Result<Vec<RawJson>, InvalidEvent> {
    let Some(raw) = raw.filter(|r| Kind::of(r) != Kind::Null) else {
        return Ok(Vec::new());
    };
    match kept_breadcrumbs(raw, true) {
        Some(Ok(kept)) => Ok(kept),
        Some(Err((i, kind))) => Err(invalid(format!(
            "field 'breadcrumbs[{i}]' must be an object, got {}",
            kind.name()
        ))),
        None => Err(invalid(format!(
            "field 'breadcrumbs' must be a list, got {}",
            Kind::of(raw).name()
        ))),
    }
}

/// `event_id`: 32 hex digits or a UUID, as 32 lowercase hex digits.
fn parse_event_id(raw: Option<&RawValue>) -> Result<Option<String>, InvalidEvent> {
    let Some(raw) = opt_string(raw, "", "event_id")? else {
        return Ok(None);
    };
    normalize_event_id(&raw).map(Some).ok_or_else(|| {
        invalid(format!(
            "field 'event_id' must be 32 hex digits or a UUID, got '{raw}'"
        ))
    })
}

/// `level`: one of the level names; `error` when absent.
fn parse_level(raw: Option<&RawValue>) -> Result<Level, InvalidEvent> {
    match opt_string(raw, "", "level")? {
        None => Ok(Level::Error),
        Some(s) => s.parse::<Level>().map_err(|e| invalid(e.to_string())),
    }
}

/// `message` and `exception`: an event says what happened with at least one of them (a
/// blank message counts as none).
fn parse_message_and_exception(
    message: Option<&RawValue>,
    exception: Option<&RawValue>,
) -> Result<(Option<String>, Option<Exception>), InvalidEvent> {
    let message = opt_string(message, "", "message")?.filter(|s| !s.trim().is_empty());
    let exception = parse_exception(exception)?;
    if message.is_none() && exception.is_none() {
        return Err(invalid(
            "field 'message' is required unless 'exception' is given",
        ));
    }
    Ok((message, exception))
}

/// The top-level keys a native event has (SPEC §2.1); any other is kept in `data` only.
const NATIVE_KEYS: [&str; 14] = [
    "event_id",
    "level",
    "environment",
    "release",
    "message",
    "exception",
    "timestamp",
    "tags",
    "stacktrace",
    "breadcrumbs",
    "extra",
    "user",
    "sdk",
    "fingerprint",
];

impl NewEvent {
    /// Validates one native event (SPEC §2.1) from its JSON text.
    pub fn parse(bytes: &[u8]) -> Result<NewEvent, ParseError> {
        Ok(NewEvent::from_raw(json::document(bytes)?)?)
    }

    /// Validates one native event (SPEC §2.1) from JSON text already checked. Only the
    /// keys Mesher reads are parsed, each within the event limits; nothing else is built.
    pub fn from_raw(doc: &RawValue) -> Result<NewEvent, InvalidEvent> {
        let Some(
            [
                event_id,
                level,
                environment,
                release,
                message,
                exception,
                timestamp,
                tags,
                stacktrace,
                breadcrumbs,
                extra,
                user,
                sdk,
                fingerprint,
            ],
        ) = json::pick(doc, &NATIVE_KEYS)
        else {
            return Err(invalid(format!(
                "an event must be a JSON object, got {}",
                Kind::of(doc).name()
            )));
        };
        let event_id = parse_event_id(event_id)?;
        let level = parse_level(level)?;
        let environment = opt_string(environment, "", "environment")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "production".to_owned());
        let release = opt_string(release, "", "release")?.filter(|s| !s.is_empty());
        let (message, exception) = parse_message_and_exception(message, exception)?;
        Ok(NewEvent {
            event_id,
            message,
            level,
            environment,
            release,
            timestamp: parse_timestamp(timestamp)?,
            tags: parse_tags(tags)?,
            detail: EventDetail {
                exception,
                stacktrace: parse_frames(stacktrace)?,
                breadcrumbs: parse_breadcrumbs(breadcrumbs)?,
                extra: opt_object(extra, "extra")?,
                user: opt_object(user, "user")?,
                sdk: opt_object(sdk, "sdk")?,
                fingerprint: parse_fingerprint(fingerprint)?,
            },
            raw: None,
        })
    }

    /// Validates one native event given as a `Value` (tests, and callers holding one).
    pub fn from_json(value: &Value) -> Result<NewEvent, InvalidEvent> {
        let text = serde_json::value::to_raw_value(value).expect("a Value serializes");
        NewEvent::from_raw(&text)
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

    fn parse(text: &str) -> Result<NewEvent, String> {
        NewEvent::parse(text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn not_json_and_not_an_object() {
        assert!(
            parse(r#"{"message": "x""#)
                .unwrap_err()
                .starts_with("invalid JSON: ")
        );
        assert!(NewEvent::parse(b"{\"message\": \"\xff\"}").is_err());
        assert!(NewEvent::parse(b"{\"message\": \"m\", \"other\": \"\xff\"}").is_err());
        assert_eq!(
            parse(r#""x""#).unwrap_err(),
            "an event must be a JSON object, got a string"
        );
    }

    #[test]
    fn stored_parts_keep_their_text_and_unknown_keys_are_not_read() {
        let text = r#"{"message": "m", "extra": {"f": 908260.4524125041, "big": 18446744073709551617},
            "user": {"id" : 7}, "breadcrumbs": [{"t": 1.10}], "unknown": [[[[1e400]]]]}"#;
        let e = parse(text).unwrap();
        assert_eq!(
            e.detail.extra.unwrap().get(),
            r#"{"f": 908260.4524125041, "big": 18446744073709551617}"#
        );
        assert_eq!(e.detail.user.unwrap().get(), r#"{"id" : 7}"#);
        assert_eq!(e.detail.breadcrumbs[0].get(), r#"{"t": 1.10}"#);
        // A key given twice: the last counts, as in a parsed object.
        assert_eq!(
            parse(r#"{"message": "a", "message": "b"}"#)
                .unwrap()
                .message
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn tags_past_the_limits_are_not_indexed() {
        let mut tags = serde_json::Map::new();
        tags.insert("k".repeat(MAX_TAG_KEY_CHARS + 1), json!("long key"));
        tags.insert(
            "long value".into(),
            json!("v".repeat(MAX_TAG_VALUE_CHARS + 1)),
        );
        tags.insert(
            "é".repeat(MAX_TAG_KEY_CHARS),
            json!("é".repeat(MAX_TAG_VALUE_CHARS)),
        );
        for i in 0..40_000 {
            tags.insert(format!("t{i:05}"), json!(i));
        }
        let e = NewEvent::from_json(&json!({"message": "m", "tags": tags})).unwrap();
        // The first 100 pairs sent: the two long ones not indexed, the one that just fits
        // indexed.
        assert_eq!(e.tags.len(), MAX_TAGS - 2);
        assert!(e.tags.contains_key(&"é".repeat(MAX_TAG_KEY_CHARS)));
        assert_eq!(e.tags.get("t00000").map(String::as_str), Some("0"));
        assert_eq!(e.tags.get("t00096").map(String::as_str), Some("96"));
        assert!(!e.tags.contains_key("t00097"));
        // Past the limit a pair is not read (it stays in `data` only); before it, it is
        // checked.
        tags.insert("bad".into(), json!({}));
        assert!(NewEvent::from_json(&json!({"message": "m", "tags": tags})).is_ok());
        assert_eq!(
            err(json!({"message": "m", "tags": {"a": "1", "bad": {}}})),
            "tag 'bad' must be a string, got an object"
        );
        // A key given again replaces its value.
        let e = parse(r#"{"message": "m", "tags": {"a": "1", "a": "2"}}"#).unwrap();
        assert_eq!(e.tags.get("a").map(String::as_str), Some("2"));
    }

    #[test]
    fn fingerprint_limits() {
        let entries =
            |n: usize, len: usize| json!({"message": "m", "fingerprint": vec!["x".repeat(len); n]});
        let e = NewEvent::from_json(&entries(
            MAX_FINGERPRINT_ENTRIES,
            MAX_FINGERPRINT_ENTRY_CHARS,
        ))
        .unwrap();
        assert_eq!(e.detail.fingerprint.unwrap().len(), MAX_FINGERPRINT_ENTRIES);
        assert_eq!(
            err(entries(2000, 1)),
            "field 'fingerprint' has more than 64 entries: a fingerprint has at most 64"
        );
        assert_eq!(
            err(entries(3, MAX_FINGERPRINT_ENTRY_CHARS + 1)),
            "field 'fingerprint[0]' is longer than 1000 characters: a fingerprint entry has at most 1000"
        );
        assert!(
            err(json!({"message": "m", "fingerprint": "x".repeat(1001)})).contains("at most 1000")
        );
        assert_eq!(
            NewEvent::from_json(&json!({"message": "m", "fingerprint": [1.50, true, "a"]}))
                .unwrap()
                .detail
                .fingerprint,
            Some(vec!["1.5".to_owned(), "true".to_owned(), "a".to_owned()])
        );
    }

    #[test]
    fn frames_and_breadcrumbs_are_bounded() {
        let frames: Vec<Value> = (0..10_000)
            .map(|i| json!({"function": format!("f{i}"), "lineno": i}))
            .collect();
        let crumbs: Vec<Value> = (0..10_000).map(|i| json!({"n": i})).collect();
        let e = NewEvent::from_json(
            &json!({"message": "m", "stacktrace": frames, "breadcrumbs": crumbs}),
        )
        .unwrap();
        // Relay's hard limit: the first 249 frames and the last.
        assert_eq!(e.detail.stacktrace.len(), MAX_FRAMES);
        assert_eq!(e.detail.stacktrace[248].function.as_deref(), Some("f248"));
        assert_eq!(e.detail.stacktrace[249].function.as_deref(), Some("f9999"));
        // The last breadcrumbs, the ones nearest the error.
        assert_eq!(e.detail.breadcrumbs.len(), MAX_BREADCRUMBS);
        assert_eq!(e.detail.breadcrumbs[0].get(), r#"{"n":9900}"#);
        // A frame that is read is checked, with its place in the list.
        let mut frames: Vec<Value> = vec![json!({}); 300];
        frames[299] = json!({"lineno": "7"});
        assert_eq!(
            err(json!({"message": "m", "stacktrace": frames})),
            "field 'stacktrace[299].lineno' must be an integer, got a string"
        );
        assert_eq!(
            err(json!({"message": "m", "breadcrumbs": [{}, 1]})),
            "field 'breadcrumbs[1]' must be an object, got a number"
        );
    }

    #[test]
    fn exception_alone_suffices() {
        let e = NewEvent::from_json(&json!({"exception": {"type": "TypeError"}, "fingerprint": "a", "timestamp": 1700000000})).unwrap();
        assert_eq!(e.detail.fingerprint, Some(vec!["a".to_owned()]));
        assert_eq!(e.timestamp, Some(Millis(1_700_000_000_000)));
    }
}
