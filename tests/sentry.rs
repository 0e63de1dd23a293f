//! SPEC §2.2: the real Python Sentry SDK and hand-built envelopes against the real server.

mod common;

use common::sdk::{python, run_app};
use common::ws::{Ws, next_of};
use common::{Creds, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;

async fn subscribe(s: &TestServer, p: &Creds) -> Ws {
    let url = s.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("stream connects");
    next_of(&mut ws, "subscribed").await;
    ws
}

/// Runs an application using a real Sentry SDK with `project`'s DSN, and checks what a
/// stream subscriber saw and what the issues API shows: two captured exceptions from one
/// site in one issue (`title`, culprit `culprit` after the file's directory), and a
/// warning message.
async fn an_sdk_reports(program: &str, app: &str, title: &str, culprit: &str) {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let mut ws = subscribe(&s, &p).await;

    run_app(program, app, &p.dsn).await;

    // Live: the three captures arrive on the stream (in the order the SDK sent them, which
    // for the JavaScript SDK's parallel requests is not the order of the calls).
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(next_of(&mut ws, "event").await);
    }
    live.sort_by_key(|e| e["event"]["title"] != title);
    let titles: Vec<&str> = live
        .iter()
        .map(|e| e["event"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, [title, title, "disk almost full"]);
    assert_eq!(live[0]["event"]["level"], "error");
    assert_eq!(live[2]["event"]["level"], "warning");
    let seqs: Vec<i64> = live.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.iter().all(|s| (1..=3).contains(s)), "{seqs:?}");
    for e in &live {
        assert_eq!(e["event"]["environment"], "staging", "{e}");
        assert_eq!(e["event"]["release"], "shop@1.0.0", "{e}");
    }
    assert_eq!(live[0]["issue_id"], live[1]["issue_id"]);

    // Stored: one issue for the two exceptions, its culprit in the helper.
    let (status, v) = s
        .get(&format!("/api/v1/projects/{}/issues", p.id), &p.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let issues = v["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 2, "{v}");
    let exc = issues
        .iter()
        .find(|i| i["title"] == title)
        .expect("the exception's issue");
    assert_eq!(exc["event_count"], 2);
    assert_eq!(exc["level"], "error");
    // The Python SDK sends the path relative to sys.path, the JavaScript one the full path.
    let got = exc["culprit"].as_str().unwrap();
    assert!(
        got == culprit || got.ends_with(&format!("/{culprit}")),
        "culprit {got:?}"
    );
    let warn = issues
        .iter()
        .find(|i| i["title"] == "disk almost full")
        .unwrap();
    assert_eq!(warn["level"], "warning");
    assert_eq!(warn["event_count"], 1);
    // Transactions and sessions the SDK sent are not events.
    assert_eq!(s.all_events(&p).await.len(), 3);
}

#[tokio::test]
async fn the_python_sentry_sdk_reports_to_mesher_by_dsn_alone() {
    let py = python();
    let check = std::process::Command::new(&py)
        .args(["-c", "import sentry_sdk"])
        .output()
        .expect("python runs");
    assert!(
        check.status.success(),
        "{py} cannot import sentry_sdk: run the tests with scripts/test.sh, which installs tests/requirements.txt"
    );
    an_sdk_reports(
        &py,
        "app.py",
        "ZeroDivisionError: division by zero",
        "app.py in divide",
    )
    .await;
}

#[tokio::test]
async fn the_javascript_sentry_sdk_reports_to_mesher_by_dsn_alone() {
    let sdk = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sentry/node_modules/@sentry/node"
    );
    assert!(
        std::path::Path::new(sdk).exists(),
        "@sentry/node is not installed: run the tests with scripts/test.sh, which runs npm ci in tests/sentry"
    );
    an_sdk_reports(
        "node",
        "app.mjs",
        "RangeError: division by zero",
        "app.mjs in divide",
    )
    .await;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn br(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
    }
    out
}

fn auth(key: &str) -> String {
    format!("Sentry sentry_key={key}, sentry_version=7, sentry_client=test/1.0")
}

/// POSTs `body` to `path` with optional headers; answers status, headers and JSON body.
async fn post(
    s: &TestServer,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = s.http.post(s.url(path)).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.expect("request");
    let (status, headers) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON answer, got {text:?}"));
    (status, headers, v)
}

fn envelope(header: Value, items: &[(Value, &[u8])]) -> Vec<u8> {
    let mut out = header.to_string().into_bytes();
    for (h, payload) in items {
        out.push(b'\n');
        out.extend_from_slice(h.to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(payload);
    }
    out.push(b'\n');
    out
}

#[tokio::test]
async fn every_item_type_is_accepted_and_only_events_are_stored() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let event = json!({"event_id": "0123456789abcdef0123456789abcdef", "message": "from an envelope", "level": "log"}).to_string();
    let body = envelope(
        json!({"event_id": "0123456789abcdef0123456789abcdef", "sent_at": "2026-11-23T10:00:00Z"}),
        &[
            (
                json!({"type": "transaction"}),
                br#"{"type":"transaction","spans":[]}"#,
            ),
            (json!({"type": "session"}), br#"{"sid":"x","status":"ok"}"#),
            (json!({"type": "sessions"}), br#"{"aggregates":[]}"#),
            (
                json!({"type": "client_report"}),
                br#"{"discarded_events":[]}"#,
            ),
            (
                json!({"type": "attachment", "length": 7, "filename": "a.txt"}),
                b"a\nb\nc\n\n",
            ),
            (
                json!({"type": "check_in"}),
                br#"{"check_in_id":"x","status":"ok"}"#,
            ),
            (json!({"type": "something_new"}), b"whatever"),
            (
                json!({"type": "event", "length": event.len()}),
                event.as_bytes(),
            ),
        ],
    );
    let (status, _, v) = post(
        &s,
        &format!("/api/{}/envelope/", p.id),
        &[("x-sentry-auth", auth(&p.key))],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"id": "0123456789abcdef0123456789abcdef"}));
    let events = s.all_events(&p).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["message"], "from an envelope");
    assert_eq!(events[0]["level"], "info", "log → info");

    // An envelope with no event (a session update) is accepted and stores nothing.
    let (status, _, v) = post(
        &s,
        &format!("/api/{}/envelope", p.id),
        &[("x-sentry-auth", auth(&p.key))],
        envelope(json!({}), &[(json!({"type": "session"}), b"{}")]),
    )
    .await;
    assert_eq!((status, v), (StatusCode::OK, json!({"id": null})));
    assert_eq!(s.all_events(&p).await.len(), 1);
}

#[tokio::test]
async fn compression_paths_and_the_store_endpoint() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let body = |msg: &str| {
        envelope(
            json!({}),
            &[(
                json!({"type": "event"}),
                json!({"message": msg}).to_string().as_bytes(),
            )],
        )
    };
    let h = |enc: Option<&str>| {
        let mut v = vec![("x-sentry-auth", auth(&p.key))];
        if let Some(e) = enc {
            v.push(("content-encoding", e.to_owned()));
        }
        v
    };
    let cases = [
        (format!("/api/{}/envelope/", p.id), None, body("plain")),
        (
            format!("/api/{}/envelope", p.id),
            Some("gzip"),
            gzip(&body("gzip")),
        ),
        (
            format!("/api/{}/envelope/", p.id),
            Some("br"),
            br(&body("br")),
        ),
    ];
    for (path, enc, b) in cases {
        let (status, _, v) = post(&s, &path, &h(enc), b).await;
        assert_eq!(status, StatusCode::OK, "{path} {enc:?}: {v}");
        assert_eq!(v["id"].as_str().map(str::len), Some(32), "{v}");
    }
    for path in [
        format!("/api/{}/store/", p.id),
        format!("/api/{}/store", p.id),
    ] {
        let legacy = json!({"message": {"formatted": "legacy store"}, "tags": [["k", "v"]]});
        let (status, _, v) = post(
            &s,
            &path,
            &h(Some("gzip")),
            gzip(legacy.to_string().as_bytes()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
    }
    let messages: Vec<String> = s
        .all_events(&p)
        .await
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        messages,
        ["plain", "gzip", "br", "legacy store", "legacy store"]
    );
}

#[tokio::test]
async fn credentials_must_agree_and_match_the_project() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let other = s.project("other").await;
    let ev = |dsn: Option<&str>| {
        let header = match dsn {
            Some(d) => json!({"dsn": d}),
            None => json!({}),
        };
        envelope(header, &[(json!({"type": "event"}), br#"{"message":"m"}"#)])
    };
    let path = format!("/api/{}/envelope/", p.id);
    let msg = |v: &Value| v["error"].as_str().unwrap().to_owned();

    // Each way alone works: header, query, the envelope's dsn.
    let (st, _, _) = post(&s, &path, &[("x-sentry-auth", auth(&p.key))], ev(None)).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = post(
        &s,
        &format!("{path}?sentry_key={}&sentry_version=7", p.key),
        &[],
        ev(None),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, v) = post(&s, &path, &[], ev(Some(&p.dsn))).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Missing, unknown, disagreeing: 401.
    let (st, _, v) = post(&s, &path, &[], ev(None)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(msg(&v).starts_with("missing ingest key"), "{v}");
    let (st, _, v) = post(
        &s,
        &path,
        &[("x-sentry-auth", auth(&"0".repeat(32)))],
        ev(None),
    )
    .await;
    assert_eq!(
        (st, msg(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "unknown ingest key")
    );
    let (st, _, v) = post(
        &s,
        &path,
        &[("x-sentry-auth", auth(&p.key))],
        ev(Some(&other.dsn)),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        msg(&v),
        "the ingest keys in X-Sentry-Auth and the envelope's dsn disagree"
    );

    // Another project's key, or a dsn for another project: 403.
    let (st, _, v) = post(&s, &path, &[("x-sentry-auth", auth(&other.key))], ev(None)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        msg(&v),
        format!(
            "this ingest key belongs to project {}, not project {}",
            other.id, p.id
        )
    );
    let wrong_project = format!("{}/{}", p.dsn.rsplit_once('/').unwrap().0, other.id);
    let (st, _, v) = post(&s, &path, &[], ev(Some(&wrong_project))).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        msg(&v),
        format!(
            "the envelope's dsn is for project {}, but the URL names project {}",
            other.id, p.id
        )
    );

    // Nothing refused was stored.
    assert_eq!(s.all_events(&p).await.len(), 3);
    assert_eq!(s.all_events(&other).await.len(), 0);
}

#[tokio::test]
async fn malformed_envelopes_and_events_get_a_400_that_says_why() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let path = format!("/api/{}/envelope/", p.id);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"".to_vec(),
            "malformed envelope: the body is empty; an envelope starts with a JSON header line",
        ),
        (
            b"{}\n{\"length\":2}\n{}\n".to_vec(),
            "malformed envelope: item 1: the item header has no 'type'",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":99}\n{}\n".to_vec(),
            "malformed envelope: item 1 (event): 'length' is 99 but only 3 bytes follow",
        ),
        (
            b"{}\n{\"type\":\"event\"}\n{not json\n".to_vec(),
            "envelope item 1 (event): invalid JSON",
        ),
        (
            b"{}\n{\"type\":\"event\"}\n{\"level\":\"loud\",\"message\":\"m\"}\n".to_vec(),
            "envelope item 1 (event): unknown level 'loud'",
        ),
        (
            b"{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"event\"}\n{\"platform\":\"python\"}\n"
                .to_vec(),
            "envelope item 2 (event): the event has neither a message, a logentry nor an exception",
        ),
        (
            b"{\"dsn\":\"nope\"}\n".to_vec(),
            "the envelope header's dsn 'nope' is not a valid DSN",
        ),
    ];
    for (body, want) in cases {
        let (st, _, v) = post(&s, &path, &[("x-sentry-auth", auth(&p.key))], body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{want}: {v}");
        let got = v["error"].as_str().unwrap();
        assert!(got.starts_with(want), "want {want:?}, got {got:?}");
    }
    // Without credentials a malformed body is a 401, not a parse report.
    let (st, _, _) = post(&s, &path, &[], b"garbage".to_vec()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Over 1 MiB after decompression: 413.
    let big = envelope(
        json!({}),
        &[(
            json!({"type": "event"}),
            json!({"message": "x".repeat(2 << 20)})
                .to_string()
                .as_bytes(),
        )],
    );
    let (st, _, v) = post(
        &s,
        &path,
        &[
            ("x-sentry-auth", auth(&p.key)),
            ("content-encoding", "gzip".into()),
        ],
        gzip(&big),
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        v["error"],
        "envelope item 1 (event) is larger than 1 MiB (1048576 bytes)"
    );
    assert_eq!(s.all_events(&p).await.len(), 0);
    // The server is still up and takes a good one.
    let good = envelope(
        json!({}),
        &[(json!({"type": "event"}), br#"{"message":"ok"}"#)],
    );
    let (st, _, _) = post(&s, &path, &[("x-sentry-auth", auth(&p.key))], good).await;
    assert_eq!(st, StatusCode::OK);
}

/// An attachment item of `len` bytes (a stand-in for a screenshot).
fn attachment(len: usize) -> (Value, Vec<u8>) {
    let data = (0..len).map(|i| (i % 251) as u8).collect();
    (
        json!({"type": "attachment", "length": len, "filename": "screenshot.png"}),
        data,
    )
}

/// The stored event `id` of project `p`, as `GET /api/v1/projects/<id>/events/<event_id>`
/// shows it.
async fn stored(s: &TestServer, p: &Creds, id: &str) -> Value {
    let (status, v) = s
        .get(&format!("/api/v1/projects/{}/events/{id}", p.id), &p.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["event"].clone()
}

#[tokio::test]
async fn large_attachments_stream_by_and_the_event_is_kept_whole() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let path = format!("/api/{}/envelope/", p.id);
    let (before, before_data) = attachment(3 << 20);
    let (after, after_data) = attachment(3 << 20 | 17);
    // An unsized item's payload runs to the newline: a long line, here 2 MiB.
    let long_line = vec![b'x'; 2 << 20];
    for (n, (encoding, unsized_item)) in [(None, false), (Some("gzip"), false), (None, true)]
        .into_iter()
        .enumerate()
    {
        let id = format!("{n:032x}");
        let payload =
            json!({"event_id": id, "message": "with a screenshot", "extra": {"n": n}}).to_string();
        let mut items = vec![(before.clone(), before_data.as_slice())];
        if unsized_item {
            items.push((json!({"type": "log"}), long_line.as_slice()));
        }
        items.push((
            json!({"type": "event", "length": payload.len()}),
            payload.as_bytes(),
        ));
        items.push((after.clone(), after_data.as_slice()));
        let body = envelope(json!({"event_id": id}), &items);
        assert!(body.len() > 6 << 20);
        let mut headers = vec![("x-sentry-auth", auth(&p.key))];
        let body = match encoding {
            Some(e) => {
                headers.push(("content-encoding", e.to_owned()));
                gzip(&body)
            }
            None => body,
        };
        let (st, _, v) = post(&s, &path, &headers, body).await;
        assert_eq!(st, StatusCode::OK, "{encoding:?}: {v}");
        assert_eq!(v, json!({ "id": id }));
        let got = stored(&s, &p, &id).await;
        // Exactly the item's bytes: compact JSON in its order reads back the same.
        assert_eq!(got["data"].to_string(), payload, "{encoding:?}");
        assert_eq!(got["message"], "with a screenshot");
    }
    assert_eq!(s.all_events(&p).await.len(), 3);
}

#[tokio::test]
async fn an_event_item_over_1_mib_or_an_envelope_over_100_mib_is_413() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let path = format!("/api/{}/envelope/", p.id);
    let headers = |gz: bool| {
        let mut h = vec![("x-sentry-auth", auth(&p.key))];
        if gz {
            h.push(("content-encoding", "gzip".to_owned()));
        }
        h
    };
    // A sized event item over 1 MiB, after a small attachment: refused by its header.
    let (small, small_data) = attachment(1000);
    let event = json!({"message": "x".repeat(1 << 20)}).to_string();
    let body = envelope(
        json!({}),
        &[
            (small, small_data.as_slice()),
            (
                json!({"type": "event", "length": event.len()}),
                event.as_bytes(),
            ),
        ],
    );
    let (st, _, v) = post(&s, &path, &headers(true), gzip(&body)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(
        v["error"],
        "envelope item 2 (event) is larger than 1 MiB (1048576 bytes)"
    );
    // Unsized and uncompressed, before a large attachment: refused once 1 MiB of it is
    // read (the rest is never read).
    let (large, large_data) = attachment(3 << 20);
    let body = envelope(
        json!({}),
        &[
            (json!({"type": "event"}), event.as_bytes()),
            (large, large_data.as_slice()),
        ],
    );
    let (st, _, v) = post(&s, &path, &headers(false), body).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(
        v["error"],
        "envelope item 1 (event) is larger than 1 MiB (1048576 bytes)"
    );

    // 101 MiB of zeros after decompression, sent as about 100 KiB of gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{}\n{\"type\":\"attachment\"}\n").unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..101 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let (st, _, v) = post(&s, &path, &headers(true), bomb).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(
        v["error"],
        "the envelope is larger than 100 MiB (104857600 bytes) after decompression"
    );
    assert_eq!(s.all_events(&p).await.len(), 0);

    // The other routes keep their 1 MiB: a 2 MiB /store/ body is refused.
    let (st, _, _) = post(
        &s,
        &format!("/api/{}/store/", p.id),
        &headers(false),
        json!({"message": "x".repeat(2 << 20)})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    // And a good envelope still goes in.
    let good = envelope(
        json!({}),
        &[(json!({"type": "event"}), br#"{"message":"ok"}"#)],
    );
    let (st, _, _) = post(&s, &path, &headers(false), good).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.all_events(&p).await.len(), 1);
}

#[tokio::test]
async fn over_the_rate_limit_the_sdk_is_told_to_back_off() {
    let s = TestServer::start_with(|c| c.rate_limit = 2).await;
    let p = s.project("app").await;
    let path = format!("/api/{}/envelope/", p.id);
    let ev = || {
        envelope(
            json!({}),
            &[(json!({"type": "event"}), br#"{"message":"m"}"#)],
        )
    };
    for _ in 0..2 {
        let (st, _, _) = post(&s, &path, &[("x-sentry-auth", auth(&p.key))], ev()).await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, headers, _) = post(&s, &path, &[("x-sentry-auth", auth(&p.key))], ev()).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(
        headers["x-sentry-rate-limits"].to_str().unwrap(),
        format!("{retry}::project")
    );
    assert_eq!(s.all_events(&p).await.len(), 2);
}

#[tokio::test]
async fn browsers_may_post_cross_origin() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let r = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            s.url(&format!("/api/{}/envelope/", p.id)),
        )
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}
