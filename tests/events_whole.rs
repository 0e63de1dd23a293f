//! SPEC §3.2: every event comes back whole, as it was received, from every ingest route.

mod common;

use common::{Creds, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;

async fn whole(s: &TestServer, p: &Creds, id: &str) -> Value {
    let (status, v) = s
        .get(&format!("/api/v1/projects/{}/events/{id}", p.id), &p.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["event"].clone()
}

/// A Sentry event with every part an SDK sends, and a field Mesher does not know.
fn rich_sentry_event(id: &str) -> Value {
    json!({
        "event_id": id,
        "level": "error",
        "platform": "python",
        "environment": "production",
        "release": "svc@2.1.0",
        "timestamp": "2026-12-01T10:00:00Z",
        "tags": {"region": "eu-west"},
        "user": {"id": "42", "email": "ada@example.com", "ip_address": "10.0.0.1"},
        "request": {"method": "POST", "url": "https://shop.example/checkout", "query_string": "a=1",
                    "headers": {"User-Agent": "Mozilla/5.0", "Accept": "text/html"}},
        "contexts": {"runtime": {"name": "CPython", "version": "3.11.7"},
                     "os": {"name": "Linux", "version": "6.1"},
                     "browser": {"name": "Chrome", "version": "120"},
                     "trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}},
        "breadcrumbs": {"values": [{"timestamp": 1764583200.5, "category": "boot", "message": "reading settings", "level": "info"}]},
        "exception": {"values": [
            {"type": "KeyError", "value": "'database_url'", "module": "builtins",
             "mechanism": {"type": "chained", "handled": true, "exception_id": 1, "parent_id": 0},
             "stacktrace": {"frames": [{"filename": "app.py", "function": "load_config", "lineno": 12, "colno": 5,
                 "in_app": true, "context_line": "    return settings[key]",
                 "pre_context": ["def load_config(settings):", "    key = \"database_url\""], "post_context": ["", ""],
                 "vars": {"settings": {"debug": true}, "key": "'database_url'"}}]}},
            {"type": "RuntimeError", "value": "could not start: configuration incomplete",
             "mechanism": {"type": "generic", "handled": true, "exception_id": 0},
             "stacktrace": {"frames": [
                 {"filename": "site-packages/framework/run.py", "function": "run", "lineno": 300, "in_app": false},
                 {"filename": "app.py", "function": "start", "lineno": 20, "in_app": true,
                  "context_line": "        raise RuntimeError(\"could not start: configuration incomplete\") from e",
                  "vars": {"settings": {"debug": true}}}]}}
        ]},
        "modules": {"sentry-sdk": "2.75.0", "flask": "3.0.0"},
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
        "extra": {"sys.argv": ["app.py"]},
        "a_field_mesher_does_not_know": {"nested": [1, 2, 3]}
    })
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

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

async fn sentry_post(s: &TestServer, p: &Creds, path: &str, gz: bool, body: Vec<u8>) {
    let mut req = s
        .http
        .post(s.url(path))
        .header(
            "X-Sentry-Auth",
            format!("Sentry sentry_key={}, sentry_version=7", p.key),
        )
        .body(if gz { gzip(&body) } else { body });
    if gz {
        req = req.header("Content-Encoding", "gzip");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn an_envelope_event_comes_back_equal_with_every_field() {
    let s = TestServer::start().await;
    let p = s.project("svc").await;
    let id = "0123456789abcdef0123456789abcdef";
    let event = rich_sentry_event(id);
    let payload = event.to_string();
    let body = envelope(
        json!({"event_id": id, "sent_at": "2026-12-01T10:00:01Z"}),
        &[
            (
                json!({"type": "event", "length": payload.len()}),
                payload.as_bytes(),
            ),
            (
                json!({"type": "attachment", "length": 3, "filename": "a.txt"}),
                b"abc",
            ),
        ],
    );
    sentry_post(&s, &p, &format!("/api/{}/envelope/", p.id), false, body).await;
    let got = whole(&s, &p, id).await;
    assert_eq!(got["data"], event, "the event exactly as sent");
    // The listed fields are there too, and the dashed form of the id finds it.
    assert_eq!(got["id"], id);
    assert_eq!(
        got["title"],
        "RuntimeError: could not start: configuration incomplete"
    );
    let dashed = "01234567-89ab-cdef-0123-456789abcdef";
    assert_eq!(whole(&s, &p, dashed).await["data"], event);
    s.stop().await;
}

#[tokio::test]
async fn store_gzip_native_bulk_and_websocket_events_come_back_whole() {
    let s = TestServer::start_with(|c| c.rate_limit = 0).await;
    let p = s.project("svc").await;

    let stored = rich_sentry_event("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    sentry_post(
        &s,
        &p,
        &format!("/api/{}/store/", p.id),
        true,
        stored.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        whole(&s, &p, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await["data"],
        stored
    );

    let native = json!({"event_id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "message": "disk full",
        "tags": {"host": "db-1"}, "extra": {"free_bytes": 0}, "custom": {"kept": true}});
    let (status, _) = s.send_event(&p, &native).await;
    assert_eq!(status, 202);
    assert_eq!(
        whole(&s, &p, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb").await["data"],
        native
    );

    let bulk = json!([
        {"event_id": "cccccccccccccccccccccccccccccccc", "message": "one", "z": 1, "a": 2},
        {"event_id": "dddddddddddddddddddddddddddddddd", "message": "two", "nested": {"b": [1, {"c": null}]}}
    ]);
    let (status, _) = s.post("/api/v1/events/bulk", &p.key, &bulk).await;
    assert_eq!(status, 202);
    assert_eq!(
        whole(&s, &p, "cccccccccccccccccccccccccccccccc").await["data"],
        bulk[0]
    );
    assert_eq!(
        whole(&s, &p, "dddddddddddddddddddddddddddddddd").await["data"],
        bulk[1]
    );

    let (mut ws, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/ingest?sentry_key={}", p.key)))
            .await
            .unwrap();
    let framed = json!({"event_id": "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "message": "over ws", "extra": {"k": "v"}});
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        framed.to_string(),
    ))
    .await
    .unwrap();
    let answer = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(answer.to_text().unwrap().contains("accepted"), "{answer}");
    assert_eq!(
        whole(&s, &p, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee").await["data"],
        framed
    );
    s.stop().await;
}

#[tokio::test]
async fn unknown_foreign_and_malformed_ids_are_refused() {
    let s = TestServer::start().await;
    let a = s.project("a").await;
    let b = s.project("b").await;
    let id = "ffffffffffffffffffffffffffffffff";
    let (status, _) = s
        .send_event(&a, &json!({"event_id": id, "message": "mine"}))
        .await;
    assert_eq!(status, 202);
    let srv = &s;
    let get = |project: i64, id: &str, token: &str| {
        let path = format!("/api/v1/projects/{project}/events/{id}");
        let token = token.to_owned();
        async move { srv.get(&path, &token).await }
    };
    let (status, v) = get(a.id, "00000000000000000000000000000000", &a.token).await;
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not found"));
    // B's token on B's route: the event is A's, so B has no such event.
    assert_eq!(get(b.id, id, &b.token).await.0, 404);
    // B's token on A's route: forbidden.
    assert_eq!(get(a.id, id, &b.token).await.0, 403);
    assert_eq!(get(a.id, id, "wrong").await.0, 401);
    let (status, v) = get(a.id, "not-an-id", &a.token).await;
    assert_eq!(status, 400);
    assert_eq!(
        v["error"],
        "an event id is 32 hex digits or a UUID, got 'not-an-id'"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_python_sdk_chain_locals_and_context_survive() {
    let Ok(python) = std::env::var("MESHER_TEST_PYTHON") else {
        panic!("MESHER_TEST_PYTHON is not set: run the tests with scripts/test.sh");
    };
    let s = TestServer::start().await;
    let p = s.project("svc").await;
    let id = common::sdk::run_app(&python, "chained.py", &p.dsn)
        .await
        .trim()
        .to_owned();
    let data = whole(&s, &p, &id).await["data"].clone();
    let chain = data["exception"]["values"].as_array().expect("a chain");
    let types: Vec<&str> = chain.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["KeyError", "RuntimeError"],
        "every exception of the chain"
    );
    let frames = chain[0]["stacktrace"]["frames"].as_array().unwrap();
    let crash = frames.last().unwrap();
    assert_eq!(crash["function"], "load_config");
    assert_eq!(
        crash["context_line"].as_str().unwrap().trim(),
        "return settings[key]"
    );
    assert!(
        crash["pre_context"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    assert_eq!(crash["vars"]["key"], "'database_url'", "local variables");
    assert_eq!(data["user"]["email"], "ada@example.com");
    assert_eq!(data["tags"]["region"], "eu-west");
    assert!(
        data["contexts"]["runtime"]["name"].is_string(),
        "{}",
        data["contexts"]
    );
    assert!(data["contexts"]["trace"]["trace_id"].is_string());
    assert!(data["modules"]["sentry-sdk"].is_string(), "modules");
    let crumbs = data["breadcrumbs"]["values"].as_array().unwrap();
    assert!(crumbs.iter().any(|b| b["message"] == "reading settings"));
    s.stop().await;
}

/// The number tokens of a JSON text, in order, as written (strings skipped).
fn number_tokens(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push(&text[start..i]);
            }
            _ => i += 1,
        }
    }
    out
}

/// Numbers that a parse into `f64` or `u64`/`i64` and back would change: random floats
/// (shortest round-trip text), 2^63, 2^64+1, -0.0, 1e300, long decimals.
fn numbers(seed: u64) -> String {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out: Vec<String> = [
        "908260.4524125041",
        "9223372036854775808",
        "18446744073709551617",
        "-0.0",
        "1e300",
        "1E+2",
        "0.1000000000000000055511151231257827021181583404541015625",
        "3.141592653589793238462643383279502884197169399375105820974944",
        "123456789012345678901234567890",
        "-9223372036854775809",
        "1.0",
        "2.50",
    ]
    .map(str::to_owned)
    .to_vec();
    for _ in 0..200 {
        let bits = next();
        let f = match bits % 3 {
            0 => (next() % 10_000_000) as f64 / 7.0 + (next() % 1000) as f64 * 1e-9,
            1 => f64::from_bits(bits >> 2 | 0x3000_0000_0000_0000),
            _ => (next() as f64) * 1e-12,
        };
        out.push(format!("{f:?}"));
    }
    format!("[{}]", out.join(", "))
}

/// `GET .../events/<id>`'s `data` as its text, exactly as answered.
async fn data_text(s: &TestServer, p: &Creds, id: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Answer {
        event: Whole,
    }
    #[derive(serde::Deserialize)]
    struct Whole {
        data: Box<serde_json::value::RawValue>,
    }
    let r = s
        .http
        .get(s.url(&format!("/api/v1/projects/{}/events/{id}", p.id)))
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Answer = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    answer.event.data.get().to_owned()
}

#[tokio::test]
async fn numbers_come_back_digit_for_digit_from_every_route() {
    let s = TestServer::start_with(|c| c.rate_limit = 0).await;
    let p = s.project("svc").await;
    let native = |id: &str, seed: u64| {
        format!(
            r#"{{"event_id": "{id}", "message": "m", "extra": {{"n": {}, "f": 908260.4524125041}}, "breadcrumbs": [{{"timestamp": 1764583200.123456789, "data": {{"v": {}}}}}], "custom": {}}}"#,
            numbers(seed),
            numbers(seed + 1),
            numbers(seed + 2)
        )
    };
    let sentry = |id: &str, seed: u64| {
        format!(
            r#"{{"event_id": "{id}", "message": "m", "extra": {{"n": {}}}, "contexts": {{"metrics": {{"v": {}}}}}, "breadcrumbs": {{"values": [{{"timestamp": 1764583200.987654321}}]}}}}"#,
            numbers(seed),
            numbers(seed + 1)
        )
    };
    let mut sent: Vec<(String, String)> = Vec::new();

    let id = format!("{:032x}", 1);
    let body = native(&id, 10);
    let r = s
        .http
        .post(s.url("/api/v1/events"))
        .bearer_auth(&p.key)
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    sent.push((id, body));

    let (a, b) = (format!("{:032x}", 2), format!("{:032x}", 3));
    let (ea, eb) = (native(&a, 20), native(&b, 30));
    let r = s
        .http
        .post(s.url("/api/v1/events/bulk"))
        .bearer_auth(&p.key)
        .body(format!("[ {ea} ,\n{eb}]"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    sent.push((a, ea));
    sent.push((b, eb));

    let (mut ws, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/ingest?sentry_key={}", p.key)))
            .await
            .unwrap();
    let id = format!("{:032x}", 4);
    let framed = native(&id, 40);
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        framed.clone(),
    ))
    .await
    .unwrap();
    let answer = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(answer.to_text().unwrap().contains("accepted"), "{answer}");
    sent.push((id, framed));

    let id = format!("{:032x}", 5);
    let payload = sentry(&id, 50);
    let body = envelope(
        json!({"event_id": id}),
        &[(
            json!({"type": "event", "length": payload.len()}),
            payload.as_bytes(),
        )],
    );
    sentry_post(&s, &p, &format!("/api/{}/envelope/", p.id), true, body).await;
    sent.push((id, payload));

    let id = format!("{:032x}", 6);
    let stored = sentry(&id, 60);
    sentry_post(
        &s,
        &p,
        &format!("/api/{}/store/", p.id),
        false,
        stored.clone().into_bytes(),
    )
    .await;
    sent.push((id, stored));

    for (id, text) in &sent {
        let tokens = number_tokens(text);
        assert!(tokens.len() > 400, "{}", tokens.len());
        // Parsed into a tree and written out again, these numbers change (which is what
        // this test guards against): a float such as 908260.4524125041 loses a digit.
        let rebuilt: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_ne!(number_tokens(&rebuilt.to_string()), tokens);
        let got = data_text(&s, &p, id).await;
        assert_eq!(number_tokens(&got), tokens, "event {id}");
        assert_eq!(got, text.trim(), "event {id}: the text as sent");
    }
    s.stop().await;
}
