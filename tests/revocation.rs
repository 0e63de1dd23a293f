//! SPEC §8, revocation: `mesher project rotate-token` and `rotate-key` end the old secret
//! within 5 s, and close what it opened (streams, `/ingest` sockets) with 1008. One SQLite
//! node here; two PostgreSQL nodes in tests/nodes.rs.

mod common;

use common::ws::{Ws, next_json, next_of};
use common::{Creds, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The contract's bound.
const WITHIN: Duration = Duration::from_secs(5);

/// A stream of `p` opened with its token in the URL, or sent as the first message.
async fn stream(s: &TestServer, p: &Creds, token_as_message: bool) -> Ws {
    let url = if token_as_message {
        s.ws_url(&format!("/stream/projects/{}", p.id))
    } else {
        s.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token))
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("stream connects");
    if token_as_message {
        let auth = json!({"type": "auth", "token": p.token}).to_string();
        ws.send(Message::text(auth)).await.unwrap();
    }
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    ws
}

/// Waits (until `deadline`) for the close frame; answers its code and reason.
async fn closed_by(ws: &mut Ws, deadline: Instant) -> (u16, String) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("the connection was still open at the deadline"),
            Ok(Some(Ok(Message::Close(Some(f))))) => return (f.code.into(), f.reason.to_string()),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// `GET` of the project's issues with `token`: its status.
async fn read_issues(s: &TestServer, p: &Creds, token: &str) -> StatusCode {
    s.http
        .get(s.url(&format!("/api/v1/projects/{}/issues", p.id)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// `POST /api/v1/events` with `key`: its status.
async fn send(s: &TestServer, key: &str, message: &str) -> StatusCode {
    common::post_event(&s.http, &s.base, key, &json!({ "message": message }))
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn rotate_token_refuses_the_old_token_and_closes_its_streams_with_1008_within_5s() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let other = s.project("other").await;
    let mut by_url = stream(&s, &p, false).await;
    let mut by_message = stream(&s, &p, true).await;
    let mut others = stream(&s, &other, true).await;
    assert_eq!(read_issues(&s, &p, &p.token).await, StatusCode::OK);

    let rotated = mesher::admin::rotate_token(&s.db, p.id).await.unwrap();
    let rotated_at = Instant::now();
    let new_token = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, p.token);
    for ws in [&mut by_url, &mut by_message] {
        let (code, reason) = closed_by(ws, rotated_at + WITHIN).await;
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.contains("revoked"), "{reason}");
    }
    assert_eq!(
        read_issues(&s, &p, &p.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(rotated_at.elapsed() < WITHIN);
    assert_eq!(read_issues(&s, &p, &new_token).await, StatusCode::OK);

    // The old token opens nothing new: refused at the upgrade, or closed after its message.
    let old = s.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token));
    match tokio_tungstenite::connect_async(old).await.unwrap_err() {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 401),
        e => panic!("expected 401, got {e}"),
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/stream/projects/{}", p.id)))
            .await
            .unwrap();
    let auth = json!({"type": "auth", "token": p.token}).to_string();
    ws.send(Message::text(auth)).await.unwrap();
    assert_eq!(closed_by(&mut ws, Instant::now() + WITHIN).await.0, 1008);

    // The new token streams; another project's stream was left alone.
    let renewed = Creds {
        token: new_token,
        ..p.clone()
    };
    let mut fresh = stream(&s, &renewed, true).await;
    assert_eq!(
        send(&s, &p.key, "after rotation").await,
        StatusCode::ACCEPTED
    );
    let e = next_of(&mut fresh, "event").await;
    assert_eq!(e["event"]["message"], "after rotation");
    assert_eq!(
        send(&s, &other.key, "still here").await,
        StatusCode::ACCEPTED
    );
    let e = next_of(&mut others, "event").await;
    assert_eq!(e["event"]["message"], "still here");
    s.stop().await;
}

#[tokio::test]
async fn rotate_key_refuses_the_old_key_and_closes_its_ingest_sockets_with_1008_within_5s() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let mut watching = stream(&s, &p, true).await;
    let mut request = s.ws_url("/ingest").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", p.key).parse().unwrap(),
    );
    let (mut ingest, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ingest
        .send(Message::text(
            json!({"message": "over the socket"}).to_string(),
        ))
        .await
        .unwrap();
    let answer: Value = match ingest.next().await.unwrap().unwrap() {
        Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("expected an answer, got {other:?}"),
    };
    assert_eq!(answer["status"], "accepted", "{answer}");

    let rotated = mesher::admin::rotate_key(&s.db, p.id, &s.addr.to_string())
        .await
        .unwrap();
    let rotated_at = Instant::now();
    let new_key = rotated["ingest_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, p.key);
    assert_eq!(
        rotated,
        json!({
            "id": p.id, "name": "shop", "ingest_key": new_key,
            "dsn": format!("http://{new_key}@{}/{}", s.addr, p.id),
        }),
        "printed as `project create` prints, without the token"
    );
    let (code, reason) = closed_by(&mut ingest, rotated_at + WITHIN).await;
    assert_eq!(code, 1008, "{reason}");
    assert_eq!(send(&s, &p.key, "old key").await, StatusCode::UNAUTHORIZED);
    assert!(rotated_at.elapsed() < WITHIN);
    let sentry_style = s
        .http
        .post(s.url(&format!("/api/{}/store/?sentry_key={}", p.id, p.key)))
        .json(&json!({"message": "old key, Sentry's way"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sentry_style.status(), StatusCode::UNAUTHORIZED);

    // The new key works at once; the token (and its stream) did not change.
    assert_eq!(send(&s, &new_key, "new key").await, StatusCode::ACCEPTED);
    let e = next_of(&mut watching, "event").await;
    assert_eq!(e["event"]["message"], "over the socket");
    let e = next_of(&mut watching, "event").await;
    assert_eq!(e["event"]["message"], "new key");
    assert_eq!(read_issues(&s, &p, &p.token).await, StatusCode::OK);
    s.stop().await;
}
