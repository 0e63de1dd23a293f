//! The fingerprint chain of SPEC §3, plus the issue title and culprit an event gives.

use super::normalize::normalize;
use crate::model::json::chars_at_most;
use crate::model::{Frame, NewEvent};
use sha2::{Digest, Sha256};

/// Which rule of the chain produced a fingerprint (kept in the hash, so two rules never
/// collide on the same text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FingerprintSource {
    /// The event's own `fingerprint`.
    Custom,
    /// Stack frames and the normalized message: the earlier rule for an exception with
    /// frames ([`legacy_fingerprint`]), and still the rule of frames sent without an
    /// exception (a message with a stack trace), which the new chain does not name.
    Frames,
    /// Exception type and the in-app frames (module or file, and function).
    Stack,
    /// Exception type and every frame: none is in-app, and one has a function name.
    AllFrames,
    /// Exception type and normalized value.
    Exception,
    /// The normalized message.
    Message,
}

/// An event's grouping key: 32 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// The hash.
    pub hash: String,
    /// The rule that produced it.
    pub source: FingerprintSource,
}

/// The placeholder a custom fingerprint may use for "what the default rules would give".
pub(crate) const DEFAULT_PLACEHOLDER: &str = "{{ default }}";

/// The hash of a rule's parts, fed one by one.
struct Hasher(Sha256);

impl Hasher {
    fn new(source: FingerprintSource) -> Hasher {
        let mut h = Sha256::new();
        h.update(format!("{source:?}").as_bytes());
        Hasher(h)
    }

    fn part(&mut self, p: &str) {
        // Length-prefixing keeps ["ab","c"] and ["a","bc"] apart.
        self.0.update((p.len() as u64).to_le_bytes());
        self.0.update(p.as_bytes());
    }

    fn finish(self) -> String {
        hex::encode(&self.0.finalize()[..16])
    }
}

fn hash(source: FingerprintSource, parts: &[String]) -> String {
    let mut h = Hasher::new(source);
    for p in parts {
        h.part(p);
    }
    h.finish()
}

/// The frames that count as in-app for grouping: those marked `in_app: true`; when no
/// frame of the event says either way (a native client that does not know), every frame.
/// A frame without `in_app` beside others that say is not in-app.
fn grouping_frames(frames: &[Frame]) -> Vec<&Frame> {
    if frames.iter().all(|f| f.in_app.is_none()) {
        frames.iter().collect()
    } else {
        frames.iter().filter(|f| f.in_app == Some(true)).collect()
    }
}

/// Most characters of a message grouping reads (normalization, the title), as Sentry
/// Relay's message limit: a longer message groups and titles by its first 8,192, so that
/// its length costs nothing past them.
pub(crate) const MAX_MESSAGE_CHARS: usize = 8192;

/// At most the first [`MAX_MESSAGE_CHARS`] characters of `s`.
fn head(s: &str) -> &str {
    chars_at_most(s, MAX_MESSAGE_CHARS)
}

/// The message text the chain normalizes: the message, else `Type: value` (each read to
/// [`MAX_MESSAGE_CHARS`]).
fn message_text(event: &NewEvent) -> String {
    match &event.message {
        Some(m) => head(m).to_owned(),
        None => exception_text(event).unwrap_or_default(),
    }
}

fn exception_text(event: &NewEvent) -> Option<String> {
    let e = event.detail.exception.as_ref()?;
    let text = match (&e.ty, &e.value) {
        (Some(t), Some(v)) => format!("{}: {}", head(t), head(v)),
        (Some(t), None) => head(t).to_owned(),
        (None, Some(v)) => head(v).to_owned(),
        (None, None) => return None,
    };
    Some(head(&text).to_owned())
}

/// A frame as the stack rules read it: module (else file) and function, never the line.
/// `None` for a frame that names neither.
fn stack_part(f: &Frame) -> Option<String> {
    let place = f.module.as_deref().or(f.filename.as_deref());
    if place.is_none() && f.function.is_none() {
        return None;
    }
    Some(format!(
        "{}|{}",
        place.unwrap_or(""),
        f.function.as_deref().unwrap_or("")
    ))
}

/// The default rules of the chain (everything but the custom fingerprint), SPEC §3:
/// the exception type with the in-app frames; else the type with every frame when none is
/// in-app and one has a function name; else type and normalized value; else the message.
/// Neither stack rule reads the exception's value, so "unknown SKU 'kiwi'" and "…'mango'"
/// thrown from the same code are one issue. Frames sent without an exception keep the
/// earlier rule (frames and message): the chain names stacks only with an exception type.
fn default_parts(event: &NewEvent) -> (FingerprintSource, Vec<String>) {
    let Some(e) = &event.detail.exception else {
        return legacy_default_parts(event);
    };
    let ty = || head(e.ty.as_deref().unwrap_or("")).to_owned();
    let frames = &event.detail.stacktrace;
    let in_app: Vec<String> = grouping_frames(frames)
        .into_iter()
        .filter_map(stack_part)
        .collect();
    if !in_app.is_empty() {
        let mut parts = vec![ty()];
        parts.extend(in_app);
        return (FingerprintSource::Stack, parts);
    }
    let none_in_app = frames.iter().all(|f| f.in_app != Some(true));
    if none_in_app && frames.iter().any(|f| f.function.is_some()) {
        let mut parts = vec![ty()];
        parts.extend(frames.iter().filter_map(stack_part));
        return (FingerprintSource::AllFrames, parts);
    }
    exception_parts(event).unwrap_or_else(|| message_parts(event))
}

/// Exception type and normalized value, when there is an exception.
fn exception_parts(event: &NewEvent) -> Option<(FingerprintSource, Vec<String>)> {
    let e = event.detail.exception.as_ref()?;
    let parts = vec![
        e.ty.clone().unwrap_or_default(),
        normalize(head(e.value.as_deref().unwrap_or(""))),
    ];
    Some((FingerprintSource::Exception, parts))
}

fn message_parts(event: &NewEvent) -> (FingerprintSource, Vec<String>) {
    (
        FingerprintSource::Message,
        vec![normalize(&message_text(event))],
    )
}

/// The earlier default rules (Mesher before issue 26): the grouping frames' file and
/// function with the normalized message; else exception type and value; else the message.
fn legacy_default_parts(event: &NewEvent) -> (FingerprintSource, Vec<String>) {
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
    exception_parts(event).unwrap_or_else(|| message_parts(event))
}

/// Computes the fingerprint: the first rule of SPEC §3 that applies.
pub(crate) fn fingerprint(event: &NewEvent) -> Fingerprint {
    chain(event, default_parts)
}

/// The fingerprint the earlier rules gave `event`, when they may differ from
/// [`fingerprint`]'s: only for an exception sent with frames (every other event takes the
/// same rule under both, and costs nothing here). The group commit asks for it only when
/// an event's fingerprint names no issue yet, so that an issue made before the upgrade
/// keeps its events (SPEC §3's upgrade rule).
pub(crate) fn legacy_fingerprint(event: &NewEvent) -> Option<String> {
    let d = &event.detail;
    let framed = d
        .stacktrace
        .iter()
        .any(|f| f.filename.is_some() || f.function.is_some() || f.module.is_some());
    if d.exception.is_none() || !framed {
        return None;
    }
    if let Some(custom) = &d.fingerprint
        && !custom.iter().any(|p| p == DEFAULT_PLACEHOLDER)
    {
        return None;
    }
    Some(chain(event, legacy_default_parts).hash)
}

/// The chain with `default` as its default rules: the custom fingerprint, else `default`.
fn chain(
    event: &NewEvent,
    default: fn(&NewEvent) -> (FingerprintSource, Vec<String>),
) -> Fingerprint {
    if let Some(custom) = &event.detail.fingerprint {
        let mut h = Hasher::new(FingerprintSource::Custom);
        // `{{ default }}` is the default rules' answer, computed once however often it
        // appears, so repeating it costs nothing (SPEC §8). Its parts are
        // hashed where it first appears; a later one adds only the placeholder's text, which
        // groups alike (the same parts either way) without hashing them again: 64 of them
        // over 250 long frame names would hash some 64 MB.
        let mut done = false;
        for p in custom {
            if p != DEFAULT_PLACEHOLDER {
                h.part(p);
            } else if !done {
                done = true;
                let (source, parts) = default(event);
                h.part(&format!("{source:?}"));
                for part in parts.iter() {
                    h.part(part);
                }
            } else {
                h.part(DEFAULT_PLACEHOLDER);
            }
        }
        return Fingerprint {
            hash: h.finish(),
            source: FingerprintSource::Custom,
        };
    }
    let (source, parts) = default(event);
    Fingerprint {
        hash: hash(source, &parts),
        source,
    }
}

const TITLE_MAX_CHARS: usize = 200;

/// The issue title: `Type: value`, else the first line of the message, at most 200 chars.
pub(crate) fn title(event: &NewEvent) -> String {
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
pub(crate) fn culprit(event: &NewEvent) -> String {
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
    fn default_placeholder_is_computed_once() {
        let message = "timeout after 30s ".repeat(6_000);
        let mut fp = vec![json!("{{ default }}"); 63];
        fp.push(json!("eu"));
        let e = ev(json!({"message": message, "fingerprint": fp}));
        super::super::normalize::CALLS.with(|c| c.set(0));
        let many = fingerprint(&e);
        assert_eq!(super::super::normalize::CALLS.with(|c| c.get()), 1);
        // The parts are hashed once, where the placeholder first appears.
        let (source, parts) = default_parts(&e);
        let mut written = vec![format!("{source:?}")];
        written.extend(parts.iter().cloned());
        written.extend(vec![DEFAULT_PLACEHOLDER.to_owned(); 62]);
        written.push("eu".to_owned());
        assert_eq!(many.hash, hash(FingerprintSource::Custom, &written));
        // Which groups as before: alike for the same defaults, apart for others.
        let same = ev(json!({"message": "timeout after 31s ".repeat(6_000), "fingerprint": fp}));
        let other = ev(json!({"message": "other", "fingerprint": fp}));
        assert_eq!(fingerprint(&same), many);
        assert_ne!(fingerprint(&other), many);
        // One placeholder hashes as it always did.
        let one = ev(json!({"message": "m 1", "fingerprint": ["{{ default }}", "eu"]}));
        assert_eq!(
            fingerprint(&one).hash,
            hash(
                FingerprintSource::Custom,
                &["Message".into(), "m <num>".into(), "eu".into()]
            )
        );
    }

    #[test]
    fn grouping_reads_the_first_8192_characters_of_a_message() {
        let head = "x".repeat(MAX_MESSAGE_CHARS - 1);
        let a = ev(json!({"message": format!("{head}a tail that differs 1")}));
        let b = ev(json!({"message": format!("{head}a and more")}));
        let c = ev(json!({"message": format!("{head}b")}));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let ea = ev(json!({"exception": {"type": "E", "value": format!("{head}a 1")}}));
        let eb = ev(json!({"exception": {"type": "E", "value": format!("{head}a 2")}}));
        assert_eq!(fingerprint(&ea), fingerprint(&eb));
        assert_eq!(title(&a).chars().count(), TITLE_MAX_CHARS);
        // A short message groups as it always did.
        assert_eq!(
            fingerprint(&ev(json!({"message": "m 1"}))).hash,
            hash(FingerprintSource::Message, &["m <num>".to_owned()])
        );
    }

    fn checkout(value: &str, frames: serde_json::Value) -> NewEvent {
        ev(json!({"exception": {"type": "CheckoutError", "value": value}, "stacktrace": frames}))
    }

    #[test]
    fn in_app_frames_group_without_the_value_or_line_numbers() {
        let frames = json!([{"module": "shop.cart", "filename": "shop/cart.py", "function": "add", "lineno": 10, "in_app": true},
                            {"module": "flask.app", "function": "dispatch", "in_app": false}]);
        let kiwi = checkout("unknown SKU 'kiwi'", frames.clone());
        let mango = checkout("unknown SKU 'mango'", frames);
        assert_eq!(fingerprint(&kiwi).source, FingerprintSource::Stack);
        assert_eq!(fingerprint(&kiwi), fingerprint(&mango));
        let moved = checkout(
            "unknown SKU 'kiwi'",
            json!([{"module": "shop.cart", "function": "add", "lineno": 99, "in_app": true},
                                                          {"module": "other.lib", "function": "x", "in_app": false}]),
        );
        assert_eq!(fingerprint(&kiwi), fingerprint(&moved));
        let elsewhere = checkout(
            "unknown SKU 'kiwi'",
            json!([{"module": "shop.cart", "function": "remove", "in_app": true}]),
        );
        assert_ne!(fingerprint(&kiwi), fingerprint(&elsewhere));
        let other_type = ev(
            json!({"exception": {"type": "KeyError", "value": "unknown SKU 'kiwi'"},
            "stacktrace": [{"module": "shop.cart", "function": "add", "in_app": true}]}),
        );
        assert_ne!(fingerprint(&kiwi), fingerprint(&other_type));
    }

    #[test]
    fn the_module_names_a_frame_before_its_file() {
        let a = checkout(
            "v",
            json!([{"module": "app", "filename": "/srv/a/app.py", "function": "f", "in_app": true}]),
        );
        let b = checkout(
            "v",
            json!([{"module": "app", "filename": "/srv/b/app.py", "function": "f", "in_app": true}]),
        );
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = checkout(
            "v",
            json!([{"filename": "app.js", "function": "f", "in_app": true}]),
        );
        let d = checkout(
            "v",
            json!([{"filename": "lib.js", "function": "f", "in_app": true}]),
        );
        assert_ne!(fingerprint(&c), fingerprint(&d));
    }

    #[test]
    fn frames_without_in_app_all_count_when_none_says() {
        let a = checkout(
            "x 1",
            json!([{"filename": "a.js", "function": "f"}, {"filename": "b.js", "function": "g"}]),
        );
        let b = checkout(
            "y 2",
            json!([{"filename": "a.js", "function": "f"}, {"filename": "b.js", "function": "g"}]),
        );
        let c = checkout(
            "x 1",
            json!([{"filename": "a.js", "function": "f"}, {"filename": "c.js", "function": "g"}]),
        );
        assert_eq!(fingerprint(&a).source, FingerprintSource::Stack);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn no_in_app_frame_groups_by_every_frame_with_a_function() {
        let lib = |v: &str, f: &str| {
            checkout(
                v,
                json!([{"filename": "node_modules/x.js", "function": f, "in_app": false},
                               {"filename": "node_modules/y.js", "in_app": false}]),
            )
        };
        assert_eq!(
            fingerprint(&lib("a", "f")).source,
            FingerprintSource::AllFrames
        );
        assert_eq!(fingerprint(&lib("a", "f")), fingerprint(&lib("b", "f")));
        assert_ne!(fingerprint(&lib("a", "f")), fingerprint(&lib("a", "g")));
        // No function name anywhere: type and normalized value.
        let nameless = checkout("after 30s", json!([{"filename": "x.js", "in_app": false}]));
        assert_eq!(fingerprint(&nameless).source, FingerprintSource::Exception);
        let bare = ev(json!({"exception": {"type": "CheckoutError", "value": "after 31s"}}));
        assert_eq!(fingerprint(&nameless), fingerprint(&bare));
    }

    #[test]
    fn the_earlier_rule_is_kept_for_the_upgrade() {
        let e = checkout(
            "unknown SKU 'kiwi' 3",
            json!([{"module": "m", "filename": "cart.py", "function": "add", "lineno": 3, "in_app": true}]),
        );
        let earlier = hash(
            FingerprintSource::Frames,
            &[
                "cart.py|add".into(),
                "checkouterror: unknown sku 'kiwi' <num>".into(),
            ],
        );
        assert_eq!(legacy_fingerprint(&e).as_deref(), Some(earlier.as_str()));
        assert_ne!(fingerprint(&e).hash, earlier);
        // An exception whose frames are all libraries grouped by type and value before.
        let lib = checkout(
            "after 30s",
            json!([{"filename": "x.js", "function": "f", "in_app": false}]),
        );
        let bare = ev(json!({"exception": {"type": "CheckoutError", "value": "after 31s"}}));
        assert_eq!(legacy_fingerprint(&lib), Some(fingerprint(&bare).hash));
        // Rules that did not change have no earlier fingerprint to look up.
        assert_eq!(legacy_fingerprint(&bare), None);
        assert_eq!(
            legacy_fingerprint(&ev(
                json!({"message": "m", "stacktrace": [{"filename": "a.js", "function": "f"}]})
            )),
            None
        );
        let custom = ev(
            json!({"fingerprint": ["x"], "exception": {"type": "T"}, "stacktrace": [{"function": "f"}]}),
        );
        assert_eq!(legacy_fingerprint(&custom), None);
        let with_default = ev(
            json!({"fingerprint": ["{{ default }}", "x"], "exception": {"type": "T"}, "stacktrace": [{"function": "f"}]}),
        );
        assert!(
            legacy_fingerprint(&with_default).is_some_and(|l| l != fingerprint(&with_default).hash)
        );
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
