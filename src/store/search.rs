//! The issue search of SPEC §3.1 as SQL, written once for both databases.

use crate::model::{IssueSort, Term};
use sqlx::{Database, QueryBuilder};

/// The SQL dialects' differences that matter here.
#[derive(Clone, Copy)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// `%value%` for `LIKE … ESCAPE '\'`, lowercased (matched against `lower(column)`).
fn contains_pattern(value: &str) -> String {
    let mut p = String::with_capacity(value.len() + 2);
    p.push('%');
    for c in value.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Appends `SELECT <columns> FROM issues i WHERE …terms… ORDER BY … LIMIT …` to `q`.
///
/// Event terms (environment, release, tags) are `EXISTS` over the issue's events, which the
/// `events_by_issue` index reaches.
pub(super) fn issues_query<'a, DB>(
    q: &mut QueryBuilder<'a, DB>,
    dialect: Dialect,
    columns: &str,
    project: i64,
    terms: &'a [Term],
    sort: IssueSort,
    limit: u32,
) where
    DB: Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(format!(
        "SELECT {columns} FROM issues i WHERE i.project_id = "
    ));
    q.push_bind(project);
    for term in terms {
        match term {
            Term::Status(s) => {
                q.push(" AND i.status = ").push_bind(s.as_str());
            }
            Term::Level(l) => {
                q.push(" AND i.level = ").push_bind(l.as_str());
            }
            Term::Environment(env) => {
                q.push(" AND EXISTS (SELECT 1 FROM events e WHERE e.issue_id = i.id AND e.environment = ")
                    .push_bind(env.as_str())
                    .push(")");
            }
            Term::Release(rel) => {
                q.push(
                    " AND EXISTS (SELECT 1 FROM events e WHERE e.issue_id = i.id AND e.release = ",
                )
                .push_bind(rel.as_str())
                .push(")");
            }
            Term::Tag { key, value } => {
                q.push(" AND EXISTS (SELECT 1 FROM events e WHERE e.issue_id = i.id AND ");
                match dialect {
                    // Keys are restricted to [A-Za-z0-9_.-/] by the parser: no quote to escape.
                    Dialect::Sqlite => q
                        .push("json_extract(e.tags, ")
                        .push_bind(format!("$.\"{key}\""))
                        .push(")"),
                    Dialect::Postgres => q
                        .push("(e.tags::jsonb ->> ")
                        .push_bind(key.as_str())
                        .push(")"),
                };
                q.push(" = ").push_bind(value.as_str()).push(")");
            }
            Term::Text(text) => {
                let pattern = contains_pattern(text);
                q.push(" AND (lower(i.title) LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR lower(i.culprit) LIKE ")
                    .push_bind(pattern)
                    .push(" ESCAPE '\\')");
            }
        }
    }
    q.push(match sort {
        IssueSort::LastSeen => " ORDER BY i.last_seen DESC, i.id DESC",
        IssueSort::FirstSeen => " ORDER BY i.first_seen DESC, i.id DESC",
        IssueSort::EventCount => " ORDER BY i.event_count DESC, i.id DESC",
    });
    q.push(" LIMIT ").push_bind(i64::from(limit));
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Time Out"), "%time out%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
