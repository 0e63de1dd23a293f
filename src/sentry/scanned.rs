//! An event read in one scan of its text, for the usual shape: the top-level keys the
//! mapping reads kept as their text (no tree built), the exception typed as it is
//! scanned (an SDK's frames carry `vars` and context lines that are large and never read
//! here), the breadcrumbs' last objects and the other stored parts copied as text, every
//! other key skipped.
//!
//! Anything else — a key given twice, a shape these types do not know — fails the scan
//! (`None`), and `by_key` reads the event, for the same answer or error: an earlier
//! exception value or frame that does not fit is not read there, so its failure here must
//! not be the event's.
//!
//! Measured (docs/BENCHMARKS.md, "Sentry mapping"): an SDK event's modules, contexts and
//! request, built into a `Value` tree and dropped unread, were a large part of parsing it;
//! so were its breadcrumbs, built into a tree only to be written out again.

use super::read::{ExceptionKeys, Fields, FrameKeys, Raised, ReadEvent, StoredParts, object};
use crate::model::RawJson;
use crate::model::event::{MAX_BREADCRUMBS, MAX_FRAMES};
use crate::model::json::Kind;
use serde_json::value::RawValue;
use std::collections::VecDeque;

/// The top-level keys the mapping reads, found in one scan.
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
    #[serde(default)]
    exception: Option<ScannedException>,
    #[serde(borrow, default, deserialize_with = "present")]
    environment: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    release: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    tags: Option<&'a RawValue>,
    /// Stored only: the last objects copied as text while scanning (`null` reads as
    /// absent, as in `by_key`).
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

/// The event in `bytes`, read in one scan; `None` when the bytes are not a JSON object
/// with each key the mapping reads given once and in a shape the scan knows.
pub(super) fn read(bytes: &[u8]) -> Option<ReadEvent<'_>> {
    // A derived struct also reads a JSON array (as its fields in order): objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let p: Picked<'_> = serde_json::from_slice(bytes).ok()?;
    let stored = StoredParts {
        breadcrumbs: p.breadcrumbs.map_or_else(Vec::new, |b| b.0.into_kept()),
        extra: object(p.extra),
        user: object(p.user),
        sdk: object(p.sdk),
    };
    let exception = p
        .exception
        .and_then(|e| e.0.last)
        .map(|(n, ObjectOnly(last))| last.into_raised(n));
    Some(ReadEvent {
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
        exception: Ok(exception),
        stored: Ok(stored),
    })
}

/// A struct read from a JSON object only (serde's derive would also read an array, as the
/// fields in order, where `by_key` says "must be an object").
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
/// object's `values` (absent or `null`: empty). Any other shape fails the scan, and the
/// event is read key by key (for the same error). `C` reads the list.
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
/// as the next arrives (`by_key` reads only the last, so an earlier one that does not fit
/// the type fails the scan and leaves the event to it).
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

/// The exception's values as the mapping reads them: of the last (its place kept, for
/// the error) the type, value, module and each kept frame's keys, typed as they are
/// scanned; the values before it are typed and dropped.
type ScannedException = ListOrValues<Last<ObjectOnly<ScannedValue>>>;

/// An exception value's keys ([`ExceptionKeys`]) and its stack trace.
#[derive(serde::Deserialize)]
struct ScannedValue {
    #[serde(default, rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    stacktrace: Option<ObjectOnly<ScannedStacktrace>>,
}

#[derive(serde::Deserialize)]
struct ScannedStacktrace {
    #[serde(default)]
    frames: Option<KeptFrames>,
}

impl ScannedValue {
    /// The value raised, `exception.values[index]`.
    fn into_raised(self, index: usize) -> Raised {
        let frames = self
            .stacktrace
            .and_then(|ObjectOnly(st)| st.frames)
            .map_or_else(Vec::new, |f| f.0);
        let keys = ExceptionKeys {
            ty: self.ty,
            value: self.value,
            module: self.module,
        };
        Raised {
            index,
            keys,
            frames,
        }
    }
}

/// Frames as `model::event::kept_frames` keeps them: the first 249 typed as they are scanned, of the
/// rest only the last (the ones between skipped unread).
struct KeptFrames(Vec<FrameKeys>);

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
                    match seq.next_element::<ObjectOnly<FrameKeys>>()? {
                        Some(ObjectOnly(f)) => frames.push(f),
                        None => return Ok(KeptFrames(frames)),
                    }
                }
                let mut last: Option<&'de RawValue> = None;
                while let Some(f) = seq.next_element::<&'de RawValue>()? {
                    last = Some(f);
                }
                if let Some(f) = last {
                    let ObjectOnly(f) = serde_json::from_str::<ObjectOnly<FrameKeys>>(f.get())
                        .map_err(serde::de::Error::custom)?;
                    frames.push(f);
                }
                Ok(KeptFrames(frames))
            }
        }
        d.deserialize_seq(V)
    }
}
