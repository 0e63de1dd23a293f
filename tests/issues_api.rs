//! SPEC §3 against a real server: grouping end to end, regression, discard, the read API
//! and its 401/403/404s.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn grouping_end_to_end() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let mut issue_of = Vec::new();
    for body in [
        json!({"message": "timeout after 30s"}),
        json!({"message": "Timeout after 31s"}),
        json!({"message": "user 6f9619ff-8b86-d011-b42d-00c04fc964ff not found"}),
        json!({"message": "user 123e4567-e89b-12d3-a456-426614174000 not found"}),
        json!({"exception": {"type": "KeyError", "value": "'id' at 0x7f3a"}}),
        json!({"exception": {"type": "KeyError", "value": "'id' at 0x9b1c"}}),
        json!({"exception": {"type": "ValueError", "value": "'id' at 0x9b1c"}}),
        json!({"message": "any text", "fingerprint": ["checkout"]}),
        json!({"message": "other text", "fingerprint": "checkout"}),
        json!({"message": "x", "stacktrace": [{"filename": "a.py", "function": "f", "lineno": 3, "in_app": true}]}),
        json!({"message": "x", "stacktrace": [{"filename": "a.py", "function": "f", "lineno": 99, "in_app": true}]}),
    ] {
        let (status, v) = s.send_event(&p, &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        issue_of.push(v["issue_id"].as_i64().unwrap());
    }
    let same = |a: usize, b: usize| issue_of[a] == issue_of[b];
    assert!(same(0, 1) && same(2, 3) && same(4, 5) && same(7, 8) && same(9, 10));
    assert!(!same(0, 2) && !same(5, 6) && !same(1, 9));
    let (status, v) = s
        .get(&format!("/api/v1/projects/{}/issues", p.id), &p.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let issues = v["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 6);
    let timeout = issues.iter().find(|i| i["id"] == issue_of[0]).unwrap();
    assert_eq!(timeout["title"], "timeout after 30s");
    assert_eq!(timeout["event_count"], 2);
    assert_eq!(timeout["status"], "unresolved");
    assert_eq!(timeout["project_id"], p.id);
    let key_error = issues.iter().find(|i| i["id"] == issue_of[4]).unwrap();
    assert_eq!(key_error["title"], "KeyError: 'id' at 0x7f3a");
    // Most recently seen first.
    assert_eq!(issues[0]["id"], issue_of[10]);
    s.stop().await;
}

#[tokio::test]
async fn issue_state_machine_regression_and_discard() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let (_, v) = s
        .send_event(&p, &json!({"message": "db down", "level": "warning"}))
        .await;
    let issue = v["issue_id"].as_i64().unwrap();

    let (status, v) = s.act(issue, "resolve", &p.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["issue"]["status"], "resolved");
    // A new event reopens it.
    let (_, v) = s
        .send_event(&p, &json!({"message": "db down", "level": "fatal"}))
        .await;
    assert_eq!(v["issue_id"], issue);
    let (_, v) = s.get(&format!("/api/v1/issues/{issue}"), &p.token).await;
    assert_eq!(v["issue"]["status"], "unresolved");
    assert_eq!(v["issue"]["event_count"], 2);
    assert_eq!(v["issue"]["level"], "fatal");

    // Archived issues take events and stay archived.
    assert_eq!(
        s.act(issue, "archive", &p.token).await.1["issue"]["status"],
        "archived"
    );
    s.send_event(&p, &json!({"message": "db down"})).await;
    let (_, v) = s.get(&format!("/api/v1/issues/{issue}"), &p.token).await;
    assert_eq!(
        (
            v["issue"]["status"].clone(),
            v["issue"]["event_count"].clone()
        ),
        (json!("archived"), json!(3))
    );

    // Discarded: accepted and dropped.
    assert_eq!(
        s.act(issue, "discard", &p.token).await.1["issue"]["status"],
        "discarded"
    );
    let (status, v) = s.send_event(&p, &json!({"message": "db down"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(v["issue_id"], issue);
    assert_eq!(
        s.all_events(&p).await.len(),
        3,
        "the discarded issue's event was dropped"
    );
    let (_, v) = s.get(&format!("/api/v1/issues/{issue}"), &p.token).await;
    assert_eq!(v["issue"]["event_count"], 3);

    assert_eq!(
        s.act(issue, "unresolve", &p.token).await.1["issue"]["status"],
        "unresolved"
    );
    s.send_event(&p, &json!({"message": "db down"})).await;
    assert_eq!(s.all_events(&p).await.len(), 4);
    // Repeating a state change is harmless.
    assert_eq!(s.act(issue, "unresolve", &p.token).await.0, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn lists_filter_limit_and_order() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let mut issues = Vec::new();
    for i in 0..5 {
        let (_, v) = s
            .send_event(
                &p,
                &json!({"message": format!("issue {}", ["a", "b", "c", "d", "e"][i])}),
            )
            .await;
        issues.push(v["issue_id"].as_i64().unwrap());
    }
    for _ in 0..3 {
        s.send_event(&p, &json!({"message": "issue a"})).await;
    }
    s.act(issues[1], "resolve", &p.token).await;
    s.act(issues[2], "archive", &p.token).await;
    let list = async |q: &str| -> Vec<i64> {
        let (status, v) = s
            .get(&format!("/api/v1/projects/{}/issues{q}", p.id), &p.token)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        list("?status=unresolved").await,
        vec![issues[0], issues[4], issues[3]]
    );
    assert_eq!(list("?status=resolved").await, vec![issues[1]]);
    assert_eq!(list("?status=archived&limit=50").await, vec![issues[2]]);
    assert_eq!(list("").await.len(), 5);
    assert_eq!(list("?limit=2").await, vec![issues[0], issues[4]]);

    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/issues?status=open", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["error"],
        "unknown status 'open': expected one of unresolved, resolved, archived, discarded"
    );
    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/issues?limit=0", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["error"],
        "query parameter 'limit' must be a whole number from 1 to 100, got '0'"
    );

    // An issue's events, newest first.
    let (_, v) = s
        .get(
            &format!("/api/v1/issues/{}/events?limit=2", issues[0]),
            &p.token,
        )
        .await;
    let seqs: Vec<i64> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![8, 7]);
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["issue_id"] == issues[0])
    );
    // Stepping through an issue's events by seq: older ones newest first, newer ones
    // oldest first.
    let seqs_of = |v: &Value| -> Vec<i64> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    let issue_path = format!("/api/v1/issues/{}/events", issues[0]);
    let (_, v) = s
        .get(&format!("{issue_path}?before=8&limit=1"), &p.token)
        .await;
    assert_eq!(seqs_of(&v), vec![7]);
    let (_, all) = s.get(&issue_path, &p.token).await;
    let oldest = *seqs_of(&all).last().unwrap();
    let (_, v) = s
        .get(&format!("{issue_path}?after={oldest}&limit=2"), &p.token)
        .await;
    let mut want: Vec<i64> = seqs_of(&all).into_iter().rev().skip(1).take(2).collect();
    want.sort();
    assert_eq!(seqs_of(&v), want);
    let (_, v) = s.get(&format!("{issue_path}?after=8"), &p.token).await;
    assert_eq!(seqs_of(&v), Vec::<i64>::new());
    for (q, want) in [
        ("before=1&after=2", "give 'before' or 'after', not both"),
        (
            "before=x",
            "query parameter 'before' must be a whole number from 0 to 9223372036854775807, got 'x'",
        ),
    ] {
        let (status, v) = s.get(&format!("{issue_path}?{q}"), &p.token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["error"], want);
    }

    // A project's events after a seq, in order.
    let (_, v) = s
        .get(
            &format!("/api/v1/projects/{}/events?since=5&limit=2", p.id),
            &p.token,
        )
        .await;
    let seqs: Vec<i64> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![6, 7]);
    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/events?since=-1", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    s.stop().await;
}

#[tokio::test]
async fn token_errors_401_403_404() {
    let s = TestServer::start().await;
    let a = s.project("a").await;
    let b = s.project("b").await;
    let (_, v) = s.send_event(&a, &json!({"message": "mine"})).await;
    let issue = v["issue_id"].as_i64().unwrap();

    let paths = [
        format!("/api/v1/projects/{}/issues", a.id),
        format!("/api/v1/projects/{}/events", a.id),
        format!("/api/v1/issues/{issue}"),
        format!("/api/v1/issues/{issue}/events"),
    ];
    for path in &paths {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("missing project token")
        );
        let (status, v) = s.get(path, "wrong").await;
        assert_eq!(
            (status, v["error"].clone()),
            (StatusCode::UNAUTHORIZED, json!("invalid project token")),
            "{path}"
        );
        let (status, _) = s.get(path, &b.token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        // The ingest key does not read.
        assert_eq!(
            s.get(path, &a.key).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        // ?token= works as well as the header.
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = s
            .http
            .get(s.url(&format!("{path}{sep}token={}", a.token)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let (status, v) = s.act(issue, "resolve", &b.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        v["error"],
        format!("this token does not belong to project {}", a.id)
    );
    let (status, v) = s.act(999_999, "resolve", &a.token).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::NOT_FOUND, json!("issue 999999 not found"))
    );
    let (status, v) = s.get("/api/v1/issues/999999", &a.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = s.act(issue, "explode", &a.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, _) = s.get("/api/v1/issues/abc", &a.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, v) = s.get(&format!("/api/v1/issues/{issue}"), &a.token).await;
    assert_eq!(
        v["issue"]["status"], "unresolved",
        "refused changes changed nothing"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_tag_breakdown_of_an_issue() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let other = s.project("other").await;
    let mut issue = 0;
    for (browser, env) in [
        ("Chrome 120", "production"),
        ("Chrome 120", "staging"),
        ("Firefox 121", "production"),
    ] {
        let (status, v) = s
            .send_event(
                &p,
                &json!({"message": "checkout failed", "environment": env, "release": "shop@1.0",
                        "tags": {"browser": browser}}),
            )
            .await;
        assert_eq!(status, 202, "{v}");
        issue = v["issue_id"].as_i64().unwrap();
    }
    let (status, v) = s
        .get(&format!("/api/v1/issues/{issue}/tags"), &p.token)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"tags": [
            {"key": "browser", "total": 3, "values": [{"value": "Chrome 120", "count": 2}, {"value": "Firefox 121", "count": 1}]},
            {"key": "environment", "total": 3, "values": [{"value": "production", "count": 2}, {"value": "staging", "count": 1}]},
            {"key": "release", "total": 3, "values": [{"value": "shop@1.0", "count": 3}]}
        ]})
    );
    assert_eq!(
        s.get(&format!("/api/v1/issues/{issue}/tags"), &other.token)
            .await
            .0,
        403
    );
    assert_eq!(s.get("/api/v1/issues/424242/tags", &p.token).await.0, 404);
    s.stop().await;
}

#[tokio::test]
async fn search_and_sort_over_http_with_precise_400s() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    for (msg, env, browser) in [
        ("checkout failed", "production", "Chrome 120"),
        ("login timeout", "staging", "Firefox"),
    ] {
        let (status, _) = s
            .send_event(
                &p,
                &json!({"message": msg, "environment": env, "tags": {"browser": browser}}),
            )
            .await;
        assert_eq!(status, 202);
    }
    let list = |q: &str| {
        let path = format!("/api/v1/projects/{}/issues?{q}", p.id);
        let token = p.token.clone();
        let s = &s;
        async move { s.get(&path, &token).await }
    };
    let titles = |v: &Value| -> Vec<String> {
        v["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, v) = list("query=browser%3A%22Chrome+120%22+is%3Aunresolved").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(titles(&v), ["checkout failed"]);
    let (_, v) = list("query=environment:staging").await;
    assert_eq!(titles(&v), ["login timeout"]);
    let (_, v) = list("sort=first_seen").await;
    assert_eq!(titles(&v), ["login timeout", "checkout failed"]);
    for (q, error) in [
        (
            "query=is:sleeping",
            "search term 'is:sleeping': unknown status 'sleeping': expected one of unresolved, resolved, archived, discarded",
        ),
        ("query=browser:", "search term 'browser:' has no value"),
        ("query=%22open", "unclosed quote in the query at '\"open'"),
        (
            "sort=priority",
            "unknown sort 'priority': expected last_seen, first_seen or event_count",
        ),
        (
            "limit=101",
            "query parameter 'limit' must be a whole number from 1 to 100, got '101'",
        ),
    ] {
        let (status, v) = list(q).await;
        assert_eq!(status, 400, "{q}");
        assert_eq!(v["error"], error, "{q}");
    }
    assert!(
        list("query=level:loud").await.1["error"]
            .as_str()
            .unwrap()
            .starts_with("search term 'level:loud': unknown level")
    );
    s.stop().await;
}

#[tokio::test]
async fn stats_count_what_the_project_got_per_minute() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let mut issue = 0;
    for (msg, level) in [
        ("db down", "error"),
        ("db down", "error"),
        ("slow query", "warning"),
    ] {
        let (status, v) = s
            .send_event(&p, &json!({"message": msg, "level": level}))
            .await;
        assert_eq!(status, 202);
        if msg == "db down" {
            issue = v["issue_id"].as_i64().unwrap();
        }
    }
    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/stats?minutes=5", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["unresolved"], 2);
    let minutes = v["minutes"].as_array().unwrap();
    assert_eq!(
        minutes.len(),
        5,
        "every minute of the window, empty ones too"
    );
    let starts: Vec<i64> = minutes
        .iter()
        .map(|m| m["start"].as_i64().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] == 60_000),
        "{starts:?}"
    );
    let sum = |key: &str| -> i64 {
        minutes
            .iter()
            .map(|m| {
                if key == "total" {
                    m["total"].as_i64().unwrap()
                } else {
                    m["levels"][key].as_i64().unwrap_or(0)
                }
            })
            .sum()
    };
    assert_eq!((sum("total"), sum("error"), sum("warning")), (3, 2, 1));
    let (status, v) = s
        .get(&format!("/api/v1/issues/{issue}/stats?minutes=2"), &p.token)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["event_count"], 2);
    let per_issue: i64 = v["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["total"].as_i64().unwrap())
        .sum();
    assert_eq!(per_issue, 2);
    let (status, v) = s
        .get(
            &format!("/api/v1/projects/{}/stats?minutes=0", p.id),
            &p.token,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        v["error"],
        "query parameter 'minutes' must be a whole number from 1 to 1440, got '0'"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_long_search_is_a_400_naming_the_limit_and_logs_no_error() {
    use common::process::{ServerProcess, free_port, run, sqlite_url};
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let (code, out, err) = run(&["project", "create", "app", "--database-url", &db], &[]).await;
    assert_eq!(code, 0, "{err}");
    let p = common::Creds::from_json(&serde_json::from_str(&out).unwrap());
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = ServerProcess::start_with_log_level(&db, free_port(), &[], "info", log).await;
    let http = reqwest::Client::new();
    let search = |query: String| {
        let url = format!("{}/api/v1/projects/{}/issues", server.base, p.id);
        let (http, token) = (http.clone(), p.token.clone());
        async move {
            let r = http
                .get(url)
                .query(&[("query", query)])
                .bearer_auth(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("not answered (builder error: {})", e.is_builder()));
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    // Single letters: a URI holds at most 64 KiB.
    let words = |n: usize| vec!["w"; n].join(" ");
    // Once: SQLite's expression tree overflowed, 503 "storage unavailable" and an ERROR.
    let (status, v) = search(words(25_000)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most 1024"), "{v}");
    let (status, v) = search(words(33)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "the query has 33 terms: a query has at most 32");
    // 32 terms of every kind run.
    let terms: Vec<String> = (0..32)
        .map(|i| match i % 4 {
            0 => format!("tag{i}:v{i}"),
            1 => format!("environment:e{i}"),
            2 => "is:unresolved".to_owned(),
            _ => format!("\"text {i}\""),
        })
        .collect();
    let (status, v) = search(terms.join(" ")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    server.kill().await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains("ERROR"), "{log}");
}
