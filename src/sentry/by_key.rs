//! An event read key by key, where its keys lie in its text: the reading for any event
//! the one scan (`scanned`) does not take — a key given twice (the last counts, as in a
//! parsed object), or a shape it does not know, whose error this reading names.
//!
//! Nothing is built but what is read: only the last exception value (the one raised) is
//! read, of its frames the first 249 and the last (Relay's 250), of the breadcrumbs the
//! last 100.

use super::read::{
    ExceptionKeys, Fields, FrameKeys, Raised, ReadEvent, StoredParts, object, shapes, typed,
};
use crate::model::RawJson;
use crate::model::event::{InvalidEvent, invalid, kept_breadcrumbs, kept_frames};
use crate::model::json::{self, Kind};
use serde_json::Value;
use serde_json::value::RawValue;
use std::ops::ControlFlow;

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
pub(super) fn read(doc: &RawValue) -> Result<ReadEvent<'_>, InvalidEvent> {
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
    let stored = breadcrumbs(crumbs).map(|breadcrumbs| StoredParts {
        breadcrumbs,
        extra: object(extra),
        user: object(user),
        sdk: object(sdk),
    });
    Ok(ReadEvent {
        fields,
        exception: exception(exc),
        stored,
    })
}

/// The list in Sentry's two shapes of one (`exception`, `breadcrumbs`): the list itself,
/// or an object's `values`; `None` for absent or `null` (at either level). `what` names
/// the key in the errors.
fn list_or_values<'a>(
    raw: Option<&'a RawValue>,
    what: &str,
    shapes: &str,
) -> Result<Option<&'a RawValue>, InvalidEvent> {
    match raw.map(|r| (r, Kind::of(r))) {
        None | Some((_, Kind::Null)) => Ok(None),
        Some((list, Kind::List)) => Ok(Some(list)),
        Some((o, Kind::Object)) => match json::pick(o, &["values"]).and_then(|[v]| v) {
            None => Ok(None),
            Some(v) if Kind::of(v) == Kind::Null => Ok(None),
            Some(v) if Kind::of(v) == Kind::List => Ok(Some(v)),
            Some(_) => Err(invalid(format!("field '{what}.values' must be a list"))),
        },
        Some(_) => Err(invalid(format!("field '{what}' must be {shapes}"))),
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

/// The last value of `exception` (the one raised last), its keys and frames typed.
fn exception(raw: Option<&RawValue>) -> Result<Option<Raised>, InvalidEvent> {
    let Some(values) = list_or_values(raw, "exception", "an object or a list")? else {
        return Ok(None);
    };
    let Some((i, last)) = last_item(values) else {
        return Ok(None);
    };
    let path = format!("exception.values[{i}]");
    let Some([ty, value, module, stacktrace]) =
        json::pick(last, &["type", "value", "module", "stacktrace"])
    else {
        return Err(invalid(format!("field '{path}' must be an object")));
    };
    // Only what Mesher reads is typed, so that a field Mesher ignores (a mechanism's help
    // link, a native frame's address) cannot reject the event. The frames' shapes are
    // checked before the value's keys are typed, and typed after: the errors' order.
    let frames = kept_frames_of(stacktrace, &path)?;
    let keys: ExceptionKeys = typed(
        Value::Object(shapes([("type", ty), ("value", value), ("module", module)])),
        &path,
    )?;
    let frames = frames
        .into_iter()
        .map(|(j, f)| frame(f, &format!("{path}.stacktrace.frames[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Raised {
        index: i,
        keys,
        frames,
    }))
}

/// The frames read of `stacktrace` (`model::event::kept_frames`), with their places, as
/// their text; `path` names the exception value.
fn kept_frames_of<'a>(
    stacktrace: Option<&'a RawValue>,
    path: &str,
) -> Result<Vec<(usize, &'a RawValue)>, InvalidEvent> {
    match stacktrace.map(|s| (s, Kind::of(s))) {
        None | Some((_, Kind::Null)) => Ok(Vec::new()),
        Some((st, Kind::Object)) => match json::pick(st, &["frames"]).and_then(|[f]| f) {
            None => Ok(Vec::new()),
            Some(f) if Kind::of(f) == Kind::Null => Ok(Vec::new()),
            Some(f) => kept_frames(f)
                .ok_or_else(|| invalid(format!("field '{path}.stacktrace.frames' must be a list"))),
        },
        Some(_) => Err(invalid(format!(
            "field '{path}.stacktrace' must be an object"
        ))),
    }
}

/// One frame's keys, typed.
fn frame(raw: &RawValue, path: &str) -> Result<FrameKeys, InvalidEvent> {
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
    typed(Value::Object(picked), path)
}

/// `breadcrumbs`: a list or `{"values": [...]}`; the last objects kept as sent, the
/// elements that are not objects skipped.
fn breadcrumbs(raw: Option<&RawValue>) -> Result<Vec<RawJson>, InvalidEvent> {
    let Some(list) = list_or_values(raw, "breadcrumbs", "a list or an object")? else {
        return Ok(Vec::new());
    };
    Ok(kept_breadcrumbs(list, false)
        .and_then(Result::ok)
        .unwrap_or_default())
}
