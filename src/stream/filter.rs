//! Per-connection stream filters (SPEC §4): level, min_level, environment, release, tags.
//! Validated once when the client subscribes, so matching at fan-out is cheap. Pure.

use crate::model::Level;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What a filter is checked against: the fields of a stored event that filters read.
pub struct Subject<'a> {
    /// Level.
    pub level: Level,
    /// Environment.
    pub environment: &'a str,
    /// Release, if any.
    pub release: Option<&'a str>,
    /// Tags.
    pub tags: &'a BTreeMap<String, String>,
}

/// A connection's filters; the default accepts everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    level: Option<Vec<Level>>,
    min_level: Option<Level>,
    environment: Option<Vec<String>>,
    release: Option<Vec<String>>,
    tags: BTreeMap<String, Vec<String>>,
}

/// A filter the client sent that cannot be used; the text is sent back as an `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFilter(pub String);

/// A string or a list of strings; absent, null, `""` or an empty list mean "any".
fn values(name: &str, v: Option<&Value>) -> Result<Option<Vec<String>>, InvalidFilter> {
    let list = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(InvalidFilter(format!(
                    "filter '{name}' must be a string or a list of strings"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(InvalidFilter(format!(
                "filter '{name}' must be a string or a list of strings"
            )));
        }
    };
    let list: Vec<String> = list.into_iter().filter(|s| !s.is_empty()).collect();
    Ok((!list.is_empty()).then_some(list))
}

fn levels(name: &str, v: Option<&Value>) -> Result<Option<Vec<Level>>, InvalidFilter> {
    values(name, v)?
        .map(|list| {
            list.iter()
                .map(|s| {
                    s.parse::<Level>()
                        .map_err(|e| InvalidFilter(format!("filter '{name}': {e}")))
                })
                .collect()
        })
        .transpose()
}

impl Filters {
    /// Parses the `filters` object of a `subscribe` message (or the stream's query).
    pub fn from_json(v: &Value) -> Result<Filters, InvalidFilter> {
        let obj = match v {
            Value::Null => return Ok(Filters::default()),
            Value::Object(o) => o,
            _ => return Err(InvalidFilter("'filters' must be an object".into())),
        };
        if let Some(unknown) = obj.keys().find(|k| {
            !matches!(
                k.as_str(),
                "level" | "min_level" | "environment" | "release" | "tags"
            )
        }) {
            return Err(InvalidFilter(format!(
                "unknown filter '{unknown}': expected level, min_level, environment, release or tags"
            )));
        }
        let tags = match obj.get("tags") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(t)) => {
                let mut tags = BTreeMap::new();
                for (k, v) in t {
                    if let Some(list) = values(&format!("tags.{k}"), Some(v))? {
                        tags.insert(k.clone(), list);
                    }
                }
                tags
            }
            Some(_) => return Err(InvalidFilter("filter 'tags' must be an object".into())),
        };
        Ok(Filters {
            level: levels("level", obj.get("level"))?,
            // Of several, the least severe: "this or anything worse" for each.
            min_level: levels("min_level", obj.get("min_level"))?.and_then(|l| l.into_iter().min()),
            environment: values("environment", obj.get("environment"))?,
            release: values("release", obj.get("release"))?,
            tags,
        })
    }

    /// Whether an event passes every given filter.
    pub fn matches(&self, e: &Subject<'_>) -> bool {
        self.level.as_ref().is_none_or(|l| l.contains(&e.level))
            && self.min_level.is_none_or(|m| e.level >= m)
            && self
                .environment
                .as_ref()
                .is_none_or(|envs| envs.iter().any(|x| x == e.environment))
            && self
                .release
                .as_ref()
                .is_none_or(|r| e.release.is_some_and(|rel| r.iter().any(|x| x == rel)))
            && self
                .tags
                .iter()
                .all(|(k, want)| e.tags.get(k).is_some_and(|v| want.contains(v)))
    }

    /// The filters as echoed to the client: every given value as a list.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(l) = &self.level {
            m.insert("level".into(), json!(l));
        }
        if let Some(l) = self.min_level {
            m.insert("min_level".into(), json!([l]));
        }
        if let Some(e) = &self.environment {
            m.insert("environment".into(), json!(e));
        }
        if let Some(r) = &self.release {
            m.insert("release".into(), json!(r));
        }
        if !self.tags.is_empty() {
            m.insert("tags".into(), json!(self.tags));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: Value) -> Filters {
        Filters::from_json(&v).unwrap()
    }

    fn ev(
        level: Level,
        env: &str,
        release: Option<&str>,
        tags: &[(&str, &str)],
    ) -> (Level, String, Option<String>, BTreeMap<String, String>) {
        (
            level,
            env.into(),
            release.map(Into::into),
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn check(
        filters: &Filters,
        e: &(Level, String, Option<String>, BTreeMap<String, String>),
    ) -> bool {
        filters.matches(&Subject {
            level: e.0,
            environment: &e.1,
            release: e.2.as_deref(),
            tags: &e.3,
        })
    }

    #[test]
    fn the_filter_matrix() {
        let prod_error = ev(Level::Error, "production", Some("1.0"), &[("region", "eu")]);
        let staging_warn = ev(Level::Warning, "staging", None, &[]);
        let fatal = ev(
            Level::Fatal,
            "production",
            Some("2.0"),
            &[("region", "us"), ("tier", "gold")],
        );
        let cases: Vec<(Value, [bool; 3])> = vec![
            (json!({}), [true, true, true]),
            (json!({"level": "error"}), [true, false, false]),
            (json!({"level": ["error", "warning"]}), [true, true, false]),
            (json!({"level": ""}), [true, true, true]),
            (
                json!({"level": null, "environment": null}),
                [true, true, true],
            ),
            (json!({"min_level": "error"}), [true, false, true]),
            (
                json!({"min_level": "warning", "environment": "production"}),
                [true, false, true],
            ),
            (
                json!({"environment": ["staging", "dev"]}),
                [false, true, false],
            ),
            (json!({"release": "1.0"}), [true, false, false]),
            (json!({"release": ["1.0", "2.0"]}), [true, false, true]),
            (json!({"tags": {"region": "eu"}}), [true, false, false]),
            (
                json!({"tags": {"region": ["eu", "us"], "tier": "gold"}}),
                [false, false, true],
            ),
            (json!({"tags": {"region": ""}}), [true, true, true]),
            (
                json!({"level": "fatal", "environment": "staging"}),
                [false, false, false],
            ),
        ];
        for (filters, expected) in cases {
            let parsed = f(filters.clone());
            let got = [
                check(&parsed, &prod_error),
                check(&parsed, &staging_warn),
                check(&parsed, &fatal),
            ];
            assert_eq!(got, expected, "{filters}");
        }
    }

    #[test]
    fn echoes_lists_and_rejects_nonsense() {
        assert_eq!(
            f(json!({"level": "error", "environment": ["a", "b"], "tags": {"k": "v"}})).to_json(),
            json!({"level": ["error"], "environment": ["a", "b"], "tags": {"k": ["v"]}})
        );
        assert_eq!(f(json!({"level": ""})).to_json(), json!({}));
        let err = |v: Value| Filters::from_json(&v).unwrap_err().0;
        assert_eq!(
            err(json!({"level": "loud"})),
            "filter 'level': unknown level 'loud': expected one of fatal, error, warning, info, debug"
        );
        assert_eq!(
            err(json!({"colour": "red"})),
            "unknown filter 'colour': expected level, min_level, environment, release or tags"
        );
        assert_eq!(
            err(json!({"environment": 5})),
            "filter 'environment' must be a string or a list of strings"
        );
        assert_eq!(
            err(json!({"tags": ["a"]})),
            "filter 'tags' must be an object"
        );
        assert_eq!(err(json!([1])), "'filters' must be an object");
    }
}
