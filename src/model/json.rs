//! JSON read where it lies. An event's parts are found in its text and only the parts
//! Mesher interprets are parsed, each as far as it is read, so that no event costs more
//! than its size: as a `Value` tree, a 1 MiB list of zeros is some 40 MiB, and a list of
//! 40,000 tags 40,000 allocations before any limit is looked at.
//!
//! Every function here takes text already checked to be JSON ([`document`] checks a
//! body, UTF-8 included, without building anything), so none of them fails on syntax.

use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::ControlFlow;

/// A body checked to be one JSON value (its strings UTF-8), nothing built. Unlike a
/// `Value`, nesting is not limited: nothing here recurses.
pub fn document(bytes: &[u8]) -> Result<&RawValue, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// What a JSON value is, told by its first character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// A list.
    List,
    /// An object.
    Object,
}

impl Kind {
    /// The kind of `raw`.
    pub fn of(raw: &RawValue) -> Kind {
        match raw.get().as_bytes().first() {
            Some(b'n') => Kind::Null,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'"') => Kind::String,
            Some(b'[') => Kind::List,
            Some(b'{') => Kind::Object,
            _ => Kind::Number,
        }
    }

    /// As error messages name it ("got a list").
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::List => "a list",
            Kind::Object => "an object",
        }
    }
}

/// `raw`'s kind is null (absent and `null` read alike).
pub fn is_null(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(|r| Kind::of(r) == Kind::Null)
}

/// The string `raw` holds, unescaped; `None` if it is not a string. A string that cannot
/// be unescaped (a lone UTF-16 surrogate) is an error.
pub fn string(raw: &RawValue) -> Option<Result<String, serde_json::Error>> {
    (Kind::of(raw) == Kind::String).then(|| serde_json::from_str(raw.get()))
}

/// As [`string`], borrowed from the text when it has no escapes.
pub fn text(raw: &RawValue) -> Option<Result<Cow<'_, str>, serde_json::Error>> {
    (Kind::of(raw) == Kind::String).then(|| serde_json::from_str::<Key<'_>>(raw.get()).map(|k| k.0))
}

/// A scalar (number, boolean, null, string) as a `Value`; `None` for a list or an object,
/// which are never built here.
pub fn scalar(raw: &RawValue) -> Option<Result<serde_json::Value, serde_json::Error>> {
    (!matches!(Kind::of(raw), Kind::List | Kind::Object)).then(|| serde_json::from_str(raw.get()))
}

/// Looks each key of the object up in `keys`, unescaped, without allocating.
struct KeyIndex<'k>(&'k [&'k str]);

impl<'de> DeserializeSeed<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|k| *k == v))
    }
}

/// An object's values for some keys.
struct Pick<'k, const N: usize>(&'k [&'k str; N]);

impl<'de, const N: usize> de::Visitor<'de> for Pick<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = [None; N];
        while let Some(key) = map.next_key_seed(KeyIndex(self.0))? {
            match key {
                // A key given twice: the last one counts, as in a parsed object.
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// The values of `keys` in the object `raw` (`None` for a missing key; the last value of
/// a key given twice), every other key skipped; `None` if `raw` is not an object.
pub fn pick<'a, const N: usize>(
    raw: &'a RawValue,
    keys: &[&str; N],
) -> Option<[Option<&'a RawValue>; N]> {
    if Kind::of(raw) != Kind::Object {
        return None;
    }
    serde_json::Deserializer::from_str(raw.get())
        .deserialize_map(Pick(keys))
        .ok()
}

/// Calls `f` on each element of a list until it breaks.
struct Items<F>(F);

impl<'de, F: FnMut(usize, &'de RawValue) -> ControlFlow<()>> de::Visitor<'de> for Items<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if (self.0)(i, item).is_break() {
                // The rest is skipped unread (the list's end must still be reached).
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                break;
            }
            i += 1;
        }
        Ok(())
    }
}

/// Calls `f(index, element)` on each element of the list `raw`, in order, until `f`
/// breaks; `None` if `raw` is not a list. Nothing is kept but what `f` keeps.
pub fn each_item<'a>(
    raw: &'a RawValue,
    f: impl FnMut(usize, &'a RawValue) -> ControlFlow<()>,
) -> Option<()> {
    if Kind::of(raw) != Kind::List {
        return None;
    }
    serde_json::Deserializer::from_str(raw.get())
        .deserialize_seq(Items(f))
        .ok()
}

/// How many elements the list `raw` has (`None` if it is not a list).
pub fn count_items(raw: &RawValue) -> Option<usize> {
    let mut n = 0;
    each_item(raw, |_, _| {
        n += 1;
        ControlFlow::Continue(())
    })?;
    Some(n)
}

/// Calls `f` on each entry of an object until it breaks.
struct Entries<F>(F);

/// An object key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de, F: FnMut(Cow<'de, str>, &'de RawValue) -> ControlFlow<()>> de::Visitor<'de>
    for Entries<F>
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value = map.next_value::<&'de RawValue>()?;
            if (self.0)(key, value).is_break() {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                break;
            }
        }
        Ok(())
    }
}

/// Calls `f(key, value)` on each entry of the object `raw`, in the order sent (a key
/// given twice comes twice), until `f` breaks; `None` if `raw` is not an object.
pub fn each_entry<'a>(
    raw: &'a RawValue,
    f: impl FnMut(Cow<'a, str>, &'a RawValue) -> ControlFlow<()>,
) -> Option<()> {
    if Kind::of(raw) != Kind::Object {
        return None;
    }
    serde_json::Deserializer::from_str(raw.get())
        .deserialize_map(Entries(f))
        .ok()
}

/// The two elements of a list of exactly two.
struct Pair;

impl<'de> de::Visitor<'de> for Pair {
    type Value = Option<(&'de RawValue, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = seq.next_element::<&'de RawValue>()?;
        let second = seq.next_element::<&'de RawValue>()?;
        let mut more = false;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            more = true;
        }
        Ok(first.zip(second).filter(|_| !more))
    }
}

/// The elements of `raw` if it is a list of exactly two (a `[key, value]` pair).
pub fn pair(raw: &RawValue) -> Option<(&RawValue, &RawValue)> {
    if Kind::of(raw) != Kind::List {
        return None;
    }
    serde_json::Deserializer::from_str(raw.get())
        .deserialize_seq(Pair)
        .ok()
        .flatten()
}

/// A list's elements as `Vec<&RawValue>`, where their number is bounded (a bulk request's
/// 100 events): `Err(n)` past `max` elements, with their count (the rest only counted);
/// `None` if `raw` is not a list.
pub fn items_at_most(raw: &RawValue, max: usize) -> Option<Result<Vec<&RawValue>, usize>> {
    let mut items = Vec::new();
    let mut n = 0;
    each_item(raw, |_, item| {
        n += 1;
        if n <= max {
            items.push(item);
        }
        ControlFlow::Continue(())
    })?;
    Some(if n > max { Err(n) } else { Ok(items) })
}

/// The first `max` characters of `s` (all of it when shorter).
pub fn chars_at_most(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        document(s.as_bytes()).unwrap()
    }

    #[test]
    fn kinds() {
        for (text, kind) in [
            ("null", Kind::Null),
            ("true", Kind::Bool),
            ("false", Kind::Bool),
            ("-1.5e3", Kind::Number),
            ("\"x\"", Kind::String),
            (" [1]", Kind::List),
            ("{}", Kind::Object),
        ] {
            assert_eq!(Kind::of(raw(text)), kind, "{text}");
        }
    }

    #[test]
    fn pick_takes_the_last_of_a_key_and_unescapes_keys() {
        let doc = raw(r#"{"a": 1, "b": [1, {"a": 9}], "\u0061": 2, "c": {"x": 1}}"#);
        let [a, c, d] = pick(doc, &["a", "c", "d"]).unwrap();
        assert_eq!(a.unwrap().get(), "2");
        assert_eq!(c.unwrap().get(), r#"{"x": 1}"#);
        assert!(d.is_none());
        assert!(pick(raw("[1]"), &["a"]).is_none());
    }

    #[test]
    fn items_and_entries_stop_when_asked() {
        let list = raw(r#"[1, "two", [3], {"4": 4}]"#);
        let mut seen = Vec::new();
        each_item(list, |i, v| {
            seen.push((i, v.get().to_owned()));
            if i == 1 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, [(0, "1".to_owned()), (1, "\"two\"".to_owned())]);
        assert_eq!(count_items(list), Some(4));
        assert_eq!(items_at_most(list, 3).unwrap().unwrap_err(), 4);
        assert_eq!(items_at_most(list, 4).unwrap().unwrap().len(), 4);
        assert_eq!(
            pair(raw(r#"["k", 1]"#)).map(|(k, v)| (k.get(), v.get())),
            Some((r#""k""#, "1"))
        );
        assert!(pair(raw(r#"["k"]"#)).is_none());
        assert!(pair(raw(r#"["k", 1, 2]"#)).is_none());
        assert!(pair(raw(r#"{"k": 1}"#)).is_none());
        let mut keys = Vec::new();
        each_entry(raw(r#"{"a": 1, "b\n": 2, "a": 3}"#), |k, v| {
            keys.push(format!("{k}={}", v.get()));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(keys, ["a=1", "b\n=2", "a=3"]);
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        let doc = raw(&deep);
        assert_eq!(count_items(doc), Some(1));
    }

    #[test]
    fn characters_not_bytes() {
        assert_eq!(chars_at_most("héllo", 2), "hé");
        assert_eq!(chars_at_most("hé", 5), "hé");
    }
}
