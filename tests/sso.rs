//! SPEC §9 single sign-on against a real OpenID Connect provider on loopback (PyPI's
//! `oidc-provider-mock`, run with `MESHER_TEST_PYTHON`). The test plays the browser:
//! it follows the redirects by hand, carries the cookies, and submits the provider's
//! authorization form for a subject whose claims it set beforehand.

mod common;

use common::TestServer;
use common::oidc::Provider;
use common::process::free_port;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

/// A Mesher server whose SSO is the provider, creating users of `example.com`.
async fn server(provider: &Provider) -> TestServer {
    let issuer = provider.base.clone();
    TestServer::start_with(move |c| {
        c.oidc_issuer = Some(issuer);
        c.oidc_client_id = Some("mesher".into());
        c.oidc_client_secret = Some("a client secret".into());
        c.oidc_allow_domain = vec!["example.com".into()];
    })
    .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the `Set-Cookie` for `name` in `r`, if any (with an empty value: removed).
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// What a browser holds after the provider sent it back: the callback URL and the flow
/// cookie Mesher set at the start.
struct Returned {
    callback: String,
    flow_cookie: String,
    authorize_url: String,
}

/// Starts a sign-in at Mesher and authorizes `sub` at the provider (`deny`: refuses).
async fn go_to_provider(s: &TestServer, sub: &str, deny: bool) -> Returned {
    let http = no_redirects();
    let r = http
        .get(s.url("/auth/oidc/start?next=/%23project=1%26issue=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let flow_cookie = set_cookie(&r, "mesher_oidc").expect("the flow cookie is set");
    let authorize_url = location(&r);
    let form: &[(&str, &str)] = if deny {
        &[("action", "deny")]
    } else {
        &[("sub", sub)]
    };
    let r = http.post(&authorize_url).form(form).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    Returned {
        callback: location(&r),
        flow_cookie,
        authorize_url,
    }
}

/// Opens the callback with `cookie`: the response.
async fn come_back(url: &str, cookie: &str) -> reqwest::Response {
    no_redirects()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

/// Asserts a failure page: its status, that it says `why`, and that nobody is signed in.
async fn assert_page(r: reqwest::Response, status: StatusCode, why: &str) {
    assert_eq!(r.status(), status);
    assert!(set_cookie(&r, "mesher_session").is_none());
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let page = r.text().await.unwrap();
    assert!(page.contains(why), "the page says {why:?}: {page}");
    assert!(
        page.contains("href=\"/\""),
        "a link back to sign-in: {page}"
    );
}

#[tokio::test]
async fn a_first_sso_sign_in_creates_the_user_of_an_allowed_domain_and_returns_to_the_page() {
    let provider = Provider::start().await;
    let s = server(&provider).await;
    provider
        .user(
            "ada",
            json!({"email": "Ada@Example.com", "email_verified": true}),
        )
        .await;

    let (status, opts) = s.get("/api/v1/sign-in", "").await;
    assert_eq!((status, &opts["sso"]), (StatusCode::OK, &json!(true)));

    let back = go_to_provider(&s, "ada", false).await;
    // Authorization code with PKCE (S256), state and nonce, asking for the e-mail.
    let url = reqwest::Url::parse(&back.authorize_url).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["code_challenge"].len() >= 43);
    assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16);
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    assert!(q["scope"].split(' ').any(|s| s == "email"));
    assert_eq!(q["redirect_uri"], s.url("/auth/oidc/callback"));

    let r = come_back(&back.callback, &back.flow_cookie).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/#project=1&issue=7",
        "back to the page it started on"
    );
    assert_eq!(
        set_cookie(&r, "mesher_oidc").as_deref(),
        Some("mesher_oidc=")
    );
    let session = set_cookie(&r, "mesher_session").expect("signed in");

    let me: Value = s
        .http
        .get(s.url("/api/v1/me"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["user"]["admin"], false);
    assert_eq!(me["projects"], json!([]));

    // A second sign-in finds the same user; the code of the first cannot be used again.
    let replay = come_back(&back.callback, &back.flow_cookie).await;
    assert_page(
        replay,
        StatusCode::BAD_GATEWAY,
        "did not accept the sign-in code",
    )
    .await;
    let again = go_to_provider(&s, "ada", false).await;
    let r = come_back(&again.callback, &again.flow_cookie).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let users = mesher::people::list_users(&s.db).await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    s.stop().await;
}

#[tokio::test]
async fn sso_refuses_an_unknown_user_of_another_domain_but_signs_in_a_known_one() {
    let provider = Provider::start().await;
    let s = server(&provider).await;
    provider
        .user(
            "eve",
            json!({"email": "eve@elsewhere.org", "email_verified": true}),
        )
        .await;
    let back = go_to_provider(&s, "eve", false).await;
    let r = come_back(&back.callback, &back.flow_cookie).await;
    assert_page(
        r,
        StatusCode::FORBIDDEN,
        "no Mesher account for eve@elsewhere.org",
    )
    .await;
    assert!(mesher::people::list_users(&s.db).await.unwrap().is_empty());

    // Made beforehand by an admin: any domain signs in.
    mesher::people::create_user(&s.db, "eve@elsewhere.org", false, None)
        .await
        .unwrap();
    let back = go_to_provider(&s, "eve", false).await;
    let r = come_back(&back.callback, &back.flow_cookie).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&r, "mesher_session").is_some());
    s.stop().await;
}

#[tokio::test]
async fn sso_refuses_a_tampered_state_a_missing_flow_and_an_unverified_email() {
    let provider = Provider::start().await;
    let s = server(&provider).await;
    provider
        .user(
            "bob",
            json!({"email": "bob@example.com", "email_verified": true}),
        )
        .await;
    provider
        .user(
            "carl",
            json!({"email": "carl@example.com", "email_verified": false}),
        )
        .await;

    let back = go_to_provider(&s, "bob", false).await;
    let tampered = back.callback.replace("state=", "state=x");
    assert_ne!(tampered, back.callback);
    let r = come_back(&tampered, &back.flow_cookie).await;
    assert_page(r, StatusCode::BAD_REQUEST, "state does not match").await;
    // Another browser (no flow cookie) cannot finish it either.
    let r = come_back(&back.callback, "other=1").await;
    assert_page(r, StatusCode::BAD_REQUEST, "not started here").await;

    let back = go_to_provider(&s, "carl", false).await;
    let r = come_back(&back.callback, &back.flow_cookie).await;
    assert_page(r, StatusCode::FORBIDDEN, "carl@example.com is not verified").await;

    let back = go_to_provider(&s, "bob", true).await;
    let r = come_back(&back.callback, &back.flow_cookie).await;
    assert_page(
        r,
        StatusCode::FORBIDDEN,
        "refused the sign-in: access_denied",
    )
    .await;
    assert!(mesher::people::list_users(&s.db).await.unwrap().is_empty());
    s.stop().await;
}

#[tokio::test]
async fn sso_without_a_provider_says_so_on_a_page() {
    // Configured, but the provider is not there: the server runs, the page says why.
    let port = free_port();
    let s = TestServer::start_with(move |c| {
        c.oidc_issuer = Some(format!("http://127.0.0.1:{port}"));
        c.oidc_client_id = Some("mesher".into());
        c.oidc_client_secret = Some("secret".into());
    })
    .await;
    let r = no_redirects()
        .get(s.url("/auth/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_page(r, StatusCode::BAD_GATEWAY, "could not be reached").await;
    s.stop().await;

    // Not configured at all.
    let s = TestServer::start().await;
    let (status, opts) = s.get("/api/v1/sign-in", "").await;
    assert_eq!((status, &opts["sso"]), (StatusCode::OK, &json!(false)));
    let r = no_redirects()
        .get(s.url("/auth/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_page(r, StatusCode::NOT_FOUND, "not configured").await;
    let r = no_redirects()
        .get(s.url("/auth/oidc/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}
