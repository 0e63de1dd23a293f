//! SPEC §9 against a real server: sign-in and sign-out, the failed-attempt limit, what a
//! member, a non-member and an admin may read, the `Origin` rule for cookie requests, and
//! API tokens.

mod common;

use common::{Creds, TestServer};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "a fine long password";

/// Creates a user the way `mesher user create --password-stdin` does.
async fn user(s: &TestServer, email: &str, admin: bool) {
    mesher::people::create_user(&s.db, email, admin, Some(PASSWORD.into()))
        .await
        .expect("user created");
}

/// Signs in; answers the status, the body and the session cookie (`name=value`).
async fn sign_in(
    s: &TestServer,
    email: &str,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    s.sign_in(email, password).await
}

/// Sends `req` with the session cookie; answers its status and JSON body (or null).
async fn with_cookie(req: RequestBuilder, cookie: &str) -> (StatusCode, Value) {
    let r = req.header("cookie", cookie).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A project with one issue in it.
async fn project_with_issue(s: &TestServer, name: &str) -> Creds {
    let p = s.project(name).await;
    let (status, _) = s.send_event(&p, &json!({ "message": "boom" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    p
}

#[tokio::test]
async fn sign_in_opens_me_and_sign_out_ends_the_session_on_the_server() {
    let s = TestServer::start().await;
    let p = project_with_issue(&s, "shop").await;
    user(&s, "Ada@Example.com", false).await;
    mesher::people::change_member(&s.db, p.id, "ada@example.com", true)
        .await
        .unwrap();

    let (status, body, cookie) = sign_in(&s, "ada@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["admin"], false);
    let cookie = cookie.expect("a session cookie");
    assert!(cookie.starts_with("mesher_session="));

    let (status, me) = with_cookie(s.http.get(s.url("/api/v1/me")), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let projects = me["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0]["id"], p.id);
    assert_eq!(projects[0]["unresolved"], 1);
    let dsn = projects[0]["dsn"].as_str().unwrap();
    assert!(
        dsn.contains(&format!("{}@", p.key)) && dsn.ends_with(&format!("/{}", p.id)),
        "{dsn}"
    );

    let out = s
        .http
        .delete(s.url("/api/v1/session"))
        .header("origin", &s.base);
    let (status, _) = with_cookie(out, &cookie).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = with_cookie(s.http.get(s.url("/api/v1/me")), &cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old cookie is dead");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let s = TestServer::start().await;
    user(&s, "ada@example.com", false).await;
    let (wrong, wrong_body, c1) = sign_in(&s, "ada@example.com", "not the password").await;
    let (unknown, unknown_body, c2) = sign_in(&s, "nobody@example.com", PASSWORD).await;
    assert_eq!(wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_body, unknown_body, "the same message for both");
    assert!(c1.is_none() && c2.is_none(), "no cookie for a failure");
}

#[tokio::test]
async fn the_eleventh_attempt_after_ten_failures_is_429_even_with_the_right_password() {
    let s = TestServer::start().await;
    user(&s, "ada@example.com", false).await;
    for i in 0..10 {
        let (status, _, _) = sign_in(&s, "ada@example.com", "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failure {}", i + 1);
    }
    let r = s
        .http
        .post(s.url("/api/v1/session"))
        .json(&json!({ "email": "ada@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    user(&s, "bob@example.com", false).await;
    let (status, _, _) = sign_in(&s, "bob@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "another e-mail is not locked");
}

#[tokio::test]
async fn members_read_their_projects_others_get_403_and_admins_read_every_one() {
    let s = TestServer::start().await;
    let shop = project_with_issue(&s, "shop").await;
    let blog = project_with_issue(&s, "blog").await;
    user(&s, "member@example.com", false).await;
    user(&s, "other@example.com", false).await;
    user(&s, "admin@example.com", true).await;
    mesher::people::change_member(&s.db, shop.id, "member@example.com", true)
        .await
        .unwrap();
    let issues = |p: &Creds| s.url(&format!("/api/v1/projects/{}/issues", p.id));
    let events = |p: &Creds| s.url(&format!("/api/v1/projects/{}/events", p.id));

    let (_, _, member) = sign_in(&s, "member@example.com", PASSWORD).await;
    let (_, _, other) = sign_in(&s, "other@example.com", PASSWORD).await;
    let (_, _, admin) = sign_in(&s, "admin@example.com", PASSWORD).await;
    let (member, other, admin) = (member.unwrap(), other.unwrap(), admin.unwrap());

    let (status, list) = with_cookie(s.http.get(issues(&shop)), &member).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["issues"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        with_cookie(s.http.get(events(&shop)), &member).await.0,
        StatusCode::OK
    );
    assert_eq!(
        with_cookie(s.http.get(issues(&blog)), &member).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        with_cookie(s.http.get(issues(&shop)), &other).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        with_cookie(s.http.get(issues(&blog)), &admin).await.0,
        StatusCode::OK
    );
    let (_, me) = with_cookie(s.http.get(s.url("/api/v1/me")), &admin).await;
    assert_eq!(
        me["projects"].as_array().map(Vec::len),
        Some(2),
        "an admin sees every project"
    );
    let bad = "mesher_session=0000000000000000000000000000000000000000000000000000000000000000";
    assert_eq!(
        with_cookie(s.http.get(issues(&shop)), bad).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_cookie_request_that_changes_anything_needs_this_servers_origin() {
    let s = TestServer::start().await;
    user(&s, "ada@example.com", false).await;
    let (_, _, cookie) = sign_in(&s, "ada@example.com", PASSWORD).await;
    let cookie = cookie.unwrap();
    let make = |origin: Option<&str>| {
        let req = s
            .http
            .post(s.url("/api/v1/me/tokens"))
            .json(&json!({ "name": "ci" }));
        match origin {
            Some(o) => req.header("origin", o),
            None => req,
        }
    };
    assert_eq!(
        with_cookie(make(None), &cookie).await.0,
        StatusCode::FORBIDDEN
    );
    let evil = with_cookie(make(Some("https://evil.example")), &cookie).await;
    assert_eq!(evil.0, StatusCode::FORBIDDEN, "{}", evil.1);
    let (_, list) = with_cookie(s.http.get(s.url("/api/v1/me/tokens")), &cookie).await;
    assert_eq!(list["tokens"], json!([]), "nothing was made");
    let own = with_cookie(make(Some(&s.base)), &cookie).await;
    assert_eq!(own.0, StatusCode::CREATED, "{}", own.1);
}

#[tokio::test]
async fn api_tokens_act_as_their_user_and_stop_at_once_when_deleted() {
    let s = TestServer::start().await;
    let shop = project_with_issue(&s, "shop").await;
    user(&s, "ada@example.com", false).await;
    mesher::people::change_member(&s.db, shop.id, "ada@example.com", true)
        .await
        .unwrap();
    let (_, _, cookie) = sign_in(&s, "ada@example.com", PASSWORD).await;
    let cookie = cookie.unwrap();
    let make = s
        .http
        .post(s.url("/api/v1/me/tokens"))
        .header("origin", &s.base)
        .json(&json!({ "name": "laptop" }));
    let (status, made) = with_cookie(make, &cookie).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("mshr_") && token.len() >= 45, "{token}");

    let path = format!("/api/v1/projects/{}/issues", shop.id);
    let (status, list) = s.get(&path, &token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let (_, listed) = with_cookie(s.http.get(s.url("/api/v1/me/tokens")), &cookie).await;
    assert_eq!(listed["tokens"][0]["name"], "laptop");
    assert!(
        listed.to_string().find(&token).is_none(),
        "the secret is not listed"
    );

    let id = made["id"].as_i64().unwrap();
    let del = s
        .http
        .delete(s.url(&format!("/api/v1/me/tokens/{id}")))
        .bearer_auth(&token);
    assert_eq!(del.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&path, &token).await.0,
        StatusCode::UNAUTHORIZED,
        "deleted: refused at once"
    );
}

#[tokio::test]
async fn admins_create_projects_rotate_tokens_and_choose_members_others_get_403() {
    let s = TestServer::start().await;
    user(&s, "admin@example.com", true).await;
    user(&s, "ada@example.com", false).await;
    let (_, _, admin) = sign_in(&s, "admin@example.com", PASSWORD).await;
    let (_, _, ada) = sign_in(&s, "ada@example.com", PASSWORD).await;
    let (admin, ada) = (admin.unwrap(), ada.unwrap());
    let post = |path: &str| s.http.post(s.url(path)).header("origin", &s.base);

    let create = post("/api/v1/projects").json(&json!({ "name": "shop" }));
    let (status, made) = with_cookie(create, &admin).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (id, token) = (
        made["id"].as_i64().unwrap(),
        made["token"].as_str().unwrap().to_owned(),
    );
    let dsn = made["dsn"].as_str().unwrap();
    assert!(
        dsn.starts_with("http://") && dsn.ends_with(&format!("@{}/{id}", s.addr)),
        "{dsn}"
    );
    let by_ada = post("/api/v1/projects").json(&json!({ "name": "mine" }));
    assert_eq!(with_cookie(by_ada, &ada).await.0, StatusCode::FORBIDDEN);

    let issues = s.url(&format!("/api/v1/projects/{id}/issues"));
    assert_eq!(
        with_cookie(s.http.get(&issues), &ada).await.0,
        StatusCode::FORBIDDEN
    );
    let member = s.url(&format!("/api/v1/projects/{id}/members/Ada@Example.com"));
    let put = s.http.put(&member).header("origin", &s.base);
    let (status, v) = with_cookie(put, &admin).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        with_cookie(s.http.get(&issues), &ada).await.0,
        StatusCode::OK
    );
    let by_ada = s.http.delete(&member).header("origin", &s.base);
    assert_eq!(
        with_cookie(by_ada, &ada).await.0,
        StatusCode::FORBIDDEN,
        "not an admin"
    );
    let delete = s.http.delete(&member).header("origin", &s.base);
    assert_eq!(with_cookie(delete, &admin).await.0, StatusCode::OK);
    assert_eq!(
        with_cookie(s.http.get(&issues), &ada).await.0,
        StatusCode::FORBIDDEN
    );

    let rotate = post(&format!("/api/v1/projects/{id}/rotate-token"));
    let (status, rotated) = with_cookie(rotate, &admin).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["token"].as_str().unwrap();
    assert_ne!(new, token);
    let path = format!("/api/v1/projects/{id}/issues");
    let refused = tokio::time::timeout(common::WAIT, async {
        while s.get(&path, &token).await.0 != StatusCode::UNAUTHORIZED {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    refused.await.expect("the old token is refused within 5 s");
    let ok = tokio::time::timeout(common::WAIT, async {
        while s.get(&path, new).await.0 != StatusCode::OK {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    ok.await.expect("the new token works");
}

/// Opens the project's stream with the session cookie on the upgrade.
async fn stream_with_cookie(
    s: &TestServer,
    project: i64,
    cookie: &str,
) -> Result<common::ws::Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = s
        .ws_url(&format!("/stream/projects/{project}"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

#[tokio::test]
async fn a_member_streams_with_the_session_cookie_until_the_membership_ends() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    user(&s, "ada@example.com", false).await;
    user(&s, "bob@example.com", false).await;
    mesher::people::change_member(&s.db, p.id, "ada@example.com", true)
        .await
        .unwrap();
    let (_, _, ada) = sign_in(&s, "ada@example.com", PASSWORD).await;
    let (_, _, bob) = sign_in(&s, "bob@example.com", PASSWORD).await;

    match stream_with_cookie(&s, p.id, &bob.unwrap()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("a non-member's stream opened: {:?}", other.map(|_| ())),
    }
    let mut ws = stream_with_cookie(&s, p.id, &ada.unwrap())
        .await
        .expect("member streams");
    assert_eq!(common::ws::next_json(&mut ws).await["type"], "subscribed");
    s.send_event(&p, &json!({ "message": "live" })).await;
    let event = common::ws::next_of(&mut ws, "event").await;
    assert_eq!(event["event"]["message"], "live");

    mesher::people::change_member(&s.db, p.id, "ada@example.com", false)
        .await
        .unwrap();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(f)))) => return u16::from(f.code),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    });
    assert_eq!(closed.await.expect("closed within 5 s"), 1008);
}

#[tokio::test]
async fn members_change_issue_states_and_see_webhooks_non_members_get_403() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let (_, sent) = s.send_event(&p, &json!({ "message": "boom" })).await;
    let issue = sent["issue_id"].as_i64().unwrap();
    user(&s, "ada@example.com", false).await;
    user(&s, "bob@example.com", false).await;
    mesher::people::change_member(&s.db, p.id, "ada@example.com", true)
        .await
        .unwrap();
    let (_, _, ada) = sign_in(&s, "ada@example.com", PASSWORD).await;
    let (_, _, bob) = sign_in(&s, "bob@example.com", PASSWORD).await;
    let (ada, bob) = (ada.unwrap(), bob.unwrap());
    let resolve = || {
        let url = s.url(&format!("/api/v1/issues/{issue}/resolve"));
        s.http.post(url).header("origin", &s.base)
    };
    let show = || s.http.get(s.url(&format!("/api/v1/issues/{issue}")));
    let hooks = || {
        s.http
            .get(s.url(&format!("/api/v1/projects/{}/webhooks", p.id)))
    };

    assert_eq!(with_cookie(show(), &bob).await.0, StatusCode::FORBIDDEN);
    assert_eq!(with_cookie(resolve(), &bob).await.0, StatusCode::FORBIDDEN);
    assert_eq!(with_cookie(hooks(), &bob).await.0, StatusCode::FORBIDDEN);
    assert_eq!(with_cookie(show(), &ada).await.0, StatusCode::OK);
    let (status, resolved) = with_cookie(resolve(), &ada).await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["issue"]["status"], "resolved");
    assert_eq!(with_cookie(hooks(), &ada).await.0, StatusCode::OK);
}

#[tokio::test]
async fn retention_deletes_ended_sessions_and_keeps_live_ones() {
    use mesher::model::Millis;
    let s = TestServer::start().await;
    user(&s, "ada@example.com", false).await;
    let (_, _, cookie) = sign_in(&s, "ada@example.com", PASSWORD).await;
    let cookie = cookie.unwrap();
    let store = mesher::store::open(&s.db).await.unwrap();
    let now = Millis::now();
    assert_eq!(
        store.purge_sessions(now, now).await.unwrap(),
        0,
        "a live session stays"
    );
    assert_eq!(
        with_cookie(s.http.get(s.url("/api/v1/me")), &cookie)
            .await
            .0,
        StatusCode::OK
    );
    let eight_days_on = Millis(now.0 + 8 * 86_400_000);
    assert_eq!(
        store.purge_sessions(eight_days_on, now).await.unwrap(),
        1,
        "unused for 7 days"
    );
    let ended = tokio::time::timeout(common::WAIT, async {
        while with_cookie(s.http.get(s.url("/api/v1/me")), &cookie)
            .await
            .0
            != StatusCode::UNAUTHORIZED
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    ended
        .await
        .expect("the deleted session is refused within 2 s");
}
