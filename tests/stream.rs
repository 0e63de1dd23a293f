//! SPEC §4 with real WebSocket clients against the real server.

mod common;

use common::ws::{Ws, next_json as recv, next_of as recv_type};
use common::{Creds, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn connect(s: &TestServer, p: &Creds, query: &str) -> (Ws, Value) {
    let url = s.ws_url(&format!(
        "/stream/projects/{}?token={}{query}",
        p.id, p.token
    ));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("stream connects");
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "subscribed", "{hello}");
    (ws, hello)
}

async fn say(ws: &mut Ws, v: Value) -> Value {
    ws.send(Message::text(v.to_string())).await.unwrap();
    loop {
        let r = recv(ws).await;
        if !matches!(r["type"].as_str(), Some("event" | "issue" | "issue_count")) {
            return r;
        }
    }
}

#[tokio::test]
async fn events_issues_and_counts_arrive_live() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let (mut ws, hello) = connect(&s, &p, "").await;
    assert_eq!(hello["project_id"], p.id);
    assert_eq!(hello["seq"], 0);
    assert!(hello["conn_id"].as_str().unwrap().len() > 1);
    let (_, v) = s
        .send_event(&p, &json!({"message": "live one", "tags": {"k": "v"}}))
        .await;
    let issue = recv(&mut ws).await;
    assert_eq!(
        (issue["type"].clone(), issue["action"].clone()),
        (json!("issue"), json!("new"))
    );
    assert_eq!(issue["issue"]["id"], v["issue_id"]);
    let event = recv(&mut ws).await;
    assert_eq!(event["type"], "event");
    assert_eq!(event["seq"], 1);
    assert_eq!(event["issue_id"], v["issue_id"]);
    assert_eq!(event["event"]["id"], v["id"]);
    assert_eq!(event["event"]["message"], "live one");
    assert_eq!(event["event"]["tags"], json!({"k": "v"}));
    let count = recv(&mut ws).await;
    assert_eq!(
        count,
        json!({"type": "issue_count", "project_id": p.id, "count": 1})
    );
    s.stop().await;
}

#[tokio::test]
async fn refused_without_the_right_token() {
    let s = TestServer::start().await;
    let a = s.project("a").await;
    let b = s.project("b").await;
    // (Without any token the upgrade goes ahead: the first message must carry it.)
    for (url, status) in [
        (
            s.ws_url(&format!("/stream/projects/{}?token=nope", a.id)),
            401,
        ),
        (
            s.ws_url(&format!("/stream/projects/{}?token={}", a.id, b.token)),
            403,
        ),
        (
            s.ws_url(&format!(
                "/stream/projects/{}?token={}&level=loud",
                a.id, a.token
            )),
            400,
        ),
    ] {
        match tokio_tungstenite::connect_async(url).await.unwrap_err() {
            tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), status),
            other => panic!("expected HTTP {status}, got {other}"),
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn filters_ping_and_errors_keep_the_connection() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let (mut ws, hello) = connect(&s, &p, "&level=error").await;
    assert_eq!(hello["filters"], json!({"level": ["error"]}));
    assert_eq!(
        say(&mut ws, json!({"type": "ping"})).await,
        json!({"type": "pong"})
    );
    let r = say(
        &mut ws,
        json!({"type": "subscribe", "filters": {"min_level": "warning", "environment": "prod"}}),
    )
    .await;
    assert_eq!(
        r,
        json!({"type": "filters_updated", "filters": {"min_level": ["warning"], "environment": ["prod"]}})
    );
    let r = say(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(r["type"], "error");
    ws.send(Message::text("{oops")).await.unwrap();
    assert!(
        recv(&mut ws).await["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    let r = say(
        &mut ws,
        json!({"type": "subscribe", "filters": {"level": "nope"}}),
    )
    .await;
    assert_eq!(r["type"], "error");

    for (m, level, env) in [
        ("skip info", "info", "prod"),
        ("skip env", "error", "dev"),
        ("wanted", "warning", "prod"),
    ] {
        s.send_event(
            &p,
            &json!({"message": m, "level": level, "environment": env}),
        )
        .await;
    }
    let e = recv_type(&mut ws, "event").await;
    assert_eq!(
        e["event"]["message"], "wanted",
        "non-matching events stayed out"
    );
    s.stop().await;
}

#[tokio::test]
async fn origin_is_not_echoed_and_others_see_issue_changes() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let (_, v) = s.send_event(&p, &json!({"message": "to resolve"})).await;
    let issue = v["issue_id"].as_i64().unwrap();
    let (mut a, hello_a) = connect(&s, &p, "").await;
    let (mut b, _) = connect(&s, &p, "").await;
    let r = s
        .http
        .post(s.url(&format!("/api/v1/issues/{issue}/resolve")))
        .bearer_auth(&p.token)
        .header("X-Mesher-Origin", hello_a["conn_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = recv(&mut b).await;
    assert_eq!(
        (got["action"].clone(), got["issue"]["status"].clone()),
        (json!("resolved"), json!("resolved"))
    );
    assert_eq!(recv(&mut b).await["count"], 0);
    // A gets the count but not its own change.
    let first_for_a = recv(&mut a).await;
    assert_eq!(first_for_a["type"], "issue_count", "{first_for_a}");
    s.stop().await;
}

#[tokio::test]
async fn since_replays_then_goes_live_without_gap_or_duplicate() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    for i in 1..=5 {
        s.send_event(&p, &json!({"message": format!("old {i}")}))
            .await;
    }
    let (mut ws, hello) = connect(&s, &p, "&since=2").await;
    assert_eq!(hello["seq"], 5);
    let key = p.key.clone();
    let (http, url) = (s.http.clone(), s.url("/api/v1/events"));
    let writer = tokio::spawn(async move {
        for i in 6..=10 {
            http.post(&url)
                .bearer_auth(&key)
                .json(&json!({"message": format!("new {i}")}))
                .send()
                .await
                .unwrap();
        }
    });
    let mut seqs = Vec::new();
    while seqs.len() < 8 {
        seqs.push(recv_type(&mut ws, "event").await["seq"].as_i64().unwrap());
    }
    writer.await.unwrap();
    assert_eq!(seqs, (3..=10).collect::<Vec<_>>());
    s.stop().await;
}

/// A stream client whose socket receive buffer is tiny, so that not reading soon blocks
/// the server's writes.
async fn connect_small_buffer(s: &TestServer, p: &Creds) -> (Ws, Value) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(s.addr).await.unwrap();
    let url = s.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token));
    let (mut ws, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
    let hello = recv(&mut ws).await;
    (ws, hello)
}

async fn flood(s: &TestServer, p: &Creds, events: usize, message_len: usize) {
    for chunk in 0..events / 100 {
        let batch: Vec<Value> = (0..100)
            .map(|i| json!({"message": format!("flood {} {}", chunk * 100 + i, "x".repeat(message_len))}))
            .collect();
        let (status, v) = s.post("/api/v1/events/bulk", &p.key, &json!(batch)).await;
        assert_eq!(status, 202, "{v}");
    }
}

#[tokio::test]
async fn a_slow_client_costs_the_fast_one_nothing_and_is_told_what_it_missed() {
    let s = TestServer::start_with(|c| {
        c.rate_limit = 0;
        c.max_buffer = 300;
    })
    .await;
    let p = s.project("app").await;
    let (mut fast, _) = connect(&s, &p, "").await;
    let (mut slow, slow_hello) = connect_small_buffer(&s, &p).await;
    let slow_id = s
        .state()
        .hub()
        .find(slow_hello["conn_id"].as_str().unwrap())
        .unwrap();

    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        let mut total = 0usize;
        while seqs.len() < 5000 {
            let v = recv(&mut fast).await;
            assert_ne!(v["type"], "lagged", "the fast client never lags");
            total += 1;
            if v["type"] == "event" {
                seqs.push(v["seq"].as_i64().unwrap());
            }
        }
        (seqs, total, fast)
    });
    let mut max_depth = 0;
    for chunk in 0..50 {
        let batch: Vec<Value> = (0..100).map(|i| json!({"message": format!("slow test {} {}", chunk * 100 + i, "y".repeat(200))})).collect();
        assert_eq!(
            s.post("/api/v1/events/bulk", &p.key, &json!(batch)).await.0,
            202
        );
        max_depth = max_depth.max(s.state().hub().outbox_depth(slow_id).unwrap_or(0));
    }
    let (seqs, fast_total, mut fast) = reader.await.unwrap();
    assert_eq!(
        seqs,
        (1..=5000).collect::<Vec<_>>(),
        "every event, in order"
    );
    assert!(
        max_depth <= 300,
        "the slow outbox never holds more than max_buffer ({max_depth})"
    );
    assert!(max_depth > 0);
    // Trailing count messages may still be on their way to the fast client.
    let fast_total = fast_total + {
        let mut extra = 0;
        while let Ok(Some(Ok(Message::Text(_)))) =
            tokio::time::timeout(std::time::Duration::from_millis(600), fast.next()).await
        {
            extra += 1;
        }
        extra
    };

    // The slow client reads now: what it gets plus what it was told it missed is everything.
    let mut received = 0usize;
    let mut dropped = 0u64;
    let mut last_seq = 0;
    while (received as u64 + dropped) < fast_total as u64 {
        let v = recv(&mut slow).await;
        if v["type"] == "lagged" {
            dropped += v["dropped"].as_u64().unwrap();
        } else {
            received += 1;
            if v["type"] == "event" {
                let seq = v["seq"].as_i64().unwrap();
                assert!(seq > last_seq, "in order, no duplicates");
                last_seq = seq;
            }
        }
    }
    assert!(dropped > 0, "the slow client was told it lagged");
    assert_eq!(received as u64 + dropped, fast_total as u64);
    assert_eq!(last_seq, 5000, "the newest messages survive");
    s.stop().await;
}

#[tokio::test]
async fn a_stuck_client_is_closed_by_the_write_timeout() {
    let s = TestServer::start_with(|c| {
        c.rate_limit = 0;
        c.write_timeout_ms = 300;
    })
    .await;
    let p = s.project("app").await;
    let (_stuck, _) = connect_small_buffer(&s, &p).await;
    let (mut reader, _) = connect(&s, &p, "").await;
    s.wait_connections(2).await;
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = reader.next().await {} });
    flood(&s, &p, 1000, 8000).await;
    s.wait_connections(1).await;
    drain.abort();
    s.stop().await;
}

#[tokio::test]
async fn a_vanished_connection_is_removed() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let (ws, _) = connect(&s, &p, "").await;
    s.wait_connections(1).await;
    // Drop the TCP stream without a close frame.
    drop(ws);
    s.wait_connections(0).await;
    s.stop().await;
}

#[tokio::test]
async fn heartbeat_closes_a_client_that_never_answers_pings() {
    let s = TestServer::start_with(|c| {
        c.heartbeat_interval_ms = 100;
        c.heartbeat_timeout_ms = 100;
    })
    .await;
    let p = s.project("app").await;
    // This one reads (tungstenite answers pings while reading); the other never reads.
    let (mut alive, _) = connect(&s, &p, "").await;
    let (_silent, _) = connect(&s, &p, "").await;
    s.wait_connections(2).await;
    let keep = tokio::spawn(async move { while let Some(Ok(_)) = alive.next().await {} });
    s.wait_connections(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        s.state().hub().connections(),
        1,
        "the answering client stays"
    );
    keep.abort();
    s.stop().await;
}

async fn close_code_after(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return Some(f.code.into()),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007_and_oversized_with_1009() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let bad = || {
        Message::Frame(Frame::message(
            vec![b'{', 0xff, 0xfe, b'}'],
            OpCode::Data(Data::Text),
            true,
        ))
    };

    let (mut ws, _) = connect(&s, &p, "").await;
    ws.send(bad()).await.unwrap();
    assert_eq!(close_code_after(&mut ws).await, Some(1007));
    let (mut ws, _) = connect(&s, &p, "").await;
    ws.send(Message::text(format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    )))
    .await
    .unwrap();
    assert_eq!(close_code_after(&mut ws).await, Some(1009));

    let (mut ingest, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/ingest?sentry_key={}", p.key)))
            .await
            .unwrap();
    ingest.send(bad()).await.unwrap();
    assert_eq!(close_code_after(&mut ingest).await, Some(1007));
    s.stop().await;
}

#[tokio::test]
async fn three_projects_no_cross_talk_and_counts_end_true() {
    let s = TestServer::start_with(|c| c.rate_limit = 0).await;
    let mut clients = Vec::new();
    for name in ["one", "two", "three"] {
        let p = s.project(name).await;
        let (ws, _) = connect(&s, &p, "").await;
        clients.push((p, ws));
    }
    // A burst of distinct issues in project one only; others get one event each.
    let (p1, _) = &clients[0];
    let burst: Vec<Value> = (0..40).map(|i| json!({"message": format!("distinct issue {}", ["a","b","c","d","e","f","g","h"][i % 8]), "fingerprint": [format!("fp-{i}")]})).collect();
    assert_eq!(
        s.post("/api/v1/events/bulk", &p1.key, &json!(burst))
            .await
            .0,
        202
    );
    for (p, _) in &clients[1..] {
        s.send_event(p, &json!({"message": format!("only for {}", p.id)}))
            .await;
    }
    // Project one: counts are coalesced but the last one is the true value, 40.
    let (p1, ws1) = &mut clients[0];
    let mut last_count = 0;
    let mut events = 0;
    while last_count != 40 || events != 40 {
        let v = recv(ws1).await;
        assert_eq!(
            v.get("project_id").cloned().unwrap_or(json!(p1.id)),
            json!(p1.id)
        );
        match v["type"].as_str().unwrap() {
            "issue_count" => last_count = v["count"].as_i64().unwrap(),
            "event" => events += 1,
            _ => {}
        }
    }
    for (p, ws) in &mut clients[1..] {
        let e = recv_type(ws, "event").await;
        assert_eq!(e["event"]["message"], format!("only for {}", p.id));
        assert_eq!(recv_type(ws, "issue_count").await["count"], 1);
    }
    s.stop().await;
}

#[tokio::test]
async fn client_pings_get_pongs_and_a_close_is_answered_with_its_code() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let (mut ws, _) = connect(&s, &p, "").await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Pong(payload))) => break payload,
            Some(Ok(_)) => {}
            other => panic!("expected a pong, got {other:?}"),
        }
    };
    assert_eq!(
        &pong[..],
        b"are you there",
        "the pong carries the ping's payload"
    );
    // A WebSocket ping is not a JSON ping: the JSON one is still answered as before.
    assert_eq!(
        say(&mut ws, json!({"type": "ping"})).await,
        json!({"type": "pong"})
    );

    ws.send(Message::Close(Some(
        tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 4000.into(),
            reason: "done here".into(),
        },
    )))
    .await
    .unwrap();
    assert_eq!(
        close_code_after(&mut ws).await,
        Some(4000),
        "the code is echoed"
    );
    s.wait_connections(0).await;
    s.stop().await;
}

#[tokio::test]
async fn a_plain_get_of_the_stream_is_told_to_upgrade() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let (status, body) = s
        .get(
            &format!("/stream/projects/{}?token={}", p.id, p.token),
            &p.token,
        )
        .await;
    assert_eq!(status, 400);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("Upgrade: websocket"), "{error}");
    s.stop().await;
}

#[tokio::test]
async fn a_burst_arrives_whole_and_in_order_on_every_connection() {
    let s = TestServer::start_with(|c| c.rate_limit = 0).await;
    let p = s.project("app").await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(connect(&s, &p, "&level=error").await.0);
    }
    // Forty requests at once, from several tasks: the fan-out writes many events per
    // write, and each client must still see each event once, in seq order.
    let mut posts = Vec::new();
    for i in 0..40 {
        let (url, key) = (s.url("/api/v1/events"), p.key.clone());
        posts.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"message": format!("burst {i}"), "level": "error"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }));
    }
    for post in posts {
        post.await.unwrap();
    }
    for ws in &mut clients {
        let mut seqs = Vec::new();
        while seqs.len() < 40 {
            let v = recv_type(ws, "event").await;
            seqs.push(v["seq"].as_i64().unwrap());
        }
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    }
    s.stop().await;
}

/// Opens the stream without a token in the URL (the upgrade succeeds).
async fn connect_bare(s: &TestServer, project: i64) -> Ws {
    let url = s.ws_url(&format!("/stream/projects/{project}"));
    let (ws, response) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the upgrade goes ahead without a token");
    assert_eq!(response.status(), 101);
    ws
}

/// The close frame's code and reason, within `limit`.
async fn closed_with(ws: &mut Ws, limit: std::time::Duration) -> (u16, String) {
    let started = std::time::Instant::now();
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), ws.next())
            .await
            .unwrap_or_else(|_| panic!("not closed within {limit:?}"))
        {
            Some(Ok(Message::Close(Some(f)))) => return (f.code.into(), f.reason.to_string()),
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_ne!(v["type"], "subscribed", "served without a valid token: {v}");
            }
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_token_sent_as_the_first_message_opens_the_stream() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let mut ws = connect_bare(&s, p.id).await;
    ws.send(Message::text(
        json!({"type": "auth", "token": p.token}).to_string(),
    ))
    .await
    .unwrap();
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "subscribed", "{hello}");
    assert_eq!(hello["project_id"], p.id);
    s.send_event(&p, &json!({"message": "after auth"})).await;
    let event = recv_type(&mut ws, "event").await;
    assert_eq!(event["event"]["message"], "after auth");
    assert_eq!(
        say(&mut ws, json!({"type": "auth", "token": p.token})).await["error"],
        "this connection is already authenticated"
    );

    // The auth message and a subscribe in one write: both are answered, in order.
    let mut ws = connect_bare(&s, p.id).await;
    let both = [
        json!({"type": "auth", "token": p.token}),
        json!({"type": "subscribe", "filters": {"level": "fatal"}}),
    ];
    for m in both {
        ws.feed(Message::text(m.to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
    assert_eq!(recv(&mut ws).await["type"], "subscribed");
    let updated = recv(&mut ws).await;
    assert_eq!(updated["type"], "filters_updated", "{updated}");
    assert_eq!(updated["filters"]["level"], json!(["fatal"]));
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_auth_message_closes_the_stream_with_1008() {
    let deadline = std::time::Duration::from_millis(400);
    let s = TestServer::start_with(|c| c.stream_auth_timeout = deadline).await;
    let a = s.project("a").await;
    let b = s.project("b").await;
    let cases = [
        (
            json!({"type": "auth", "token": "0".repeat(64)}),
            "invalid project token",
        ),
        (
            json!({"type": "auth", "token": "not a token"}),
            "invalid project token",
        ),
        (
            json!({"type": "auth", "token": b.token}),
            "does not belong to project",
        ),
        (
            json!({"type": "subscribe", "filters": {}}),
            "first message must be",
        ),
        (json!({"type": "auth"}), "first message must be"),
    ];
    for (first, reason) in cases {
        let mut ws = connect_bare(&s, a.id).await;
        ws.send(Message::text(first.to_string())).await.unwrap();
        let (code, why) = closed_with(&mut ws, WAIT).await;
        assert_eq!(code, 1008, "{first}: {why}");
        assert!(why.contains(reason), "{first}: {why}");
    }
    let mut ws = connect_bare(&s, a.id).await;
    ws.send(Message::text("not JSON")).await.unwrap();
    assert_eq!(closed_with(&mut ws, WAIT).await.0, 1008);

    // Nothing sent: closed once the deadline passes, not before.
    let started = std::time::Instant::now();
    let mut ws = connect_bare(&s, a.id).await;
    let (code, why) = closed_with(&mut ws, WAIT).await;
    assert_eq!(code, 1008, "{why}");
    assert!(why.contains("no auth message"), "{why}");
    let waited = started.elapsed();
    assert!(
        waited >= deadline && waited < deadline * 5,
        "closed after {waited:?}, the deadline is {deadline:?}"
    );
    // A ping while waiting is answered; it does not stand for the auth message.
    let started = std::time::Instant::now();
    let mut ws = connect_bare(&s, a.id).await;
    ws.send(Message::Ping(b"still here".to_vec().into()))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Pong(p))) => assert_eq!(&p[..], b"still here"),
        other => panic!("expected a pong, got {other:?}"),
    }
    assert_eq!(closed_with(&mut ws, WAIT).await.0, 1008);
    assert!(started.elapsed() >= deadline);
    assert_eq!(
        s.state().hub().connections(),
        0,
        "no refused connection joined a room"
    );
    s.stop().await;
}
