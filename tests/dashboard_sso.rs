//! "Sign in with SSO" in a real browser (Debian's Chromium, playwright-core) against a real
//! OpenID Connect provider on loopback: a teammate follows an alert's link to an issue,
//! signs in by SSO for the first time, and lands on that issue (tests/dashboard/sso.mjs).

mod common;

use common::TestServer;
use common::oidc::Provider;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::test]
async fn an_alert_link_opens_its_issue_after_a_first_sso_sign_in_in_a_real_browser() {
    common::browser::require();
    let provider = Provider::start().await;
    provider
        .user(
            "grace",
            json!({"email": "grace@example.com", "email_verified": true}),
        )
        .await;
    let issuer = provider.base.clone();
    let s = TestServer::start_with(move |c| {
        c.oidc_issuer = Some(issuer);
        c.oidc_client_id = Some("mesher".into());
        c.oidc_client_secret = Some("a client secret".into());
        c.oidc_allow_domain = vec!["example.com".into()];
    })
    .await;
    let p = s.project("checkout").await;
    let title = "payment declined for order 1234";
    let (status, v) = s.send_event(&p, &json!({ "message": title })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let (_, list) = s
        .get(&format!("/api/v1/projects/{}/issues", p.id), &p.token)
        .await;
    let issue = list["issues"][0]["id"].as_i64().expect("one issue");
    // An admin made the account (no password: SSO only) and added it to the project;
    // the teammate has never signed in.
    mesher::people::create_user(&s.db, "grace@example.com", false, None)
        .await
        .unwrap();
    mesher::people::change_member(&s.db, p.id, "grace@example.com", true)
        .await
        .unwrap();

    let shots = format!("{ROOT}/target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (project, issue) = (p.id.to_string(), issue.to_string());
    let summary = common::browser::run(
        "sso.mjs",
        &[&s.base, &project, &issue, title, "grace", &shots],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(summary["provider"], provider.base, "{summary}");
    assert_eq!(summary["account"], "grace@example.com", "{summary}");
    s.stop().await;
}
