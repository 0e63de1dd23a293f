//! The group commit's logic, written once for both databases: duplicates, issues through
//! the state machine, per-project seqs, outcomes and the messages to publish.
//!
//! A store supplies only its statements ([`BatchStatements`]), each taking the whole
//! batch, so that PostgreSQL answers the batch in a handful of round trips and SQLite runs
//! cached statements on its writer thread. [`write_batch`] runs inside the store's
//! transaction; nothing here commits.

use super::rollups::Rollups;
use super::{BatchResult, EventOutcome, PreparedEvent, ProjectId, StoreError, StoredEvent, rows};
use crate::alerts::payload::Raised;
use crate::model::issue::{EventDisposition, on_new_event};
use crate::model::stored::DetailJson;
use crate::model::{DomainMessage, Issue, IssueAction, Level, Millis};
use async_trait::async_trait;
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// An issue the batch creates: its first stored event's title, culprit, level and time.
#[derive(Debug)]
pub(crate) struct NewIssue<'a> {
    pub project_id: ProjectId,
    pub fingerprint: &'a str,
    pub title: Cow<'a, str>,
    pub culprit: Cow<'a, str>,
    pub level: Level,
    pub received: Millis,
}

/// One event row to insert, its text already fit for the database.
pub(crate) struct EventRow<'a> {
    pub p: &'a PreparedEvent,
    pub seq: i64,
    pub issue_id: i64,
    pub timestamp: Millis,
    pub message: Option<Cow<'a, str>>,
    pub environment: Cow<'a, str>,
    pub release: Option<Cow<'a, str>>,
    pub title: Cow<'a, str>,
    pub culprit: Cow<'a, str>,
    /// The tags as a JSON object.
    pub tags: String,
    /// The event as published; its detail is the row's.
    pub stored: Arc<StoredEvent>,
}

impl EventRow<'_> {
    /// The detail column: a JSON object.
    pub fn detail(&self) -> &str {
        self.stored.detail.as_str()
    }
}

/// Client-chosen ids already stored: project → event id → issue.
pub(crate) type StoredIds = HashMap<ProjectId, HashMap<String, i64>>;

/// What a batch writes once its outcomes are known.
pub(crate) struct BatchWrites<'a, 'e> {
    /// New event rows, in seq order per project.
    pub rows: &'a [EventRow<'e>],
    /// The counts they add.
    pub rollups: &'a Rollups<'a>,
    /// Touched issues, as they are after the batch.
    pub issues: &'a [&'a Issue],
    /// `(project, last seq)` of every project that stored events.
    pub seqs: &'a [(ProjectId, i64)],
}

/// The statements one database runs for [`write_batch`], all inside one transaction.
#[async_trait]
pub(crate) trait BatchStatements: Send {
    /// `s` as the database's text columns can hold it (PostgreSQL's cannot hold U+0000).
    fn fit_text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(s)
    }

    /// The projects' last seqs, locked until the commit where the database needs it.
    /// A missing project is absent from the answer.
    async fn project_seqs(
        &mut self,
        projects: &[ProjectId],
    ) -> Result<HashMap<ProjectId, i64>, StoreError>;

    /// Which of these client-chosen ids are stored already, with their issue: project →
    /// event id → issue (nested, so that an event's `&str` id looks it up as it is).
    async fn stored_event_ids(
        &mut self,
        keys: &[(ProjectId, &str)],
    ) -> Result<StoredIds, StoreError>;

    /// The existing issues of these (project, fingerprint) keys.
    async fn issues_by_fingerprint(
        &mut self,
        keys: &[(ProjectId, &str)],
    ) -> Result<Vec<(String, Issue)>, StoreError>;

    /// Creates these issues (unresolved, no events yet); answers them with their
    /// fingerprints, in any order.
    async fn insert_issues(
        &mut self,
        issues: &[NewIssue<'_>],
    ) -> Result<Vec<(String, Issue)>, StoreError>;

    /// Writes the batch: inserts the event rows, adds the counts to the rollups, writes
    /// back the touched issues (counts, last seen, level, status) and the projects' last
    /// seqs. One call, so that a database may send it all as one statement.
    async fn write(&mut self, batch: &BatchWrites<'_, '_>) -> Result<(), StoreError>;

    /// The project's unresolved issues, counted inside the transaction.
    async fn count_unresolved(&mut self, project: ProjectId) -> Result<i64, StoreError>;

    /// Queues the raised alerts for every webhook that wants them (SPEC §7's outbox).
    async fn raise_alerts(&mut self, raised: &[Raised], now: Millis) -> Result<(), StoreError>;
}

/// An issue touched by the batch, kept in memory until the batch's end so that many events
/// of one issue cost one update, not one each.
struct TouchedIssue {
    issue: Issue,
    dirty: bool,
}

/// Stores `events` through `db`, inside the caller's transaction.
///
/// Server-made event ids skip the duplicate look-up (they are fresh random ids); an id
/// repeated inside the batch is a duplicate of its first stored copy; events of a
/// discarded issue are dropped (their ids are not recorded, so a resend is dropped too).
pub(crate) async fn write_batch<S: BatchStatements + ?Sized>(
    db: &mut S,
    events: &[PreparedEvent],
) -> Result<BatchResult, StoreError> {
    let mut result = BatchResult {
        outcomes: Vec::with_capacity(events.len()),
        messages: Vec::with_capacity(events.len() + 4),
    };
    if events.is_empty() {
        return Ok(result);
    }

    let projects: Vec<ProjectId> = events
        .iter()
        .map(|p| p.project_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let project_seqs = db.project_seqs(&projects).await?;

    let client_ids: Vec<(ProjectId, &str)> = events
        .iter()
        .filter(|p| p.id_from_client)
        .map(|p| (p.project_id, p.event_id.as_str()))
        .collect();
    let stored_ids = if client_ids.is_empty() {
        HashMap::new()
    } else {
        db.stored_event_ids(&client_ids).await?
    };
    let stored_issue = |p: &PreparedEvent| {
        if !p.id_from_client {
            return None;
        }
        stored_ids
            .get(&p.project_id)?
            .get(p.event_id.as_str())
            .copied()
    };
    let stored_before = |p: &PreparedEvent| stored_issue(p).is_some();

    // The issues of every event not stored before, then the ones to create: keys with no
    // issue, made from their first event that will be stored. Only a discarded issue
    // drops events, and it stays discarded, so which events are stored is known here.
    let keys: Vec<(ProjectId, &str)> = events
        .iter()
        .filter(|p| !stored_before(p))
        .map(|p| (p.project_id, p.fingerprint.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Keyed by the events' own fingerprints (found in the sorted `keys`), so that looking
    // one up allocates nothing.
    let key_of_row = |issue: &Issue, fp: &str| {
        keys.binary_search_by(|&(p, f)| (p, f).cmp(&(issue.project_id, fp)))
            .ok()
            .map(|i| keys[i])
    };
    let mut issues: HashMap<(ProjectId, &str), Issue> = HashMap::with_capacity(keys.len());
    for (fp, issue) in db.issues_by_fingerprint(&keys).await? {
        if let Some(k) = key_of_row(&issue, &fp) {
            issues.insert(k, issue);
        }
    }
    let mut new_issues: Vec<NewIssue<'_>> = Vec::new();
    {
        let mut seen: HashSet<(ProjectId, &str)> = HashSet::new();
        let mut creating: HashSet<(ProjectId, &str)> = HashSet::new();
        for p in events {
            if stored_before(p) || seen.contains(&(p.project_id, p.event_id.as_str())) {
                continue;
            }
            let key = (p.project_id, p.fingerprint.as_str());
            match issues.get(&key) {
                Some(i) if on_new_event(i.status) == EventDisposition::Drop => continue,
                Some(_) => {}
                None => {
                    if creating.insert(key) {
                        new_issues.push(NewIssue {
                            project_id: p.project_id,
                            fingerprint: &p.fingerprint,
                            title: db.fit_text(&p.title),
                            culprit: db.fit_text(&p.culprit),
                            level: p.event.level,
                            received: p.received,
                        });
                    }
                }
            }
            seen.insert((p.project_id, p.event_id.as_str()));
        }
    }
    // A project that does not exist has no seq: nothing of the batch is stored.
    if events
        .iter()
        .any(|p| !project_seqs.contains_key(&p.project_id))
    {
        return Err(StoreError::Database(sqlx::Error::RowNotFound));
    }
    let mut created: HashSet<(ProjectId, &str)> = HashSet::with_capacity(new_issues.len());
    if !new_issues.is_empty() {
        for (fp, issue) in db.insert_issues(&new_issues).await? {
            if let Some(k) = key_of_row(&issue, &fp) {
                created.insert(k);
                issues.insert(k, issue);
            }
        }
    }

    let mut last_seq: HashMap<ProjectId, i64> = HashMap::new();
    let mut count_changed: BTreeSet<ProjectId> = BTreeSet::new();
    let mut touched: HashMap<(ProjectId, &str), TouchedIssue> = HashMap::new();
    let mut seen_ids: HashMap<(ProjectId, &str), i64> = HashMap::new();
    let mut rows: Vec<EventRow<'_>> = Vec::with_capacity(events.len());

    for p in events {
        if let Some(&issue_id) = seen_ids.get(&(p.project_id, p.event_id.as_str())) {
            result.outcomes.push(EventOutcome::Duplicate { issue_id });
            continue;
        }
        if let Some(issue_id) = stored_issue(p) {
            result.outcomes.push(EventOutcome::Duplicate { issue_id });
            continue;
        }

        let key = (p.project_id, p.fingerprint.as_str());
        let mut action = None;
        let entry = match touched.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(slot) => {
                let issue = issues
                    .remove(&key)
                    .ok_or_else(|| rows::corrupt("an issue the batch created is missing"))?;
                let new = created.contains(&key);
                if new {
                    count_changed.insert(p.project_id);
                    action = Some(IssueAction::New);
                }
                slot.insert(TouchedIssue { issue, dirty: new })
            }
        };
        let issue = &mut entry.issue;
        match on_new_event(issue.status) {
            EventDisposition::Drop => {
                result
                    .outcomes
                    .push(EventOutcome::Dropped { issue_id: issue.id });
                continue;
            }
            EventDisposition::Store(status, regression) => {
                if status != issue.status {
                    count_changed.insert(p.project_id);
                }
                issue.status = status;
                action = action.or(regression);
            }
        }
        issue.event_count += 1;
        issue.last_seen = issue.last_seen.max(p.received);
        issue.level = p.event.level;
        entry.dirty = true;
        let issue_id = issue.id;

        let seq = last_seq
            .entry(p.project_id)
            .or_insert(project_seqs[&p.project_id]);
        *seq += 1;
        let seq = *seq;
        seen_ids.insert((p.project_id, p.event_id.as_str()), issue_id);

        let e = &p.event;
        let timestamp = e.timestamp.unwrap_or(p.received);
        let message = e.message.as_deref().map(|m| db.fit_text(m));
        let environment = db.fit_text(&e.environment);
        let release = e.release.as_deref().map(|r| db.fit_text(r));
        let title = db.fit_text(&p.title);
        let culprit = db.fit_text(&p.culprit);
        let stored = Arc::new(StoredEvent {
            project_id: p.project_id,
            seq,
            issue_id,
            id: p.event_id.clone(),
            level: e.level,
            message: message.as_deref().map(str::to_owned),
            environment: environment.clone().into_owned(),
            release: release.as_deref().map(str::to_owned),
            timestamp,
            received: p.received,
            title: title.clone().into_owned(),
            culprit: culprit.clone().into_owned(),
            tags: e.tags.clone(),
            detail: DetailJson::of(&e.detail).map_err(rows::corrupt)?,
        });
        let row = EventRow {
            p,
            seq,
            issue_id,
            timestamp,
            message,
            environment,
            release,
            title,
            culprit,
            tags: serde_json::to_string(&e.tags).map_err(rows::corrupt)?,
            stored: Arc::clone(&stored),
        };
        result.outcomes.push(EventOutcome::Stored { issue_id, seq });
        if let Some(action) = action {
            result.messages.push(DomainMessage::IssueChanged {
                action,
                issue: entry.issue.clone(),
                origin: None,
            });
        }
        result.messages.push(DomainMessage::EventStored(stored));
        rows.push(row);
    }

    // Counted as stored (see `fit_text`): retention subtracts what it reads back.
    let tags: Vec<Vec<(Cow<'_, str>, Cow<'_, str>)>> = rows
        .iter()
        .map(|r| {
            r.p.event
                .tags
                .iter()
                .map(|(k, v)| (db.fit_text(k), db.fit_text(v)))
                .collect()
        })
        .collect();
    let mut rollups = Rollups::default();
    for (r, tags) in rows.iter().zip(&tags) {
        rollups.add_parts(
            r.p.project_id,
            r.issue_id,
            r.p.received,
            r.p.event.level.as_str(),
            tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
            &r.environment,
            r.release.as_deref(),
            1,
        );
    }
    let dirty: Vec<&Issue> = touched
        .values()
        .filter(|t| t.dirty)
        .map(|t| &t.issue)
        .collect();
    let seqs: Vec<(ProjectId, i64)> = last_seq.into_iter().collect();
    if !rows.is_empty() || !dirty.is_empty() {
        db.write(&BatchWrites {
            rows: &rows,
            rollups: &rollups,
            issues: &dirty,
            seqs: &seqs,
        })
        .await?;
    }
    for project in count_changed {
        let count = db.count_unresolved(project).await?;
        result.messages.push(DomainMessage::CountChanged {
            project_id: project,
            count,
        });
    }
    let raised = crate::alerts::payload::raised(&result.messages);
    if !raised.is_empty() {
        db.raise_alerts(&raised, Millis::now()).await?;
    }
    Ok(result)
}
