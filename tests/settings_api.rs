//! The two routes the dashboard's settings page adds (SPEC §9): a signed-in user changes
//! their password (`PUT /api/v1/me/password`), and a webhook gets one test delivery now
//! (`POST /api/v1/webhooks/<id>/test`), signed as real ones and held to the same
//! forbidden-address rules (SPEC §8).

mod common;

use common::TestServer;
use common::receiver::{Receiver, Reply, allow_loopback};
use hmac::{Hmac, Mac};
use mesher::model::IssueAction;
use mesher::model::webhook::{WebhookAdded, WebhookFormat};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "the first long password";
const NEW_PASSWORD: &str = "a second, longer password";

async fn user(s: &TestServer, email: &str, admin: bool) {
    mesher::people::create_user(&s.db, email, admin, Some(PASSWORD.into()))
        .await
        .expect("user created");
}

async fn cookie_of(s: &TestServer, email: &str, password: &str) -> String {
    let (status, body, cookie) = s.sign_in(email, password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cookie.expect("a session cookie")
}

/// Sends `req` with the session cookie and this server's `Origin`; status and JSON body.
async fn as_user(s: &TestServer, req: RequestBuilder, cookie: &str) -> (StatusCode, Value) {
    let r = req
        .header("cookie", cookie)
        .header("origin", &s.base)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn change(s: &TestServer, cookie: &str, current: &str, new: &str) -> (StatusCode, Value) {
    let req = s
        .http
        .put(s.url("/api/v1/me/password"))
        .json(&json!({ "current": current, "new": new }));
    as_user(s, req, cookie).await
}

#[tokio::test]
async fn a_user_changes_their_password_and_their_other_sessions_end() {
    let s = TestServer::start().await;
    user(&s, "ada@example.com", false).await;
    let here = cookie_of(&s, "ada@example.com", PASSWORD).await;
    let elsewhere = cookie_of(&s, "ada@example.com", PASSWORD).await;

    // Without a user: 401.
    let r = s
        .http
        .put(s.url("/api/v1/me/password"))
        .json(&json!({ "current": PASSWORD, "new": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (status, v) = change(&s, &here, "not the password", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("wrong"), "{v}");
    let (status, v) = change(&s, &here, PASSWORD, "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("10"), "{v}");
    let (status, v) = change(&s, &here, PASSWORD, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // A cookie request from another site is refused before anything else.
    let r = s
        .http
        .put(s.url("/api/v1/me/password"))
        .header("cookie", &here)
        .header("origin", "https://evil.example")
        .json(&json!({ "current": PASSWORD, "new": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nothing changed yet: both sessions live, the old password signs in.
    for c in [&here, &elsewhere] {
        let (status, _) = as_user(&s, s.http.get(s.url("/api/v1/me")), c).await;
        assert_eq!(status, StatusCode::OK);
    }

    let (status, v) = change(&s, &here, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let (status, _) = as_user(&s, s.http.get(s.url("/api/v1/me")), &elsewhere).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the other session ended");
    let (status, me) = as_user(&s, s.http.get(s.url("/api/v1/me")), &here).await;
    assert_eq!(status, StatusCode::OK, "the session that asked stays: {me}");
    assert_eq!(me["user"]["email"], "ada@example.com");
    let (status, _, _) = s.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    cookie_of(&s, "ada@example.com", NEW_PASSWORD).await;

    // By API token (no cookie, no Origin needed): every session ends.
    let (status, t) = as_user(
        &s,
        s.http
            .post(s.url("/api/v1/me/tokens"))
            .json(&json!({"name": "ci"})),
        &here,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap();
    let r = s
        .http
        .put(s.url("/api/v1/me/password"))
        .bearer_auth(token)
        .json(&json!({ "current": NEW_PASSWORD, "new": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = as_user(&s, s.http.get(s.url("/api/v1/me")), &here).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no session kept");
    cookie_of(&s, "ada@example.com", PASSWORD).await;
    s.stop().await;
}

#[tokio::test]
async fn wrong_current_passwords_count_toward_the_sign_in_limit() {
    let s = TestServer::start().await;
    user(&s, "bob@example.com", false).await;
    let cookie = cookie_of(&s, "bob@example.com", PASSWORD).await;
    for _ in 0..10 {
        let (status, v) = change(&s, &cookie, "guess guess guess", NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    }
    // Locked: the right password too, in the form and at sign-in.
    let (status, v) = change(&s, &cookie, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let (status, _, _) = s.sign_in("bob@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    s.stop().await;
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Adds a webhook over HTTP with the project token; answers it (with its secret).
async fn add_hook(s: &TestServer, project: i64, token: &str, body: Value) -> Value {
    let r = s
        .http
        .post(s.url(&format!("/api/v1/projects/{project}/webhooks")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["webhook"].clone()
}

async fn test_send(
    s: &TestServer,
    id: i64,
    req: impl FnOnce(RequestBuilder) -> RequestBuilder,
) -> (StatusCode, Value) {
    let r = req(s.http.post(s.url(&format!("/api/v1/webhooks/{id}/test"))))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_test_delivery_arrives_signed_and_says_how_the_target_answered() {
    let s = TestServer::start_with(allow_loopback).await;
    let p = s.project("shop").await;
    let mut rx = Receiver::start().await;
    let hook = add_hook(&s, p.id, &p.token, json!({ "url": rx.url })).await;
    let (id, secret) = (
        hook["id"].as_i64().unwrap(),
        hook["secret"].as_str().unwrap(),
    );

    // With the project token.
    let (status, v) = test_send(&s, id, |r| r.bearer_auth(&p.token)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], 200, "{v}");
    let got = rx.next().await;
    assert_eq!(
        got.header("x-mesher-signature"),
        signature(secret, &got.body)
    );
    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.header("x-mesher-delivery").len(), 32);
    let body = got.json();
    assert_eq!(body["project_id"], p.id, "{body}");
    let alert = &body["alerts"][0];
    assert_eq!(alert["test"], true, "{body}");
    assert_eq!(alert["action"], "new", "{body}");
    assert_eq!(alert["issue"]["project_id"], p.id, "{body}");
    assert!(
        alert["issue"]["title"].as_str().unwrap().contains("Test"),
        "{body}"
    );

    // A member's session; the target answers 500: 502 with its status.
    user(&s, "ada@example.com", false).await;
    mesher::people::change_member(&s.db, p.id, "ada@example.com", true)
        .await
        .unwrap();
    let cookie = cookie_of(&s, "ada@example.com", PASSWORD).await;
    rx.script(&[Reply::Status(500)]);
    let (status, v) = test_send(&s, id, |r| {
        r.header("cookie", &cookie).header("origin", &s.base)
    })
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(v["status"], 500, "{v}");
    assert!(v["error"].as_str().unwrap().contains("500"), "{v}");
    rx.next().await;

    // The slack format: the same message a real alert makes.
    let slack = add_hook(
        &s,
        p.id,
        &p.token,
        json!({ "url": rx.url, "format": "slack" }),
    )
    .await;
    let (status, v) = test_send(&s, slack["id"].as_i64().unwrap(), |r| {
        r.bearer_auth(&p.token)
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let got = rx.next().await;
    let text = got.json()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("Test alert from Mesher"), "{text}");
    assert_eq!(
        got.header("x-mesher-signature"),
        signature(slack["secret"].as_str().unwrap(), &got.body)
    );

    // A receiver gone: 502 with the reason; nothing queued for later.
    rx.stop();
    let (status, v) = test_send(&s, id, |r| r.bearer_auth(&p.token)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("connect"), "{v}");
    s.stop().await;
}

#[tokio::test]
async fn a_test_delivery_obeys_the_forbidden_addresses_and_the_members() {
    // No --webhook-allow-cidr: loopback may not be reached.
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let other = s.project("other").await;
    let mut rx = Receiver::start().await;
    // Written past the add-time check, as the CLI with its own allow list would.
    let mut ids = Vec::new();
    for url in [
        format!("http://127.0.0.1:{}/hook", rx.port),
        format!("http://localhost:{}/hook", rx.port),
    ] {
        let added = s
            .state()
            .store()
            .create_webhook(p.id, &url, &[IssueAction::New], WebhookFormat::Json, "k")
            .await
            .unwrap();
        let WebhookAdded::Added(hook) = added else {
            panic!("{url}: {added:?}")
        };
        ids.push(hook.id);
    }
    for id in &ids {
        let (status, v) = test_send(&s, *id, |r| r.bearer_auth(&p.token)).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains("forbidden address"), "{v}");
    }
    assert!(
        rx.within(std::time::Duration::from_millis(500))
            .await
            .is_none(),
        "a forbidden address got a POST"
    );

    // Who may: another project's token 403, a non-member 403, no credential 401, an
    // unknown webhook 404.
    let id = ids[0];
    let (status, _) = test_send(&s, id, |r| r.bearer_auth(&other.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    user(&s, "eve@example.com", false).await;
    let cookie = cookie_of(&s, "eve@example.com", PASSWORD).await;
    let (status, v) = test_send(&s, id, |r| {
        r.header("cookie", &cookie).header("origin", &s.base)
    })
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not a member"), "{v}");
    let (status, _) = test_send(&s, id, |r| r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = test_send(&s, 9999, |r| r.bearer_auth(&p.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A cookie without this server's Origin: 403 before anything is sent.
    let (status, _) = test_send(&s, id, |r| r.header("cookie", &cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.stop().await;
}
