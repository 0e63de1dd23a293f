//! Counts kept beside the events, so that reads on a big project cost what the answer
//! holds, not what the project stored: how many events carry each (issue, tag, value)
//! (`issue_tag_values`: the tag breakdown and the search's event terms), and events per
//! minute and level of each project and each issue (`project_minutes`, `issue_minutes`:
//! the stats routes).
//!
//! A batch adds its events' counts in the transaction that stores them; retention takes
//! the deleted events' counts away in the transaction that deletes them. Measured
//! (docs/BENCHMARKS.md, "Read API on 1,000,000 events"): on 1,000,000 events the same reads
//! aggregated over `events` took seconds.
//!
//! The statements are written once for both databases (`QueryBuilder` with binds; the
//! upsert syntax is the same in SQLite and PostgreSQL).

use crate::model::Millis;
use sqlx::query_builder::Separated;
use sqlx::{Database, QueryBuilder};
use std::borrow::Cow;
use std::collections::BTreeMap;

const MINUTE_MS: i64 = 60_000;

/// Rows per multi-row upsert (4–5 binds each: SQLite takes 32,766 binds, PostgreSQL 65,535).
const CHUNK: usize = 1_000;

/// Counts by (owner, minute, level).
type MinuteCounts<'a> = BTreeMap<(i64, i64, &'a str), i64>;

/// The counts a set of events adds (or, negated, takes away).
#[derive(Debug, Default)]
pub(crate) struct Rollups<'a> {
    tags: BTreeMap<(i64, &'a str, &'a str), i64>,
    issue_minutes: MinuteCounts<'a>,
    project_minutes: MinuteCounts<'a>,
}

/// The minute (its start, in unix ms) that `at` falls in.
pub(crate) fn minute_of(at: Millis) -> i64 {
    at.0.div_euclid(MINUTE_MS) * MINUTE_MS
}

impl<'a> Rollups<'a> {
    /// Counts one stored event: its tags, its environment and release under those keys,
    /// and its minute of receipt.
    #[cfg(test)]
    pub(crate) fn add(
        &mut self,
        project: i64,
        issue: i64,
        received: Millis,
        e: &'a crate::model::NewEvent,
    ) {
        self.add_parts(
            project,
            issue,
            received,
            e.level.as_str(),
            e.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &e.environment,
            e.release.as_deref(),
            1,
        );
    }

    /// Counts `n` (negative to take away) for one event's parts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_parts(
        &mut self,
        project: i64,
        issue: i64,
        received: Millis,
        level: &'a str,
        tags: impl Iterator<Item = (&'a str, &'a str)>,
        environment: &'a str,
        release: Option<&'a str>,
        n: i64,
    ) {
        for (k, v) in tags {
            *self.tags.entry((issue, k, v)).or_default() += n;
        }
        *self
            .tags
            .entry((issue, "environment", environment))
            .or_default() += n;
        if let Some(r) = release {
            *self.tags.entry((issue, "release", r)).or_default() += n;
        }
        let minute = minute_of(received);
        *self
            .issue_minutes
            .entry((issue, minute, level))
            .or_default() += n;
        *self
            .project_minutes
            .entry((project, minute, level))
            .or_default() += n;
    }

    /// The nonzero `(issue, key, value) → count` entries, for a writer that upserts row by
    /// row with one cached statement (SQLite's writer thread).
    pub(crate) fn tag_counts(&self) -> impl Iterator<Item = ((i64, &'a str, &'a str), i64)> + '_ {
        self.tags
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(k, n)| (*k, *n))
    }

    /// The nonzero `(owner, minute, level) → count` entries of `issue_minutes` (`issues`
    /// true) or `project_minutes`.
    pub(crate) fn minute_counts(
        &self,
        issues: bool,
    ) -> impl Iterator<Item = ((i64, i64, &'a str), i64)> + '_ {
        let rows = if issues {
            &self.issue_minutes
        } else {
            &self.project_minutes
        };
        rows.iter().filter(|(_, n)| **n != 0).map(|(k, n)| (*k, *n))
    }

    /// The upserts that add these counts, then (when some went down) the deletes of rows
    /// left at zero, found by their keys (not by a scan).
    pub(crate) fn statements<DB>(&self) -> Vec<QueryBuilder<'a, DB>>
    where
        DB: Database,
        for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let tables = self.tables();
        let mut out = Vec::new();
        for (table, key, rows) in &tables {
            let changed: Vec<_> = rows.iter().filter(|(_, n)| *n != 0).collect();
            out.extend(changed.chunks(CHUNK).map(|c| upsert(table, key, c)));
        }
        for (table, key, rows) in &tables {
            let gone: Vec<_> = rows.iter().filter(|(_, n)| *n < 0).collect();
            out.extend(gone.chunks(CHUNK).map(|c| delete_zeros(table, key, c)));
        }
        out
    }

    /// Each counter table with its key columns and its rows' keys and counts.
    fn tables(&self) -> [(&'static str, &'static str, Vec<Counted<'a>>); 3] {
        let tags = self.tags.iter().map(|(&(issue, key, value), &n)| {
            ([Part::Int(issue), Part::Text(key), Part::Text(value)], n)
        });
        let minutes = |rows: &MinuteCounts<'a>| -> Vec<Counted<'a>> {
            let key = |&(owner, minute, level): &(i64, i64, &'a str)| {
                [Part::Int(owner), Part::Int(minute), Part::Text(level)]
            };
            rows.iter().map(|(k, &n)| (key(k), n)).collect()
        };
        [
            ("issue_tag_values", "issue_id, key, value", tags.collect()),
            (
                "issue_minutes",
                "issue_id, minute, level",
                minutes(&self.issue_minutes),
            ),
            (
                "project_minutes",
                "project_id, minute, level",
                minutes(&self.project_minutes),
            ),
        ]
    }
}

/// A counter row's key (three columns) and the count to add.
type Counted<'a> = ([Part<'a>; 3], i64);

/// One key column's value.
#[derive(Clone, Copy)]
enum Part<'a> {
    Int(i64),
    Text(&'a str),
}

/// Binds a row's key columns.
fn bind_key<'a, DB>(b: &mut Separated<'_, 'a, DB, &'static str>, key: &[Part<'a>; 3])
where
    DB: Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for part in key {
        match *part {
            Part::Int(v) => b.push_bind(v),
            Part::Text(v) => b.push_bind(v),
        };
    }
}

/// `INSERT … ON CONFLICT DO UPDATE` adding these rows' counts to `table`.
fn upsert<'a, DB>(table: &str, key: &str, rows: &[&Counted<'a>]) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(format!("INSERT INTO {table} ({key}, count) "));
    q.push_values(rows, |mut b, (parts, n)| {
        bind_key(&mut b, parts);
        b.push_bind(*n);
    });
    q.push(format!(
        " ON CONFLICT ({key}) DO UPDATE SET count = {table}.count + excluded.count"
    ));
    q
}

/// `DELETE` of these rows of `table` where their count went down to zero.
fn delete_zeros<'a, DB>(table: &str, key: &str, rows: &[&Counted<'a>]) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(format!(
        "DELETE FROM {table} WHERE count <= 0 AND ({key}) IN ("
    ));
    q.push_values(rows, |mut b, (parts, _)| bind_key(&mut b, parts));
    q.push(")");
    q
}

/// An event retention deleted, as `DELETE … RETURNING` gives it back: what its counts were.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DeletedEvent {
    pub project_id: i64,
    pub issue_id: i64,
    pub level: String,
    pub environment: String,
    pub release: Option<String>,
    /// The tags as stored: a JSON object of strings.
    pub tags: String,
    pub received: i64,
}

/// The columns `DELETE … RETURNING` gives for [`DeletedEvent`].
pub(crate) const DELETED_COLUMNS: &str =
    "project_id, issue_id, level, environment, release, tags, received";

impl<'a> Rollups<'a> {
    /// What deleting these events takes away. `tags` holds their parsed tags.
    pub(crate) fn removed(
        events: &'a [DeletedEvent],
        tags: &'a [BTreeMap<String, String>],
    ) -> Rollups<'a> {
        let mut r = Rollups::default();
        for (e, tags) in events.iter().zip(tags) {
            r.add_parts(
                e.project_id,
                e.issue_id,
                Millis(e.received),
                &e.level,
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                &e.environment,
                e.release.as_deref(),
                -1,
            );
        }
        r
    }
}

/// Parses the stored tags of deleted events (a row whose tags are unreadable counts none),
/// each key and value `fit` as the rollups' text columns hold it.
pub(crate) fn deleted_tags(
    events: &[DeletedEvent],
    fit: impl Fn(&str) -> Cow<'_, str>,
) -> Vec<BTreeMap<String, String>> {
    let parse = |e: &DeletedEvent| -> BTreeMap<String, String> {
        serde_json::from_str(&e.tags).unwrap_or_default()
    };
    let fit_owned = |s: String| match fit(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(fitted) => fitted,
    };
    events
        .iter()
        .map(|e| {
            parse(e)
                .into_iter()
                .map(|(k, v)| (fit_owned(k), fit_owned(v)))
                .collect()
        })
        .collect()
}

/// Folds `(key, value, count, key total)` rows — each key's most frequent values, as
/// [`tag_breakdown_query`] reads them — into breakdowns, keys by total (most first, then
/// by name), values by count (then by value).
pub(crate) fn tag_breakdowns(rows: Vec<(String, String, i64, i64)>) -> Vec<super::TagBreakdown> {
    let mut by_key: BTreeMap<String, (i64, Vec<super::TagValue>)> = BTreeMap::new();
    for (key, value, count, total) in rows {
        let entry = by_key.entry(key).or_insert((total, Vec::new()));
        entry.1.push(super::TagValue { value, count });
    }
    let mut out: Vec<super::TagBreakdown> = by_key
        .into_iter()
        .map(|(key, (total, mut values))| {
            values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            values.truncate(super::TOP_TAG_VALUES);
            super::TagBreakdown { key, total, values }
        })
        .collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
    out
}

/// Each tag key of an issue with its total and its ten most frequent values, ranked by
/// the database (one pass over the issue's rows of `issue_tag_values`).
pub(crate) fn tag_breakdown_query<'a, DB>(issue: i64) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(
        "SELECT key, value, count, total FROM ( \
             SELECT key, value, count, \
                 CAST(sum(count) OVER (PARTITION BY key) AS BIGINT) AS total, \
                 row_number() OVER (PARTITION BY key ORDER BY count DESC, value) AS pos \
             FROM issue_tag_values WHERE issue_id = ",
    );
    q.push_bind(issue)
        .push(" AND count > 0) ranked WHERE pos <= ");
    q.push_bind(super::TOP_TAG_VALUES as i64);
    q
}

/// `(minute start in unix ms, level, count)` of a project's (or one issue's) events
/// received since `since`, from the minute rollups.
pub(crate) fn per_minute_query<'a, DB>(
    project: i64,
    issue: Option<i64>,
    since: i64,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = match issue {
        Some(issue) => {
            let mut q = QueryBuilder::new(
                "SELECT minute, level, count FROM issue_minutes WHERE issue_id = ",
            );
            q.push_bind(issue);
            q
        }
        None => {
            let mut q = QueryBuilder::new(
                "SELECT minute, level, count FROM project_minutes WHERE project_id = ",
            );
            q.push_bind(project);
            q
        }
    };
    q.push(" AND minute >= ")
        .push_bind(minute_of(Millis(since)))
        .push(" AND count > 0 ORDER BY minute, level");
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, NewEvent};

    fn event(level: Level, env: &str, release: Option<&str>, tags: &[(&str, &str)]) -> NewEvent {
        let tags: serde_json::Map<String, serde_json::Value> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let mut e = NewEvent::from_json(&serde_json::json!({
            "message": "m", "level": level.as_str(), "environment": env, "tags": tags,
        }))
        .unwrap();
        e.release = release.map(str::to_owned);
        e
    }

    #[test]
    fn a_batch_counts_each_triple_and_minute_once_with_its_total() {
        let a = event(
            Level::Error,
            "production",
            Some("1.0"),
            &[("browser", "Chrome")],
        );
        let b = event(Level::Error, "production", None, &[("browser", "Firefox")]);
        let c = event(Level::Warning, "staging", None, &[("browser", "Chrome")]);
        let mut r = Rollups::default();
        r.add(1, 10, Millis(60_000), &a);
        r.add(1, 10, Millis(119_999), &b);
        r.add(1, 11, Millis(120_000), &c);
        assert_eq!(r.tags[&(10, "browser", "Chrome")], 1);
        assert_eq!(r.tags[&(10, "environment", "production")], 2);
        assert_eq!(r.tags[&(10, "release", "1.0")], 1);
        assert!(!r.tags.contains_key(&(10, "release", "")));
        assert_eq!(r.issue_minutes[&(10, 60_000, "error")], 2);
        assert_eq!(r.project_minutes[&(1, 60_000, "error")], 2);
        assert_eq!(r.project_minutes[&(1, 120_000, "warning")], 1);
    }

    #[test]
    fn taking_away_adds_the_deletes_of_empty_rows() {
        let a = event(Level::Error, "production", None, &[]);
        let mut r = Rollups::default();
        r.add(1, 10, Millis(0), &a);
        assert_eq!(r.statements::<sqlx::Sqlite>().len(), 3);
        let mut gone = Rollups::default();
        gone.add_parts(
            1,
            10,
            Millis(0),
            "error",
            std::iter::empty(),
            "production",
            None,
            -1,
        );
        let sql: Vec<String> = gone
            .statements::<sqlx::Sqlite>()
            .iter()
            .map(|q| q.sql().to_owned())
            .collect();
        assert_eq!(sql.len(), 6);
        assert!(sql[3].starts_with("DELETE FROM issue_tag_values WHERE count <= 0 AND"));
    }

    #[test]
    fn minutes_round_down_even_before_1970() {
        assert_eq!(minute_of(Millis(59_999)), 0);
        assert_eq!(minute_of(Millis(60_000)), 60_000);
        assert_eq!(minute_of(Millis(-1)), -60_000);
    }

    #[test]
    fn breakdowns_take_the_totals_the_database_summed() {
        let rows = vec![
            ("browser".to_string(), "Chrome".to_string(), 5, 9),
            ("browser".to_string(), "Firefox".to_string(), 4, 9),
            ("region".to_string(), "eu".to_string(), 12, 12),
        ];
        let b = tag_breakdowns(rows);
        assert_eq!(b[0].key, "region");
        assert_eq!(b[1].total, 9);
        assert_eq!(b[1].values[0].value, "Chrome");
    }
}
