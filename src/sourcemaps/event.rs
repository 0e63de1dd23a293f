//! The parts of a received event that mapping reads, taken from the event's text as
//! received (native or Sentry's schema), without I/O: every exception of the chain with
//! its frames, the `sourcemap` debug images, the release and the dist.

use super::mapping::{Minified, ShownFrame};
use crate::model::artifact::normalize_debug_id;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A frame as sent, with what the reader is shown when it is not mapped.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct SentFrame {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    abs_path: Option<String>,
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    lineno: Option<i64>,
    #[serde(default)]
    colno: Option<i64>,
    #[serde(default)]
    in_app: Option<bool>,
    #[serde(default)]
    context_line: Option<String>,
    #[serde(default)]
    pre_context: Vec<String>,
    #[serde(default)]
    post_context: Vec<String>,
}

impl SentFrame {
    /// The minified location (for mapping and for `minified`).
    pub(crate) fn minified(&self) -> Minified {
        Minified {
            abs_path: self.abs_path.clone(),
            filename: self.filename.clone(),
            function: self.function.clone(),
            lineno: self.lineno,
            colno: self.colno,
        }
    }

    /// What the SDK said of `in_app`.
    pub(crate) fn in_app(&self) -> Option<bool> {
        self.in_app
    }

    /// The frame as sent, unmapped.
    pub(crate) fn shown(&self) -> ShownFrame {
        ShownFrame {
            filename: self.filename.clone().or_else(|| self.abs_path.clone()),
            function: self.function.clone(),
            lineno: self.lineno,
            colno: self.colno,
            in_app: self.in_app.unwrap_or(false),
            context_line: self.context_line.clone(),
            pre_context: self.pre_context.clone(),
            post_context: self.post_context.clone(),
            ..ShownFrame::default()
        }
    }
}

/// One exception of the chain as sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct SentException {
    /// Its type.
    pub(crate) ty: Option<String>,
    /// Its value.
    pub(crate) value: Option<String>,
    /// Its frames, oldest call first.
    pub(crate) frames: Vec<SentFrame>,
}

/// What mapping reads of one event.
#[derive(Clone, Debug, Default)]
pub struct SentEvent {
    /// The chain, outermost (the one raised) first.
    pub(crate) exceptions: Vec<SentException>,
    /// `(code_file, debug_id)` of each `sourcemap` debug image.
    pub(crate) debug_images: Vec<(String, String)>,
    /// The release.
    pub(crate) release: Option<String>,
    /// The dist.
    pub(crate) dist: Option<String>,
}

#[derive(Deserialize, Default)]
struct Top<'a> {
    #[serde(default, borrow)]
    exception: Option<&'a RawValue>,
    #[serde(default, borrow)]
    stacktrace: Option<&'a RawValue>,
    #[serde(default, borrow)]
    debug_meta: Option<&'a RawValue>,
    #[serde(default, borrow)]
    release: Option<&'a RawValue>,
    #[serde(default, borrow)]
    dist: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct ExceptionKeys<'a> {
    #[serde(default, rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default, borrow)]
    stacktrace: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Image {
    #[serde(default, rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    code_file: Option<String>,
    #[serde(default)]
    debug_id: Option<String>,
}

/// `raw` read as `T`, or `None` when it does not fit: a key of an odd shape is shown as
/// absent rather than failing the whole answer.
fn lenient<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

/// Frames from a stack trace: Sentry's `{"frames": [...]}` or the native list.
fn frames(raw: Option<&RawValue>) -> Vec<SentFrame> {
    #[derive(Deserialize)]
    struct Trace<'a> {
        #[serde(default, borrow)]
        frames: Option<Vec<&'a RawValue>>,
    }
    let list: Option<Vec<&RawValue>> =
        lenient::<Vec<&RawValue>>(raw).or_else(|| lenient::<Trace>(raw).and_then(|t| t.frames));
    list.unwrap_or_default()
        .into_iter()
        .map(|f| lenient(Some(f)).unwrap_or_default())
        .collect()
}

impl SentEvent {
    /// Reads `data`, the event as received; what does not fit is left out.
    pub fn read(data: &str) -> SentEvent {
        let top: Top = serde_json::from_str(data).unwrap_or_default();
        let text = |raw: Option<&RawValue>| lenient::<String>(raw).filter(|s| !s.is_empty());
        SentEvent {
            exceptions: exceptions(&top),
            debug_images: debug_images(top.debug_meta),
            release: text(top.release),
            dist: text(top.dist),
        }
    }
}

/// The chain, outermost first: Sentry lists it innermost cause first, the raised one last.
fn exceptions(top: &Top) -> Vec<SentException> {
    #[derive(Deserialize)]
    struct Values<'a> {
        #[serde(borrow)]
        values: Vec<&'a RawValue>,
    }
    let values = lenient::<Values>(top.exception)
        .map(|v| v.values)
        .or_else(|| lenient::<Vec<&RawValue>>(top.exception));
    let Some(values) = values else {
        // The native schema: one exception, the stack trace beside it.
        let keys: ExceptionKeys = lenient(top.exception).unwrap_or_default();
        let frames = frames(top.stacktrace);
        if keys.ty.is_none() && keys.value.is_none() && frames.is_empty() {
            return Vec::new();
        }
        return vec![SentException {
            ty: keys.ty,
            value: keys.value,
            frames,
        }];
    };
    values
        .into_iter()
        .rev()
        .map(|v| {
            let keys: ExceptionKeys = lenient(Some(v)).unwrap_or_default();
            SentException {
                ty: keys.ty,
                value: keys.value,
                frames: frames(keys.stacktrace),
            }
        })
        .collect()
}

fn debug_images(raw: Option<&RawValue>) -> Vec<(String, String)> {
    #[derive(Deserialize)]
    struct Meta<'a> {
        #[serde(default, borrow)]
        images: Vec<&'a RawValue>,
    }
    lenient::<Meta>(raw)
        .map(|m| m.images)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| lenient::<Image>(Some(i)))
        .filter(|i| i.ty.as_deref() == Some("sourcemap"))
        .filter_map(|i| {
            let id = i.debug_id?;
            let id = normalize_debug_id(&id).unwrap_or(id);
            Some((i.code_file?, id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentry_chain_is_read_outermost_first_with_debug_images_release_and_dist() {
        let data = r#"{"release":"1.2","dist":"web","exception":{"values":[
            {"type":"Cause","value":"inner","stacktrace":{"frames":[{"filename":"a.js","lineno":1,"colno":2}]}},
            {"type":"TypeError","value":"outer","stacktrace":{"frames":[{"abs_path":"app:///b.js","function":"f","lineno":"odd"},{"filename":"c.js","in_app":true}]}}]},
            "debug_meta":{"images":[{"type":"sourcemap","code_file":"app:///b.js","debug_id":"ABC"},{"type":"elf","code_file":"x","debug_id":"d"}]}}"#;
        let event = SentEvent::read(data);
        assert_eq!(event.release.as_deref(), Some("1.2"));
        assert_eq!(event.dist.as_deref(), Some("web"));
        assert_eq!(
            event.debug_images,
            [("app:///b.js".to_owned(), "ABC".to_owned())]
        );
        assert_eq!(event.exceptions[0].ty.as_deref(), Some("TypeError"));
        assert_eq!(event.exceptions[0].frames.len(), 2);
        // A frame of an odd shape is kept, empty, so the others keep their places.
        assert_eq!(event.exceptions[0].frames[0].function, None);
        assert_eq!(event.exceptions[1].frames[0].colno, Some(2));
    }

    #[test]
    fn a_native_event_gives_one_exception_with_its_stacktrace() {
        let data = r#"{"message":"m","exception":{"type":"E","value":"v"},"stacktrace":[{"filename":"x.py","lineno":3,"context_line":"raise E"}]}"#;
        let event = SentEvent::read(data);
        assert_eq!(event.exceptions.len(), 1);
        let shown = event.exceptions[0].frames[0].shown();
        assert_eq!(shown.context_line.as_deref(), Some("raise E"));
        assert!(!shown.mapped && shown.error.is_none());
    }

    #[test]
    fn an_event_without_an_exception_has_no_chain() {
        assert!(SentEvent::read(r#"{"message":"m"}"#).exceptions.is_empty());
        assert!(SentEvent::read("not json").exceptions.is_empty());
    }
}
