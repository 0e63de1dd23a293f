//! The dashboard's issue list (issue 25) in a real headless Chromium, driven by
//! tests/dashboard/lists.mjs (playwright-core): paging with "Load more", the list's count
//! being the unresolved count, issues leaving and joining the is:unresolved list live, the
//! "regressed" mark, and the notice of events refused by the rate limit.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Room for the 151 events the script stores, not for its bulk of 100 more.
const RATE_LIMIT: u32 = 200;

#[tokio::test]
async fn the_list_counts_pages_and_follows_the_stream_in_a_real_browser() {
    common::browser::require();
    let s = TestServer::start_with(|c| c.rate_limit = RATE_LIMIT).await;
    let p = s.project("lists").await;
    std::fs::create_dir_all(format!("{ROOT}/target")).expect("target/ exists");
    let shot = format!("{ROOT}/target/dashboard-lists.png");
    let _ = std::fs::remove_file(&shot);

    let id = p.id.to_string();
    let limit = RATE_LIMIT.to_string();
    let summary = common::browser::run(
        "lists.mjs",
        &[&s.base, &id, &p.token, &p.key, &limit, &shot],
        Duration::from_secs(110),
    )
    .await;

    // What the page showed is what the server holds.
    let (status, v) = s
        .get(&format!("/api/v1/projects/{}/stats", p.id), &p.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["unresolved"], summary["unresolved"], "{v}");
    assert_eq!(v["rate_limited_last_hour"], 100, "{v}");
    let (_, v) = s
        .get(
            &format!(
                "/api/v1/projects/{}/issues?query=is:unresolved&limit=1",
                p.id
            ),
            &p.token,
        )
        .await;
    assert_eq!(v["total"], summary["rows"], "{v}");
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "no screenshot at {shot}"
    );
    s.stop().await;
}
