//! Read queries written once for both databases (the same statement, with binds through
//! `QueryBuilder`, runs on SQLite and PostgreSQL): the issue search of SPEC §3.1, one event
//! by id, and a page of an issue's events.

use super::EventPage;
use super::rows::EVENT_COLUMNS;
use crate::model::{IssueSort, Term};
use sqlx::{Database, QueryBuilder};

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

/// ` AND` some stored event of the issue has `key` = `value` (`issue_tag_values`: one
/// primary-key seek per issue; measured: a term matching nothing took 0.83–0.95 s over
/// 200,000 events in 2,000 issues as `EXISTS` over the events).
fn value_exists<'a, DB>(q: &mut QueryBuilder<'a, DB>, key: &'a str, value: &'a str)
where
    DB: Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(" AND EXISTS (SELECT 1 FROM issue_tag_values t WHERE t.issue_id = i.id AND t.key = ")
        .push_bind(key)
        .push(" AND t.value = ")
        .push_bind(value)
        .push(")");
}

/// The columns of `issues`, as `rows::issue` reads them, qualified for the alias `i`.
const ISSUE_COLUMNS: &str = "i.id, i.project_id, i.title, i.culprit, i.level, i.status, \
     i.event_count, i.first_seen, i.last_seen, i.regressed_at";

/// `SELECT <event columns>, raw FROM events WHERE project_id = … AND event_id = …`.
pub(super) fn event_by_id<'a, DB>(project: i64, event_id: &'a str) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(format!(
        "SELECT {EVENT_COLUMNS}, raw FROM events WHERE project_id = "
    ));
    q.push_bind(project)
        .push(" AND event_id = ")
        .push_bind(event_id);
    q
}

/// `SELECT <event columns> FROM events WHERE issue_id = … [AND seq <|> …] ORDER BY seq … LIMIT …`.
pub(super) fn issue_events<'a, DB>(issue: i64, page: EventPage, limit: u32) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE issue_id = "
    ));
    q.push_bind(issue);
    let order = match page {
        EventPage::Newest => " ORDER BY seq DESC LIMIT ",
        EventPage::Before(seq) => {
            q.push(" AND seq < ").push_bind(seq);
            " ORDER BY seq DESC LIMIT "
        }
        EventPage::After(seq) => {
            q.push(" AND seq > ").push_bind(seq);
            " ORDER BY seq LIMIT "
        }
    };
    q.push(order).push_bind(i64::from(limit));
    q
}

/// The column an issue list is ordered by (then by id, both descending).
fn sort_column(sort: IssueSort) -> &'static str {
    match sort {
        IssueSort::LastSeen => "i.last_seen",
        IssueSort::FirstSeen => "i.first_seen",
        IssueSort::EventCount => "i.event_count",
    }
}

/// Appends `SELECT <issue columns> FROM issues i WHERE …terms… [AND (sort key, id) < after]
/// ORDER BY … LIMIT …` to `q`. `after` is the last issue of the previous page, as its sort
/// value and id: the page starts right after it (a seek, whatever the depth).
pub(super) fn issues_query<'a, DB>(
    q: &mut QueryBuilder<'a, DB>,
    project: i64,
    terms: &'a [Term],
    sort: IssueSort,
    after: Option<(i64, i64)>,
    limit: u32,
) where
    DB: Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(format!(
        "SELECT {ISSUE_COLUMNS} FROM issues i WHERE i.project_id = "
    ));
    push_terms(q, project, terms);
    let column = sort_column(sort);
    if let Some((value, id)) = after {
        // A row value: both databases compare it column by column and seek an index on
        // (project, sort key[, id]) with it.
        q.push(format!(" AND ({column}, i.id) < ("))
            .push_bind(value)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(format!(" ORDER BY {column} DESC, i.id DESC LIMIT "))
        .push_bind(i64::from(limit));
}

/// Appends `SELECT COUNT(*) FROM issues i WHERE …terms…` to `q`: how many issues the
/// search finds in all (the same conditions as [`issues_query`], without paging).
pub(super) fn count_query<'a, DB>(q: &mut QueryBuilder<'a, DB>, project: i64, terms: &'a [Term])
where
    DB: Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("SELECT COUNT(*) FROM issues i WHERE i.project_id = ");
    push_terms(q, project, terms);
}

/// `<project> AND …terms…`, after `WHERE i.project_id = `.
fn push_terms<'a, DB>(q: &mut QueryBuilder<'a, DB>, project: i64, terms: &'a [Term])
where
    DB: Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push_bind(project);
    for term in terms {
        match term {
            Term::Status(s) => {
                q.push(" AND i.status = ").push_bind(s.as_str());
            }
            Term::Level(l) => {
                q.push(" AND i.level = ").push_bind(l.as_str());
            }
            Term::Environment(value) => value_exists(q, "environment", value),
            Term::Release(value) => value_exists(q, "release", value),
            Term::Tag { key, value } => value_exists(q, key, value),
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
