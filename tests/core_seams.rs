//! The seams later layers build on: domain messages on the bus after each commit, and
//! the retention pass.

use mesher::bus::DomainMessage;
use mesher::model::{IssueAction, Millis, NewEvent};
use mesher::state::AppState;
use mesher::store::Store;
use mesher::{DatabaseUrl, ServeConfig, app, store};
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

async fn next(rx: &mut Receiver<DomainMessage>) -> DomainMessage {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a message in time")
        .expect("bus open")
}

/// A started server core (no HTTP) on a temporary SQLite file, with one project.
async fn setup() -> (tempfile::TempDir, Store, i64, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(format!("sqlite://{}", dir.path().join("m.db").display()));
    let store = store::open(&url).await.unwrap();
    let project = store.create_project("p").await.unwrap().project.id;
    let config = ServeConfig::new("127.0.0.1:0".parse().unwrap(), url);
    let state = app::start(&config, store.clone(), CancellationToken::new());
    (dir, store, project, state)
}

fn event(v: serde_json::Value) -> NewEvent {
    NewEvent::from_json(&v).unwrap()
}

#[tokio::test]
async fn committed_events_publish_typed_messages_in_order() {
    let (_dir, store, project, state) = setup().await;
    let mut rx = state.bus().subscribe(64);

    let accepted = state
        .ingestor()
        .ingest(
            project,
            vec![
                event(json!({"message": "a 1"})),
                event(json!({"message": "a 2"})),
            ],
        )
        .await
        .unwrap();
    let issue = accepted[0].issue_id;
    match next(&mut rx).await {
        DomainMessage::IssueChanged {
            action: IssueAction::New,
            issue: i,
            origin: None,
        } => assert_eq!(i.id, issue),
        other => panic!("expected a new issue first, got {other:?}"),
    }
    for seq in [1, 2] {
        match next(&mut rx).await {
            DomainMessage::EventStored(e) => {
                assert_eq!((e.seq, e.issue_id, e.project_id), (seq, issue, project));
            }
            other => panic!("expected event {seq}, got {other:?}"),
        }
    }
    assert!(matches!(
        next(&mut rx).await,
        DomainMessage::CountChanged { count: 1, .. }
    ));

    // A retry publishes nothing new; a resolved issue's next event is a regression.
    store
        .change_issue_status(issue, mesher::model::IssueCommand::Resolve)
        .await
        .unwrap();
    state
        .ingestor()
        .ingest(project, vec![event(json!({"message": "a 3"}))])
        .await
        .unwrap();
    match next(&mut rx).await {
        DomainMessage::IssueChanged {
            action, issue: i, ..
        } => {
            assert_eq!(action, IssueAction::Regressed);
            assert_eq!(i.event_count, 3);
        }
        other => panic!("expected a regression, got {other:?}"),
    }
    assert!(matches!(next(&mut rx).await, DomainMessage::EventStored(e) if e.seq == 3));
    assert!(matches!(
        next(&mut rx).await,
        DomainMessage::CountChanged { count: 1, .. }
    ));
}

#[tokio::test]
async fn retention_deletes_old_events_and_empty_issues_but_keeps_tombstones() {
    let (_dir, store, project, state) = setup().await;
    let ingest = async |m: &str| {
        state
            .ingestor()
            .ingest(project, vec![event(json!({"message": m}))])
            .await
            .unwrap()[0]
            .issue_id
    };
    let old = ingest("old").await;
    let discarded = ingest("noise").await;
    store
        .change_issue_status(discarded, mesher::model::IssueCommand::Discard)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = Millis::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = ingest("fresh").await;

    let mut rx = state.bus().subscribe(8);
    let result = store.purge_before(cutoff).await.unwrap();
    assert_eq!((result.events, result.issues), (2, 1));
    assert!(store.get_issue(old).await.unwrap().is_none());
    assert!(
        store.get_issue(discarded).await.unwrap().is_some(),
        "discarded issues stay as tombstones"
    );
    assert!(store.get_issue(fresh).await.unwrap().is_some());
    let left = store.events_since(project, 0, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].issue_id, fresh);
    assert!(matches!(
        result.messages.as_slice(),
        [DomainMessage::CountChanged { count: 1, .. }]
    ));
    // The tombstone still drops its fingerprint's events.
    assert_eq!(ingest("noise").await, discarded);
    assert_eq!(store.events_since(project, 0, 100).await.unwrap().len(), 1);

    // The task's pass publishes the new counts.
    mesher::retention::pass(&store, state.bus(), 1).await;
    assert!(
        rx.try_recv().is_err(),
        "nothing older than a day: no message"
    );
    drop(rx);
}

#[tokio::test]
async fn one_batch_with_many_events_of_one_issue_counts_and_regresses_once() {
    let (_dir, store, project, state) = setup().await;
    let first = state
        .ingestor()
        .ingest(project, vec![event(json!({"message": "disk 1 full"}))])
        .await
        .unwrap();
    let issue = first[0].issue_id;
    store
        .change_issue_status(issue, mesher::model::IssueCommand::Resolve)
        .await
        .unwrap();
    let mut rx = state.bus().subscribe(64);
    let batch: Vec<NewEvent> = (2..=6)
        .map(|i| event(json!({"message": format!("disk {i} full"), "level": "fatal"})))
        .collect();
    let accepted = state.ingestor().ingest(project, batch).await.unwrap();
    assert!(accepted.iter().all(|a| a.issue_id == issue));
    let mut regressions = 0;
    let mut seqs = Vec::new();
    for _ in 0..7 {
        match next(&mut rx).await {
            DomainMessage::IssueChanged {
                action: IssueAction::Regressed,
                issue: i,
                ..
            } => {
                regressions += 1;
                assert_eq!(
                    i.event_count, 2,
                    "the snapshot is taken at the regressing event"
                );
            }
            DomainMessage::EventStored(e) => seqs.push(e.seq),
            DomainMessage::CountChanged { count, .. } => assert_eq!(count, 1),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(regressions, 1);
    assert_eq!(seqs, vec![2, 3, 4, 5, 6]);
    let stored = store.get_issue(issue).await.unwrap().unwrap();
    assert_eq!(stored.event_count, 6);
    assert_eq!(stored.status, mesher::model::IssueStatus::Unresolved);
    assert_eq!(stored.level, mesher::model::Level::Fatal);
}
