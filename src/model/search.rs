//! The issue search language (SPEC §3.1), parsed into terms the store runs. Pure.
//!
//! `is:unresolved level:error browser:"Chrome 120" "connection reset" timeout`: terms
//! separated by spaces, all of which must match; a value with spaces is double-quoted.

use super::{IssueStatus, Level};
use std::str::FromStr;

/// One search term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// `is:<status>`.
    Status(IssueStatus),
    /// `level:<level>`: the issue's level.
    Level(Level),
    /// `environment:<name>`: some stored event of the issue has it.
    Environment(String),
    /// `release:<name>`: some stored event of the issue has it.
    Release(String),
    /// `<key>:<value>`: some stored event of the issue has the tag.
    Tag {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    },
    /// A word or quoted phrase: a case-insensitive substring of the title or the culprit.
    Text(String),
}

/// How the issue list is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IssueSort {
    /// Most recently seen first (the default).
    #[default]
    LastSeen,
    /// Newest issues first.
    FirstSeen,
    /// Most events first.
    EventCount,
}

impl FromStr for IssueSort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "last_seen" => Ok(IssueSort::LastSeen),
            "first_seen" => Ok(IssueSort::FirstSeen),
            "event_count" => Ok(IssueSort::EventCount),
            other => Err(format!(
                "unknown sort '{other}': expected last_seen, first_seen or event_count"
            )),
        }
    }
}

/// Why a query cannot be run; the text names the term.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidQuery(pub String);

/// Tag keys a term may name (Sentry's tag key characters).
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// Splits a query into raw tokens: `(key, value, quoted)`, key `None` for a free word.
fn tokens(q: &str) -> Result<Vec<(Option<String>, String, bool)>, InvalidQuery> {
    let mut out = Vec::new();
    let mut chars = q.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        // A key is the characters before a ':' if they are all key characters.
        let mut key = None;
        let rest = &q[start..];
        if let Some(colon) = rest.find(':') {
            let candidate = &rest[..colon];
            if !candidate.is_empty() && candidate.chars().all(is_key_char) {
                key = Some(candidate.to_owned());
                for _ in 0..candidate.chars().count() + 1 {
                    chars.next();
                }
            }
        }
        let (value, quoted) = if chars.peek().is_some_and(|&(_, c)| c == '"') {
            let (open, _) = chars.next().expect("peeked");
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' if chars.peek().is_some_and(|&(_, n)| n == '"' || n == '\\') => {
                        value.push(chars.next().expect("peeked").1);
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(InvalidQuery(format!(
                    "unclosed quote in the query at '{}'",
                    &q[open..]
                )));
            }
            (value, true)
        } else {
            let mut value = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
            (value, false)
        };
        out.push((key, value, quoted));
    }
    Ok(out)
}

/// Most terms a query may have. Each term is a condition of the one SQL statement a
/// search runs, so the query's length, not the server, must say where it stops (SQLite's
/// expression tree has a depth limit, and a query past it would fail as a storage error).
pub const MAX_TERMS: usize = 32;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 1024;

/// Parses a query into its terms (empty: every issue): at most [`MAX_TERMS`] terms and
/// [`MAX_QUERY_CHARS`] characters.
pub fn parse(q: &str) -> Result<Vec<Term>, InvalidQuery> {
    // Checked before any work: the tokenizer looks ahead for each term.
    if q.chars().nth(MAX_QUERY_CHARS).is_some() {
        return Err(InvalidQuery(format!(
            "the query is {} characters long: a query has at most {MAX_QUERY_CHARS}",
            q.chars().count()
        )));
    }
    let tokens = tokens(q)?;
    if tokens.len() > MAX_TERMS {
        return Err(InvalidQuery(format!(
            "the query has {} terms: a query has at most {MAX_TERMS}",
            tokens.len()
        )));
    }
    tokens
        .into_iter()
        .map(|(key, value, quoted)| {
            let Some(key) = key else {
                return Ok(Term::Text(value));
            };
            if value.is_empty() {
                return Err(InvalidQuery(format!(
                    "search term '{key}:' has no value{}",
                    if quoted { " (an empty quoted value)" } else { "" }
                )));
            }
            Ok(match key.as_str() {
                "is" => Term::Status(
                    value
                        .parse()
                        .map_err(|e: String| InvalidQuery(format!("search term 'is:{value}': {e}")))?,
                ),
                "level" => Term::Level(value.parse().map_err(|_| {
                    InvalidQuery(format!(
                        "search term 'level:{value}': unknown level; expected debug, info, warning, error or fatal"
                    ))
                })?),
                "environment" => Term::Environment(value),
                "release" => Term::Release(value),
                _ => Term::Tag { key, value },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_term_kind() {
        let terms = parse(
            r#"is:resolved level:fatal environment:prod release:"shop 1.0" browser.name:"Chrome 120" url:https://x/y "connection reset" Timeout"#,
        )
        .unwrap();
        assert_eq!(
            terms,
            [
                Term::Status(IssueStatus::Resolved),
                Term::Level(Level::Fatal),
                Term::Environment("prod".into()),
                Term::Release("shop 1.0".into()),
                Term::Tag {
                    key: "browser.name".into(),
                    value: "Chrome 120".into()
                },
                Term::Tag {
                    key: "url".into(),
                    value: "https://x/y".into()
                },
                Term::Text("connection reset".into()),
                Term::Text("Timeout".into()),
            ]
        );
        assert_eq!(parse("   ").unwrap(), []);
        assert_eq!(
            parse(r#""say \"hi\"" :odd"#).unwrap(),
            [Term::Text(r#"say "hi""#.into()), Term::Text(":odd".into())]
        );
    }

    #[test]
    fn each_malformed_term_is_named() {
        let err = |q: &str| parse(q).unwrap_err().0;
        assert_eq!(
            err("is:sleeping"),
            "search term 'is:sleeping': unknown status 'sleeping': expected one of unresolved, resolved, archived, discarded"
        );
        assert!(err("level:loud").starts_with("search term 'level:loud': unknown level"));
        assert_eq!(err("browser:"), "search term 'browser:' has no value");
        assert_eq!(
            err(r#"release:"""#),
            "search term 'release:' has no value (an empty quoted value)"
        );
        assert_eq!(err(r#"a "b c"#), r#"unclosed quote in the query at '"b c'"#);
    }

    #[test]
    fn queries_are_bounded() {
        let words = |n: usize| vec!["w"; n].join(" ");
        assert_eq!(parse(&words(MAX_TERMS)).unwrap().len(), MAX_TERMS);
        assert_eq!(
            parse(&words(MAX_TERMS + 1)).unwrap_err().0,
            "the query has 33 terms: a query has at most 32"
        );
        let long = "é".repeat(MAX_QUERY_CHARS);
        assert_eq!(parse(&long).unwrap(), [Term::Text(long.clone())]);
        assert_eq!(
            parse(&format!("{long}x")).unwrap_err().0,
            "the query is 1025 characters long: a query has at most 1024"
        );
        assert!(
            parse(&words(25_000))
                .unwrap_err()
                .0
                .contains("at most 1024")
        );
    }

    /// A term as tests/search_cases.json spells it (as assets/js/search.js makes it).
    fn as_json(term: &Term) -> serde_json::Value {
        let (kind, value) = match term {
            Term::Status(s) => ("is", s.as_str()),
            Term::Level(l) => ("level", l.as_str()),
            Term::Environment(v) => ("environment", v.as_str()),
            Term::Release(v) => ("release", v.as_str()),
            Term::Text(v) => ("text", v.as_str()),
            Term::Tag { key, value } => {
                return serde_json::json!({ "kind": "tag", "key": key, "value": value });
            }
        };
        serde_json::json!({ "kind": kind, "value": value })
    }

    /// Whether an issue's own fields satisfy the terms as the store's statement tests them
    /// (`store::search`); `None` when a term asks about the issue's stored events.
    fn matches(terms: &[Term], issue: &serde_json::Value) -> Option<bool> {
        let field = |k: &str| issue[k].as_str().unwrap_or_default().to_owned();
        let mut all = true;
        for term in terms {
            all &= match term {
                Term::Status(s) => field("status") == s.as_str(),
                Term::Level(l) => field("level") == l.as_str(),
                Term::Text(text) => {
                    let needle = text.to_lowercase();
                    [field("title"), field("culprit")]
                        .iter()
                        .any(|v| v.to_lowercase().contains(&needle))
                }
                Term::Environment(_) | Term::Release(_) | Term::Tag { .. } => return None,
            };
        }
        Some(all)
    }

    /// The cases the dashboard's parser is tested on too (tests/js/search.test.js): both
    /// parse each query to the same terms or refuse it with the same words.
    #[test]
    fn search_cases() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/search_cases.json")).expect("JSON");
        let cases = doc["cases"].as_array().expect("a list of cases");
        assert!(cases.len() >= 40, "{} cases", cases.len());
        for case in cases {
            let query = case["query"].as_str().expect("a query");
            match parse(query) {
                Ok(terms) => {
                    let got: Vec<_> = terms.iter().map(as_json).collect();
                    assert_eq!(serde_json::Value::from(got), case["terms"], "{query:?}");
                    let issues = case["issues"].as_array().map_or(&[][..], Vec::as_slice);
                    for issue in issues {
                        assert_eq!(
                            matches(&terms, issue),
                            issue["matches"].as_bool(),
                            "{query:?} on {issue}"
                        );
                    }
                }
                Err(e) => assert_eq!(case["error"].as_str(), Some(e.0.as_str()), "{query:?}"),
            }
        }
    }

    #[test]
    fn sorts() {
        assert_eq!("first_seen".parse(), Ok(IssueSort::FirstSeen));
        assert_eq!("event_count".parse(), Ok(IssueSort::EventCount));
        assert_eq!(IssueSort::default(), IssueSort::LastSeen);
        assert!(
            "priority"
                .parse::<IssueSort>()
                .unwrap_err()
                .contains("last_seen")
        );
    }
}
