//! Paging through a project's issues past the 100 one answer holds: the `Link` header's
//! cursor, for each sort, with search and status terms, on SQLite and PostgreSQL.

mod common;

use common::postgres::TestPostgres;
use common::{Creds, TestServer};
use mesher::config::DatabaseUrl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

/// 150 issues (distinct fingerprints), half of them titled "checkout …", with 1 to 3
/// events each so that `event_count` has many ties. Their ids.
async fn given_150_issues(s: &TestServer, p: &Creds) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..150 {
        let title = if i % 2 == 0 {
            "checkout failed"
        } else {
            "login failed"
        };
        let event = json!({"message": format!("{title} {i}"), "fingerprint": [format!("f{i}")]});
        let (status, v) = s.send_event(p, &event).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        ids.push(v["issue_id"].as_i64().unwrap());
        if i % 3 > 0 {
            let more = vec![event; i % 3];
            let (status, v) = s.post("/api/v1/events/bulk", &p.key, &json!(more)).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        }
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 150);
    ids
}

/// The `cursor` and the URL of a `Link: <url>; rel="next"; results="true"; cursor="X"`.
fn next_link(r: &reqwest::Response) -> Option<(String, String)> {
    let link = r.headers().get("link")?.to_str().unwrap().to_owned();
    let next = link.split(',').find(|l| l.contains("rel=\"next\""))?;
    assert!(next.contains("results=\"true\""), "{link}");
    let url = next.trim().strip_prefix('<')?.split_once('>')?.0.to_owned();
    let cursor = next
        .split("cursor=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_owned();
    assert!(
        url.ends_with(&format!("cursor={}", cursor.replace(':', "%3A"))),
        "{link}"
    );
    Some((url, cursor))
}

/// Every page of `/issues?<query>`, following the `Link` header to its end.
async fn pages(s: &TestServer, p: &Creds, query: &str) -> Vec<Vec<Value>> {
    let mut url = s.url(&format!("/api/v1/projects/{}/issues?{query}", p.id));
    let mut out = Vec::new();
    loop {
        let r = s.http.get(&url).bearer_auth(&p.token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let next = next_link(&r);
        let v: Value = r.json().await.unwrap();
        out.push(v["issues"].as_array().unwrap().clone());
        match next {
            Some((next, _)) => url = s.url(&next),
            None => return out,
        }
        assert!(out.len() < 200, "paging does not end");
    }
}

/// The issue's value of `sort`'s key, comparable in the sort's order (RFC 3339 times in
/// UTC with milliseconds compare as text).
fn key(issue: &Value, sort: &str) -> (String, i64) {
    let value = match sort {
        "event_count" => format!("{:020}", issue["event_count"].as_i64().unwrap()),
        field => issue[field].as_str().unwrap().to_owned(),
    };
    (value, issue["id"].as_i64().unwrap())
}

/// Pages of 100 (then 7) give every issue once, in the sort's order.
async fn pages_in_order(s: &TestServer, p: &Creds, ids: &[i64]) {
    for sort in ["last_seen", "first_seen", "event_count"] {
        for limit in [100, 7] {
            let got = pages(s, p, &format!("sort={sort}&limit={limit}")).await;
            assert_eq!(got.len(), 150_usize.div_ceil(limit), "{sort} by {limit}");
            assert!(got.iter().rev().skip(1).all(|page| page.len() == limit));
            let all: Vec<&Value> = got.iter().flatten().collect();
            let mut unique: Vec<i64> = all.iter().map(|i| i["id"].as_i64().unwrap()).collect();
            unique.sort();
            unique.dedup();
            let mut expected = ids.to_vec();
            expected.sort();
            assert_eq!(unique, expected, "{sort} by {limit}: every issue once");
            assert_eq!(all.len(), 150, "{sort} by {limit}: no issue twice");
            for pair in all.windows(2) {
                assert!(
                    key(pair[0], sort) > key(pair[1], sort),
                    "{sort} by {limit}: {} before {}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }
}

/// `query=` and `status=` page too, and a page's cursor stays valid while issues change.
async fn pages_of_a_search(s: &TestServer, p: &Creds) {
    let got = pages(s, p, "query=checkout&limit=10&sort=event_count").await;
    let all: Vec<&Value> = got.iter().flatten().collect();
    assert_eq!(all.len(), 75);
    assert!(
        all.iter()
            .all(|i| i["title"].as_str().unwrap().starts_with("checkout"))
    );
    let first = all[0]["id"].as_i64().unwrap();
    assert_eq!(s.act(first, "resolve", &p.token).await.0, StatusCode::OK);
    let got = pages(s, p, "status=unresolved&query=checkout&limit=30").await;
    let ids: HashSet<i64> = got
        .iter()
        .flatten()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 74);
    assert!(!ids.contains(&first));
    let got = pages(s, p, "query=is:resolved&limit=30").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].len(), 1);
}

async fn malformed_cursors_are_400(s: &TestServer, p: &Creds) {
    let r = s
        .http
        .get(s.url(&format!("/api/v1/projects/{}/issues?limit=100", p.id)))
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap();
    let (_, cursor) = next_link(&r).expect("a next page");
    for (cursor, sort) in [
        ("nonsense", "last_seen"),
        ("last_seen:1:2:3", "last_seen"),
        ("last_seen:x:2", "last_seen"),
        ("last_seen:1:-2", "last_seen"),
        ("sideways:1:2", "last_seen"),
        (cursor.as_str(), "event_count"),
    ] {
        let (status, v) = s
            .get(
                &format!(
                    "/api/v1/projects/{}/issues?sort={sort}&cursor={}",
                    p.id,
                    cursor.replace(':', "%3A")
                ),
                &p.token,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cursor} {sort}: {v}");
        let error = v["error"].as_str().unwrap();
        assert!(
            error.contains("cursor") && error.contains(cursor),
            "{error}"
        );
    }
    // The last page has no next link; an empty cursor is no cursor.
    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/issues?cursor=", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

async fn check(s: &TestServer) {
    let p = s.project("paging").await;
    let ids = given_150_issues(s, &p).await;
    pages_in_order(s, &p, &ids).await;
    malformed_cursors_are_400(s, &p).await;
    pages_of_a_search(s, &p).await;
}

#[tokio::test]
async fn issues_page_past_100_on_sqlite() {
    let s = TestServer::start().await;
    check(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn issues_page_past_100_on_postgres() {
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
