//! The group commit's logic, written once for both databases: duplicates, issues through
//! the state machine, per-project seqs, outcomes and the messages to publish.
//!
//! A store supplies only its statements ([`BatchStatements`]), each taking the whole
//! batch, so that PostgreSQL answers the batch in a handful of round trips and SQLite runs
//! cached statements on its writer thread. [`write_batch`] runs inside the store's
//! transaction; nothing here commits.
//!
//! [`write_batch`] is a plan of steps, each a function below: look up the projects' seqs
//! and the earlier copies of client-chosen ids, fetch the issues and create the missing
//! ones ([`BatchIssues`]), then settle each event in input order ([`Settled::settle`]: a
//! duplicate, dropped by its issue's state machine, or stored with the next seq as a row),
//! write the rows with their rollups, and count and alert what changed.

use super::rollups::Rollups;
use super::{BatchResult, EventOutcome, PreparedEvent, ProjectId, StoreError, StoredEvent, rows};
use crate::grouping;
use crate::model::alert::Raised;
use crate::model::issue::{EventDisposition, on_new_event};
use crate::model::stored::DetailJson;
use crate::model::{DomainMessage, Issue, IssueAction, Level, Millis};
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

/// One event row to insert: the event as published once stored, its text already fit for
/// the database, is the row's.
pub(crate) struct EventRow<'a> {
    pub p: &'a PreparedEvent,
    /// The tags as a JSON object.
    pub tags: String,
    /// The event as published; its columns are the row's.
    pub stored: Arc<StoredEvent>,
}

impl EventRow<'_> {
    /// The detail column: a JSON object.
    pub(crate) fn detail(&self) -> &str {
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

    /// The existing issues answering to these (project, fingerprint) keys (through
    /// `issue_fingerprints`: an issue may answer to several), each with the key's
    /// fingerprint.
    async fn issues_by_fingerprint(
        &mut self,
        keys: &[(ProjectId, &str)],
    ) -> Result<Vec<(String, Issue)>, StoreError>;

    /// Makes each issue answer to its (project, fingerprint) too (the upgrade rule).
    async fn add_fingerprints(
        &mut self,
        fingerprints: &[(ProjectId, &str, i64)],
    ) -> Result<(), StoreError>;

    /// Creates these issues (unresolved, no events yet), each answering to its
    /// fingerprint; answers them with their fingerprints, in any order.
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

/// A (project, fingerprint) key, borrowed from one of the batch's events.
type IssueKey<'e> = (ProjectId, &'e str);

/// A (project, event id) key, borrowed from one of the batch's events.
type EventKey<'e> = (ProjectId, &'e str);

/// One row's tags as the database's text columns hold them.
type FittedTags<'e> = Vec<(Cow<'e, str>, Cow<'e, str>)>;

fn issue_key(p: &PreparedEvent) -> IssueKey<'_> {
    (p.project_id, p.fingerprint.as_str())
}

fn event_key(p: &PreparedEvent) -> EventKey<'_> {
    (p.project_id, p.event_id.as_str())
}

/// Stores `events` through `db`, inside the caller's transaction.
///
/// Server-made event ids skip the duplicate look-up (they are fresh random ids); an id
/// repeated inside the batch is a duplicate of its first stored copy; events of a
/// discarded issue are dropped (their ids are not recorded, so a resend is dropped too).
/// A project that does not exist fails the whole batch with
/// [`StoreError::UnknownProject`].
pub(crate) async fn write_batch<S: BatchStatements + ?Sized>(
    db: &mut S,
    events: &[PreparedEvent],
) -> Result<BatchResult, StoreError> {
    if events.is_empty() {
        return Ok(BatchResult::default());
    }
    let seqs_before = db.project_seqs(&projects_of(events)).await?;
    let earlier = EarlierCopies::look_up(db, events).await?;
    let mut issues = BatchIssues::fetch(db, events, &earlier).await?;
    let to_create = issues.to_create(&*db, events, &earlier);
    require_projects(events, &seqs_before)?;
    issues.create(db, &to_create).await?;

    let mut settled = Settled::new(seqs_before, events.len());
    for p in events {
        settled.settle(&*db, p, &earlier, &mut issues)?;
    }
    settled.write(db, &issues).await?;
    settled.count_changes(db).await?;
    raise_alerts(db, &settled.result.messages).await?;
    Ok(settled.result)
}

/// The batch's projects, each once, in order.
fn projects_of(events: &[PreparedEvent]) -> Vec<ProjectId> {
    events
        .iter()
        .map(|p| p.project_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A project that does not exist has no seq: nothing of the batch is stored.
fn require_projects(
    events: &[PreparedEvent],
    seqs_before: &HashMap<ProjectId, i64>,
) -> Result<(), StoreError> {
    match events
        .iter()
        .find(|p| !seqs_before.contains_key(&p.project_id))
    {
        Some(p) => Err(StoreError::UnknownProject(p.project_id)),
        None => Ok(()),
    }
}

/// The batch's client-chosen ids that were stored before it, with their issue: their
/// events are duplicates.
struct EarlierCopies(StoredIds);

impl EarlierCopies {
    /// Looks up the client-chosen ids; server-made ones are fresh random ids and skip it.
    async fn look_up<S: BatchStatements + ?Sized>(
        db: &mut S,
        events: &[PreparedEvent],
    ) -> Result<Self, StoreError> {
        let client_ids: Vec<EventKey<'_>> = events
            .iter()
            .filter(|p| p.id_from_client)
            .map(event_key)
            .collect();
        if client_ids.is_empty() {
            return Ok(Self(HashMap::new()));
        }
        Ok(Self(db.stored_event_ids(&client_ids).await?))
    }

    /// The issue of `p`'s copy stored before the batch, if there is one.
    fn issue_of(&self, p: &PreparedEvent) -> Option<i64> {
        if !p.id_from_client {
            return None;
        }
        self.0.get(&p.project_id)?.get(p.event_id.as_str()).copied()
    }

    fn contains(&self, p: &PreparedEvent) -> bool {
        self.issue_of(p).is_some()
    }
}

/// An issue touched by the batch, kept in memory until the batch's end so that many events
/// of one issue cost one update, not one each.
struct TouchedIssue {
    issue: Issue,
    dirty: bool,
}

/// What the state machine makes of an event's issue.
enum Resolved {
    /// The issue is discarded: the event is dropped.
    Dropped { issue_id: i64 },
    /// The event is stored under the issue; `changed` announces the issue when the event
    /// created or reopened it.
    Stored {
        issue_id: i64,
        changed: Option<DomainMessage>,
    },
}

/// The issues of the batch's events. An issue answers to several fingerprints (after the
/// upgrade rule or a merge, SPEC §3), so events of different keys may share one: keys map
/// to issue ids, and each issue is held once, by id, so that its counts add up.
struct BatchIssues<'e> {
    /// The keys of the events not stored before, sorted: an issue the database answers is
    /// matched to its event's key here.
    keys: Vec<IssueKey<'e>>,
    /// The issue each key answers to, once fetched, adopted or created.
    ids: HashMap<IssueKey<'e>, i64>,
    /// Issues fetched or created, by id, until an event of the batch first touches them.
    waiting: HashMap<i64, Issue>,
    /// The issues this batch created.
    created: HashSet<i64>,
    /// The issues the batch's events touched, as they are after them.
    touched: HashMap<i64, TouchedIssue>,
}

impl<'e> BatchIssues<'e> {
    /// Fetches the existing issues of every event not stored before, then applies the
    /// upgrade rule to the keys still without one ([`adopt_earlier`](Self::adopt_earlier)).
    async fn fetch<S: BatchStatements + ?Sized>(
        db: &mut S,
        events: &'e [PreparedEvent],
        earlier: &EarlierCopies,
    ) -> Result<Self, StoreError> {
        let keys: Vec<IssueKey<'e>> = events
            .iter()
            .filter(|p| !earlier.contains(p))
            .map(issue_key)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut issues = Self {
            ids: HashMap::with_capacity(keys.len()),
            waiting: HashMap::with_capacity(keys.len()),
            keys,
            created: HashSet::new(),
            touched: HashMap::new(),
        };
        for (fingerprint, issue) in db.issues_by_fingerprint(&issues.keys).await? {
            if let Some(key) = issues.key_of(&issue, &fingerprint) {
                issues.keep(key, issue);
            }
        }
        if issues.ids.len() < issues.keys.len() {
            issues.adopt_earlier(db, events, earlier).await?;
        }
        Ok(issues)
    }

    /// Notes that `key` answers to `issue`.
    fn keep(&mut self, key: IssueKey<'e>, issue: Issue) {
        self.ids.insert(key, issue.id);
        self.waiting.entry(issue.id).or_insert(issue);
    }

    /// SPEC §3's upgrade rule: a key with no issue whose event's fingerprint under the
    /// earlier rule names one joins that issue, which answers to the key from then on. The
    /// earlier fingerprint is computed only here, for keys that missed, and only for events
    /// whose rule changed (`grouping::legacy_fingerprint`): a hit costs nothing.
    async fn adopt_earlier<S: BatchStatements + ?Sized>(
        &mut self,
        db: &mut S,
        events: &'e [PreparedEvent],
        earlier: &EarlierCopies,
    ) -> Result<(), StoreError> {
        let mut asked: HashSet<IssueKey<'e>> = HashSet::new();
        let mut legacy: Vec<(IssueKey<'e>, String)> = Vec::new();
        for p in events {
            let key = issue_key(p);
            if earlier.contains(p) || self.ids.contains_key(&key) || !asked.insert(key) {
                continue;
            }
            if let Some(l) = grouping::legacy_fingerprint(&p.event).filter(|l| *l != p.fingerprint)
            {
                legacy.push((key, l));
            }
        }
        if legacy.is_empty() {
            return Ok(());
        }
        let wanted: Vec<IssueKey<'_>> = legacy.iter().map(|(k, l)| (k.0, l.as_str())).collect();
        let found: HashMap<(ProjectId, String), Issue> = db
            .issues_by_fingerprint(&wanted)
            .await?
            .into_iter()
            .map(|(fingerprint, issue)| ((issue.project_id, fingerprint), issue))
            .collect();
        let mut adopted: Vec<(ProjectId, &'e str, i64)> = Vec::new();
        for (key, l) in legacy {
            if let Some(issue) = found.get(&(key.0, l)) {
                adopted.push((key.0, key.1, issue.id));
                self.keep(key, issue.clone());
            }
        }
        if adopted.is_empty() {
            return Ok(());
        }
        db.add_fingerprints(&adopted).await
    }

    /// The batch's own key for an issue the database answered with its fingerprint.
    fn key_of(&self, issue: &Issue, fingerprint: &str) -> Option<IssueKey<'e>> {
        let wanted = (issue.project_id, fingerprint);
        let i = self.keys.binary_search_by(|&key| key.cmp(&wanted)).ok()?;
        Some(self.keys[i])
    }

    /// The issues to create: keys with no issue, each made from its first event that will
    /// be stored. Only a discarded issue drops events, and it stays discarded, so which
    /// events are stored is known here.
    fn to_create<S: BatchStatements + ?Sized>(
        &self,
        db: &S,
        events: &'e [PreparedEvent],
        earlier: &EarlierCopies,
    ) -> Vec<NewIssue<'e>> {
        let mut to_create = Vec::new();
        let mut seen: HashSet<EventKey<'e>> = HashSet::new();
        let mut creating: HashSet<IssueKey<'e>> = HashSet::new();
        for p in events {
            if earlier.contains(p) || seen.contains(&event_key(p)) {
                continue;
            }
            let known = self
                .ids
                .get(&issue_key(p))
                .and_then(|id| self.waiting.get(id));
            match known {
                Some(i) if on_new_event(i.status) == EventDisposition::Drop => continue,
                Some(_) => {}
                None => {
                    if creating.insert(issue_key(p)) {
                        to_create.push(new_issue(db, p));
                    }
                }
            }
            seen.insert(event_key(p));
        }
        to_create
    }

    /// Creates `new` and keeps them, marked as created by the batch.
    async fn create<S: BatchStatements + ?Sized>(
        &mut self,
        db: &mut S,
        new: &[NewIssue<'_>],
    ) -> Result<(), StoreError> {
        if new.is_empty() {
            return Ok(());
        }
        self.created.reserve(new.len());
        for (fingerprint, issue) in db.insert_issues(new).await? {
            if let Some(key) = self.key_of(&issue, &fingerprint) {
                self.created.insert(issue.id);
                self.keep(key, issue);
            }
        }
        Ok(())
    }

    /// Applies `p` to its issue through the state machine ([`on_new_event`]): status,
    /// count, last seen and level. Notes in `count_changed` a project whose unresolved
    /// count moves.
    fn resolve(
        &mut self,
        p: &'e PreparedEvent,
        count_changed: &mut BTreeSet<ProjectId>,
    ) -> Result<Resolved, StoreError> {
        let (touched, created) = self.touch(issue_key(p))?;
        if created {
            count_changed.insert(p.project_id);
        }
        let issue = &mut touched.issue;
        let EventDisposition::Store(status, regression) = on_new_event(issue.status) else {
            return Ok(Resolved::Dropped { issue_id: issue.id });
        };
        if status != issue.status {
            count_changed.insert(p.project_id);
        }
        issue.status = status;
        if regression.is_some() {
            // Marked until the issue's status is changed by hand (`store::issues`).
            issue.regressed_at = Some(p.received);
        }
        issue.event_count += 1;
        issue.last_seen = issue.last_seen.max(p.received);
        issue.level = p.event.level;
        touched.dirty = true;
        let action = if created {
            Some(IssueAction::New)
        } else {
            regression
        };
        let changed = action.map(|action| DomainMessage::IssueChanged {
            action,
            issue: touched.issue.clone(),
            origin: None,
        });
        Ok(Resolved::Stored {
            issue_id: touched.issue.id,
            changed,
        })
    }

    /// The touched issue of `key`, taken from the waiting ones on its first event, and
    /// whether the batch created it (then it is touched by this very event).
    fn touch(&mut self, key: IssueKey<'e>) -> Result<(&mut TouchedIssue, bool), StoreError> {
        let missing = || rows::corrupt("an issue the batch created is missing");
        let id = *self.ids.get(&key).ok_or_else(missing)?;
        match self.touched.entry(id) {
            Entry::Occupied(o) => Ok((o.into_mut(), false)),
            Entry::Vacant(slot) => {
                let issue = self.waiting.remove(&id).ok_or_else(missing)?;
                let new = self.created.contains(&id);
                Ok((slot.insert(TouchedIssue { issue, dirty: new }), new))
            }
        }
    }

    /// The touched issues to write back.
    fn dirty(&self) -> Vec<&Issue> {
        self.touched
            .values()
            .filter(|t| t.dirty)
            .map(|t| &t.issue)
            .collect()
    }
}

/// The issue `p` creates: its title, culprit, level and time.
fn new_issue<'e, S: BatchStatements + ?Sized>(db: &S, p: &'e PreparedEvent) -> NewIssue<'e> {
    NewIssue {
        project_id: p.project_id,
        fingerprint: &p.fingerprint,
        title: db.fit_text(&p.title),
        culprit: db.fit_text(&p.culprit),
        level: p.event.level,
        received: p.received,
    }
}

/// What the batch decided, event by event in input order, and what it writes.
struct Settled<'e> {
    /// The outcomes and the messages to publish.
    result: BatchResult,
    /// The event rows to insert, in seq order per project.
    rows: Vec<EventRow<'e>>,
    /// Each project's last seq before the batch.
    seqs_before: HashMap<ProjectId, i64>,
    /// The last seq given so far, for each project that stored an event.
    last_seqs: HashMap<ProjectId, i64>,
    /// The projects whose unresolved count the batch changes.
    count_changed: BTreeSet<ProjectId>,
    /// The ids the batch stores, with their issue: a repeat inside the batch is a
    /// duplicate of its first stored copy.
    stored_ids: HashMap<EventKey<'e>, i64>,
}

impl<'e> Settled<'e> {
    fn new(seqs_before: HashMap<ProjectId, i64>, events: usize) -> Self {
        Self {
            result: BatchResult {
                outcomes: Vec::with_capacity(events),
                messages: Vec::with_capacity(events + 4),
            },
            rows: Vec::with_capacity(events),
            seqs_before,
            last_seqs: HashMap::new(),
            count_changed: BTreeSet::new(),
            stored_ids: HashMap::new(),
        }
    }

    /// Settles one event: a duplicate, dropped by its issue, or stored with the next seq.
    fn settle<S: BatchStatements + ?Sized>(
        &mut self,
        db: &S,
        p: &'e PreparedEvent,
        earlier: &EarlierCopies,
        issues: &mut BatchIssues<'e>,
    ) -> Result<(), StoreError> {
        let stored_copy = self.stored_ids.get(&event_key(p)).copied();
        if let Some(issue_id) = stored_copy.or_else(|| earlier.issue_of(p)) {
            self.result
                .outcomes
                .push(EventOutcome::Duplicate { issue_id });
            return Ok(());
        }
        let (issue_id, changed) = match issues.resolve(p, &mut self.count_changed)? {
            Resolved::Dropped { issue_id } => {
                self.result
                    .outcomes
                    .push(EventOutcome::Dropped { issue_id });
                return Ok(());
            }
            Resolved::Stored { issue_id, changed } => (issue_id, changed),
        };
        let seq = self.next_seq(p.project_id);
        self.stored_ids.insert(event_key(p), issue_id);
        let row = event_row(db, p, seq, issue_id)?;
        self.result
            .outcomes
            .push(EventOutcome::Stored { issue_id, seq });
        self.result.messages.extend(changed);
        let stored = Arc::clone(&row.stored);
        self.result
            .messages
            .push(DomainMessage::EventStored(stored));
        self.rows.push(row);
        Ok(())
    }

    /// The project's next seq, counted on from its last one.
    fn next_seq(&mut self, project: ProjectId) -> i64 {
        let seq = self
            .last_seqs
            .entry(project)
            .or_insert(self.seqs_before[&project]);
        *seq += 1;
        *seq
    }

    /// Writes the rows, the counts they add, the touched issues and the projects' last
    /// seqs in one call, unless the batch stored and touched nothing.
    async fn write<S: BatchStatements + ?Sized>(
        &self,
        db: &mut S,
        issues: &BatchIssues<'_>,
    ) -> Result<(), StoreError> {
        let tags = fitted_tags(&*db, &self.rows);
        let rollups = rollups(&self.rows, &tags);
        let dirty = issues.dirty();
        let seqs: Vec<(ProjectId, i64)> = self.last_seqs.iter().map(|(&p, &s)| (p, s)).collect();
        if self.rows.is_empty() && dirty.is_empty() {
            return Ok(());
        }
        let writes = BatchWrites {
            rows: &self.rows,
            rollups: &rollups,
            issues: &dirty,
            seqs: &seqs,
        };
        db.write(&writes).await
    }

    /// Announces each changed project's unresolved count, counted inside the transaction.
    async fn count_changes<S: BatchStatements + ?Sized>(
        &mut self,
        db: &mut S,
    ) -> Result<(), StoreError> {
        for &project_id in &self.count_changed {
            let count = db.count_unresolved(project_id).await?;
            (self.result.messages).push(DomainMessage::CountChanged { project_id, count });
        }
        Ok(())
    }
}

/// The row of an event stored with `seq` under `issue_id`, holding the event as published.
fn event_row<'e, S: BatchStatements + ?Sized>(
    db: &S,
    p: &'e PreparedEvent,
    seq: i64,
    issue_id: i64,
) -> Result<EventRow<'e>, StoreError> {
    let e = &p.event;
    let fit = |s: &str| db.fit_text(s).into_owned();
    let stored = StoredEvent {
        project_id: p.project_id,
        seq,
        issue_id,
        id: p.event_id.clone(),
        level: e.level,
        message: e.message.as_deref().map(fit),
        environment: fit(&e.environment),
        release: e.release.as_deref().map(fit),
        timestamp: e.timestamp.unwrap_or(p.received),
        received: p.received,
        title: fit(&p.title),
        culprit: fit(&p.culprit),
        tags: e.tags.clone(),
        detail: DetailJson::of(&e.detail).map_err(rows::corrupt)?,
    };
    Ok(EventRow {
        p,
        tags: serde_json::to_string(&e.tags).map_err(rows::corrupt)?,
        stored: Arc::new(stored),
    })
}

/// Each row's tags as stored (see `fit_text`): the rollups count them so, and retention
/// subtracts what it reads back.
fn fitted_tags<'e, S: BatchStatements + ?Sized>(
    db: &S,
    rows: &[EventRow<'e>],
) -> Vec<FittedTags<'e>> {
    rows.iter()
        .map(|r| {
            r.p.event
                .tags
                .iter()
                .map(|(k, v)| (db.fit_text(k), db.fit_text(v)))
                .collect()
        })
        .collect()
}

/// The counts the rows add: per tag value, per issue minute and per project minute.
fn rollups<'a>(rows: &'a [EventRow<'_>], tags: &'a [FittedTags<'_>]) -> Rollups<'a> {
    let mut rollups = Rollups::default();
    for (r, tags) in rows.iter().zip(tags) {
        rollups.add_parts(
            r.p.project_id,
            r.stored.issue_id,
            r.p.received,
            r.p.event.level.as_str(),
            tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
            &r.stored.environment,
            r.stored.release.as_deref(),
            1,
        );
    }
    rollups
}

/// Queues the alerts the batch's messages raise for the webhooks that want them.
async fn raise_alerts<S: BatchStatements + ?Sized>(
    db: &mut S,
    messages: &[DomainMessage],
) -> Result<(), StoreError> {
    let raised = crate::model::alert::raised(messages);
    if raised.is_empty() {
        return Ok(());
    }
    db.raise_alerts(&raised, Millis::now()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IssueStatus;
    use crate::model::event::{EventDetail, NewEvent};
    use futures_executor::block_on;

    /// A database holding projects 1 and 2 and no events yet; it records the statements it
    /// is asked to run.
    #[derive(Default)]
    struct Recording {
        calls: Vec<&'static str>,
    }

    impl BatchStatements for Recording {
        async fn project_seqs(
            &mut self,
            projects: &[ProjectId],
        ) -> Result<HashMap<ProjectId, i64>, StoreError> {
            self.calls.push("project_seqs");
            Ok(projects
                .iter()
                .filter(|&&p| p <= 2)
                .map(|&p| (p, 10))
                .collect())
        }
        async fn stored_event_ids(
            &mut self,
            _: &[(ProjectId, &str)],
        ) -> Result<StoredIds, StoreError> {
            self.calls.push("stored_event_ids");
            Ok(StoredIds::new())
        }
        async fn issues_by_fingerprint(
            &mut self,
            _: &[(ProjectId, &str)],
        ) -> Result<Vec<(String, Issue)>, StoreError> {
            self.calls.push("issues_by_fingerprint");
            Ok(Vec::new())
        }
        async fn add_fingerprints(
            &mut self,
            _: &[(ProjectId, &str, i64)],
        ) -> Result<(), StoreError> {
            self.calls.push("add_fingerprints");
            Ok(())
        }
        async fn insert_issues(
            &mut self,
            issues: &[NewIssue<'_>],
        ) -> Result<Vec<(String, Issue)>, StoreError> {
            self.calls.push("insert_issues");
            Ok(issues
                .iter()
                .zip(1..)
                .map(|(n, id)| created(n, id))
                .collect())
        }
        async fn write(&mut self, _: &BatchWrites<'_, '_>) -> Result<(), StoreError> {
            self.calls.push("write");
            Ok(())
        }
        async fn count_unresolved(&mut self, _: ProjectId) -> Result<i64, StoreError> {
            self.calls.push("count_unresolved");
            Ok(1)
        }
        async fn raise_alerts(&mut self, _: &[Raised], _: Millis) -> Result<(), StoreError> {
            self.calls.push("raise_alerts");
            Ok(())
        }
    }

    fn created(n: &NewIssue<'_>, id: i64) -> (String, Issue) {
        let issue = Issue {
            id,
            project_id: n.project_id,
            title: n.title.to_string(),
            culprit: n.culprit.to_string(),
            level: n.level,
            status: IssueStatus::Unresolved,
            event_count: 0,
            first_seen: n.received,
            last_seen: n.received,
            regressed_at: None,
        };
        (n.fingerprint.to_owned(), issue)
    }

    fn event(project_id: ProjectId, id: &str) -> PreparedEvent {
        PreparedEvent {
            project_id,
            event_id: id.to_owned(),
            id_from_client: true,
            fingerprint: "fp".into(),
            title: "Error".into(),
            culprit: "app.py".into(),
            received: Millis(1_000),
            event: NewEvent {
                event_id: Some(id.to_owned()),
                message: None,
                level: Level::Error,
                environment: "production".into(),
                release: None,
                timestamp: None,
                tags: Default::default(),
                detail: EventDetail::default(),
                raw: None,
            },
            raw_zstd: None,
        }
    }

    #[test]
    fn a_missing_project_is_named_and_nothing_is_written() {
        let mut db = Recording::default();
        let events = [event(1, "a"), event(7, "b")];
        let err = block_on(write_batch(&mut db, &events)).unwrap_err();
        assert!(matches!(err, StoreError::UnknownProject(7)), "{err:?}");
        assert_eq!(err.to_string(), "project 7 does not exist");
        let looked_up = ["project_seqs", "stored_event_ids", "issues_by_fingerprint"];
        assert_eq!(db.calls, looked_up);
    }

    #[test]
    fn a_batch_runs_its_steps_in_order() {
        let mut db = Recording::default();
        let events = [event(1, "a"), event(1, "a"), event(1, "b")];
        let result = block_on(write_batch(&mut db, &events)).unwrap();
        let expected = [
            EventOutcome::Stored {
                issue_id: 1,
                seq: 11,
            },
            EventOutcome::Duplicate { issue_id: 1 },
            EventOutcome::Stored {
                issue_id: 1,
                seq: 12,
            },
        ];
        assert_eq!(result.outcomes, expected);
        let steps = [
            "project_seqs",
            "stored_event_ids",
            "issues_by_fingerprint",
            "insert_issues",
            "write",
            "count_unresolved",
            "raise_alerts",
        ];
        assert_eq!(db.calls, steps);
        assert_eq!(result.messages.len(), 4, "{:?}", result.messages);
    }
}
