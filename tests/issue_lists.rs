//! What a new user met in the issue list (issue 25): the list's `total` is the unresolved
//! count the stream and `/stats` give; a regression marks the issue (`regressed_at`) until
//! its status is changed by hand; events the rate limit refused are counted per project for
//! the last hour. On SQLite and PostgreSQL.

mod common;

use common::postgres::TestPostgres;
use common::ws::next_of;
use common::{Creds, TestServer};
use mesher::config::DatabaseUrl;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `GET /api/v1/projects/<id>/issues?<query>`: the body.
async fn list(s: &TestServer, p: &Creds, query: &str) -> Value {
    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/issues?{query}", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {v}");
    v
}

async fn stats(s: &TestServer, p: &Creds) -> Value {
    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/stats?minutes=1", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// `n` issues of distinct fingerprints, titled `<prefix> <i>`; their ids.
async fn issues(s: &TestServer, p: &Creds, prefix: &str, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"message": format!("{prefix} {i}"), "fingerprint": [format!("{prefix}{i}")]}))
            .collect();
        let (status, v) = s.post("/api/v1/events/bulk", &p.key, &json!(events)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    }
    let mut url = format!("limit=100&query={prefix}");
    loop {
        let r = s
            .http
            .get(s.url(&format!("/api/v1/projects/{}/issues?{url}", p.id)))
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap();
        let cursor = r.headers().get("link").map(|l| {
            l.to_str()
                .unwrap()
                .split("cursor=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        });
        let v: Value = r.json().await.unwrap();
        ids.extend(
            v["issues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap()),
        );
        match cursor {
            Some(c) => url = format!("limit=100&query={prefix}&cursor={}", c.replace(':', "%3A")),
            None => break,
        }
    }
    assert_eq!(ids.len(), n);
    ids
}

/// Every page's `total` is the whole search's size, and for `is:unresolved` it is the
/// unresolved count of `/stats` and of the stream's last `issue_count`.
async fn total_agrees_with_issue_count(s: &TestServer) {
    let p = s.project("totals").await;
    let (mut ws, _) = tokio_tungstenite::connect_async(
        s.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token)),
    )
    .await
    .expect("stream connects");
    let ids = issues(s, &p, "boom", 130).await;
    let first = list(s, &p, "query=is:unresolved&limit=100").await;
    assert_eq!(first["issues"].as_array().unwrap().len(), 100);
    assert_eq!(
        first["total"], 130,
        "the total counts every page, not the rows"
    );
    assert_eq!(stats(s, &p).await["unresolved"], 130);
    assert_eq!(list(s, &p, "status=unresolved&limit=5").await["total"], 130);

    // Resolve 3, archive 2, discard 1: 124 unresolved everywhere.
    for (i, action) in [
        "resolve", "resolve", "resolve", "archive", "archive", "discard",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(s.act(ids[i], action, &p.token).await.0, StatusCode::OK);
    }
    let mut last_count = Value::Null;
    while last_count != json!(124) {
        last_count = next_of(&mut ws, "issue_count").await["count"].clone();
    }
    assert_eq!(list(s, &p, "query=is:unresolved").await["total"], 124);
    assert_eq!(
        list(s, &p, "").await["total"],
        130,
        "no terms: every status"
    );
    assert_eq!(list(s, &p, "query=is:resolved").await["total"], 3);
    assert_eq!(list(s, &p, "query=is:archived").await["total"], 2);
    assert_eq!(stats(s, &p).await["unresolved"], 124);
    // A search's total: `boom 1` is in the titles of boom 1, boom 10…19, boom 100…129.
    let v = list(s, &p, "query=%22boom%201%22&limit=2").await;
    assert_eq!(v["total"], 41, "{v}");
    assert_eq!(v["issues"].as_array().unwrap().len(), 2);
    // A later page carries the same total.
    let r = s
        .http
        .get(s.url(&format!("/api/v1/projects/{}/issues?limit=100", p.id)))
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap();
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    let next = link[1..link.find('>').unwrap()].to_owned();
    let (_, page2) = s.get(&next, &p.token).await;
    assert_eq!(page2["issues"].as_array().unwrap().len(), 30);
    assert_eq!(page2["total"], 130);
}

/// A new event on a resolved issue sets `regressed_at` (in the stream's `regressed` message
/// too); changing the status by hand clears it; an archived issue's event does not set it.
async fn regression_is_marked(s: &TestServer) {
    let p = s.project("regressions").await;
    let event = json!({"message": "flaky checkout", "fingerprint": ["flaky"]});
    let (_, v) = s.send_event(&p, &event).await;
    let id = v["issue_id"].as_i64().unwrap();
    let (_, v) = s.get(&format!("/api/v1/issues/{id}"), &p.token).await;
    assert_eq!(v["issue"]["regressed_at"], Value::Null, "{v}");
    assert_eq!(s.act(id, "resolve", &p.token).await.0, StatusCode::OK);

    let (mut ws, _) = tokio_tungstenite::connect_async(
        s.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token)),
    )
    .await
    .expect("stream connects");
    let before = mesher::model::Millis::now().to_rfc3339();
    let (status, _) = s.send_event(&p, &event).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let m = next_of(&mut ws, "issue").await;
    assert_eq!(m["action"], "regressed", "{m}");
    assert_eq!(m["issue"]["status"], "unresolved");
    let at = m["issue"]["regressed_at"]
        .as_str()
        .expect("regressed_at")
        .to_owned();
    assert!(at >= before, "{at} < {before}");

    let (_, v) = s.get(&format!("/api/v1/issues/{id}"), &p.token).await;
    assert_eq!(v["issue"]["regressed_at"], at.as_str(), "{v}");
    let listed = list(s, &p, "query=is:unresolved").await;
    assert_eq!(listed["issues"][0]["regressed_at"], at.as_str(), "{listed}");
    // More events keep the mark (and its time).
    s.send_event(&p, &event).await;
    let (_, v) = s.get(&format!("/api/v1/issues/{id}"), &p.token).await;
    assert_eq!(v["issue"]["regressed_at"], at.as_str());
    assert_eq!(v["issue"]["event_count"], 3);

    // Resolved again: no mark; archived, an event does not regress it.
    let (_, v) = s.act(id, "resolve", &p.token).await;
    assert_eq!(v["issue"]["regressed_at"], Value::Null, "{v}");
    assert_eq!(s.act(id, "archive", &p.token).await.0, StatusCode::OK);
    s.send_event(&p, &event).await;
    let (_, v) = s.get(&format!("/api/v1/issues/{id}"), &p.token).await;
    assert_eq!(v["issue"]["status"], "archived");
    assert_eq!(v["issue"]["regressed_at"], Value::Null);
    // Reopened by hand: not a regression.
    let (_, v) = s.act(id, "unresolve", &p.token).await;
    assert_eq!(v["issue"]["regressed_at"], Value::Null);
}

async fn check(s: &TestServer) {
    total_agrees_with_issue_count(s).await;
    regression_is_marked(s).await;
}

#[tokio::test]
async fn totals_and_regressions_on_sqlite() {
    let s = TestServer::start().await;
    check(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn totals_and_regressions_on_postgres() {
    let pg = tokio::task::spawn_blocking(TestPostgres::start_new)
        .await
        .expect("postgres starts");
    let s = TestServer::start_on(Some(DatabaseUrl::Postgres(pg.url())), |_| {}).await;
    check(&s).await;
    s.stop().await;
    tokio::task::spawn_blocking(move || drop(pg))
        .await
        .expect("postgres stops");
}

/// With `--rate-limit 5`, the events refused with 429 are counted for their project (a
/// refused bulk request counts its events), shown by `/stats` with the limit.
#[tokio::test]
async fn rate_limited_events_are_counted_per_project() {
    let s = TestServer::start_with(|c| c.rate_limit = 5).await;
    let p = s.project("limited").await;
    let other = s.project("calm").await;
    let fresh = stats(&s, &p).await;
    assert_eq!(fresh["rate_limited_last_hour"], 0, "{fresh}");
    assert_eq!(fresh["rate_limit"], 5);
    let mut refused = 0;
    for i in 0..8 {
        let (status, _) = s
            .send_event(&p, &json!({"message": format!("burst {i}")}))
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        } else {
            assert_eq!(status, StatusCode::ACCEPTED);
        }
    }
    assert!(refused >= 3, "{refused} refused of 8 with a limit of 5");
    let bulk = json!([{"message": "a"}, {"message": "b"}, {"message": "c"}]);
    let (status, _) = s.post("/api/v1/events/bulk", &p.key, &bulk).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let v = stats(&s, &p).await;
    assert_eq!(v["rate_limited_last_hour"], refused + 3, "{v}");
    assert_eq!(v["unresolved"], 1, "the accepted events are one issue");
    assert_eq!(stats(&s, &other).await["rate_limited_last_hour"], 0);
    s.stop().await;
}
