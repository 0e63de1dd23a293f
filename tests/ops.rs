//! SPEC §6 with the real binary: `/metrics` after known traffic, graceful shutdown on
//! SIGTERM, JSON logs.

mod common;

use common::WAIT;
use common::process::{ServerProcess, free_port, run, sqlite_url};
use common::ws::{Ws, next_json};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn create_project(db: &str) -> Value {
    let (code, out, err) = run(&["project", "create", "app", "--database-url", db], &[]).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// `POST /api/v1/events` of one event with `message`, on a connection of its own.
async fn post_event(base: &str, key: &str, message: &str) -> reqwest::Result<reqwest::Response> {
    common::post_event(
        &reqwest::Client::new(),
        base,
        key,
        &json!({ "message": message }),
    )
    .await
}

async fn subscribe(base: &str, p: &Value) -> Ws {
    let url = format!(
        "{}/stream/projects/{}?token={}",
        base.replacen("http", "ws", 1),
        p["id"],
        p["token"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "subscribed");
    ws
}

/// Sends SIGTERM and waits for the exit: the exit code and how long it took (at most 10 s).
async fn terminate(server: &mut ServerProcess) -> (Option<i32>, std::time::Duration) {
    let pid = server.child.id().expect("running");
    let started = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(10), server.child.wait())
        .await
        .expect("exits within 10 s")
        .unwrap();
    (exit.code(), started.elapsed())
}

/// The close frame the server sends on `ws`, skipping other messages.
async fn close_frame(ws: &mut Ws) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return Some(frame),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the stream closes in time")
    .expect("a close frame, not a dropped socket")
}

/// Restarts a server on `db` and answers the ids of the project's stored events.
async fn stored_ids_after_restart(db: &str, p: &Value) -> Vec<String> {
    let server = ServerProcess::start(db, free_port(), &[]).await;
    let url = format!(
        "{}/api/v1/projects/{}/events?since=0&limit=1000&token={}",
        server.base,
        p["id"],
        p["token"].as_str().unwrap()
    );
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    server.kill().await;
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `name{labels}` → value, from the Prometheus text format.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_known_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let p = create_project(&db).await;
    let server = ServerProcess::start(&db, free_port(), &["--rate-limit", "2"]).await;
    let mut ws = subscribe(&server.base, &p).await;
    let http = reqwest::Client::new();
    let key = p["ingest_key"].as_str().unwrap();
    let post = |body: Value, key: &str| {
        let (http, base, key) = (http.clone(), server.base.clone(), key.to_owned());
        async move { common::post_event(&http, &base, &key, &body).await }
    };
    for (body, k, want) in [
        (json!({"message": "one"}), key, StatusCode::ACCEPTED),
        (json!({"message": "two"}), key, StatusCode::ACCEPTED),
        (
            json!({"message": "three"}),
            key,
            StatusCode::TOO_MANY_REQUESTS,
        ),
        (
            json!({"level": "loud", "message": "x"}),
            key,
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"message": "x"}),
            "0123456789abcdef0123456789abcdef",
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        assert_eq!(post(body, k).await.unwrap().status(), want);
    }
    // The subscriber reads both events (and the issue and count messages around them).
    let mut events = 0;
    while events < 2 {
        if next_json(&mut ws).await["type"] == "event" {
            events += 1;
        }
    }
    let r = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    let m = parse_metrics(&text);
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in:\n{text}"))
    };
    assert_eq!(get("mesher_events_ingested_total"), 2.0);
    assert_eq!(
        get("mesher_events_rejected_total{reason=\"rate_limited\"}"),
        1.0
    );
    assert_eq!(get("mesher_events_rejected_total{reason=\"invalid\"}"), 1.0);
    assert_eq!(
        get("mesher_events_rejected_total{reason=\"unauthorized\"}"),
        1.0
    );
    assert_eq!(get("mesher_stream_connections"), 1.0);
    assert_eq!(get("mesher_commit_batch_events_sum"), 2.0);
    // Each commit is timed: as many samples as batches, each well under the 5 s bucket.
    let commits = get("mesher_commit_seconds_count");
    assert_eq!(commits, get("mesher_commit_batch_events_count"));
    assert!(commits >= 1.0, "{commits}");
    assert!(get("mesher_commit_seconds_sum") < 5.0);
    assert_eq!(
        get("mesher_commit_seconds_bucket{le=\"5\"}"),
        commits,
        "every commit within 5 s"
    );
    // One sample per socket write: the two events went out in one or two writes.
    let samples = get("mesher_ingest_to_delivery_seconds_count");
    assert!((1.0..=2.0).contains(&samples), "{samples}");
    assert!(get("mesher_ingest_to_delivery_seconds_sum") < 5.0);
    assert_eq!(get("mesher_outbox_depth"), 0.0);
    let queued = get("mesher_messages_queued_total");
    assert!(queued >= 3.0, "issue + 2 events at least, got {queued}");
    // Every queued message was written: the subscriber keeps up.
    let delivered = tokio::time::timeout(WAIT, async {
        loop {
            let text = http
                .get(format!("{}/metrics", server.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let d = parse_metrics(&text)
                .get("mesher_messages_delivered_total")
                .copied()
                .unwrap_or(0.0);
            if d >= queued {
                return d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("delivered catches up with queued");
    assert_eq!(delivered, queued);
    assert!(
        !m.contains_key("mesher_messages_dropped_total")
            || get("mesher_messages_dropped_total") == 0.0
    );
    server.kill().await;
}

#[tokio::test]
async fn sigterm_closes_streams_with_1001_finishes_requests_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let p = create_project(&db).await;
    let port = free_port();
    let server = ServerProcess::start(&db, port, &["--rate-limit", "0"]).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(subscribe(&server.base, &p).await);
    }
    // Requests in flight while the signal arrives: each either completes (202, stored) or
    // is refused before it starts; none is answered 202 and lost.
    let key = p["ingest_key"].as_str().unwrap().to_owned();
    let mut sends = Vec::new();
    for i in 0..50 {
        let (key, base) = (key.clone(), server.base.clone());
        sends.push(tokio::spawn(async move {
            match post_event(&base, &key, &format!("in flight {i}")).await {
                Ok(r) if r.status() == StatusCode::ACCEPTED => Some(
                    r.json::<Value>().await.unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ),
                _ => None,
            }
        }));
    }
    let mut server = server;
    let (code, took) = terminate(&mut server).await;
    for ws in &mut streams {
        let close = close_frame(ws).await;
        assert_eq!(close.code, CloseCode::Away, "{close:?}");
    }
    assert_eq!(code, Some(0));
    assert!(took < std::time::Duration::from_secs(10));

    let mut accepted = Vec::new();
    for s in sends {
        accepted.extend(s.await.unwrap());
    }
    // Restart on the same file: every 202 is there.
    let stored = stored_ids_after_restart(&db, &p).await;
    for id in &accepted {
        assert!(stored.contains(id), "202'd event {id} lost");
    }
}

#[tokio::test]
async fn a_request_stalled_mid_body_does_not_hold_up_shutdown() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let p = create_project(&db).await;
    let mut server = ServerProcess::start(&db, free_port(), &[]).await;
    let key = p["ingest_key"].as_str().unwrap();
    let r = post_event(&server.base, key, "before the signal")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A client that sends its headers and half of the body, then nothing (a slow or
    // vanished uploader); before the drain was bounded it kept the process alive.
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"message\":"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut stream = subscribe(&server.base, &p).await;

    let (code, took) = terminate(&mut server).await;
    assert_eq!(code, Some(0));
    assert!(took < std::time::Duration::from_secs(10));
    // The stream was still told why it closed.
    assert_eq!(close_frame(&mut stream).await.code, CloseCode::Away);
    drop(stalled);

    // The acknowledged event is there after a restart.
    assert_eq!(stored_ids_after_restart(&db, &p).await, [id]);
}

/// Request logs cost every request, so they are off unless asked for; asked for with
/// `RUST_LOG=tower_http=debug`, each request is logged with its method and path.
#[tokio::test]
async fn requests_are_logged_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let p = create_project(&db).await;
    let key = p["ingest_key"].as_str().unwrap();
    let logged = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .any(|l| l.contains("uri=/api/v1/events") && l.contains("finished processing request"))
    };

    for (level, wanted) in [("info,tower_http=debug", true), ("info", false)] {
        let log_path = dir.path().join(format!("{level}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let server = ServerProcess::start_with_log_level(&db, free_port(), &[], level, log).await;
        let r = post_event(&server.base, key, "logged?").await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        if wanted {
            // The line is written as the answer leaves; give the write a moment to land.
            tokio::time::timeout(WAIT, async {
                while !logged(&log_path) {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no request log line with RUST_LOG={level}"));
        }
        server.kill().await;
        assert_eq!(logged(&log_path), wanted, "RUST_LOG={level}");
    }
}

#[tokio::test]
async fn logs_can_be_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let (code, _, err) = run(
        &[
            "--log-format",
            "json",
            "project",
            "list",
            "--database-url",
            &db,
        ],
        &[("RUST_LOG", "debug")],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "some log lines at debug level");
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{v}");
    }
    let (code, _, err) = run(&["--log-format", "xml", "project", "list"], &[]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value 'xml' for '--log-format <FORMAT>'"),
        "{err}"
    );
}
