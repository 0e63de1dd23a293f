//! Grouping by stack and merging issues (SPEC §3), over HTTP as a client sees them: events
//! of one throw site are one issue whatever their values, an old database's issues keep
//! their events after the upgrade, and merged issues become one.

mod common;

use common::postgres::TestPostgres;
use common::receiver::{ALLOW_LOOPBACK, Receiver, allow_loopback};
use common::ws::{Ws, next_of};
use common::{Creds, TestServer};
use mesher::DatabaseUrl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Upper bound for a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(120);

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .expect("test took too long")
}

/// An exception thrown from `function` in `shop/cart.py`, through a library frame.
fn thrown(ty: &str, value: &str, function: &str, line: i64) -> Value {
    json!({
        "exception": {"type": ty, "value": value},
        "stacktrace": [
            {"filename": "flask/app.py", "module": "flask.app", "function": "dispatch", "lineno": 880, "in_app": false},
            {"filename": "shop/cart.py", "module": "shop.cart", "function": function, "lineno": line, "in_app": true}
        ]
    })
}

async fn issue_of(s: &TestServer, p: &Creds, event: &Value) -> i64 {
    let (status, v) = s.send_event(p, event).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    v["issue_id"].as_i64().expect("issue_id")
}

async fn issue(s: &TestServer, token: &str, id: i64) -> (StatusCode, Value) {
    s.get(&format!("/api/v1/issues/{id}"), token).await
}

async fn issues(s: &TestServer, p: &Creds) -> Vec<Value> {
    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/issues?limit=100", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["issues"].as_array().unwrap().clone()
}

async fn merge(s: &TestServer, token: &str, into: i64, body: &Value) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url(&format!("/api/v1/issues/{into}/merge")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.expect("JSON answer"))
}

/// A stream of the project, past its `subscribed` message.
async fn stream(s: &TestServer, p: &Creds) -> Ws {
    let url = s.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("stream");
    next_of(&mut ws, "subscribed").await;
    ws
}

#[tokio::test]
async fn one_throw_site_with_different_values_is_one_issue_and_other_frames_another() {
    bounded(async {
        let s = TestServer::start().await;
        let p = s.project("shop").await;
        let kiwi = issue_of(
            &s,
            &p,
            &thrown("CheckoutError", "unknown SKU 'kiwi'", "add", 12),
        )
        .await;
        let mango = issue_of(
            &s,
            &p,
            &thrown("CheckoutError", "unknown SKU 'mango'", "add", 12),
        )
        .await;
        assert_eq!(kiwi, mango, "a value is not the stack");
        // Line numbers move with every edit of the file: they do not split either.
        let moved = issue_of(
            &s,
            &p,
            &thrown("CheckoutError", "unknown SKU 'fig'", "add", 30),
        )
        .await;
        assert_eq!(kiwi, moved);
        let elsewhere = issue_of(
            &s,
            &p,
            &thrown("CheckoutError", "unknown SKU 'kiwi'", "remove", 12),
        )
        .await;
        assert_ne!(kiwi, elsewhere, "other in-app frames are another issue");
        let (_, v) = issue(&s, &p.token, kiwi).await;
        assert_eq!(v["issue"]["event_count"], 3);
        assert_eq!(v["issue"]["title"], "CheckoutError: unknown SKU 'kiwi'");
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_python_sdk_s_errors_from_one_line_are_one_issue_with_one_new_alert() {
    bounded(async {
        let s = TestServer::start_with(allow_loopback).await;
        let p = s.project("shop").await;
        let mut rx = Receiver::start().await;
        let allow = [ALLOW_LOOPBACK.parse().unwrap()];
        let new = [mesher::model::IssueAction::New];
        let json_format = mesher::model::webhook::WebhookFormat::Json;
        mesher::admin::add_webhook(&s.db, p.id, &rx.url, &new, json_format, None, &allow)
            .await
            .expect("webhook added");
        common::sdk::run_app(&common::sdk::python(), "checkout.py", &p.dsn).await;
        let list = issues(&s, &p).await;
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["event_count"], 2);
        // A sentinel issue after them: every alert raised before it arrives before it.
        let sentinel = issue_of(&s, &p, &json!({"message": "sentinel"})).await;
        let mut alerted = Vec::new();
        while !alerted.contains(&sentinel) {
            for a in rx.next().await.json()["alerts"].as_array().unwrap() {
                assert_eq!(a["action"], "new");
                alerted.push(a["issue"]["id"].as_i64().unwrap());
            }
        }
        assert_eq!(alerted, [list[0]["id"].as_i64().unwrap(), sentinel]);
        s.stop().await;
    })
    .await;
}

/// The fixture: a database an earlier build (grouping by frames and message) left, the
/// events it was sent, its project's credentials and the issue each event made.
fn fixture() -> (Value, Vec<u8>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let spec = std::fs::read(format!("{dir}/pre-stack-grouping.json")).expect("fixture");
    let gz = std::fs::read(format!("{dir}/pre-stack-grouping.db.gz")).expect("fixture db");
    let mut db = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut db)
        .expect("gunzip");
    (serde_json::from_slice(&spec).unwrap(), db)
}

/// A server on a copy of the fixture's database, and the fixture's project.
async fn upgraded(
    dir: &tempfile::TempDir,
    tune: fn(&mut mesher::ServeConfig),
) -> (TestServer, Creds, Value) {
    let (spec, db) = fixture();
    let path = dir.path().join("old.db");
    std::fs::write(&path, db).unwrap();
    let url = DatabaseUrl::Sqlite(format!("sqlite://{}", path.display()));
    let s = TestServer::start_on(Some(url), tune).await;
    let project = &spec["project"];
    let p = Creds {
        id: project["id"].as_i64().unwrap(),
        key: project["ingest_key"].as_str().unwrap().to_owned(),
        token: project["token"].as_str().unwrap().to_owned(),
        dsn: String::new(),
    };
    (s, p, spec)
}

#[tokio::test]
async fn an_old_database_s_issues_keep_receiving_their_events_after_the_upgrade() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (s, p, spec) = upgraded(&dir, allow_loopback).await;
        let mut rx = Receiver::start().await;
        let allow = [ALLOW_LOOPBACK.parse().unwrap()];
        let new = [mesher::model::IssueAction::New];
        let json_format = mesher::model::webhook::WebhookFormat::Json;
        mesher::admin::add_webhook(&s.db, p.id, &rx.url, &new, json_format, None, &allow)
            .await
            .expect("webhook added");
        let before = issues(&s, &p).await;
        let count_of = |list: &[Value], id: i64| {
            list.iter()
                .find(|i| i["id"] == id)
                .map(|i| i["event_count"].as_i64().unwrap())
        };
        let mut ws = stream(&s, &p).await;
        // Each kind of event the old build stored, again: each joins its old issue, whose
        // fingerprint under the new rule is now its own too (the second send finds it so).
        let names = [
            "kiwi", "payment", "library", "native", "bare", "message", "logged",
        ];
        for round in 0..2 {
            for name in names {
                let old = spec["issues"][name].as_i64().unwrap();
                let got = issue_of(&s, &p, &spec["events"][name]).await;
                assert_eq!(got, old, "{name} (round {round}) lands in its old issue");
            }
        }
        // 'mango' had its own issue under the earlier rule (its value was part of it); its
        // stack is kiwi's, and kiwi's issue took that stack's fingerprint first.
        let mango = issue_of(&s, &p, &spec["events"]["mango"]).await;
        assert_eq!(mango, spec["issues"]["kiwi"].as_i64().unwrap());
        let after = issues(&s, &p).await;
        assert_eq!(after.len(), before.len(), "no new issue");
        let kiwi = spec["issues"]["kiwi"].as_i64().unwrap();
        assert_eq!(
            count_of(&after, kiwi),
            count_of(&before, kiwi).map(|n| n + 3)
        );
        let payment = spec["issues"]["payment"].as_i64().unwrap();
        assert_eq!(
            count_of(&after, payment),
            count_of(&before, payment).map(|n| n + 2)
        );
        // No `new` on the stream, and the first alert is the sentinel's.
        let sentinel = issue_of(&s, &p, &json!({"message": "sentinel after the upgrade"})).await;
        let announced = next_of(&mut ws, "issue").await;
        assert_eq!(
            (&announced["action"], &announced["issue"]["id"]),
            (&json!("new"), &json!(sentinel))
        );
        let alerts = rx.next().await.json()["alerts"].clone();
        assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
        assert_eq!(alerts[0]["issue"]["id"], sentinel);
        s.stop().await;
    })
    .await;
}

/// The issue made for `body`'s first event, with `n` events.
async fn issue_with(s: &TestServer, p: &Creds, body: &Value, n: usize) -> i64 {
    let mut id = 0;
    for _ in 0..n {
        id = issue_of(s, p, body).await;
    }
    id
}

#[tokio::test]
async fn merged_issues_become_one_that_takes_their_events_counts_tags_and_fingerprints() {
    bounded(async {
        let s = TestServer::start().await;
        let p = s.project("shop").await;
        let a = issue_with(&s, &p, &json!({"message": "alpha", "tags": {"region": "eu"}}), 2).await;
        let b = issue_with(&s, &p, &json!({"message": "beta", "tags": {"region": "us"}}), 3).await;
        let c = issue_with(&s, &p, &json!({"message": "gamma", "tags": {"region": "eu"}}), 1).await;
        let mut ws = stream(&s, &p).await;
        let mut other = stream(&s, &p).await;
        let (status, v) = merge(&s, &p.token, a, &json!({"issues": [b, c]})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!((v["issue"]["id"].as_i64(), v["issue"]["event_count"].as_i64()), (Some(a), Some(6)));
        assert_eq!(v["merged"], json!([b, c]));
        for ws in [&mut ws, &mut other] {
            let m = next_of(ws, "issue").await;
            assert_eq!(m["action"], "merged");
            assert_eq!(m["merged"], json!([b, c]));
            assert_eq!(m["issue"]["event_count"], 6);
            assert_eq!(next_of(ws, "issue_count").await["count"], 1);
        }
        for gone in [b, c] {
            assert_eq!(issue(&s, &p.token, gone).await.0, StatusCode::NOT_FOUND);
        }
        // Later events of a folded issue's fingerprint land in the merged one.
        assert_eq!(issue_of(&s, &p, &json!({"message": "beta", "tags": {"region": "us"}})).await, a);
        let (_, v) = issue(&s, &p.token, a).await;
        assert_eq!(v["issue"]["event_count"], 7);
        let (_, events) = s.get(&format!("/api/v1/issues/{a}/events?limit=50"), &p.token).await;
        assert_eq!(events["events"].as_array().unwrap().len(), 7);
        let (_, tags) = s.get(&format!("/api/v1/issues/{a}/tags"), &p.token).await;
        let region = tags["tags"].as_array().unwrap().iter().find(|t| t["key"] == "region").cloned();
        assert_eq!(
            region,
            Some(json!({"key": "region", "total": 7, "values": [{"value": "us", "count": 4}, {"value": "eu", "count": 3}]}))
        );
        let (_, stats) = s.get(&format!("/api/v1/issues/{a}/stats?minutes=5"), &p.token).await;
        let total: i64 = stats["minutes"].as_array().unwrap().iter().map(|m| m["total"].as_i64().unwrap()).sum();
        assert_eq!(total, 7);
        assert_eq!(issues(&s, &p).await.len(), 1);
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_merge_is_refused_for_another_project_s_unknown_too_many_or_no_issues() {
    bounded(async {
        let s = TestServer::start().await;
        let p = s.project("shop").await;
        let q = s.project("blog").await;
        let a = issue_of(&s, &p, &json!({"message": "alpha"})).await;
        let b = issue_of(&s, &p, &json!({"message": "beta"})).await;
        let foreign = issue_of(&s, &q, &json!({"message": "gamma"})).await;
        let cases = [
            (
                json!({"issues": [b, foreign]}),
                StatusCode::BAD_REQUEST,
                "another project",
            ),
            (
                json!({"issues": [b, 999_999]}),
                StatusCode::NOT_FOUND,
                "999999 not found",
            ),
            (
                json!({"issues": [a]}),
                StatusCode::BAD_REQUEST,
                "into itself",
            ),
            (json!({"issues": []}), StatusCode::BAD_REQUEST, "empty"),
            (
                json!({"issues": (0..101).map(|i| b + 1000 + i).collect::<Vec<_>>()}),
                StatusCode::BAD_REQUEST,
                "at most 100",
            ),
            (
                json!({"issue": [b]}),
                StatusCode::BAD_REQUEST,
                "'issues' is required",
            ),
        ];
        for (body, want, says) in cases {
            let (status, v) = merge(&s, &p.token, a, &body).await;
            assert_eq!(status, want, "{body}: {v}");
            assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
        }
        assert_eq!(
            merge(&s, &p.token, 999_999, &json!({"issues": [a]}))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            merge(&s, &q.token, a, &json!({"issues": [b]})).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            merge(&s, "wrong", a, &json!({"issues": [b]})).await.0,
            StatusCode::UNAUTHORIZED
        );
        // Nothing changed.
        for (token, id) in [(&p.token, a), (&p.token, b), (&q.token, foreign)] {
            let (status, v) = issue(&s, token, id).await;
            assert_eq!(
                (status, v["issue"]["event_count"].as_i64()),
                (StatusCode::OK, Some(1))
            );
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_an_earlier_rule_s_issue_takes_its_events_and_merges() {
    let pg = tokio::task::spawn_blocking(TestPostgres::start_new)
        .await
        .expect("postgres starts");
    bounded(async {
        let url = DatabaseUrl::Postgres(pg.url());
        let s = TestServer::start_on(Some(url), |_| {}).await;
        let p = s.project("shop").await;
        // An issue as the earlier build made it: under kiwi's earlier-rule fingerprint (as
        // the fixture's database holds it).
        let (spec, db) = fixture();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.db"), db).unwrap();
        let old = rusqlite::Connection::open(dir.path().join("old.db")).unwrap();
        let kiwi_id = spec["issues"]["kiwi"].as_i64().unwrap();
        let fingerprint: String = old
            .query_row(
                "SELECT fingerprint FROM issues WHERE id = ?",
                [kiwi_id],
                |r| r.get(0),
            )
            .unwrap();
        let store = s.state().store().clone();
        let mut prepared = earlier_event(p.id, &fingerprint);
        prepared.title = "CheckoutError: unknown SKU 'kiwi'".into();
        let outcome = store.write_batch(vec![prepared]).await.expect("stored");
        let earlier = outcome.outcomes[0].issue_id();
        let kiwi = &spec["events"]["kiwi"];
        assert_eq!(issue_of(&s, &p, kiwi).await, earlier);
        assert_eq!(issue_of(&s, &p, &spec["events"]["mango"]).await, earlier);
        let other = issue_of(
            &s,
            &p,
            &json!({"message": "other", "tags": {"region": "us"}}),
        )
        .await;
        let (status, v) = merge(&s, &p.token, earlier, &json!({"issues": [other]})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["issue"]["event_count"], 4);
        assert_eq!(
            issue_of(&s, &p, &json!({"message": "other"})).await,
            earlier
        );
        // region: the earlier event's and kiwi's (eu), mango's and the folded one's (us).
        let (_, tags) = s
            .get(&format!("/api/v1/issues/{earlier}/tags"), &p.token)
            .await;
        let region = tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == "region")
            .cloned();
        assert_eq!(region.map(|r| r["total"].clone()), Some(json!(4)));
        assert_eq!(issue(&s, &p.token, other).await.0, StatusCode::NOT_FOUND);
        s.stop().await;
    })
    .await;
    tokio::task::spawn_blocking(move || drop(pg))
        .await
        .expect("postgres stops");
}

/// An event stored under `fingerprint` as given (the grouping already done).
fn earlier_event(project: i64, fingerprint: &str) -> mesher::store::PreparedEvent {
    let event = mesher::model::NewEvent::from_json(
        &json!({"message": "earlier", "tags": {"region": "eu"}}),
    )
    .expect("event");
    mesher::store::PreparedEvent {
        project_id: project,
        event_id: mesher::store::new_event_id(),
        id_from_client: false,
        fingerprint: fingerprint.to_owned(),
        title: String::new(),
        culprit: String::new(),
        received: mesher::model::Millis::now(),
        event,
        raw_zstd: None,
    }
}

#[tokio::test]
async fn a_member_merges_with_the_session_from_this_server_s_pages_only() {
    bounded(async {
        let s = TestServer::start().await;
        let p = s.project("shop").await;
        let q = s.project("blog").await;
        let password = "a long enough password".to_owned();
        mesher::people::create_user(&s.db, "ada@example.com", false, Some(password.clone()))
            .await
            .expect("user");
        mesher::people::change_member(&s.db, p.id, "ada@example.com", true)
            .await
            .expect("member");
        let (_, _, cookie) = s.sign_in("ada@example.com", &password).await;
        let cookie = cookie.expect("a session cookie");
        let a = issue_of(&s, &p, &json!({"message": "alpha"})).await;
        let b = issue_of(&s, &p, &json!({"message": "beta"})).await;
        let foreign = issue_of(&s, &q, &json!({"message": "gamma"})).await;
        let merge_by = |into: i64, origin: Option<&str>, folded: i64| {
            let req = s
                .http
                .post(s.url(&format!("/api/v1/issues/{into}/merge")))
                .header("cookie", &cookie)
                .json(&json!({"issues": [folded]}));
            let req = match origin {
                Some(o) => req.header("origin", o),
                None => req,
            };
            async move { req.send().await.expect("request").status() }
        };
        // Another site cannot act with the cookie; nothing changed.
        assert_eq!(merge_by(a, None, b).await, StatusCode::FORBIDDEN);
        assert_eq!(
            merge_by(a, Some("https://evil.example"), b).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(issue(&s, &p.token, b).await.0, StatusCode::OK);
        // Not a member of the other project.
        assert_eq!(
            merge_by(foreign, Some(&s.base), a).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(merge_by(a, Some(&s.base), b).await, StatusCode::OK);
        assert_eq!(issue(&s, &p.token, b).await.0, StatusCode::NOT_FOUND);
        s.stop().await;
    })
    .await;
}
