//! The dashboard's issue list (issue 25) in a real headless Chromium, driven by
//! tests/dashboard/lists.mjs (playwright-core): paging with "Load more", the list's count
//! being the unresolved count, issues leaving and joining the is:unresolved list live, the
//! "regressed" mark, and the notice of events refused by the rate limit.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use std::path::Path;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CHROMIUM: &str = "/usr/bin/chromium";
/// Room for the 151 events the script stores, not for its bulk of 100 more.
const RATE_LIMIT: u32 = 200;

#[tokio::test]
async fn the_list_counts_pages_and_follows_the_stream_in_a_real_browser() {
    let playwright = format!("{ROOT}/tests/dashboard/node_modules/playwright-core");
    assert!(
        Path::new(&playwright).exists(),
        "playwright-core is not installed: run the tests with scripts/test.sh, which runs npm ci in tests/dashboard"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
    );
    let s = TestServer::start_with(|c| c.rate_limit = RATE_LIMIT).await;
    let p = s.project("lists").await;
    std::fs::create_dir_all(format!("{ROOT}/target")).expect("target/ exists");
    let shot = format!("{ROOT}/target/dashboard-lists.png");
    let _ = std::fs::remove_file(&shot);

    let run = tokio::process::Command::new("node")
        .arg(format!("{ROOT}/tests/dashboard/lists.mjs"))
        .arg(&s.base)
        .arg(p.id.to_string())
        .arg(&p.token)
        .arg(&p.key)
        .arg(RATE_LIMIT.to_string())
        .arg(&shot)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(110), run)
        .await
        .expect("lists.mjs finishes within 110 s")
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "lists.mjs failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("lists.mjs printed no JSON summary ({e}): {stdout}"));
    assert_eq!(summary["ok"], true, "{summary}");
    println!("{summary}");

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
