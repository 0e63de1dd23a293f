//! SPEC §2.1 and §2.3 against a real server: every status code, bulk, idempotency,
//! compression, authentication, rate limits, overload, WebSocket ingest.

mod common;

use common::{Creds, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn accepts_an_event_with_defaults() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let (status, body) = s.send_event(&p, &json!({"message": "hello"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = body["id"].as_str().unwrap();
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert!(body["issue_id"].as_i64().unwrap() > 0);
    let events = s.all_events(&p).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["id"], id);
    assert_eq!(e["level"], "error");
    assert_eq!(e["environment"], "production");
    assert_eq!(e["seq"], 1);
    assert_eq!(e["issue_id"], body["issue_id"]);
    s.stop().await;
}

#[tokio::test]
async fn stores_every_field_and_parses_timestamps() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let event = json!({
        "event_id": "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        "message": "boom", "level": "warning", "environment": "staging", "release": "1.2.3",
        "timestamp": "2026-01-02T03:04:05.678+01:00",
        "exception": {"type": "TypeError", "value": "x is undefined", "module": "app"},
        "stacktrace": [{"filename": "app.js", "function": "main", "lineno": 1, "colno": 2, "context_line": "main()", "in_app": true},
                       {"filename": "util.js", "function": "helper", "lineno": 10, "in_app": true}],
        "breadcrumbs": [{"timestamp": "2026-01-02T03:04:00Z", "category": "http", "message": "GET /", "level": "info", "data": {"status": 200}}],
        "tags": {"browser": "firefox", "retries": 3},
        "extra": {"k": [1, 2]}, "user": {"id": "u1"}, "sdk": {"name": "custom", "version": "0.1"}
    });
    let (status, body) = s.send_event(&p, &event).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["id"], "6f9619ff8b86d011b42d00c04fc964ff");
    let e = &s.all_events(&p).await[0];
    assert_eq!(e["timestamp"], "2026-01-02T02:04:05.678Z");
    assert_eq!(e["title"], "TypeError: x is undefined");
    assert_eq!(e["culprit"], "util.js in helper");
    assert_eq!(e["release"], "1.2.3");
    assert_eq!(e["environment"], "staging");
    assert_eq!(e["tags"], json!({"browser": "firefox", "retries": "3"}));
    assert_eq!(e["stacktrace"][1]["lineno"], 10);
    assert_eq!(e["breadcrumbs"][0]["data"]["status"], 200);
    assert_eq!(e["user"]["id"], "u1");

    let (status, _) = s
        .send_event(&p, &json!({"message": "unix", "timestamp": 1700000000.5}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let events = s.all_events(&p).await;
    assert_eq!(events[1]["timestamp"], "2023-11-14T22:13:20.500Z");
    s.stop().await;
}

#[tokio::test]
async fn every_validation_error_is_a_precise_400() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"level": "error"}),
            "field 'message' is required unless 'exception' is given",
        ),
        (
            json!({"message": "x", "level": "critical"}),
            "unknown level 'critical': expected one of fatal, error, warning, info, debug",
        ),
        (
            json!({"message": 42}),
            "field 'message' must be a string, got a number",
        ),
        (
            json!({"message": "x", "tags": ["a"]}),
            "field 'tags' must be an object of strings, got a list",
        ),
        (
            json!({"message": "x", "event_id": "123"}),
            "field 'event_id' must be 32 hex digits or a UUID, got '123'",
        ),
        (
            json!({"message": "x", "timestamp": "last tuesday"}),
            "field 'timestamp' must be an RFC 3339 date-time or unix seconds, got \"last tuesday\"",
        ),
        (
            json!({"message": "x", "stacktrace": {"frames": []}}),
            "field 'stacktrace' must be a list of frames, got an object",
        ),
        (
            json!({"message": "x", "exception": {"module": "m"}}),
            "field 'exception' needs a 'type' or a 'value'",
        ),
        (
            json!({"message": "x", "user": "bob"}),
            "field 'user' must be an object, got a string",
        ),
        (
            json!("just a string"),
            "an event must be a JSON object, got a string",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = s.send_event(&p, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"], expected, "{body}");
    }
    let r = s
        .http
        .post(s.url("/api/v1/events"))
        .bearer_auth(&p.key)
        .body("{\"message\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON: EOF"),
        "{v}"
    );
    assert!(
        s.all_events(&p).await.is_empty(),
        "nothing invalid was stored"
    );
    s.stop().await;
}

#[tokio::test]
async fn authentication_three_ways_and_401s() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let ev = json!({"message": "auth"});
    let url = s.url("/api/v1/events");
    let by_header = s
        .http
        .post(&url)
        .header(
            "X-Sentry-Auth",
            format!("Sentry sentry_key={}, sentry_version=7", p.key),
        )
        .json(&ev)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), StatusCode::ACCEPTED);
    let by_query = s
        .http
        .post(format!("{url}?sentry_key={}", p.key))
        .json(&ev)
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), StatusCode::ACCEPTED);
    let (status, _) = s.send_event(&p, &ev).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let missing = s.http.post(&url).json(&ev).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let v: Value = missing.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("missing ingest key")
    );
    let (status, v) = s
        .post("/api/v1/events", "0123456789abcdef0123456789abcdef", &ev)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "unknown ingest key");
    // The project token reads; it does not ingest.
    let (status, _) = s.post("/api/v1/events", &p.token, &ev).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.all_events(&p).await.len(), 3);
    s.stop().await;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn compressed_bodies_and_the_size_limit() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let url = s.url("/api/v1/events");
    let send = |encoding: &'static str, body: Vec<u8>| {
        s.http
            .post(&url)
            .bearer_auth(&p.key)
            .header("Content-Encoding", encoding)
            .body(body)
            .send()
    };
    let raw = br#"{"message":"compressed"}"#;
    assert_eq!(
        send("gzip", gzip(raw)).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(raw).unwrap();
    assert_eq!(
        send("deflate", z.finish().unwrap()).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(raw).unwrap();
    }
    assert_eq!(send("br", br).await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(s.all_events(&p).await.len(), 3);

    // 2 MiB of JSON that gzips to a few KiB: refused after decompression.
    let big = format!("{{\"message\":\"{}\"}}", "a".repeat(2 << 20));
    let r = send("gzip", gzip(big.as_bytes())).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"],
        "request body is larger than 1 MiB (1048576 bytes) after decompression"
    );
    let r = s
        .http
        .post(&url)
        .bearer_auth(&p.key)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let r = send("gzip", b"not gzip at all".to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("request body is not valid gzip"),
        "{v}"
    );
    let r = send("zstd", raw.to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(s.all_events(&p).await.len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn bulk_is_all_or_nothing() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let good: Vec<Value> = (0..100)
        .map(|i| json!({"message": format!("bulk {i}"), "tags": {"i": i.to_string()}}))
        .collect();
    let (status, v) = s.post("/api/v1/events/bulk", &p.key, &json!(good)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["accepted"], 100);
    assert_eq!(v["ids"].as_array().unwrap().len(), 100);
    let events = s.all_events(&p).await;
    assert_eq!(events.len(), 100);
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    // Each row whole and its own, in the order sent (the writer inserts a batch this big
    // several rows per statement, then the rest one by one).
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["id"], v["ids"][i], "{e}");
        assert_eq!(e["message"], format!("bulk {i}"), "{e}");
        assert_eq!(e["tags"]["i"], i.to_string(), "{e}");
    }

    let mut bad = good.clone();
    bad[37] = json!({"message": "x", "level": "loud"});
    let (status, v) = s.post("/api/v1/events/bulk", &p.key, &json!(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["error"],
        "event at index 37: unknown level 'loud': expected one of fatal, error, warning, info, debug"
    );

    let mut too_many = good.clone();
    too_many.push(json!({"message": "101st"}));
    let (status, v) = s
        .post("/api/v1/events/bulk", &p.key, &json!(too_many))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        v["error"],
        "a bulk request holds at most 100 events, got 101"
    );
    let (status, v) = s
        .post(
            "/api/v1/events/bulk",
            &p.key,
            &json!({"message": "not a list"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "a bulk body must be a JSON array of events");
    assert_eq!(
        s.all_events(&p).await.len(),
        100,
        "the refused bulks stored nothing"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_retried_event_id_is_stored_once() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let ev = json!({"event_id": "0123456789abcdef0123456789abcdef", "message": "once"});
    let (s1, a) = s.send_event(&p, &ev).await;
    let (s2, b) = s.send_event(&p, &ev).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(a, b);
    // A retry inside a bulk, twice in the same bulk, and with the dashed spelling.
    let dashed = json!({"event_id": "01234567-89ab-cdef-0123-456789abcdef", "message": "once"});
    let (status, _) = s
        .post("/api/v1/events/bulk", &p.key, &json!([dashed, ev]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(s.all_events(&p).await.len(), 1);
    let (_, issue) = s
        .get(&format!("/api/v1/issues/{}", a["issue_id"]), &p.token)
        .await;
    assert_eq!(issue["issue"]["event_count"], 1);
    s.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_headers() {
    let s = TestServer::start_with(|c| c.rate_limit = 5).await;
    let p = s.project("app").await;
    let other = s.project("other").await;
    for i in 0..5 {
        let (status, _) = s
            .send_event(&p, &json!({"message": format!("n {i}")}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let r = s
        .http
        .post(s.url("/api/v1/events"))
        .bearer_auth(&p.key)
        .json(&json!({"message": "over"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        r.headers()["x-sentry-rate-limits"].to_str().unwrap(),
        format!("{retry}::project")
    );
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("rate limit exceeded")
    );
    // Another project is not affected; the limited one stored exactly 5.
    assert_eq!(
        s.send_event(&other, &json!({"message": "fine"})).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(s.all_events(&p).await.len(), 5);
    s.stop().await;
}

#[tokio::test]
async fn a_full_writer_queue_answers_503_and_loses_no_202() {
    let s = TestServer::start_with(|c| {
        c.write_queue = 1;
        c.commit_batch = 1;
        c.rate_limit = 0;
    })
    .await;
    let p = s.project("app").await;
    let tasks = post_at_once(&s, &p, (0..64).map(|i| format!("load {i}")));
    let mut accepted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (status, retry, v) = t.await.unwrap();
        match status {
            StatusCode::ACCEPTED => accepted.push(v["id"].as_str().unwrap().to_owned()),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(retry.unwrap().to_str().unwrap(), "1");
                assert!(
                    v["error"]
                        .as_str()
                        .unwrap()
                        .starts_with("server overloaded"),
                    "{v}"
                );
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert!(
        refused > 0,
        "64 concurrent requests against a queue of 1 should overflow it"
    );
    assert_eq!(
        stored_ids(&s.all_events(&p).await),
        sorted(accepted),
        "exactly the 202s were stored"
    );
    s.stop().await;
}

/// Posts one event per message, all at once; each task answers its status, `Retry-After`
/// and body.
fn post_at_once(
    s: &TestServer,
    p: &Creds,
    messages: impl Iterator<Item = String>,
) -> Vec<tokio::task::JoinHandle<(StatusCode, Option<reqwest::header::HeaderValue>, Value)>> {
    messages
        .map(|message| {
            let (http, base, key) = (s.http.clone(), s.base.clone(), p.key.clone());
            tokio::spawn(async move {
                let r = common::post_event(&http, &base, &key, &json!({ "message": message }))
                    .await
                    .unwrap();
                let status = r.status();
                let retry = r.headers().get("retry-after").cloned();
                let v: Value = r.json().await.unwrap();
                (status, retry, v)
            })
        })
        .collect()
}

/// The stored events' ids, sorted.
fn stored_ids(events: &[Value]) -> Vec<String> {
    sorted(
        events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect(),
    )
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// With a commit delay (`--commit-delay-us`), commits that wait for company still answer
/// every request after its own commit: rounds of 16 concurrent clients (each round's commit
/// follows a busy one, so it waits 20 ms) all get 202, and exactly those events are stored,
/// with gap-free seqs.
#[tokio::test]
async fn a_commit_delay_answers_every_request_after_its_commit() {
    let s = TestServer::start_with(|c| {
        c.commit_delay_us = Some(20_000);
        c.rate_limit = 0;
    })
    .await;
    let p = s.project("app").await;
    let mut accepted = Vec::new();
    for round in 0..4 {
        let tasks = post_at_once(&s, &p, (0..16).map(|i| format!("round {round} client {i}")));
        for t in tasks {
            let (status, _, v) = t.await.unwrap();
            assert_eq!(status, StatusCode::ACCEPTED, "{v}");
            accepted.push(v["id"].as_str().unwrap().to_owned());
        }
    }
    let stored = s.all_events(&p).await;
    let seqs = sorted(stored.iter().map(|e| e["seq"].as_i64().unwrap()).collect());
    assert_eq!(seqs, (1..=64).collect::<Vec<_>>());
    assert_eq!(
        stored_ids(&stored),
        sorted(accepted),
        "exactly the 202s were stored"
    );
    s.stop().await;
}

#[tokio::test]
async fn websocket_ingest_answers_each_frame_and_survives_errors() {
    let s = TestServer::start().await;
    let p = s.project("app").await;

    // Refused at the upgrade without a key.
    let err = tokio_tungstenite::connect_async(s.ws_url("/ingest"))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 401),
        other => panic!("expected an HTTP 401, got {other}"),
    }

    let mut req = s.ws_url("/ingest").into_client_request().unwrap();
    req.headers_mut().insert(
        "X-Sentry-Auth",
        format!("Sentry sentry_key={}", p.key).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut next = async |frame: Message| -> Value {
        ws.send(frame).await.unwrap();
        loop {
            let m = tokio::time::timeout(WAIT, ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                return serde_json::from_str(t.as_str()).unwrap();
            }
        }
    };
    let a = next(Message::text(r#"{"message":"over ws 1"}"#)).await;
    assert_eq!(a["status"], "accepted");
    assert!(a["issue_id"].as_i64().unwrap() > 0);
    let b = next(Message::text("{broken")).await;
    assert!(
        b["error"].as_str().unwrap().starts_with("invalid JSON"),
        "{b}"
    );
    let c = next(Message::text(r#"{"level":"info"}"#)).await;
    assert_eq!(
        c["error"],
        "field 'message' is required unless 'exception' is given"
    );
    let d = next(Message::binary(vec![1, 2, 3])).await;
    assert!(d["error"].as_str().unwrap().contains("binary frames"));
    let e = next(Message::text(r#"{"message":"over ws 2"}"#)).await;
    assert_eq!(e["status"], "accepted");
    let ids: Vec<Value> = s
        .all_events(&p)
        .await
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, vec![a["id"].clone(), e["id"].clone()]);

    // Query-string authentication works too.
    let (mut ws2, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/ingest?sentry_key={}", p.key)))
            .await
            .unwrap();
    ws2.send(Message::text(r#"{"message":"q"}"#)).await.unwrap();
    let m = tokio::time::timeout(WAIT, ws2.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(m.to_text().unwrap().contains("accepted"));
    s.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let s = TestServer::start().await;
    let r = s.http.get(s.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "no route for /no/such/thing");
    let r = s.http.get(s.url("/api/v1/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "method not allowed");
    let (status, v) = s.get("/healthz", "").await;
    assert_eq!(
        (status, v),
        (StatusCode::OK, json!({"status": "ok", "database": "up"}))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_the_server_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(|c| c.body_timeout_ms = 300).await;
    let p = s.project("app").await;
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"message\":",
        p.key
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // The server answers and closes; read until it does.
    let mut answer = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        answer.ends_with(r#"{"error":"the request body sent nothing for 300 ms"}"#),
        "{answer}"
    );
    // Nothing stored, and the next request is served.
    assert!(s.all_events(&p).await.is_empty());
    let (status, v) = s.send_event(&p, &json!({"message": "after"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    s.stop().await;
}

#[tokio::test]
async fn a_plain_get_of_ingest_gets_a_json_400_naming_the_upgrade() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let r = s
        .http
        .get(s.url("/ingest"))
        .bearer_auth(&p.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("Upgrade: websocket"), "{error}");
    s.stop().await;
}
