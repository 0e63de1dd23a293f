//! The fingerprint chain of SPEC §3, plus the issue title and culprit an event gives.

use super::normalize::normalize;
use crate::model::{Frame, NewEvent};
use sha2::{Digest, Sha256};

/// Which rule of the chain produced a fingerprint (kept in the hash, so two rules never
/// collide on the same text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FingerprintSource {
    /// The event's own `fingerprint`.
    Custom,
    /// In-app stack frames and the normalized message.
    Frames,
    /// Exception type and normalized value.
    Exception,
    /// The normalized message.
    Message,
}

/// An event's grouping key: 32 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash.
    pub hash: String,
    /// The rule that produced it.
    pub source: FingerprintSource,
}

/// The placeholder a custom fingerprint may use for "what the default rules would give".
pub const DEFAULT_PLACEHOLDER: &str = "{{ default }}";

fn hash(source: FingerprintSource, parts: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(format!("{source:?}").as_bytes());
    for p in parts {
        // Length-prefixing keeps ["ab","c"] and ["a","bc"] apart.
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The frames that count for grouping: those marked in-app, or every frame when none
/// says either way (a native client that does not know).
fn grouping_frames(frames: &[Frame]) -> Vec<&Frame> {
    if frames.iter().all(|f| f.in_app.is_none()) {
        frames.iter().collect()
    } else {
        frames.iter().filter(|f| f.in_app == Some(true)).collect()
    }
}

/// The message text the chain normalizes: the message, else `Type: value`.
fn message_text(event: &NewEvent) -> String {
    match &event.message {
        Some(m) => m.clone(),
        None => exception_text(event).unwrap_or_default(),
    }
}

fn exception_text(event: &NewEvent) -> Option<String> {
    let e = event.detail.exception.as_ref()?;
    Some(match (&e.ty, &e.value) {
        (Some(t), Some(v)) => format!("{t}: {v}"),
        (Some(t), None) => t.clone(),
        (None, Some(v)) => v.clone(),
        (None, None) => return None,
    })
}

/// The default rules of the chain (everything but the custom fingerprint).
fn default_parts(event: &NewEvent) -> (FingerprintSource, Vec<String>) {
    let frames = grouping_frames(&event.detail.stacktrace);
    let framed: Vec<String> = frames
        .iter()
        .filter(|f| f.filename.is_some() || f.function.is_some())
        .map(|f| {
            format!(
                "{}|{}",
                f.filename.as_deref().unwrap_or(""),
                f.function.as_deref().unwrap_or("")
            )
        })
        .collect();
    if !framed.is_empty() {
        let mut parts = framed;
        parts.push(normalize(&message_text(event)));
        return (FingerprintSource::Frames, parts);
    }
    if let Some(e) = &event.detail.exception {
        let parts = vec![
            e.ty.clone().unwrap_or_default(),
            normalize(e.value.as_deref().unwrap_or("")),
        ];
        return (FingerprintSource::Exception, parts);
    }
    (
        FingerprintSource::Message,
        vec![normalize(&message_text(event))],
    )
}

/// Computes the fingerprint: the first rule of SPEC §3 that applies.
pub fn fingerprint(event: &NewEvent) -> Fingerprint {
    if let Some(custom) = &event.detail.fingerprint {
        let mut parts = Vec::with_capacity(custom.len());
        for p in custom {
            if p == DEFAULT_PLACEHOLDER {
                let (source, default) = default_parts(event);
                parts.push(format!("{source:?}"));
                parts.extend(default);
            } else {
                parts.push(p.clone());
            }
        }
        return Fingerprint {
            hash: hash(FingerprintSource::Custom, &parts),
            source: FingerprintSource::Custom,
        };
    }
    let (source, parts) = default_parts(event);
    Fingerprint {
        hash: hash(source, &parts),
        source,
    }
}

const TITLE_MAX_CHARS: usize = 200;

/// The issue title: `Type: value`, else the first line of the message, at most 200 chars.
pub fn title(event: &NewEvent) -> String {
    let text = exception_text(event).unwrap_or_else(|| message_text(event));
    let first_line = text.lines().next().unwrap_or("").trim();
    if first_line.chars().count() > TITLE_MAX_CHARS {
        let mut t: String = first_line.chars().take(TITLE_MAX_CHARS - 1).collect();
        t.push('…');
        t
    } else {
        first_line.to_owned()
    }
}

/// Where the event happened: the innermost in-app frame as `file in function`, else the
/// exception's module, else empty.
pub fn culprit(event: &NewEvent) -> String {
    let frames = grouping_frames(&event.detail.stacktrace);
    if let Some(f) = frames.last() {
        let file = f.filename.as_deref().or(f.module.as_deref()).unwrap_or("?");
        return match &f.function {
            Some(func) => format!("{file} in {func}"),
            None => file.to_owned(),
        };
    }
    event
        .detail
        .exception
        .as_ref()
        .and_then(|e| e.module.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: serde_json::Value) -> NewEvent {
        NewEvent::from_json(&v).unwrap()
    }

    #[test]
    fn chain_order() {
        let custom = ev(json!({"message": "a", "fingerprint": ["x"], "exception": {"type": "T"}}));
        assert_eq!(fingerprint(&custom).source, FingerprintSource::Custom);
        let frames = ev(
            json!({"message": "a", "stacktrace": [{"filename": "a.js", "function": "f", "in_app": true}]}),
        );
        assert_eq!(fingerprint(&frames).source, FingerprintSource::Frames);
        let exc = ev(json!({"exception": {"type": "T", "value": "v"}}));
        assert_eq!(fingerprint(&exc).source, FingerprintSource::Exception);
        assert_eq!(
            fingerprint(&ev(json!({"message": "m"}))).source,
            FingerprintSource::Message
        );
    }

    #[test]
    fn line_numbers_do_not_split() {
        let a = ev(
            json!({"message": "x 1", "stacktrace": [{"filename": "a.js", "function": "f", "lineno": 1, "in_app": true}]}),
        );
        let b = ev(
            json!({"message": "x 2", "stacktrace": [{"filename": "a.js", "function": "f", "lineno": 9, "in_app": true},
                                                          {"filename": "lib.js", "function": "g", "in_app": false}]}),
        );
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = ev(
            json!({"message": "x 2", "stacktrace": [{"filename": "a.js", "function": "h", "in_app": true}]}),
        );
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn exception_values_normalize() {
        let a = ev(json!({"exception": {"type": "Timeout", "value": "after 30s"}}));
        let b = ev(json!({"exception": {"type": "Timeout", "value": "after 31s"}}));
        let c = ev(json!({"exception": {"type": "Other", "value": "after 31s"}}));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn custom_and_default_placeholder() {
        let a = ev(json!({"message": "a", "fingerprint": ["{{ default }}", "eu"]}));
        let b = ev(json!({"message": "a", "fingerprint": ["{{ default }}", "us"]}));
        let c = ev(json!({"message": "b", "fingerprint": ["{{ default }}", "eu"]}));
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let d = ev(json!({"message": "zzz", "fingerprint": "group-1"}));
        let e = ev(json!({"message": "yyy", "fingerprint": ["group-1"]}));
        assert_eq!(fingerprint(&d), fingerprint(&e));
        assert_eq!(fingerprint(&d).hash.len(), 32);
    }

    #[test]
    fn title_and_culprit() {
        let e = ev(
            json!({"message": "line one\nline two", "exception": {"type": "ZeroDivisionError", "value": "division by zero"},
            "stacktrace": [{"filename": "main.py", "function": "main", "in_app": true},
                           {"filename": "calc.py", "function": "divide", "in_app": true},
                           {"filename": "lib.py", "function": "inner", "in_app": false}]}),
        );
        assert_eq!(title(&e), "ZeroDivisionError: division by zero");
        assert_eq!(culprit(&e), "calc.py in divide");
        let m = ev(json!({"message": "line one\nline two"}));
        assert_eq!(title(&m), "line one");
        assert_eq!(culprit(&m), "");
    }
}
