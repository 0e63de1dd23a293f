//! SPEC §7: webhooks, against real receivers (small HTTP servers on loopback) and the real
//! server, in process and as a child process (SIGKILL, several nodes on PostgreSQL). The
//! receivers are on loopback, so servers and commands here allow 127.0.0.0/8 (SPEC §8).

mod common;

use common::process::{ServerProcess, free_port, run, sqlite_url};
use common::receiver::{ALLOW_LOOPBACK, Received, Receiver, Reply, allow_loopback};
use common::{Creds, TestServer, WAIT};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// A server whose webhooks may reach the loopback receivers.
async fn server() -> TestServer {
    TestServer::start_with(allow_loopback).await
}

/// `mesher webhook add` against the test server's database, loopback allowed: the printed
/// webhook.
async fn add(s: &TestServer, p: &Creds, url: &str, extra: &[&str]) -> Value {
    let db = s.db.to_string();
    let pid = p.id.to_string();
    let mut args = vec![
        "webhook",
        "add",
        pid.as_str(),
        url,
        "--database-url",
        db.as_str(),
        "--webhook-allow-cidr",
        ALLOW_LOOPBACK,
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args, &[]).await;
    assert_eq!(code, 0, "webhook add failed: {err}");
    serde_json::from_str(out.trim()).unwrap()
}

fn verify(r: &Received, secret: &str) {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&r.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        r.header("x-mesher-signature"),
        want,
        "the signature is the body's HMAC"
    );
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("x-mesher-delivery").len(), 32);
}

#[tokio::test]
async fn the_commands_and_their_errors() {
    let s = server().await;
    let p = s.project("app").await;
    let db = s.db.to_string();
    let hook = add(
        &s,
        &p,
        "https://hooks.example/x",
        &[
            "--on",
            "regressed,new,resolved",
            "--format",
            "slack",
            "--secret",
            "s3",
        ],
    )
    .await;
    assert_eq!(
        hook,
        json!({"id": hook["id"], "project_id": p.id, "url": "https://hooks.example/x",
               "on": ["new", "regressed", "resolved"], "format": "slack", "secret": "s3"})
    );
    let made = add(&s, &p, "http://127.0.0.1:9/hook", &[]).await;
    assert_eq!(made["on"], json!(["new", "regressed"]));
    assert_eq!(made["format"], "json");
    assert_eq!(
        made["secret"].as_str().unwrap().len(),
        64,
        "a secret is made"
    );

    let (code, out, _) = run(&["webhook", "list", "--database-url", &db], &[]).await;
    assert_eq!(code, 0);
    let listed: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|w| w.get("secret").is_none()),
        "list hides secrets"
    );
    let (_, out, _) = run(
        &["webhook", "list", "--project", "999", "--database-url", &db],
        &[],
    )
    .await;
    assert_eq!(out, "");

    let pid = p.id.to_string();
    for (args, want) in [
        (
            vec!["webhook", "add", pid.as_str(), "ftp://x"],
            "is not an http:// or https:// URL",
        ),
        (
            vec!["webhook", "add", "999", "http://x/"],
            "no project with id 999",
        ),
        (
            vec![
                "webhook",
                "add",
                pid.as_str(),
                "http://x/",
                "--on",
                "new,exploded",
            ],
            "unknown trigger 'exploded'",
        ),
        (
            vec![
                "webhook",
                "add",
                pid.as_str(),
                "http://x/",
                "--format",
                "xml",
            ],
            "unknown format 'xml'",
        ),
        (
            vec!["webhook", "add", pid.as_str(), "http://x/", "--secret", ""],
            "--secret must not be empty",
        ),
        (vec!["webhook", "remove", "999"], "no webhook with id 999"),
    ] {
        let mut args = args.clone();
        args.extend(["--database-url", db.as_str()]);
        let (code, out, err) = run(&args, &[]).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}");
    }
    let (_, out, _) = run(&["webhook", "list", "--database-url", &db], &[]).await;
    assert_eq!(out.lines().count(), 2, "nothing changed");

    let id = hook["id"].to_string();
    let (code, out, _) = run(&["webhook", "remove", &id, "--database-url", &db], &[]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(out.trim()).unwrap(),
        json!({"id": hook["id"], "removed": true})
    );
    let (_, out, _) = run(&["webhook", "list", "--database-url", &db], &[]).await;
    assert_eq!(out.lines().count(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_new_issue_is_alerted_once_signed_with_its_event() {
    let s = server().await;
    let p = s.project("app").await;
    let mut rx = Receiver::start().await;
    let hook = add(&s, &p, &rx.url, &[]).await;
    let secret = hook["secret"].as_str().unwrap();

    let (_, v) = s
        .send_event(
            &p,
            &json!({"message": "payment failed", "tags": {"region": "eu"}}),
        )
        .await;
    let got = rx.next().await;
    verify(&got, secret);
    let body = got.json();
    assert_eq!(body["project_id"], p.id);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["action"], "new");
    assert_eq!(alerts[0]["issue"]["id"], v["issue_id"]);
    assert_eq!(alerts[0]["issue"]["title"], "payment failed");
    assert_eq!(alerts[0]["event"]["id"], v["id"]);
    assert_eq!(alerts[0]["event"]["tags"]["region"], "eu");
    assert!(alerts[0]["event"].get("data").is_none());
    // A second event of the issue is not news.
    s.send_event(&p, &json!({"message": "payment failed"}))
        .await;
    let (_, other) = s.send_event(&p, &json!({"message": "disk full"})).await;
    let next = rx.next().await;
    let alerts = next.json()["alerts"].clone();
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(alerts[0]["issue"]["id"], other["issue_id"]);
    s.stop().await;
}

#[tokio::test]
async fn regressions_and_state_changes_arrive_in_order() {
    let s = server().await;
    let p = s.project("app").await;
    let mut rx = Receiver::start().await;
    add(
        &s,
        &p,
        &rx.url,
        &[
            "--on",
            "new,regressed,resolved,archived,unresolved,discarded",
        ],
    )
    .await;
    let (_, v) = s.send_event(&p, &json!({"message": "flaky job"})).await;
    let issue = v["issue_id"].as_i64().unwrap();
    s.act(issue, "resolve", &p.token).await;
    s.send_event(&p, &json!({"message": "flaky job"})).await; // regressed
    s.act(issue, "archive", &p.token).await;
    s.act(issue, "unresolve", &p.token).await;
    s.act(issue, "discard", &p.token).await;
    let want = [
        "new",
        "resolved",
        "regressed",
        "archived",
        "unresolved",
        "discarded",
    ];
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < want.len() {
        let got = rx.next().await;
        seen.extend(got.json()["alerts"].as_array().unwrap().iter().cloned());
    }
    let got: Vec<&str> = seen.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(got, want);
    assert!(
        seen[2]["event"]["id"].is_string(),
        "a regression names its event"
    );
    assert!(
        seen[1].get("event").is_none(),
        "a state change has no event"
    );
    assert_eq!(seen[5]["issue"]["status"], "discarded");
    s.stop().await;
}

#[tokio::test]
async fn failures_are_retried_as_the_same_delivery_until_delivered() {
    let s = server().await;
    let p = s.project("app").await;
    let mut rx = Receiver::start().await;
    // A redirect is not followed (a followed 301 would turn the POST into a GET): it is a
    // failure like the others.
    rx.script(&[Reply::Status(500), Reply::Status(301)]);
    add(&s, &p, &rx.url, &[]).await;
    s.send_event(&p, &json!({"message": "boom"})).await;
    let tries = [rx.next().await, rx.next().await, rx.next().await];
    let ids: Vec<String> = tries
        .iter()
        .map(|r| r.header("x-mesher-delivery"))
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery id on every retry: {ids:?}"
    );
    assert!(
        tries.iter().all(|r| r.body == tries[0].body),
        "the same body every time"
    );
    // Delivered: nothing more comes (the first retry came about a second after the
    // failure, so three seconds of quiet would have shown another).
    assert!(
        rx.within(Duration::from_secs(3)).await.is_none(),
        "a delivered alert came again"
    );
    s.stop().await;
}

#[tokio::test]
async fn slack_messages_name_the_issue_and_link_to_it() {
    let s = TestServer::start_with(|c| {
        allow_loopback(c);
        c.public_url = Some("https://mesher.example".into());
    })
    .await;
    let p = s.project("app").await;
    let mut rx = Receiver::start().await;
    add(&s, &p, &rx.url, &["--format", "slack"]).await;
    let (_, v) = s
        .send_event(&p, &json!({"message": "card declined", "level": "warning"}))
        .await;
    let got = rx.next().await;
    let text = got.json()["text"].as_str().unwrap().to_owned();
    let link = format!(
        "https://mesher.example/#project={}&issue={}",
        p.id, v["issue_id"]
    );
    assert_eq!(
        text,
        format!("*New issue*: <{link}|card declined> (warning)")
    );
    s.stop().await;
}

#[tokio::test]
async fn a_removed_webhook_gets_nothing() {
    let s = server().await;
    let p = s.project("app").await;
    let mut gone = Receiver::start().await;
    let mut kept = Receiver::start().await;
    let hook = add(&s, &p, &gone.url, &[]).await;
    add(&s, &p, &kept.url, &[]).await;
    let (code, _, _) = run(
        &[
            "webhook",
            "remove",
            &hook["id"].to_string(),
            "--database-url",
            &s.db.to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0);
    s.send_event(&p, &json!({"message": "after removal"})).await;
    kept.next().await;
    assert!(
        gone.within(Duration::from_secs(2)).await.is_none(),
        "a removed webhook was called"
    );
    s.stop().await;
}

#[tokio::test]
async fn nothing_is_lost_to_a_dead_receiver_and_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let (_, out, _) = run(&["project", "create", "app", "--database-url", &db], &[]).await;
    let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
    let hook_port = free_port(); // nobody listens yet: connections are refused
    let url = format!("http://127.0.0.1:{hook_port}/hook");
    let (code, _, err) = run(
        &[
            "webhook",
            "add",
            &p.id.to_string(),
            &url,
            "--database-url",
            &db,
            "--webhook-allow-cidr",
            ALLOW_LOOPBACK,
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let port = free_port();
    let server = ServerProcess::start(&db, port, &["--webhook-allow-cidr", ALLOW_LOOPBACK]).await;
    let http = reqwest::Client::new();
    let mut issues = Vec::new();
    for msg in ["first", "second", "third"] {
        let body = json!({"message": format!("{msg} failure")});
        let r = common::post_event(&http, &server.base, &p.key, &body)
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        issues.push(
            r.json::<Value>().await.unwrap()["issue_id"]
                .as_i64()
                .unwrap(),
        );
    }
    server.kill().await;
    // The receiver comes back, then the server.
    let mut rx = Receiver::on(hook_port).await;
    let server = ServerProcess::start(&db, port, &["--webhook-allow-cidr", ALLOW_LOOPBACK]).await;
    let mut alerted = Vec::new();
    while alerted.len() < 3 {
        let got = rx.next().await;
        for a in got.json()["alerts"].as_array().unwrap() {
            alerted.push(a["issue"]["id"].as_i64().unwrap());
        }
    }
    alerted.sort();
    assert_eq!(
        alerted, issues,
        "every alert raised before the kill arrives once"
    );
    server.kill().await;
}

#[tokio::test]
async fn a_storm_is_batched_and_a_hung_receiver_slows_nothing() {
    let s = TestServer::start_with(|c| {
        allow_loopback(c);
        c.rate_limit = 0;
        c.max_buffer = 10_000;
    })
    .await;
    let p = s.project("app").await;
    let mut slow = Receiver::start().await;
    slow.answer_all(Reply::After(Duration::from_millis(300), 200));
    let hung = Receiver::start().await;
    hung.answer_all(Reply::Hang);
    add(&s, &p, &slow.url, &[]).await;
    add(&s, &p, &hung.url, &[]).await;
    let url = s.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token));
    let (mut stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("stream connects");
    assert_eq!(
        common::ws::next_json(&mut stream).await["type"],
        "subscribed"
    );

    let started = std::time::Instant::now();
    for chunk in 0..6 {
        let batch: Vec<Value> = (0..100)
            .map(|i| json!({"message": format!("storm"), "fingerprint": [format!("storm-{chunk}-{i}")]}))
            .collect();
        let (status, v) = s.post("/api/v1/events/bulk", &p.key, &json!(batch)).await;
        assert_eq!(status, 202, "{v}");
    }
    let ingest = started.elapsed();
    // The stream delivers all 600 at once, hung receiver or not.
    let mut events = 0;
    while events < 600 {
        let m = common::ws::next_json(&mut stream).await;
        if m["type"] == "event" {
            events += 1;
        }
    }
    let streamed = started.elapsed();
    let mut per_issue: HashMap<i64, usize> = HashMap::new();
    let mut deliveries = 0;
    while per_issue.len() < 600 {
        let got = slow.next().await;
        deliveries += 1;
        let alerts = got.json()["alerts"].as_array().unwrap().clone();
        assert!(alerts.len() <= 100, "a delivery of {} alerts", alerts.len());
        for a in alerts {
            *per_issue
                .entry(a["issue"]["id"].as_i64().unwrap())
                .or_default() += 1;
        }
    }
    assert!(
        per_issue.values().all(|n| *n == 1),
        "an issue alerted twice"
    );
    assert!(deliveries <= 30, "{deliveries} deliveries for 600 alerts");
    println!("ingest {ingest:?}, streamed {streamed:?}, {deliveries} deliveries");
    assert!(streamed < WAIT, "the stream waited for the webhooks");
    drop(hung);
    s.stop().await;
}

#[tokio::test]
async fn webhooks_over_http_with_the_project_token() {
    let s = server().await;
    let p = s.project("app").await;
    let other = s.project("other").await;
    let mut rx = Receiver::start().await;
    let path = format!("/api/v1/projects/{}/webhooks", p.id);
    let (status, v) = s
        .post(
            &path,
            &p.token,
            &json!({"url": rx.url, "on": ["new", "resolved"], "secret": "k"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let hook = v["webhook"].clone();
    assert_eq!(hook["on"], json!(["new", "resolved"]));
    assert_eq!(hook["format"], "json");
    assert_eq!(hook["secret"], "k");
    let (status, v) = s.get(&path, &p.token).await;
    assert_eq!(status, 200);
    assert_eq!(v["webhooks"].as_array().unwrap().len(), 1);
    assert!(v["webhooks"][0].get("secret").is_none());
    // It works like one added by the command.
    let (_, e) = s.send_event(&p, &json!({"message": "over http"})).await;
    let got = rx.next().await;
    verify(&got, "k");
    assert_eq!(got.json()["alerts"][0]["issue"]["id"], e["issue_id"]);

    for (body, want) in [
        (
            json!({"url": "ftp://x"}),
            "'ftp://x' is not an http:// or https:// URL",
        ),
        (json!({}), "field 'url' is required"),
        (
            json!({"url": "http://x/", "on": "new,boom"}),
            "unknown trigger 'boom': expected new, regressed, resolved, archived, unresolved, discarded",
        ),
        (
            json!({"url": "http://x/", "format": "xml"}),
            "unknown format 'xml': expected json or slack",
        ),
        (
            json!({"url": "http://x/", "on": 7}),
            "field 'on' must be a list of triggers or a comma list",
        ),
        (
            json!({"url": "http://x/", "secret": ""}),
            "field 'secret' must not be empty",
        ),
    ] {
        let (status, v) = s.post(&path, &p.token, &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"], want, "{body}");
    }
    // Another project's token: 403, and nothing removed.
    let (status, _) = s
        .post(&path, &other.token, &json!({"url": "http://x/"}))
        .await;
    assert_eq!(status, 403);
    let delete = |token: String| {
        let req = s
            .http
            .delete(s.url(&format!("/api/v1/webhooks/{}", hook["id"])));
        async move {
            let r = req.bearer_auth(token).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(delete(other.token.clone()).await.0, 403);
    let (status, v) = delete(p.token.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(v, json!({"id": hook["id"], "removed": true}));
    assert_eq!(delete(p.token.clone()).await.0, 404);
    let (_, v) = s.get(&path, &p.token).await;
    assert_eq!(v["webhooks"], json!([]));
    s.stop().await;
}
