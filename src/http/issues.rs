//! The read API and issue state changes (SPEC §3), authenticated with the project token.

use super::auth::{authorize_project, caller, query_param};
use super::body::ApiPath as Path;
use crate::bus::DomainMessage;
use crate::error::ApiError;
use crate::model::search;
use crate::model::stored::received_json;
use crate::model::{Issue, IssueCommand, IssueSort, IssueStatus, Term};
use crate::state::AppState;
use crate::store::{EventPage, ListedEvent, MergeOutcome, StoredEvent};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// Reads an integer query parameter within `min..=max`, or `default` when absent.
fn int_param(
    query: Option<&str>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match query_param(query, name) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "query parameter '{name}' must be a whole number from {min} to {max}, got '{raw}'"
                ))
            }),
    }
}

/// Largest `limit` any list accepts.
pub(crate) const MAX_LIMIT: i64 = 1000;

fn limit(query: Option<&str>, default: i64) -> Result<u32, ApiError> {
    Ok(int_param(query, "limit", default, 1, MAX_LIMIT)? as u32)
}

/// The issue `id`, if the request's token (or signed-in member) may read it: 401 for a bad
/// credential, 404 for an unknown issue, 403 for another project's issue.
async fn issue_for_token(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    id: i64,
) -> Result<Issue, ApiError> {
    let caller = caller(state, headers, query).await?;
    let issue = state
        .store()
        .get_issue(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("issue {id} not found")))?;
    caller.require(state, issue.project_id).await?;
    Ok(issue)
}

#[derive(Serialize)]
struct Events<'a> {
    events: Vec<ListedEvent<'a>>,
}

fn events_json(events: &[StoredEvent]) -> Json<Events<'_>> {
    Json(Events {
        events: events.iter().map(StoredEvent::listed).collect(),
    })
}

/// Most issues one list answers (SPEC §3.1).
pub(crate) const MAX_ISSUES: i64 = 100;

/// Where the next page of an issue list starts: after the issue with this value of the
/// sort's key (milliseconds for `last_seen` and `first_seen`, a count for `event_count`)
/// and this id. Clients see it as an opaque `cursor`: `<sort>:<value>:<id>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    sort: IssueSort,
    value: i64,
    id: i64,
}

impl Cursor {
    /// The cursor just after `issue` in `sort` order.
    fn after(issue: &Issue, sort: IssueSort) -> Cursor {
        let value = match sort {
            IssueSort::LastSeen => issue.last_seen.0,
            IssueSort::FirstSeen => issue.first_seen.0,
            IssueSort::EventCount => issue.event_count,
        };
        Cursor {
            sort,
            value,
            id: issue.id,
        }
    }

    fn sort_name(sort: IssueSort) -> &'static str {
        match sort {
            IssueSort::LastSeen => "last_seen",
            IssueSort::FirstSeen => "first_seen",
            IssueSort::EventCount => "event_count",
        }
    }

    /// A `cursor` parameter for a list in `sort` order; a 400 naming it otherwise.
    fn parse(raw: &str, sort: IssueSort) -> Result<Cursor, ApiError> {
        let bad = |why: &str| ApiError::BadRequest(format!("malformed cursor '{raw}': {why}"));
        let mut parts = raw.split(':');
        let (Some(name), Some(value), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("use the cursor of a Link header as it is"));
        };
        let named: IssueSort = name.parse().map_err(|_| bad("unknown sort"))?;
        if named != sort {
            return Err(bad(&format!(
                "it continues a list sorted by {name}, not by {}",
                Cursor::sort_name(sort)
            )));
        }
        let value = value.parse().map_err(|_| bad("not a sort value"))?;
        let id = id
            .parse()
            .ok()
            .filter(|id: &i64| *id > 0)
            .ok_or_else(|| bad("not an issue id"))?;
        Ok(Cursor { sort, value, id })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Cursor::sort_name(self.sort);
        write!(f, "{name}:{}:{}", self.value, self.id)
    }
}

/// `Link: <…&cursor=X>; rel="next"; results="true"; cursor="X"`, as Sentry's API pages: the
/// request's own parameters with the next page's cursor.
fn next_link(project: i64, query: Option<&str>, next: Cursor) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k != "cursor" {
            params.append_pair(&k, &v);
        }
    }
    let cursor = next.to_string();
    params.append_pair("cursor", &cursor);
    format!(
        "</api/v1/projects/{project}/issues?{}>; rel=\"next\"; results=\"true\"; cursor=\"{cursor}\"",
        params.finish()
    )
}

/// The search terms of `status=` and `query=`.
fn list_terms(q: Option<&str>) -> Result<Vec<Term>, ApiError> {
    let mut terms = match query_param(q, "status").filter(|s| !s.is_empty()) {
        None => Vec::new(),
        Some(s) => vec![Term::Status(
            s.parse::<IssueStatus>().map_err(ApiError::BadRequest)?,
        )],
    };
    if let Some(text) = query_param(q, "query") {
        terms.extend(search::parse(&text).map_err(|e| ApiError::BadRequest(e.0))?);
    }
    Ok(terms)
}

/// `GET /api/v1/projects/<id>/issues?status=&query=&sort=&limit=&cursor=`: one page, and a
/// `Link` to the next when there is one.
pub(crate) async fn list(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = query.as_deref();
    authorize_project(&state, &headers, q, project).await?;
    let terms = list_terms(q)?;
    let sort = match query_param(q, "sort").filter(|s| !s.is_empty()) {
        None => IssueSort::default(),
        Some(s) => s.parse::<IssueSort>().map_err(ApiError::BadRequest)?,
    };
    let after = match query_param(q, "cursor").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(Cursor::parse(&raw, sort)?),
    };
    let limit = int_param(q, "limit", 50, 1, MAX_ISSUES)? as u32;
    // One more than asked: whether a next page exists, without a count.
    let mut issues = state
        .store()
        .search_issues_after(
            project,
            &terms,
            sort,
            after.map(|c| (c.value, c.id)),
            limit + 1,
        )
        .await?;
    let more = issues.len() > limit as usize;
    issues.truncate(limit as usize);
    // How many the search finds in all (every page), so a client shows the search's size,
    // not the rows it loaded. Without terms beyond the status this is an index count.
    let total = state.store().count_issues(project, &terms).await?;
    let mut response = Json(json!({ "issues": issues, "total": total })).into_response();
    if let (true, Some(last)) = (more, issues.last()) {
        let link = next_link(project, q, Cursor::after(last, sort));
        if let Ok(value) = axum::http::HeaderValue::from_str(&link) {
            response
                .headers_mut()
                .insert(axum::http::header::LINK, value);
        }
    }
    Ok(response)
}

/// `GET /api/v1/projects/<id>/events?since=&limit=`
pub(crate) async fn project_events(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let q = query.as_deref();
    authorize_project(&state, &headers, q, project).await?;
    let since = int_param(q, "since", 0, 0, i64::MAX)?;
    let events = state
        .store()
        .events_since(project, since, limit(q, 100)?)
        .await?;
    Ok(Json(
        serde_json::to_value(events_json(&events).0).unwrap_or_default(),
    ))
}

/// The answer of [`project_event`]: the listed event plus `data`.
#[derive(Serialize)]
struct WholeEvent {
    /// The listed event, its `exception` the chain as shown (SPEC §10).
    #[serde(flatten)]
    listed: serde_json::Map<String, Value>,
    /// The stored text as it is: rebuilt as a `Value`, a float such as 908260.4524125041
    /// would come back as 908260.452412504, and big integers would change.
    data: Option<Box<RawValue>>,
}

#[derive(Serialize)]
struct WholeAnswer {
    event: WholeEvent,
}

/// `GET /api/v1/projects/<id>/events/<event_id>`: the listed event plus `data`, the event
/// exactly as it was received (SPEC §3.2).
pub(crate) async fn project_event(
    State(state): State<AppState>,
    Path((project, event_id)): Path<(i64, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_project(&state, &headers, query.as_deref(), project).await?;
    let id = crate::model::event::normalize_event_id(&event_id).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "an event id is 32 hex digits or a UUID, got '{event_id}'"
        ))
    })?;
    let not_found = || ApiError::NotFound(format!("event {id} not found in project {project}"));
    let (event, raw) = state
        .store()
        .event_by_id(project, &id)
        .await?
        .ok_or_else(not_found)?;
    // `None`: stored before events were kept whole.
    let data = raw.map(received_json).transpose().map_err(|e| {
        tracing::error!(event = %id, error = %e, "a stored event is not JSON");
        ApiError::Unavailable {
            reason: "the stored event could not be read".into(),
            retry_after: 1,
        }
    })?;
    let mut listed = match serde_json::to_value(event.listed()) {
        Ok(Value::Object(listed)) => listed,
        _ => serde_json::Map::new(),
    };
    let sent = crate::sourcemaps::event::SentEvent::read(data.as_ref().map_or("", |d| d.get()));
    let chain = state.sourcemaps().map_event(project, &sent).await;
    listed.insert("exception".into(), json!(chain));
    // Serialized straight to the answer's bytes: through a `Value`, `data` would be parsed.
    Ok(Json(WholeAnswer {
        event: WholeEvent { listed, data },
    })
    .into_response())
}

/// `GET /api/v1/issues/<id>`
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let issue = issue_for_token(&state, &headers, query.as_deref(), id).await?;
    Ok(Json(json!({ "issue": issue })))
}

/// The longest window `minutes=` may ask for: a day.
pub(crate) const MAX_STATS_MINUTES: i64 = 1440;

/// `{"minutes": [{"start", "total", "levels": {...}}, ...]}` for the last `minutes` minutes,
/// oldest first, every minute present (empty ones with total 0), the current one last.
async fn per_minute(
    state: &AppState,
    project: i64,
    issue: Option<i64>,
    q: Option<&str>,
) -> Result<Value, ApiError> {
    let minutes = int_param(q, "minutes", 30, 1, MAX_STATS_MINUTES)?;
    let now = crate::model::Millis::now().0;
    let current = now / 60_000 * 60_000;
    let first = current - (minutes - 1) * 60_000;
    let rows = state
        .store()
        .events_per_minute(project, issue, crate::model::Millis(first))
        .await?;
    let mut buckets: Vec<Value> = (0..minutes)
        .map(|i| json!({ "start": first + i * 60_000, "total": 0, "levels": {} }))
        .collect();
    for (minute, level, count) in rows {
        let Some(b) = usize::try_from((minute - first) / 60_000)
            .ok()
            .and_then(|i| buckets.get_mut(i))
        else {
            continue;
        };
        b["total"] = json!(b["total"].as_i64().unwrap_or(0) + count);
        b["levels"][level] = json!(count);
    }
    Ok(Value::Array(buckets))
}

/// `GET /api/v1/projects/<id>/stats?minutes=`: the unresolved count and events per minute,
/// counted by the server (what the project got, not what a page received).
pub(crate) async fn project_stats(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let q = query.as_deref();
    authorize_project(&state, &headers, q, project).await?;
    let minutes = per_minute(&state, project, None, q).await?;
    let unresolved = state.store().unresolved_count(project).await?;
    let ingestor = state.ingestor();
    Ok(Json(json!({
        "unresolved": unresolved,
        "minutes": minutes,
        // Counted in this node's memory, only when a 429 is answered (not per event).
        "rate_limited_last_hour": ingestor.rate_limited_last_hour(project),
        "rate_limit": ingestor.rate_limit(),
    })))
}

/// `GET /api/v1/issues/<id>/stats?minutes=`: the issue's event count and events per minute.
pub(crate) async fn issue_stats(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let q = query.as_deref();
    let issue = issue_for_token(&state, &headers, q, id).await?;
    let minutes = per_minute(&state, issue.project_id, Some(issue.id), q).await?;
    Ok(Json(
        json!({ "event_count": issue.event_count, "minutes": minutes }),
    ))
}

/// `GET /api/v1/issues/<id>/tags`: the tag breakdown (SPEC §3.2).
pub(crate) async fn issue_tags(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let issue = issue_for_token(&state, &headers, query.as_deref(), id).await?;
    let tags = state.store().issue_tags(issue.id).await?;
    Ok(Json(json!({ "tags": tags })))
}

/// `before=<seq>` (older events, newest first) or `after=<seq>` (newer ones, oldest first).
fn event_page(query: Option<&str>) -> Result<EventPage, ApiError> {
    let before = query_param(query, "before").is_some();
    let after = query_param(query, "after").is_some();
    match (before, after) {
        (true, true) => Err(ApiError::BadRequest(
            "give 'before' or 'after', not both".into(),
        )),
        (true, false) => Ok(EventPage::Before(int_param(
            query,
            "before",
            0,
            0,
            i64::MAX,
        )?)),
        (false, true) => Ok(EventPage::After(int_param(query, "after", 0, 0, i64::MAX)?)),
        (false, false) => Ok(EventPage::Newest),
    }
}

/// `GET /api/v1/issues/<id>/events?limit=&before=|after=`
pub(crate) async fn issue_events(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let q = query.as_deref();
    let limit = limit(q, 50)?;
    let page = event_page(q)?;
    let issue = issue_for_token(&state, &headers, q, id).await?;
    let events = state.store().issue_events(issue.id, page, limit).await?;
    Ok(Json(
        serde_json::to_value(events_json(&events).0).unwrap_or_default(),
    ))
}

/// `POST /api/v1/issues/<id>/{resolve,archive,unresolve,discard}`
pub(crate) async fn change_status(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let command: IssueCommand = action.parse().map_err(ApiError::NotFound)?;
    let q = query.as_deref();
    issue_for_token(&state, &headers, q, id).await?;
    let change = state
        .store()
        .change_issue_status(id, command)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("issue {id} not found")))?;
    let origin = headers
        .get("x-mesher-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(action) = change.action {
        state
            .bus()
            .publish(DomainMessage::IssueChanged {
                action,
                issue: change.issue.clone(),
                origin,
            })
            .await;
    }
    if let Some(count) = change.count {
        state
            .bus()
            .publish(DomainMessage::CountChanged {
                project_id: change.issue.project_id,
                count,
            })
            .await;
    }
    Ok(Json(json!({ "issue": change.issue })))
}

/// Most issues one merge folds.
pub(crate) const MAX_MERGE: usize = 100;

/// The ids a merge's body names: `{"issues": [<id>, ...]}`, 1 to [`MAX_MERGE`], not the
/// target; each once, in the order given.
fn merge_ids(body: &[u8], target: i64) -> Result<Vec<i64>, ApiError> {
    let bad = |why: &str| ApiError::BadRequest(why.to_owned());
    let body = super::body::parse_json(body)?;
    let list = body
        .get("issues")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("field 'issues' is required: a list of issue ids to merge"))?;
    if list.is_empty() {
        return Err(bad(
            "field 'issues' is empty: name at least one issue to merge",
        ));
    }
    if list.len() > MAX_MERGE {
        return Err(bad(&format!(
            "field 'issues' names {} issues: a merge takes at most {MAX_MERGE}",
            list.len()
        )));
    }
    let mut ids: Vec<i64> = Vec::with_capacity(list.len());
    for v in list {
        let id = v
            .as_i64()
            .ok_or_else(|| bad(&format!("field 'issues' must hold issue ids, got {v}")))?;
        if id == target {
            return Err(bad(&format!("issue {target} cannot be merged into itself")));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// `POST /api/v1/issues/<id>/merge {"issues": [...]}`: folds those issues into `<id>`
/// (SPEC §3); the stream gets `issue` `merged` and the new count. An issue of another
/// project is a 400, an unknown one 404; nothing changes then.
pub(crate) async fn merge(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Json<Value>, ApiError> {
    use axum::extract::FromRequest;
    // The credentials before a byte of the body (SPEC §8).
    issue_for_token(&state, &headers, query.as_deref(), id).await?;
    let super::body::DecodedBody(body) =
        super::body::DecodedBody::from_request(request, &state).await?;
    let folded = merge_ids(&body, id)?;
    let (issue, merged, count) = match state.store().merge_issues(id, &folded).await? {
        MergeOutcome::Merged {
            issue,
            merged,
            count,
        } => (issue, merged, count),
        MergeOutcome::Unknown(other) => {
            return Err(ApiError::NotFound(format!("issue {other} not found")));
        }
        MergeOutcome::OtherProject(other) => {
            return Err(ApiError::BadRequest(format!(
                "issue {other} belongs to another project: only issues of one project merge"
            )));
        }
    };
    let origin = headers
        .get("x-mesher-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let project_id = issue.project_id;
    let bus = state.bus();
    bus.publish(DomainMessage::IssuesMerged {
        issue: issue.clone(),
        merged: merged.clone(),
        origin,
    })
    .await;
    bus.publish(DomainMessage::CountChanged { project_id, count })
        .await;
    Ok(Json(json!({ "issue": issue, "merged": merged })))
}

#[cfg(test)]
mod tests {
    use super::{Cursor, IssueSort, next_link};

    #[test]
    fn a_merge_names_one_to_a_hundred_other_issues() {
        let ids = |body: &str| super::merge_ids(body.as_bytes(), 1).map_err(|e| e.to_string());
        assert_eq!(ids(r#"{"issues": [3, 2, 3]}"#), Ok(vec![3, 2]));
        for bad in [
            r#"{"issues": []}"#,
            r#"{"issues": [1, 2]}"#,
            r#"{"issues": "2"}"#,
            r#"{"issues": ["2"]}"#,
            r#"{}"#,
            "not json",
        ] {
            assert!(ids(bad).is_err(), "{bad}");
        }
        let many = format!("{{\"issues\": {:?}}}", (2..103).collect::<Vec<i64>>());
        assert!(ids(&many).unwrap_err().contains("at most 100"));
    }

    #[test]
    fn cursors_read_back_as_written_and_name_their_sort() {
        let c = Cursor {
            sort: IssueSort::EventCount,
            value: 12,
            id: 7,
        };
        assert_eq!(c.to_string(), "event_count:12:7");
        assert_eq!(
            Cursor::parse("event_count:12:7", IssueSort::EventCount).ok(),
            Some(c)
        );
        for bad in ["", "event_count:12", "event_count:12:0", "last_seen:1:2"] {
            assert!(Cursor::parse(bad, IssueSort::EventCount).is_err(), "{bad}");
        }
        assert_eq!(
            next_link(3, Some("query=is%3Aresolved&cursor=old&limit=5"), c),
            "</api/v1/projects/3/issues?query=is%3Aresolved&limit=5&cursor=event_count%3A12%3A7>; \
             rel=\"next\"; results=\"true\"; cursor=\"event_count:12:7\""
        );
    }
}
