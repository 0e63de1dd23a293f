//! The storage contract, written once against `Store` and run on SQLite (a
//! temporary file) and on PostgreSQL (a temporary cluster), one test per behaviour and
//! database; plus, for PostgreSQL, several "nodes" (stores) writing to one database at once.

mod common;

use common::postgres::TestPostgres;
use mesher::DatabaseUrl;
use mesher::bus::DomainMessage;
use mesher::model::{EventDetail, Exception, IssueAction, IssueCommand, IssueStatus, Level};
use mesher::model::{Millis, NewEvent, RawJson};
use mesher::store::{
    self, EventOutcome, EventPage, PreparedEvent, ProjectId, Store, StoreError, hash_token,
    new_event_id,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// Upper bound for one whole test.
const TEST_LIMIT: Duration = Duration::from_secs(120);

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .expect("test took too long")
}

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = DatabaseUrl::Sqlite(format!("sqlite://{}", dir.path().join("t.db").display()));
    (store::open(&url).await.expect("sqlite opens"), dir)
}

async fn start_postgres() -> TestPostgres {
    tokio::task::spawn_blocking(TestPostgres::start_new)
        .await
        .expect("postgres starts")
}

async fn pg_store(pg: &TestPostgres) -> Store {
    store::open(&DatabaseUrl::Postgres(pg.url()))
        .await
        .expect("postgres store opens")
}

/// Stops the cluster off the async threads (pg_ctl blocks).
async fn drop_postgres(pg: TestPostgres) {
    tokio::task::spawn_blocking(move || drop(pg))
        .await
        .expect("postgres stops");
}

/// An event as the ingest pipeline prepares it (grouping strings given literally).
fn event(project: ProjectId, client_id: Option<&str>, fingerprint: &str) -> PreparedEvent {
    event_at(project, client_id, fingerprint, Millis::now())
}

fn event_at(
    project: ProjectId,
    client_id: Option<&str>,
    fingerprint: &str,
    received: Millis,
) -> PreparedEvent {
    PreparedEvent {
        project_id: project,
        event_id: client_id.map(str::to_owned).unwrap_or_else(new_event_id),
        id_from_client: client_id.is_some(),
        fingerprint: fingerprint.to_owned(),
        title: format!("Error: {fingerprint}"),
        culprit: format!("app.py in {fingerprint}"),
        received,
        event: NewEvent {
            event_id: client_id.map(str::to_owned),
            message: None,
            level: Level::Error,
            environment: "production".into(),
            release: None,
            timestamp: None,
            tags: BTreeMap::new(),
            detail: EventDetail::default(),
            raw: None,
        },
        raw_zstd: None,
    }
}

fn stored_seq(o: &EventOutcome) -> i64 {
    match o {
        EventOutcome::Stored { seq, .. } => *seq,
        other => panic!("expected Stored, got {other:?}"),
    }
}

/// A compact view of a batch's messages, to check their kinds and order.
fn message_kinds(messages: &[DomainMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m {
            DomainMessage::EventStored(e) => format!("event {}", e.seq),
            DomainMessage::IssueChanged { action, issue, .. } => {
                format!("issue {} {}", action.as_str(), issue.id)
            }
            DomainMessage::IssuesMerged { issue, .. } => format!("merged into {}", issue.id),
            DomainMessage::CountChanged { count, .. } => format!("count {count}"),
        })
        .collect()
}

async fn all_events(s: &Store, project: ProjectId, page: u32) -> Vec<i64> {
    let mut seqs = Vec::new();
    let mut since = 0;
    loop {
        let events = s.events_since(project, since, page).await.unwrap();
        if events.is_empty() {
            return seqs;
        }
        assert!(events.len() <= page as usize);
        for e in &events {
            assert_eq!(e.project_id, project);
            seqs.push(e.seq);
        }
        since = events.last().unwrap().seq;
    }
}

// ---------------------------------------------------------------------------------------
// The contract: one test per behaviour and database
// ---------------------------------------------------------------------------------------

/// For each behaviour, two tests on a fresh store: `$sqlite` on a temporary SQLite file and
/// `$postgres` on a temporary PostgreSQL cluster. Each brings the store to the state the
/// behaviour starts from (`$given`), then checks the behaviour (`$then`).
macro_rules! contract {
    ($($(#[doc = $doc:expr])* $sqlite:ident, $postgres:ident: $given:ident, $then:ident;)*) => {$(
        $(#[doc = $doc])*
        #[tokio::test]
        async fn $sqlite() {
            bounded(async {
                let (s, _dir) = sqlite_store().await;
                $given(&s).await;
                $then(&s).await;
            })
            .await;
        }

        $(#[doc = $doc])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let pg = start_postgres().await;
            bounded(async {
                let s = pg_store(&pg).await;
                $given(&s).await;
                $then(&s).await;
            })
            .await;
            drop_postgres(pg).await;
        }
    )*};
}

contract! {
    /// Projects are listed in order and found by ingest key and token hash; a new token
    /// replaces the old one.
    sqlite_projects_are_found_by_key_and_token_and_tokens_rotate,
    postgres_projects_are_found_by_key_and_token_and_tokens_rotate:
        given_a_new_store, projects_and_keys;
    /// A batch takes gap-free seqs per project and groups its events into issues, with the
    /// messages in order.
    sqlite_batches_take_seqs_per_project_and_group_into_issues,
    postgres_batches_take_seqs_per_project_and_group_into_issues:
        given_two_projects, batches_seqs_and_grouping;
    /// A client event id already stored, in an earlier batch or the same one, is a duplicate
    /// and takes no seq.
    sqlite_duplicate_event_ids_are_stored_once,
    postgres_duplicate_event_ids_are_stored_once:
        given_grouped_events, duplicates;
    /// Resolve, regression, archive, discard and unresolve, with the unresolved count.
    sqlite_issue_states_follow_resolve_regress_archive_discard,
    postgres_issue_states_follow_resolve_regress_archive_discard:
        given_duplicates, issue_states;
    /// A stored event reads back as published; events page in seq order, an issue's newest
    /// first.
    sqlite_events_read_back_as_published_and_page_in_order,
    postgres_events_read_back_as_published_and_page_in_order:
        given_issue_history, reading_back;
    /// An event is found by its id with the bytes it was received as.
    sqlite_events_are_found_by_id_with_their_raw_bytes,
    postgres_events_are_found_by_id_with_their_raw_bytes:
        given_two_projects, whole_events;
    /// An issue's tag breakdown counts its events' tags, environments and releases.
    sqlite_issue_tags_count_each_value,
    postgres_issue_tags_count_each_value:
        given_two_projects, tag_breakdown;
    /// A retention pass deletes old events and issues left without events, keeps discarded
    /// issues and the counts in step.
    sqlite_retention_purges_old_events_and_empty_issues,
    postgres_retention_purges_old_events_and_empty_issues:
        given_grouped_events, purge;
    /// Issues are searched by terms and sorted; events are counted per minute.
    sqlite_issues_are_searched_and_events_counted_per_minute,
    postgres_issues_are_searched_and_events_counted_per_minute:
        given_grouped_events, searching;
    /// The store answers a ping.
    sqlite_a_store_answers_a_ping,
    postgres_a_store_answers_a_ping:
        given_a_new_store, ping;
}

// ---------------------------------------------------------------------------------------
// Given: the states the behaviours start from
// ---------------------------------------------------------------------------------------
//
// The behaviours tell one story on project 1 ("alpha") and 2 ("beta"): each expects the seqs
// and issues the ones before it left. These replay those writes, unchecked, so that each
// behaviour is a test of its own and a failure names the behaviour that broke.

async fn given_a_new_store(_: &Store) {}

/// What `projects_and_keys` leaves: projects 1 ("alpha") and 2 ("beta").
async fn given_two_projects(s: &Store) {
    s.create_project("alpha").await.unwrap();
    s.create_project("beta").await.unwrap();
}

/// What `batches_seqs_and_grouping` leaves: project 1 has seqs 1..=3 (issues A, A, B),
/// project 2 seqs 1..=2 (its own issue A).
async fn given_grouped_events(s: &Store) {
    given_two_projects(s).await;
    s.write_batch(vec![
        event(1, None, "A"),
        event(1, None, "A"),
        event(1, None, "B"),
    ])
    .await
    .unwrap();
    for _ in 0..2 {
        s.write_batch(vec![event(2, None, "A")]).await.unwrap();
    }
}

/// What `duplicates` leaves: project 1 has seqs 1..=5 (A 3 events, B 2), project 2 1..=3.
async fn given_duplicates(s: &Store) {
    given_grouped_events(s).await;
    s.write_batch(vec![event(1, Some(ID1), "A")]).await.unwrap();
    s.write_batch(vec![
        event(1, Some(ID1), "B"),
        event(1, Some(ID2), "B"),
        event(1, Some(ID2), "A"),
    ])
    .await
    .unwrap();
    s.write_batch(vec![event(2, Some(ID1), "A")]).await.unwrap();
}

/// What `issue_states` leaves: project 1 has seqs 1..=10 and four unresolved issues, A, B,
/// C (seqs 6, 8, 10) and D (seqs 7, 9; unresolved again after being discarded).
async fn given_issue_history(s: &Store) {
    given_duplicates(s).await;
    let r = s
        .write_batch(vec![event(1, None, "C"), event(1, None, "D")])
        .await
        .unwrap();
    let (c, d) = (r.outcomes[0].issue_id(), r.outcomes[1].issue_id());
    s.change_issue_status(c, IssueCommand::Resolve)
        .await
        .unwrap();
    s.write_batch(vec![event(1, None, "C")]).await.unwrap();
    s.change_issue_status(d, IssueCommand::Archive)
        .await
        .unwrap();
    s.write_batch(vec![event(1, None, "D")]).await.unwrap();
    s.change_issue_status(d, IssueCommand::Discard)
        .await
        .unwrap();
    s.write_batch(vec![event(1, None, "D"), event(1, None, "C")])
        .await
        .unwrap();
    s.change_issue_status(d, IssueCommand::Unresolve)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Then: the behaviours
// ---------------------------------------------------------------------------------------

async fn projects_and_keys(s: &Store) {
    assert!(s.list_projects().await.unwrap().is_empty());
    let a = s.create_project("alpha").await.unwrap();
    let b = s.create_project("beta").await.unwrap();
    assert!(a.project.id > 0 && b.project.id > a.project.id);
    assert_eq!(a.project.name, "alpha");
    assert_eq!(a.project.ingest_key.len(), 32);
    assert_eq!(a.token.len(), 64);
    assert_eq!(
        s.list_projects().await.unwrap(),
        vec![a.project.clone(), b.project.clone()]
    );

    assert_eq!(
        s.project_by_ingest_key(&a.project.ingest_key)
            .await
            .unwrap(),
        Some(a.project.id)
    );
    assert_eq!(
        s.project_by_ingest_key(&b.project.ingest_key)
            .await
            .unwrap(),
        Some(b.project.id)
    );
    assert_eq!(
        s.project_by_ingest_key("0".repeat(32).as_str())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.project_by_token_hash(&hash_token(&a.token))
            .await
            .unwrap(),
        Some(a.project.id)
    );
    assert_eq!(
        s.project_by_token_hash(&hash_token("nope")).await.unwrap(),
        None
    );
    assert!(s.project_exists(a.project.id).await.unwrap());
    assert!(!s.project_exists(9_999).await.unwrap());

    // A new token replaces the old one; the ingest key stays.
    let rotated = s.rotate_token(b.project.id).await.unwrap().expect("known");
    assert_eq!(rotated.project, b.project);
    assert_ne!(rotated.token, b.token);
    assert_eq!(
        s.project_by_token_hash(&hash_token(&b.token))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.project_by_token_hash(&hash_token(&rotated.token))
            .await
            .unwrap(),
        Some(b.project.id)
    );
    assert!(s.rotate_token(9_999).await.unwrap().is_none());
}

/// Project 1 ("alpha") gets seqs 1..=3: two events of issue A, one of issue B.
async fn batches_seqs_and_grouping(s: &Store) {
    let p = 1;
    assert_eq!(s.latest_seq(p).await.unwrap(), 0);
    assert_eq!(s.unresolved_count(p).await.unwrap(), 0);
    let batch = [
        event(p, None, "A"),
        event(p, None, "A"),
        event(p, None, "B"),
    ];
    let r = s.write_batch(batch.to_vec()).await.unwrap();
    assert_eq!(r.outcomes.len(), 3);
    assert_eq!(
        r.outcomes.iter().map(stored_seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let (a, b) = (r.outcomes[0].issue_id(), r.outcomes[2].issue_id());
    assert_eq!(r.outcomes[1].issue_id(), a);
    assert_ne!(a, b);
    assert_eq!(
        message_kinds(&r.messages),
        [
            format!("issue new {a}"),
            "event 1".into(),
            "event 2".into(),
            format!("issue new {b}"),
            "event 3".into(),
            "count 2".into(),
        ]
    );
    // The published events are the stored ones.
    for m in &r.messages {
        if let DomainMessage::EventStored(e) = m {
            assert_eq!(e.project_id, p);
            assert_eq!(e.title, batch[(e.seq - 1) as usize].title);
            assert_eq!(e.id, batch[(e.seq - 1) as usize].event_id);
        }
    }

    let issue_a = s.get_issue(a).await.unwrap().expect("issue A");
    assert_eq!(issue_a.project_id, p);
    assert_eq!(issue_a.event_count, 2);
    assert_eq!(issue_a.status, IssueStatus::Unresolved);
    assert_eq!(issue_a.title, "Error: A");
    assert_eq!(issue_a.culprit, "app.py in A");
    assert_eq!(s.get_issue(b).await.unwrap().unwrap().event_count, 1);
    assert_eq!(s.latest_seq(p).await.unwrap(), 3);
    assert_eq!(s.unresolved_count(p).await.unwrap(), 2);

    // Another project's seqs start at 1; an existing issue gets no "new" message.
    let r = s.write_batch(vec![event(2, None, "A")]).await.unwrap();
    assert_eq!(stored_seq(&r.outcomes[0]), 1);
    assert_ne!(r.outcomes[0].issue_id(), a, "issues belong to one project");
    let r = s.write_batch(vec![event(2, None, "A")]).await.unwrap();
    assert_eq!(stored_seq(&r.outcomes[0]), 2);
    assert_eq!(message_kinds(&r.messages), ["event 2"]);
    assert_eq!(s.latest_seq(2).await.unwrap(), 2);
    assert_eq!(s.latest_seq(1).await.unwrap(), 3);
    assert_eq!(s.latest_seq(9_999).await.unwrap(), 0);

    // An empty batch is fine and writes nothing.
    let r = s.write_batch(vec![]).await.unwrap();
    assert!(r.outcomes.is_empty() && r.messages.is_empty());
}

const ID1: &str = "11111111111111111111111111111111";
const ID2: &str = "22222222222222222222222222222222";

/// Project 1: seqs 4 and 5.
async fn duplicates(s: &Store) {
    let p = 1;
    let a = s.list_issues(p, None, 10).await.unwrap();
    let issue_a = a.iter().find(|i| i.title == "Error: A").unwrap().id;
    let issue_b = a.iter().find(|i| i.title == "Error: B").unwrap().id;

    let r = s.write_batch(vec![event(p, Some(ID1), "A")]).await.unwrap();
    assert_eq!(
        r.outcomes,
        [EventOutcome::Stored {
            issue_id: issue_a,
            seq: 4
        }]
    );

    // In a later batch, the same client id is a duplicate of the earlier event, whatever it
    // groups into now; within one batch, the second copy is one too. No seq is consumed.
    let r = s
        .write_batch(vec![
            event(p, Some(ID1), "B"),
            event(p, Some(ID2), "B"),
            event(p, Some(ID2), "A"),
        ])
        .await
        .unwrap();
    assert_eq!(
        r.outcomes,
        [
            EventOutcome::Duplicate { issue_id: issue_a },
            EventOutcome::Stored {
                issue_id: issue_b,
                seq: 5
            },
            EventOutcome::Duplicate { issue_id: issue_b },
        ]
    );
    assert_eq!(message_kinds(&r.messages), ["event 5"]);
    assert_eq!(s.latest_seq(p).await.unwrap(), 5);
    assert_eq!(s.get_issue(issue_a).await.unwrap().unwrap().event_count, 3);
    assert_eq!(s.get_issue(issue_b).await.unwrap().unwrap().event_count, 2);

    // The same id in another project is another event.
    let r = s.write_batch(vec![event(2, Some(ID1), "A")]).await.unwrap();
    assert_eq!(stored_seq(&r.outcomes[0]), 3);
}

/// Project 1: seqs 6 and 7 (C regresses, D archived); D discarded drops its events.
async fn issue_states(s: &Store) {
    let p = 1;
    let r = s
        .write_batch(vec![event(p, None, "C"), event(p, None, "D")])
        .await
        .unwrap();
    let (c, d) = (r.outcomes[0].issue_id(), r.outcomes[1].issue_id());
    assert_eq!(s.unresolved_count(p).await.unwrap(), 4);

    let change = s
        .change_issue_status(c, IssueCommand::Resolve)
        .await
        .unwrap()
        .expect("known issue");
    assert_eq!(change.action, Some(IssueAction::Resolved));
    assert_eq!(change.issue.status, IssueStatus::Resolved);
    assert_eq!(change.count, Some(3));
    // Already resolved: succeeds, changes nothing.
    let again = s
        .change_issue_status(c, IssueCommand::Resolve)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.action, None);
    assert_eq!(again.count, None);
    assert_eq!(again.issue.status, IssueStatus::Resolved);
    assert!(
        s.change_issue_status(9_999, IssueCommand::Resolve)
            .await
            .unwrap()
            .is_none()
    );

    // A new event reopens it: a regression.
    let r = s.write_batch(vec![event(p, None, "C")]).await.unwrap();
    assert_eq!(
        r.outcomes,
        [EventOutcome::Stored {
            issue_id: c,
            seq: 8
        }]
    );
    assert_eq!(
        message_kinds(&r.messages),
        [
            format!("issue regressed {c}"),
            "event 8".into(),
            "count 4".into()
        ]
    );
    let issue_c = s.get_issue(c).await.unwrap().unwrap();
    assert_eq!(issue_c.status, IssueStatus::Unresolved);
    assert_eq!(issue_c.event_count, 2);

    // Archived: events are stored, the issue stays archived.
    let change = s
        .change_issue_status(d, IssueCommand::Archive)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.action, Some(IssueAction::Archived));
    assert_eq!(change.count, Some(3));
    let r = s.write_batch(vec![event(p, None, "D")]).await.unwrap();
    assert_eq!(
        r.outcomes,
        [EventOutcome::Stored {
            issue_id: d,
            seq: 9
        }]
    );
    assert_eq!(message_kinds(&r.messages), ["event 9"]);
    assert_eq!(
        s.get_issue(d).await.unwrap().unwrap().status,
        IssueStatus::Archived
    );

    // Discarded: events are dropped, no seq consumed, the rest of the batch goes on.
    let change = s
        .change_issue_status(d, IssueCommand::Discard)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.action, Some(IssueAction::Discarded));
    assert_eq!(change.count, None, "archived to discarded: count unchanged");
    let r = s
        .write_batch(vec![event(p, None, "D"), event(p, None, "C")])
        .await
        .unwrap();
    assert_eq!(
        r.outcomes,
        [
            EventOutcome::Dropped { issue_id: d },
            EventOutcome::Stored {
                issue_id: c,
                seq: 10
            },
        ]
    );
    assert_eq!(s.get_issue(d).await.unwrap().unwrap().event_count, 2);
    assert_eq!(s.latest_seq(p).await.unwrap(), 10);
    assert_eq!(s.unresolved_count(p).await.unwrap(), 3);

    // Unresolve by hand.
    let change = s
        .change_issue_status(d, IssueCommand::Unresolve)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.action, Some(IssueAction::Unresolved));
    assert_eq!(change.count, Some(4));
    assert_eq!(
        s.list_issues(p, Some(IssueStatus::Unresolved), 100)
            .await
            .unwrap()
            .len(),
        4
    );
    assert!(
        s.list_issues(p, Some(IssueStatus::Resolved), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reading_back(s: &Store) {
    let p = 1;
    // A full event round-trips as published.
    let mut rich = event(p, Some("abcdefabcdefabcdefabcdefabcdef12"), "E");
    rich.event.message = Some("boom: ünïcödé ✓".into());
    rich.event.level = Level::Fatal;
    rich.event.environment = "staging".into();
    rich.event.release = Some("1.2.3".into());
    rich.event.timestamp = Some(Millis(1_700_000_000_123));
    rich.event.tags = BTreeMap::from([("browser".into(), "firefox".into())]);
    rich.event.detail = EventDetail {
        exception: Some(Exception {
            ty: Some("ValueError".into()),
            value: Some("bad".into()),
            module: None,
        }),
        extra: Some(RawJson::of(&json!({"n": 1, "nested": {"ok": true}}))),
        ..EventDetail::default()
    };
    let r = s.write_batch(vec![rich]).await.unwrap();
    assert_eq!(stored_seq(&r.outcomes[0]), 11);
    let published = r
        .messages
        .iter()
        .find_map(|m| match m {
            DomainMessage::EventStored(e) => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    let read = s.events_since(p, 10, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0], *published);
    assert_eq!(read[0].level, Level::Fatal);
    assert_eq!(read[0].timestamp, Millis(1_700_000_000_123));
    assert_eq!(read[0].tags["browser"], "firefox");
    assert_eq!(read[0].detail.to_map()["exception"]["type"], "ValueError");
    assert_eq!(read[0].detail.to_map()["extra"]["nested"]["ok"], true);
    let issue_e = s.get_issue(read[0].issue_id).await.unwrap().unwrap();
    assert_eq!(issue_e.level, Level::Fatal);

    // Paging: every seq once, in order, whatever the page size.
    for page in [1, 3, 100] {
        assert_eq!(all_events(s, p, page).await, (1..=11).collect::<Vec<_>>());
    }
    assert!(s.events_since(p, 11, 10).await.unwrap().is_empty());
    assert_eq!(s.latest_seq(p).await.unwrap(), 11);
    assert!(s.events_since(9_999, 0, 10).await.unwrap().is_empty());

    // An issue's events, newest first.
    let issues = s.list_issues(p, None, 100).await.unwrap();
    let c = issues.iter().find(|i| i.title == "Error: C").unwrap();
    let seqs: Vec<i64> = s
        .issue_events(c.id, EventPage::Newest, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [10, 8, 6]);
    let page = |p: EventPage, n: u32| {
        let s = &s;
        async move {
            s.issue_events(c.id, p, n)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(page(EventPage::Newest, 1).await, [10]);
    // Stepping: older from 10, newer from 6, nothing beyond either end.
    assert_eq!(page(EventPage::Before(10), 1).await, [8]);
    assert_eq!(page(EventPage::Before(10), 5).await, [8, 6]);
    assert_eq!(page(EventPage::After(6), 5).await, [8, 10]);
    assert_eq!(page(EventPage::After(8), 1).await, [10]);
    assert!(page(EventPage::Before(6), 5).await.is_empty());
    assert!(page(EventPage::After(10), 5).await.is_empty());
    // Most recently seen first; the limit applies.
    assert_eq!(issues.len(), 5);
    assert!(issues.windows(2).all(|w| w[0].last_seen >= w[1].last_seen));
    assert_eq!(s.list_issues(p, None, 2).await.unwrap().len(), 2);
}

async fn whole_events(s: &Store) {
    let raw = br#"{"message":"kept whole","contexts":{"os":{"name":"Linux"}},"x":[1,2]}"#;
    let mut e = event(1, Some("0000000000000000000000000000feed"), "W");
    e.event.raw = Some(bytes::Bytes::from_static(raw));
    e.raw_zstd = Some(zstd::bulk::compress(raw, 3).unwrap());
    let plain = event(1, Some("0000000000000000000000000000beef"), "W");
    let r = s.write_batch(vec![e, plain]).await.unwrap();
    let seq = stored_seq(&r.outcomes[0]);
    let (stored, got) = s
        .event_by_id(1, "0000000000000000000000000000feed")
        .await
        .unwrap()
        .expect("found by id");
    assert_eq!(
        (stored.seq, stored.id.as_str()),
        (seq, "0000000000000000000000000000feed")
    );
    assert_eq!(got.as_deref(), Some(&raw[..]), "the bytes as received");
    let (_, none) = s
        .event_by_id(1, "0000000000000000000000000000beef")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none, None, "an event stored without its raw form");
    assert!(
        s.event_by_id(2, "0000000000000000000000000000feed")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.event_by_id(1, "00000000000000000000000000000000")
            .await
            .unwrap()
            .is_none()
    );
}

async fn searching(s: &Store) {
    use mesher::model::IssueSort;
    use mesher::model::search::parse;
    // A project of its own: three issues with their own events.
    let created = s.create_project("search").await.unwrap();
    let p = created.project.id;
    let mk =
        |fp: &str, title: &str, env: &str, release: Option<&str>, tag: (&str, &str), at: i64| {
            let mut e = event_at(p, None, fp, Millis(at));
            e.title = title.into();
            e.culprit = format!("shop/{fp}.py in handle");
            e.event.environment = env.into();
            e.event.release = release.map(Into::into);
            e.event.tags = BTreeMap::from([(tag.0.into(), tag.1.into())]);
            e
        };
    let batch = vec![
        mk(
            "pay",
            "Payment declined: 50% off_code",
            "production",
            Some("shop 1.0"),
            ("browser", "Chrome 120"),
            1_000,
        ),
        mk(
            "cart",
            "Cart timeout",
            "staging",
            None,
            ("browser", "Firefox"),
            2_000,
        ),
        mk(
            "cart",
            "Cart timeout",
            "production",
            Some("shop 1.1"),
            ("region", "eu"),
            3_000,
        ),
        mk(
            "login",
            "Login failed",
            "production",
            None,
            ("browser", "Firefox"),
            4_000,
        ),
    ];
    s.write_batch(batch).await.unwrap();
    let titles = |terms: &str, sort: IssueSort| {
        let terms = parse(terms).unwrap();
        async move {
            s.search_issues(p, &terms, sort, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.title)
                .collect::<Vec<_>>()
        }
    };
    let last = IssueSort::LastSeen;
    assert_eq!(
        titles("", last).await,
        [
            "Login failed",
            "Cart timeout",
            "Payment declined: 50% off_code"
        ]
    );
    assert_eq!(
        titles("", IssueSort::FirstSeen).await,
        [
            "Login failed",
            "Cart timeout",
            "Payment declined: 50% off_code"
        ]
    );
    assert_eq!(titles("", IssueSort::EventCount).await[0], "Cart timeout");
    assert_eq!(titles("environment:staging", last).await, ["Cart timeout"]);
    assert_eq!(
        titles(r#"release:"shop 1.0""#, last).await,
        ["Payment declined: 50% off_code"]
    );
    assert_eq!(
        titles("browser:Firefox", last).await,
        ["Login failed", "Cart timeout"]
    );
    assert_eq!(
        titles("browser:Firefox region:eu", last).await,
        ["Cart timeout"],
        "AND"
    );
    assert_eq!(
        titles("TIMEOUT", last).await,
        ["Cart timeout"],
        "case-insensitive"
    );
    assert_eq!(
        titles("login.py", last).await,
        ["Login failed"],
        "the culprit too"
    );
    assert_eq!(
        titles("50%", last).await,
        ["Payment declined: 50% off_code"]
    );
    assert!(
        titles("5_%", last).await.is_empty(),
        "wildcards are literal"
    );
    assert_eq!(
        titles("is:unresolved level:error cart", last).await,
        ["Cart timeout"]
    );
    assert!(titles("is:resolved", last).await.is_empty());
    assert!(titles("level:fatal", last).await.is_empty());
    assert!(titles("browser:Safari", last).await.is_empty());

    // Events per minute of receipt: all four at 1–4 s after the epoch, in minute 0.
    let per_minute = s.events_per_minute(p, None, Millis(0)).await.unwrap();
    assert_eq!(per_minute, [(0, "error".to_owned(), 4)]);
    let cart = s
        .search_issues(p, &parse("cart").unwrap(), last, 1)
        .await
        .unwrap();
    let per_issue = s
        .events_per_minute(p, Some(cart[0].id), Millis(0))
        .await
        .unwrap();
    assert_eq!(per_issue, [(0, "error".to_owned(), 2)]);
    assert!(
        s.events_per_minute(p, None, Millis(60_000))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A tag breakdown as plain values: key, total, (value, count)s.
type Breakdown = (String, i64, Vec<(String, i64)>);

async fn tag_breakdown(s: &Store) {
    let mut batch = Vec::new();
    for i in 0..12 {
        let mut e = event(1, None, "TAGGED");
        e.event.tags = BTreeMap::from([("browser".into(), format!("b{}", i % 3))]);
        if i < 4 {
            e.event.tags.insert("region".into(), "eu".into());
        }
        e.event.environment = if i < 9 { "production" } else { "staging" }.into();
        e.event.release = (i % 2 == 0).then(|| "1.0".into());
        batch.push(e);
    }
    let r = s.write_batch(batch.to_vec()).await.unwrap();
    let issue = r.outcomes[0].issue_id();
    let tags = s.issue_tags(issue).await.unwrap();
    let summary: Vec<Breakdown> = tags
        .into_iter()
        .map(|t| {
            (
                t.key,
                t.total,
                t.values.into_iter().map(|v| (v.value, v.count)).collect(),
            )
        })
        .collect();
    let kv = |k: &str, t: i64, v: &[(&str, i64)]| {
        (
            k.to_owned(),
            t,
            v.iter()
                .map(|(a, b)| (a.to_string(), *b))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        summary,
        vec![
            kv("browser", 12, &[("b0", 4), ("b1", 4), ("b2", 4)]),
            kv("environment", 12, &[("production", 9), ("staging", 3)]),
            kv("release", 6, &[("1.0", 6)]),
            kv("region", 4, &[("eu", 4)]),
        ]
    );
    assert!(s.issue_tags(999_999).await.unwrap().is_empty());
}

async fn purge(s: &Store) {
    let p = s.create_project("retention").await.unwrap().project.id;
    let old = Millis(1_000);
    let cutoff = Millis(10_000);
    // More old events than one purge statement deletes, so that it loops.
    let mut seq = 0;
    for _ in 0..6 {
        let batch: Vec<PreparedEvent> = (0..1_001).map(|_| event_at(p, None, "old", old)).collect();
        let r = s.write_batch(batch.to_vec()).await.unwrap();
        seq = stored_seq(r.outcomes.last().unwrap());
    }
    assert_eq!(seq, 6_006);
    // A discarded issue is kept as a tombstone even when its events go.
    let r = s
        .write_batch(vec![event_at(p, None, "tomb", old)])
        .await
        .unwrap();
    let tomb = r.outcomes[0].issue_id();
    s.change_issue_status(tomb, IssueCommand::Discard)
        .await
        .unwrap();
    // An issue with old and new events keeps its new ones.
    let r = s
        .write_batch(vec![
            event_at(p, None, "mixed", old),
            event(p, None, "mixed"),
            event(p, None, "new"),
        ])
        .await
        .unwrap();
    let mixed = r.outcomes[0].issue_id();
    let old_issue = s
        .list_issues(p, None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.title == "Error: old")
        .unwrap()
        .id;
    assert_eq!(s.unresolved_count(p).await.unwrap(), 3);
    let before_other = s.latest_seq(1).await.unwrap();

    let purged = s.purge_before(cutoff).await.unwrap();
    assert_eq!(purged.events, 6_006 + 1 + 1);
    assert_eq!(
        purged.issues, 1,
        "only the old issue is left without events"
    );
    assert_eq!(message_kinds(&purged.messages), ["count 2"]);
    assert_eq!(purged.messages[0].project_id(), p);

    assert!(s.get_issue(old_issue).await.unwrap().is_none());
    assert_eq!(
        s.get_issue(tomb).await.unwrap().unwrap().status,
        IssueStatus::Discarded
    );
    assert_eq!(s.get_issue(mixed).await.unwrap().unwrap().event_count, 2);
    assert_eq!(all_events(s, p, 100).await, [6_009, 6_010]);
    // Seqs never go back; other projects' events are untouched.
    assert_eq!(s.latest_seq(p).await.unwrap(), 6_010);
    assert_eq!(all_events(s, 1, 100).await.len() as i64, before_other);
    assert_eq!(s.unresolved_count(p).await.unwrap(), 2);
    // The counts kept beside the events lose the deleted ones: the tag breakdown and the
    // stats count what is still stored.
    let env_total = |tags: Vec<store::TagBreakdown>| {
        tags.iter()
            .find(|t| t.key == "environment")
            .map_or(0, |t| t.total)
    };
    assert_eq!(env_total(s.issue_tags(mixed).await.unwrap()), 1);
    assert_eq!(env_total(s.issue_tags(old_issue).await.unwrap()), 0);
    let per_minute = |rows: Vec<(i64, String, i64)>| rows.iter().map(|r| r.2).sum::<i64>();
    assert_eq!(
        per_minute(
            s.events_per_minute(p, Some(mixed), Millis(0))
                .await
                .unwrap()
        ),
        1
    );
    assert_eq!(
        per_minute(s.events_per_minute(p, None, Millis(0)).await.unwrap()),
        2
    );

    // Nothing left to purge.
    let again = s.purge_before(cutoff).await.unwrap();
    assert_eq!((again.events, again.issues), (0, 0));
    assert!(again.messages.is_empty());
}

async fn ping(s: &Store) {
    s.ping().await.expect("ping");
}

// ---------------------------------------------------------------------------------------
// Several nodes, outages, upgrades
// ---------------------------------------------------------------------------------------

/// Two stores on one database stand for two server nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_share_seqs_issues_and_ids() {
    const TASKS: usize = 8;
    const BATCHES: usize = 50;
    const PER_BATCH: usize = 5;
    const TOTAL: i64 = (TASKS * BATCHES * PER_BATCH) as i64;

    let pg = start_postgres().await;
    bounded(async {
        let nodes = [pg_store(&pg).await, pg_store(&pg).await];
        let p = nodes[0].create_project("shared").await.unwrap().project.id;
        assert!(nodes[1].project_exists(p).await.unwrap());

        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let node = nodes[t % 2].clone();
            tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for b in 0..BATCHES {
                    let batch: Vec<PreparedEvent> = (0..PER_BATCH)
                        .map(|i| {
                            // Half client ids (checked for duplicates), half server ids.
                            let id = format!("{t:08x}{b:08x}{i:08x}{:08x}", 0);
                            event(p, (i % 2 == 0).then_some(id.as_str()), "same")
                        })
                        .collect();
                    outcomes.extend(
                        node.write_batch(batch.to_vec())
                            .await
                            .expect("batch")
                            .outcomes,
                    );
                }
                outcomes
            }));
        }
        let mut seqs = Vec::new();
        let mut issue_ids = std::collections::BTreeSet::new();
        for t in tasks {
            let outcomes = t.await.expect("writer task");
            assert_eq!(outcomes.len(), BATCHES * PER_BATCH);
            // Within one task (one connection at a time), seqs only grow.
            let own: Vec<i64> = outcomes.iter().map(stored_seq).collect();
            assert!(own.windows(2).all(|w| w[0] < w[1]));
            seqs.extend(own);
            issue_ids.extend(outcomes.iter().map(|o| o.issue_id()));
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=TOTAL).collect::<Vec<_>>(), "gap-free, no repeat");
        assert_eq!(issue_ids.len(), 1, "one fingerprint, one issue");
        let issue = *issue_ids.first().unwrap();
        for node in &nodes {
            assert_eq!(node.latest_seq(p).await.unwrap(), TOTAL);
            assert_eq!(
                node.get_issue(issue).await.unwrap().unwrap().event_count,
                TOTAL
            );
            assert_eq!(node.unresolved_count(p).await.unwrap(), 1);
        }
        assert_eq!(
            all_events(&nodes[1], p, 500).await,
            (1..=TOTAL).collect::<Vec<_>>()
        );

        // The same client id sent to both nodes at once is stored exactly once.
        for i in 0..20u32 {
            let id = format!("ff{i:030x}");
            let batch = [event(p, Some(&id), "race")];
            let (r0, r1) = tokio::join!(
                nodes[0].write_batch(batch.to_vec()),
                nodes[1].write_batch(batch.to_vec())
            );
            let mut outcomes = [r0.unwrap().outcomes[0], r1.unwrap().outcomes[0]];
            outcomes.sort_by_key(|o| matches!(o, EventOutcome::Duplicate { .. }));
            assert!(
                matches!(outcomes[0], EventOutcome::Stored { .. }),
                "{outcomes:?}"
            );
            assert_eq!(
                outcomes[1],
                EventOutcome::Duplicate {
                    issue_id: outcomes[0].issue_id()
                }
            );
        }
        assert_eq!(nodes[0].latest_seq(p).await.unwrap(), TOTAL + 20);

        // A resolve on one node is seen by the next batch on the other: a regression.
        let change = nodes[0]
            .change_issue_status(issue, IssueCommand::Resolve)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(change.count, Some(1));
        let r = nodes[1]
            .write_batch(vec![event(p, None, "same")])
            .await
            .unwrap();
        assert!(
            message_kinds(&r.messages).contains(&format!("issue regressed {issue}")),
            "{:?}",
            message_kinds(&r.messages)
        );

        // Retention passes on both nodes at once delete each event once.
        let old: Vec<PreparedEvent> = (0..3_000)
            .map(|_| event_at(p, None, "old", Millis(1)))
            .collect();
        nodes[0].write_batch(old.to_vec()).await.unwrap();
        let (a, b) = tokio::join!(
            nodes[0].purge_before(Millis(10)),
            nodes[1].purge_before(Millis(10))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.events + b.events, 3_000);
        assert_eq!(a.issues + b.issues, 1);
        assert!(
            all_events(&nodes[0], p, 1_000)
                .await
                .iter()
                .all(|&s| s <= TOTAL + 21)
        );
    })
    .await;
    drop_postgres(pg).await;
}

/// With the database down, calls fail within seconds (the server answers 503) instead of
/// hanging, and work again once it is back, on the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_fails_fast_and_recovers() {
    let mut pg = start_postgres().await;
    pg = bounded(async move {
        let s = pg_store(&pg).await;
        let p = s.create_project("p").await.unwrap().project.id;
        s.write_batch(vec![event(p, None, "A")]).await.unwrap();

        let mut pg = tokio::task::spawn_blocking(move || {
            pg.stop();
            pg
        })
        .await
        .unwrap();
        let started = Instant::now();
        let err = s.write_batch(vec![event(p, None, "A")]).await.unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let started = Instant::now();
        assert!(s.ping().await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        eprintln!("with the database down: {err}");

        pg = tokio::task::spawn_blocking(move || {
            pg.start();
            pg
        })
        .await
        .unwrap();
        s.ping().await.expect("reconnects");
        let r = s.write_batch(vec![event(p, None, "A")]).await.unwrap();
        assert_eq!(
            stored_seq(&r.outcomes[0]),
            2,
            "the failed batch took no seq"
        );
        pg
    })
    .await;
    drop_postgres(pg).await;
}

/// A database written before the counts were kept (migrations 1–3) gets them from its
/// stored events when this version opens it.
#[tokio::test]
async fn an_older_sqlite_database_gets_its_counts_on_upgrade() {
    bounded(async {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("migrations");
        std::fs::create_dir(&old).unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.as_str() < "0004" {
                std::fs::copy(&path, old.join(name)).unwrap();
            }
        }
        let file = dir.path().join("old.db");
        let pool = SqlitePoolOptions::new()
            .connect_with(SqliteConnectOptions::new().filename(&file).create_if_missing(true))
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO projects (id, name, ingest_key, token_hash, last_seq, created_at) \
             VALUES (7, 'old', 'k', 'h', 3, 0)",
            "INSERT INTO issues (id, project_id, fingerprint, title, culprit, level, status, \
             event_count, first_seen, last_seen) VALUES (5, 7, 'f', 'Error: f', '', 'error', \
             'unresolved', 3, 60000, 120000)",
            "INSERT INTO events (project_id, seq, event_id, issue_id, level, environment, release, \
             timestamp, received, message, title, culprit, tags, detail) VALUES \
             (7, 1, 'a', 5, 'error', 'production', '1.0', 60000, 60000, 'm', 'Error: f', '', '{\"browser\":\"Chrome\"}', '{}'), \
             (7, 2, 'b', 5, 'error', 'production', NULL, 60001, 60001, 'm', 'Error: f', '', '{\"browser\":\"Firefox\"}', '{}'), \
             (7, 3, 'c', 5, 'warning', 'staging', '1.0', 120000, 120000, 'm', 'Error: f', '', '{\"browser\":\"Chrome\"}', '{}')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let url = DatabaseUrl::Sqlite(format!("sqlite://{}", file.display()));
        let s = store::open(&url).await.expect("the old database opens");
        let tags = s.issue_tags(5).await.unwrap();
        let summary: Vec<Breakdown> = tags
            .iter()
            .map(|t| {
                (
                    t.key.clone(),
                    t.total,
                    t.values.iter().map(|v| (v.value.clone(), v.count)).collect(),
                )
            })
            .collect();
        let kv = |k: &str, total: i64, values: &[(&str, i64)]| {
            (
                k.to_owned(),
                total,
                values.iter().map(|(v, n)| (v.to_string(), *n)).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            summary,
            vec![
                kv("browser", 3, &[("Chrome", 2), ("Firefox", 1)]),
                kv("environment", 3, &[("production", 2), ("staging", 1)]),
                kv("release", 2, &[("1.0", 2)]),
            ]
        );
        let minutes = s.events_per_minute(7, None, Millis(0)).await.unwrap();
        assert_eq!(
            minutes,
            vec![
                (60_000, "error".to_owned(), 2),
                (120_000, "warning".to_owned(), 1)
            ]
        );
        assert_eq!(s.events_per_minute(7, Some(5), Millis(0)).await.unwrap(), minutes);
        // And it goes on counting from there.
        let mut e = event(7, None, "f");
        e.event.tags.insert("browser".into(), "Chrome".into());
        s.write_batch(vec![e]).await.unwrap();
        let tags = s.issue_tags(5).await.unwrap();
        assert_eq!(tags[0].values[0].count, 3);
    })
    .await;
}

/// The SQLite writer thread under continuous writes: a failed batch (an unknown project)
/// is rolled back and the next one commits; and with ~60 MiB written, the WAL stays near
/// its checkpoint bound instead of growing with the data (a checkpoint that never catches
/// up with the writer would let it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_writer_recovers_from_a_failed_batch_and_keeps_the_wal_bounded() {
    bounded(async {
        let (s, dir) = sqlite_store().await;
        let p = s.create_project("wal").await.unwrap().project.id;
        let err = s.write_batch(vec![event(p + 1000, None, "A")]).await;
        assert!(err.is_err(), "{err:?}");
        let r = s.write_batch(vec![event(p, None, "A")]).await.unwrap();
        assert_eq!(stored_seq(&r.outcomes[0]), 1);

        let wal = dir.path().join("t.db-wal");
        let mut largest = 0;
        let mut noise = 0x2545_f491_4f6c_dd1du64;
        for batch in 0..300 {
            let events = (0..100)
                .map(|i| {
                    let mut e = event(p, None, &format!("f{}", (batch * 100 + i) % 50));
                    // 2 KiB that does not compress, as an SDK's event body would be stored.
                    e.raw_zstd = Some(
                        (0..2048)
                            .map(|_| {
                                noise ^= noise << 13;
                                noise ^= noise >> 7;
                                noise ^= noise << 17;
                                noise as u8
                            })
                            .collect(),
                    );
                    e
                })
                .collect();
            s.write_batch(events).await.unwrap();
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        assert_eq!(s.latest_seq(p).await.unwrap(), 30_001);
        assert!(
            largest < 40 << 20,
            "the WAL grew to {} MiB for ~60 MiB written",
            largest >> 20
        );
    })
    .await;
}

/// A database made before migration 0006 (events WITHOUT ROWID) keeps its events, their
/// raw bytes and its seqs when this version opens it and rebuilds the table with a rowid.
#[tokio::test]
async fn an_older_sqlite_database_keeps_its_events_through_the_rowid_rebuild() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        let url = format!("sqlite://{}", path.display());
        {
            let options = url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            let mut old = sqlx::migrate!("migrations/sqlite");
            old.migrations = old
                .migrations
                .iter()
                .filter(|m| m.version < 6)
                .cloned()
                .collect::<Vec<_>>()
                .into();
            old.run(&pool).await.unwrap();
            let layout: String =
                sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'events'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert!(layout.contains("WITHOUT ROWID"), "{layout}");
            sqlx::query(
                "INSERT INTO projects (id, name, ingest_key, token_hash, last_seq, created_at) \
                 VALUES (1, 'old', 'key-1', 'hash-1', 2, 0)",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO issues (id, project_id, fingerprint, title, culprit, level, status, \
                 event_count, first_seen, last_seen) \
                 VALUES (1, 1, 'fp', 'Error: old', 'app.py', 'error', 'unresolved', 2, 1000, 2000)",
            )
            .execute(&pool)
            .await
            .unwrap();
            for (seq, id) in [(1, "a1"), (2, "a2")] {
                sqlx::query(
                    "INSERT INTO events (project_id, seq, event_id, issue_id, level, environment, \
                     release, timestamp, received, message, title, culprit, tags, detail, raw) \
                     VALUES (1, ?, ?, 1, 'error', 'production', NULL, 1000, 1000, 'boom', \
                     'Error: old', 'app.py', '{\"t\":\"v\"}', '{}', ?)",
                )
                .bind(seq)
                .bind(id)
                .bind(format!("{{\"event_id\":\"{id}\"}}").into_bytes())
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }

        let s = store::open(&DatabaseUrl::Sqlite(url.clone()))
            .await
            .expect("the old database opens and migrates");
        assert_eq!(all_events(&s, 1, 10).await, vec![1, 2]);
        let (kept, raw) = s.event_by_id(1, "a2").await.unwrap().expect("a2 kept");
        assert_eq!(kept.seq, 2);
        assert_eq!(kept.message.as_deref(), Some("boom"));
        assert_eq!(kept.tags.get("t").map(String::as_str), Some("v"));
        assert_eq!(raw.as_deref(), Some(&b"{\"event_id\":\"a2\"}"[..]));
        // Seqs go on from the project's last one; a repeated client id is still a duplicate.
        let r = s
            .write_batch(vec![event_at(1, None, "fp", Millis(3000))])
            .await
            .unwrap();
        assert_eq!(stored_seq(&r.outcomes[0]), 3);
        let r = s
            .write_batch(vec![event(1, Some("a1"), "fp")])
            .await
            .unwrap();
        assert!(
            matches!(r.outcomes[0], EventOutcome::Duplicate { .. }),
            "{:?}",
            r.outcomes[0]
        );
        assert_eq!(all_events(&s, 1, 10).await, vec![1, 2, 3]);
        let layout: String = {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'events'")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        assert!(!layout.contains("WITHOUT ROWID"), "{layout}");
    })
    .await;
}
