//! SPEC §9, the dashboard with accounts: a project's settings page, driven in a real
//! headless Chromium by tests/dashboard/settings.mjs (playwright-core). An admin creates a
//! project, copies its DSN, which the real Python sentry-sdk then sends with, sends a
//! webhook a test and adds a member, who opens an alert's link to the issue.

mod common;

use common::TestServer;
use common::receiver::{Receiver, allow_loopback};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const ADMIN: (&str, &str) = ("root@example.com", "the admin's long password");
const MEMBER: (&str, &str) = ("ada@example.com", "the member's long password");

#[tokio::test]
async fn an_admin_sets_up_a_project_and_a_member_follows_an_alert_link_in_a_real_browser() {
    common::browser::require();
    // The receiver is on loopback: the server may reach it.
    let s = TestServer::start_with(allow_loopback).await;
    let mut rx = Receiver::start().await;
    for (email, password, admin) in [(ADMIN.0, ADMIN.1, true), (MEMBER.0, MEMBER.1, false)] {
        mesher::people::create_user(&s.db, email, admin, Some(password.into()))
            .await
            .expect("user created");
    }
    let shots = format!("{ROOT}/target/screenshots");
    for name in ["settings-desktop.png", "settings-phone.png"] {
        let _ = std::fs::remove_file(format!("{shots}/{name}"));
    }

    let summary = common::browser::run(
        "settings.mjs",
        &[
            &s.base, ADMIN.0, ADMIN.1, MEMBER.0, MEMBER.1, &rx.url, &shots,
        ],
        Duration::from_secs(120),
    )
    .await;

    for name in ["settings-desktop.png", "settings-phone.png"] {
        common::browser::assert_screenshot(&format!("{shots}/{name}"));
    }

    // The test delivery the page sent arrived, signed with the secret the page showed.
    let got = rx.next().await;
    let secret = summary["secret"].as_str().expect("secret");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&got.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(got.header("x-mesher-signature"), want);
    let project: i64 = summary["project"].as_str().unwrap().parse().unwrap();
    assert_eq!(got.json()["project_id"], project);
    assert_eq!(got.json()["alerts"][0]["test"], true);

    // The link the member followed is the one alerts carry.
    let issue: i64 = summary["issue"].as_str().unwrap().parse().unwrap();
    let alert = serde_json::json!({"action": "new", "issue": {"id": issue, "title": "x"}});
    let mail = mesher::alerts::payload::email_body(project, &[alert.to_string()], &s.base);
    let link = summary["link"].as_str().unwrap();
    assert!(
        mail.contains(link),
        "{link} is not in an alert's text:\n{mail}"
    );

    // What the page did is what the server holds: the member, the token, the SDK's events.
    let token = summary["project_token"].as_str().unwrap();
    let (status, v) = s
        .get(&format!("/api/v1/projects/{project}/issues"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == issue),
        "{v}"
    );
    let members = mesher::people::list_members(&s.db, project).await.unwrap();
    assert!(
        members.iter().any(|m| m["email"] == MEMBER.0),
        "{members:?}"
    );
    // The member's new password signs in; the old one does not.
    let (status, _, _) = s.sign_in(MEMBER.0, MEMBER.1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = s
        .sign_in(MEMBER.0, "a brand new password for the member")
        .await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}
