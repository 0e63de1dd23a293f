//! Sentry's event schema mapped to Mesher's (SPEC §2.2): [`parse_event`], the one way from
//! an SDK's payload to a [`NewEvent`].
//!
//! The event is read first (`read`): in one scan when it has the usual shape (`scanned`),
//! else key by key (`by_key`), for the same answer or error. The reading is mapped here,
//! one way whichever read it.
//!
//! The parts Mesher interprets — the exception, its stack frames, the log entry and the
//! level — are typed as `sentry-types`' protocol types type them. The rest is read by hand,
//! where Sentry's wire format is looser than those types: `message` may be a string or an
//! object, `tags` an object or a list of pairs, `breadcrumbs` a list or
//! `{"values": [...]}`, and `user`, `sdk`, `extra` and breadcrumbs are stored as sent.
//!
//! Nothing is built but what is read, within the event limits (`model::event`): only the
//! last exception value (the one raised) is read, of its frames the first 249 and the
//! last (Relay's 250), of the breadcrumbs the last 100, of the tags the first 100 that
//! fit. So an event of 1 MiB, however built, costs about its size.

use super::read::{Fields, ReadEvent, shape, typed};
use super::{by_key, scanned};
use crate::model::event::{
    EventDetail, InvalidEvent, ParseError, TagSet, invalid, normalize_event_id, parse_fingerprint,
    parse_timestamp, tag_value,
};
use crate::model::json::{self, Kind};
use crate::model::{Level, NewEvent};
use sentry_types::protocol::v7;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// One Sentry event (an envelope's `event` item or a `store` body) from its bytes.
pub fn parse_event(bytes: &[u8]) -> Result<NewEvent, ParseError> {
    let read = match scanned::read(bytes) {
        Some(read) => read,
        // Not the usual shape: read key by key, for the same answer, or the error.
        None => by_key::read(json::document(bytes)?)?,
    };
    Ok(event_of(read)?)
}

/// The event from what was read, its fields checked in order so that an event's first
/// error is the one named.
fn event_of(read: ReadEvent<'_>) -> Result<NewEvent, InvalidEvent> {
    let ReadEvent {
        fields,
        exception,
        stored,
    } = read;
    let event_id = event_id(fields.event_id)?;
    let level = level(fields.level)?;
    let message = message(fields.message, fields.logentry)?;
    let exception = exception?.map(|raised| raised.into_parts()).transpose()?;
    if message.is_none() && exception.is_none() {
        return Err(invalid(
            "the event has neither a message, a logentry nor an exception",
        ));
    }
    let (exception, stacktrace) = exception.unzip();
    let Fields {
        environment,
        release,
        timestamp,
        tags: tag_list,
        fingerprint,
        ..
    } = fields;
    let environment =
        string_field(environment, "environment")?.unwrap_or_else(|| "production".into());
    let release = string_field(release, "release")?;
    let timestamp = parse_timestamp(timestamp)?;
    let tags = tags(tag_list)?;
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
            stacktrace: stacktrace.unwrap_or_default(),
            breadcrumbs: stored.breadcrumbs,
            extra: stored.extra,
            user: stored.user,
            sdk: stored.sdk,
            fingerprint: parse_fingerprint(fingerprint)?,
        },
        raw: None,
    })
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

/// `event_id`, as 32 lowercase hex digits.
fn event_id(raw: Option<&RawValue>) -> Result<Option<String>, InvalidEvent> {
    let Some(raw) = string_field(raw, "event_id")? else {
        return Ok(None);
    };
    let id = normalize_event_id(&raw).ok_or_else(|| {
        invalid(format!(
            "field 'event_id' must be 32 hex digits or a UUID, got '{raw}'"
        ))
    })?;
    Ok(Some(id))
}

/// `level` as Sentry names it (`log` is `info`); `error` when absent.
fn level(raw: Option<&RawValue>) -> Result<Level, InvalidEvent> {
    let Some(raw) = string_field(raw, "level")? else {
        return Ok(Level::Error);
    };
    let sentry: v7::Level = raw.parse().map_err(|_| {
        invalid(format!(
            "unknown level '{raw}': expected one of fatal, error, warning, info, log, debug"
        ))
    })?;
    sentry
        .to_string()
        .parse()
        .map_err(|e: crate::model::level::UnknownLevel| invalid(e.to_string()))
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

/// `tags`: an object, or a list of `[key, value]` pairs; indexed within the event limits
/// (`TagSet`: once it is full, the rest is not read).
fn tags(raw: Option<&RawValue>) -> Result<BTreeMap<String, String>, InvalidEvent> {
    let mut out = TagSet::default();
    match raw.map(|r| (r, Kind::of(r))) {
        None | Some((_, Kind::Null)) => {}
        Some((map, Kind::Object)) => object_tags(map, &mut out)?,
        Some((pairs, Kind::List)) => pair_tags(pairs, &mut out)?,
        Some(_) => return Err(invalid("field 'tags' must be an object or a list of pairs")),
    }
    Ok(out.into_map())
}

/// The tags of an object, in the order sent, until the set is full or a value is wrong.
fn object_tags(map: &RawValue, out: &mut TagSet) -> Result<(), InvalidEvent> {
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
    error.map_or(Ok(()), Err)
}

/// The tags of a list of pairs, in order, until the set is full or a pair is wrong.
fn pair_tags(pairs: &RawValue, out: &mut TagSet) -> Result<(), InvalidEvent> {
    let mut error = None;
    json::each_item(pairs, |i, pair| {
        if out.is_full() {
            return ControlFlow::Break(());
        }
        match tag_pair(i, pair) {
            Ok((k, value)) => {
                out.add(k, value);
                ControlFlow::Continue(())
            }
            Err(e) => {
                error = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    error.map_or(Ok(()), Err)
}

/// `tags[i]`: a `[key, value]` pair, the key a string, the value a string or a scalar.
fn tag_pair(i: usize, pair: &RawValue) -> Result<(Cow<'_, str>, String), InvalidEvent> {
    let Some((k, v)) = json::pair(pair) else {
        return Err(invalid(format!(
            "field 'tags[{i}]' must be a [key, value] pair"
        )));
    };
    match (json::text(k), tag_value(v, "")) {
        (Some(Ok(k)), Some(Ok(value))) => Ok((k, value)),
        (Some(Err(e)), _) => Err(invalid(format!("field 'tags[{i}]' is not valid JSON: {e}"))),
        (_, Some(Err(e))) => Err(e),
        _ => Err(invalid(format!(
            "field 'tags[{i}]' must be a pair of strings"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grouping::{culprit, title};
    use crate::model::event::{MAX_BREADCRUMBS, MAX_FRAMES};
    use serde_json::json;

    /// `v`, as an SDK's bytes, mapped from both readings, which must agree: as sent (the
    /// scan reads it when it can) and, for an object, with `level` given twice (the last,
    /// the same, counts), which the scan leaves to `by_key`.
    fn to_new_event(v: &Value) -> Result<NewEvent, InvalidEvent> {
        let invalid_only = |r: Result<NewEvent, ParseError>| {
            r.map_err(|e| match e {
                ParseError::Invalid(e) => e,
                other => panic!("{other}"),
            })
        };
        let bytes = serde_json::to_vec(v).unwrap();
        let Some(object) = v.as_object() else {
            return invalid_only(parse_event(&bytes));
        };
        let level = object.get("level").cloned().unwrap_or(json!("error"));
        let sep = if object.is_empty() { "" } else { ", " };
        let mut dup = bytes.clone();
        dup.pop();
        dup.extend_from_slice(format!(r#"{sep}"level": {level}, "level": {level}}}"#).as_bytes());
        assert!(scanned::read(&dup).is_none());
        let [a, b] = [&bytes, &dup].map(|b| invalid_only(parse_event(b)));
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{v}");
        a
    }

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
        assert!(scanned::read(&serde_json::to_vec(&v).unwrap()).is_some());
        let e = to_new_event(&v).unwrap();
        assert_eq!(title(&e), "E4999");
        assert_eq!(e.detail.stacktrace.len(), MAX_FRAMES);
        assert_eq!(e.detail.stacktrace[249].function.as_deref(), Some("f4999"));
        assert_eq!(e.tags.len(), crate::model::event::MAX_TAGS);
        assert_eq!(e.detail.breadcrumbs.len(), MAX_BREADCRUMBS);
        assert_eq!(e.message.as_deref(), Some("a 0 b 1"));
        let fp = json!({"message": "m", "fingerprint": vec!["{{ default }}"; 2000]});
        assert_eq!(
            to_new_event(&fp).unwrap_err().0,
            "field 'fingerprint' has more than 64 entries: a fingerprint has at most 64"
        );
    }

    /// The usual shapes are read in one scan, and give what `by_key` gives (checked by
    /// `to_new_event`), for the SDK's shape and for nulls, absent keys and the odd shapes.
    #[test]
    fn the_usual_shapes_are_scanned_and_read_alike() {
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
            assert!(
                scanned::read(&serde_json::to_vec(&v).unwrap()).is_some(),
                "{v}"
            );
            to_new_event(&v).unwrap();
        }
    }

    /// Odd shapes: whichever reads them, the error is `by_key`'s (`to_new_event` checks
    /// both readings agree).
    #[test]
    fn odd_shapes_are_refused_alike() {
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
            to_new_event(&v).unwrap_err();
        }
    }

    #[test]
    fn keys_given_twice_and_stored_text() {
        // A key twice inside a frame is left to `by_key`: its last value counts.
        let twice = br#"{"exception": {"values": [{"type": "A", "stacktrace": {"frames": [{"lineno": 1, "lineno": 2}]}}]}}"#;
        assert!(scanned::read(twice).is_none());
        assert_eq!(
            parse_event(twice).unwrap().detail.stacktrace[0].lineno,
            Some(2)
        );
        let twice = br#"{"message": "a", "message": "b"}"#;
        assert!(scanned::read(twice).is_none());
        assert_eq!(parse_event(twice).unwrap().message.as_deref(), Some("b"));
        assert!(scanned::read(b"[1]").is_none());
        // Breadcrumbs and the other stored-only objects are kept as their text was sent.
        let sent =
            br#"{"message": "m", "breadcrumbs": [ {"a":  1, "b": "\u00e9"} ], "user": {"id" : 7}}"#;
        assert!(scanned::read(sent).is_some());
        let e = parse_event(sent).unwrap();
        assert_eq!(e.detail.breadcrumbs[0].get(), r#"{"a":  1, "b": "\u00e9"}"#);
        assert_eq!(e.detail.user.unwrap().get(), r#"{"id" : 7}"#);
        let bad = br#"{"message": "a", "modules": {"x": }}"#;
        assert!(scanned::read(bad).is_none());
        assert!(matches!(parse_event(bad), Err(ParseError::Json(_))));
    }
}
